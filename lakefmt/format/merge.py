"""Merging one branch into another: appended rows, deletions, cell updates, schema changes.

The merge base is the fork point of the two branches, or where the previous merge of the
same source left off (recorded in the target manifest's ``merges``). Source changes are
found by comparing the source's latest commit with the base, fragment by fragment; they
apply to the target only where the target did not change the same cells since the base. A
cell both sides changed to different values, or a schema change both sides made
incompatibly, raises :class:`MergeConflictError` and changes nothing, unless ``resolve``
picks a side.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pyarrow as pa

from lakefmt.errors import MergeConflictError
from lakefmt.format import layout
from lakefmt.format.commit import (
    AppendFragmentCopies,
    DeleteRows,
    Operation,
    UpdateCells,
    _column_state,
)
from lakefmt.format.manifest import Field, Fragment, Manifest, MergeRecord, VersionRef
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.versions import branch_info, iter_commits, read_latest, resolve_ref
from lakefmt.storage import Storage

Resolve = Literal["error", "ours", "theirs"]


def _equal_mask(a: pa.Array, b: pa.Array) -> np.ndarray:
    left, right = a.to_pylist(), b.to_pylist()
    return np.array([_same(x, y) for x, y in zip(left, right, strict=True)], dtype=bool)


def _same(x: object, y: object) -> bool:
    if isinstance(x, float) and isinstance(y, float) and x != x and y != y:
        return True  # NaN == NaN for change detection
    return x == y


@dataclasses.dataclass
class MergeBranch(Operation):
    """Apply a planned merge to the newest target manifest."""

    source_branch: str
    source_version: int
    target_base: Manifest
    new_fields: list[Field]
    drops: list[int]
    renames: dict[int, str]
    templates: list[Fragment]
    deletions: dict[int, np.ndarray]
    updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]]
    """(target fragment id, source field id) -> (positions, values)."""
    field_map: dict[int, int]
    fragment_map: dict[int, int]
    name: str = "merge"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Add columns, append the source's new fragments, apply deletions and updates."""
        fields = [f for f in manifest.fields if f.id not in self.drops]
        for fid, new_name in self.renames.items():
            fields = [f.model_copy(update={"name": new_name}) if f.id == fid else f for f in fields]
        names = {f.name for f in fields}
        field_map = dict(self.field_map)
        next_field = manifest.next_field_id
        for src in self.new_fields:
            if src.name in names:
                raise MergeConflictError(
                    f"both branches have a column '{src.name}'; rename one before merging",
                    columns=[src.name],
                )
            field_map[src.id] = next_field
            fields.append(src.model_copy(update={"id": next_field}))
            names.add(src.name)
            next_field += 1
        live_ids = {f.id for f in fields}
        merged = manifest.model_copy(update={"fields": fields, "next_field_id": next_field})

        def map_field(fid: int) -> int:
            target = field_map.get(fid, fid)
            # Columns the target does not have get ids that never match a field.
            return target if target in live_ids else -1 - fid

        templates = [
            t.model_copy(
                update={
                    "files": [
                        d.model_copy(update={"field_ids": [map_field(i) for i in d.field_ids]})
                        for d in t.files
                    ],
                    "updates": [
                        u.model_copy(update={"field_id": map_field(u.field_id)})
                        for u in t.updates
                        if map_field(u.field_id) >= 0
                    ],
                }
            )
            for t in self.templates
        ]
        appended = AppendFragmentCopies(templates)
        merged = appended.apply(storage, merged)
        if self.deletions:
            merged = DeleteRows(manifest, self.deletions).apply(storage, merged)
        changes = {
            (frag, map_field(fid)): value
            for (frag, fid), value in self.updates.items()
            if map_field(fid) >= 0
        }
        if changes:
            merged = UpdateCells(self.target_base, changes).apply(storage, merged)
        record = MergeRecord(
            source_version=self.source_version,
            target_version=manifest.version + 1,
            fragments={**self.fragment_map, **appended.assigned},
            fields={k: v for k, v in field_map.items() if v != k},
        )
        return merged.model_copy(update={"merges": {**manifest.merges, self.source_branch: record}})


def _fork_point(storage: Storage, target: Manifest, source_branch: str) -> Manifest:
    for child, parent_side in ((source_branch, target.branch), (target.branch, source_branch)):
        if child == layout.MAIN_BRANCH:
            continue
        parent = VersionRef.model_validate(branch_info(storage, child)["parent"])
        if parent.branch == parent_side:
            return resolve_ref(storage, parent)
    raise MergeConflictError(
        f"branches '{source_branch}' and '{target.branch}' have no direct fork point; merge "
        "through the branch they were created from"
    )


def plan_merge(
    storage: Storage, target: Manifest, source_branch: str, *, resolve: Resolve = "error"
) -> MergeBranch | None:
    """Work out what merging ``source_branch`` into ``target`` changes; None if nothing.

    Raises:
        MergeConflictError: Both sides changed the same cells (with ``resolve="error"``),
            the schema incompatibly, or fragments the other side still needs.
        BranchNotFoundError: No such branch.
    """
    if resolve not in ("error", "ours", "theirs"):
        raise ValueError(f"resolve must be 'error', 'ours' or 'theirs', not {resolve!r}")
    if source_branch == target.branch:
        raise ValueError(f"cannot merge branch '{source_branch}' into itself")
    head = read_latest(storage, source_branch)
    source = next(iter_commits(storage, head), None)
    if source is None:
        return None
    record = target.merges.get(source_branch)
    if record is not None:
        source_base = resolve_ref(
            storage, VersionRef(branch=source_branch, version=record.source_version)
        )
        target_base = resolve_ref(
            storage, VersionRef(branch=target.branch, version=record.target_version)
        )
        fragment_map, field_map = dict(record.fragments), dict(record.fields)
    else:
        source_base = target_base = _fork_point(storage, target, source_branch)
        fragment_map, field_map = {}, {}
    if source.fragments == source_base.fragments and source.fields == source_base.fields:
        return None

    def tfield(fid: int) -> int:
        return field_map.get(fid, fid)

    def tfrag(frag_id: int) -> int:
        return fragment_map.get(frag_id, frag_id)

    conflicts_cols: set[str] = set()
    conflict_rows: list[int] = []

    # -- schema ---------------------------------------------------------------------------------
    base_fields = {f.id: f for f in source_base.fields}
    src_fields = {f.id: f for f in source.fields}
    tgt_base_fields = {f.id: f for f in target_base.fields}
    tgt_fields = {f.id: f for f in target.fields}
    new_fields = [f for fid, f in src_fields.items() if fid not in base_fields]
    drops = [
        tfield(fid) for fid in base_fields if fid not in src_fields and tfield(fid) in tgt_fields
    ]
    renames: dict[int, str] = {}
    for fid, f in src_fields.items():
        old = base_fields.get(fid)
        if old is None or old.name == f.name:
            continue
        tid = tfield(fid)
        if tid not in tgt_fields:
            continue
        tgt_name = tgt_fields[tid].name
        tgt_old = tgt_base_fields.get(tid)
        if tgt_old is not None and tgt_name != tgt_old.name and tgt_name != f.name:
            raise MergeConflictError(
                f"column '{old.name}' was renamed to '{f.name}' on '{source_branch}' and to "
                f"'{tgt_name}' on '{target.branch}'",
                columns=[old.name],
            )
        renames[tid] = f.name

    # -- data -----------------------------------------------------------------------------------
    base_snap = Snapshot(storage, source_base)
    src_snap = Snapshot(storage, source)
    tgt_base_snap = Snapshot(storage, target_base)
    tgt_snap = Snapshot(storage, target)
    src_frags = {f.id: f for f in source.fragments}
    tgt_frags = {f.id: f for f in target.fragments}
    tgt_base_frags = {f.id: f for f in target_base.fragments}
    templates = [f for f in source.fragments if f.id >= source_base.next_fragment_id]
    deletions: dict[int, np.ndarray] = {}
    updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]] = {}
    for base_frag in source_base.fragments:
        src_frag = src_frags.get(base_frag.id)
        if src_frag is None:
            raise MergeConflictError(
                f"'{source_branch}' rewrote rows it shares with '{target.branch}' (optimize); "
                "merge before optimizing a branch"
            )
        if src_frag == base_frag:
            continue
        tgt_id = tfrag(base_frag.id)
        tgt_frag = tgt_frags.get(tgt_id)
        if tgt_frag is None:
            raise MergeConflictError(
                f"'{target.branch}' rewrote (optimized) rows that '{source_branch}' changed; "
                "merge before optimizing"
            )
        gone = np.setdiff1d(src_snap.deleted(src_frag), base_snap.deleted(base_frag))
        if len(gone):
            deletions[tgt_id] = gone
        for fid in src_fields:
            if _column_state(src_frag, fid) == _column_state(base_frag, fid):
                continue
            field, all_pos = src_fields[fid], np.arange(src_frag.rows, dtype=np.int64)
            if fid in base_fields:
                before = base_snap.read_fragment(base_frag, [base_fields[fid]], all_pos)[fid]
            else:  # a column the source added: its old rows held the default
                before = src_snap.default_array(field, src_frag.rows)
            after = src_snap.read_fragment(src_frag, [field], all_pos)[fid]
            changed = np.flatnonzero(~_equal_mask(before, after))
            if not len(changed):
                continue
            values = after.take(pa.array(changed))
            tid = tfield(fid)
            tgt_base_frag = tgt_base_frags.get(tgt_id)
            if (
                tid in tgt_fields
                and tid in tgt_base_fields
                and tgt_base_frag is not None
                and _column_state(tgt_frag, tid) != _column_state(tgt_base_frag, tid)
            ):
                t_before = tgt_base_snap.read_fragment(
                    tgt_base_frag, [tgt_base_fields[tid]], changed
                )[tid]
                t_after = tgt_snap.read_fragment(tgt_frag, [tgt_fields[tid]], changed)[tid]
                target_changed = ~_equal_mask(t_before, t_after)
                disagree = target_changed & ~_equal_mask(t_after, values)
                if disagree.any():
                    if resolve == "error":
                        conflicts_cols.add(tgt_fields[tid].name)
                        k = next(i for i, f in enumerate(target.fragments) if f.id == tgt_id)
                        live = tgt_snap.live_positions(tgt_frag)
                        for pos in changed[disagree]:
                            idx = np.searchsorted(live, pos)
                            if idx < len(live) and live[idx] == pos:
                                conflict_rows.append(int(tgt_snap._starts[k] + idx))
                        continue
                    if resolve == "ours":
                        keep = ~disagree
                        changed, values = changed[keep], values.filter(pa.array(keep))
                if not len(changed):
                    continue
            updates[(tgt_id, fid)] = (changed, values)
    if conflicts_cols:
        raise MergeConflictError(
            f"both '{source_branch}' and '{target.branch}' changed the same cells of column(s) "
            f"{sorted(conflicts_cols)} at rows {sorted(conflict_rows)[:20]} of '{target.branch}'; "
            "merge(..., resolve='ours' or 'theirs') picks a side",
            rows=sorted(conflict_rows),
            columns=sorted(conflicts_cols),
        )
    return MergeBranch(
        source_branch=source_branch,
        source_version=source.version,
        target_base=target,
        new_fields=new_fields,
        drops=drops,
        renames=renames,
        templates=templates,
        deletions=deletions,
        updates=updates,
        field_map=field_map,
        fragment_map=fragment_map,
    )
