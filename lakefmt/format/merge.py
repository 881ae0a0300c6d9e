"""Merging one branch into another: appended rows, deletions, cell updates, schema changes.

A merge is a three-way merge against a *base*: a version whose content both branches
contain (``spec/format.md`` section 12.3). It is the fork point of the two branches, or the
version the newest earlier merge between them (in either direction, recorded in the
merging side's ``merges``) left both sides agreeing on. Source changes are found by
comparing the source's latest commit with the base; each applies to the target unless the
target changed the same cell since the base to a different value (a conflict) or deleted
the row (deletions never conflict). A column both sides renamed differently, or any change
that would leave two columns with one name, also raises :class:`MergeConflictError` and
changes nothing.

The two branches allocate field ids and fragment ids independently from the same
``next_*_id`` after they part, so one number may name different columns (fragments) on the
two sides. Only ids below the fork point's ``next_*_id`` are the same on both sides; every
other correspondence comes from the merge records' maps, and an id that is in no map is
unknown to the other side.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidMergeError, MergeConflictError
from lakefmt.format import layout
from lakefmt.format.commit import (
    AppendFragmentCopies,
    DeleteRows,
    Operation,
    UpdateCells,
)
from lakefmt.format.manifest import Field, Fragment, Manifest, MergeRecord, VersionRef
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.versions import (
    branch_file,
    branch_info,
    iter_commits,
    list_branches,
    read_latest,
    resolve_ref,
)
from lakefmt.storage import Storage

Resolve = Literal["error", "ours", "theirs"]


def _equal_mask(a: pa.Array, b: pa.Array) -> np.ndarray:
    left, right = a.to_pylist(), b.to_pylist()
    return np.array([_same(x, y) for x, y in zip(left, right, strict=True)], dtype=bool)


def _same(x: object, y: object) -> bool:
    """Whether two cell values are the same for change detection: NaN equals NaN, also
    inside vectors, lists, structs and maps (Python's ``==`` says two NaNs differ)."""
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (x != x and y != y)
    if isinstance(x, list | tuple) and isinstance(y, list | tuple):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


@dataclasses.dataclass
class _Ids:
    """How ids of one kind (fields or fragments) correspond between source and target."""

    shared: int
    """Ids below this (the fork point's ``next_*_id``) are the same on both sides."""
    to_target: dict[int, int]
    to_source: dict[int, int]

    def target(self, source_id: int) -> int | None:
        """The target's id for a source id, or None if the target never knew it."""
        if source_id in self.to_target:
            return self.to_target[source_id]
        return source_id if 0 <= source_id < self.shared else None

    def source(self, target_id: int) -> int | None:
        """The source's id for a target id, or None if the source never knew it."""
        if target_id in self.to_source:
            return self.to_source[target_id]
        return target_id if 0 <= target_id < self.shared else None


def _completed(
    record: MergeRecord, record_source: Manifest, fork: Manifest
) -> tuple[dict[int, int], dict[int, int]]:
    """A record's (fields, fragments) maps, complete.

    Format 1 records left out fields whose id was the same on both sides; those are the
    fields of the merged source version allocated after the fork that the map does not
    name (the merge added every such field).
    """
    fields = dict(record.fields)
    if not record.complete_maps:
        for f in record_source.fields:
            if f.id >= fork.next_field_id and f.id not in fields:
                fields[f.id] = f.id
    return fields, dict(record.fragments)


def _state(fragment: Fragment, field_id: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which files give a column's cells in a fragment (numbering-free: paths only)."""
    if field_id is None:
        return (), ()
    return (
        tuple(d.path for d in fragment.files if field_id in d.field_ids),
        tuple(u.path for u in fragment.updates if u.field_id == field_id),
    )


def _fragment_state(fragment: Fragment) -> tuple[object, ...]:
    return (
        fragment.rows,
        tuple(d.path for d in fragment.files),
        fragment.deletion.path if fragment.deletion else None,
        tuple(u.path for u in fragment.updates),
    )


@dataclasses.dataclass
class MergeBranch(Operation):
    """Apply a planned merge to the newest target manifest."""

    source_branch: str
    source_branch_id: str | None
    """The source branch's id (None for ``main`` and format-1 branches), for the record."""
    source_version: int
    target_base: Manifest
    """The target manifest the plan was made against (cell updates rebase from it)."""
    new_fields: list[Field]
    """Source fields to add (with source ids; the target gives them new ids)."""
    drops: list[int]
    """Target ids of columns to drop."""
    renames: dict[int, str]
    """Target id -> new name."""
    templates: list[Fragment]
    """Source fragments to copy whole (source field ids)."""
    deletions: dict[int, np.ndarray]
    """Target fragment id -> positions to delete."""
    updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]]
    """(target fragment id, target field id) -> (positions, values)."""
    new_updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]]
    """(target fragment id, source field id of a new field) -> (positions, values)."""
    field_ids: _Ids
    fragment_ids: _Ids
    record_fields: dict[int, int]
    record_fragments: dict[int, int]
    """The previous record's complete maps of this source, accumulated into the new one."""
    name: str = "merge"

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Add columns, append the source's new fragments, apply deletions and updates.

        Raises:
            MergeConflictError: A concurrent commit on the target made two columns share a
                name with the merge's schema changes.
        """
        fields = [f for f in manifest.fields if f.id not in self.drops]
        fields = [
            f.model_copy(update={"name": self.renames[f.id]}) if f.id in self.renames else f
            for f in fields
        ]
        new_ids: dict[int, int] = {}
        next_field = manifest.next_field_id
        for src in self.new_fields:
            new_ids[src.id] = next_field
            fields.append(src.model_copy(update={"id": next_field}))
            next_field += 1
        _check_unique_names(fields, self.source_branch, manifest.branch)
        live_ids = {f.id for f in fields}
        merged = manifest.model_copy(update={"fields": fields, "next_field_id": next_field})

        def map_field(source_id: int) -> int:
            if source_id < 0:  # already unknown (from an earlier merge into the source)
                return source_id
            target = new_ids.get(source_id)
            if target is None:
                target = self.field_ids.target(source_id)
            # Columns the target does not have get ids that never match a field.
            return target if target is not None and target in live_ids else -1 - source_id

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
        changes = {key: v for key, v in self.updates.items() if key[1] in live_ids}
        for (frag, source_id), value in self.new_updates.items():
            changes[(frag, new_ids[source_id])] = value
        if changes:
            merged = UpdateCells(self.target_base, changes).apply(storage, merged)
        record = MergeRecord(
            source_version=self.source_version,
            target_version=manifest.version + 1,
            fragments={**self.record_fragments, **appended.assigned},
            fields={**self.record_fields, **new_ids},
            complete_maps=True,
            branch_id=self.source_branch_id,
        )
        return merged.model_copy(update={"merges": {**manifest.merges, self.source_branch: record}})


def _check_unique_names(fields: list[Field], source: str, target: str) -> None:
    seen: dict[str, int] = {}
    for f in fields:
        if f.name in seen:
            raise MergeConflictError(
                f"merging '{source}' into '{target}' would give two columns the name "
                f"'{f.name}'; rename one of them on either branch, then merge again",
                columns=[f.name],
            )
        seen[f.name] = f.id


def check_merge_arguments(target_branch: str, source_branch: str, resolve: str) -> None:
    """Refuse a merge that cannot mean anything, before anything is written.

    Raises:
        InvalidMergeError: ``resolve`` is not ``error``, ``ours`` or ``theirs``, or the
            source is the target itself.
    """
    if resolve not in ("error", "ours", "theirs"):
        raise InvalidMergeError(
            f"merge(resolve=...) must be 'error', 'ours' or 'theirs', not {resolve!r}"
        )
    if source_branch == target_branch:
        raise InvalidMergeError(f"cannot merge branch '{source_branch}' into itself")


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


def shared_fragments(storage: Storage, manifest: Manifest) -> set[int]:
    """Ids of ``manifest``'s fragments that a later merge with another branch may need.

    A merge finds each fragment of its base on both sides by id (section 12.3) and cannot
    follow a compaction of one (section 12.5). So automatic compaction leaves alone, for
    every branch this one can merge with (its parent, and branches forked from it): the
    fragments allocated before their fork point, and those a merge copied between the two
    (the values of this branch's ``merges[other]`` map, the keys of the other's
    ``merges[this]``).

    Raises:
        BranchNotFoundError: This branch (or one listed) was deleted meanwhile.
    """
    branch = manifest.branch
    partners: list[tuple[str, VersionRef]] = []  # (other branch, fork point)
    if branch != layout.MAIN_BRANCH:
        parent = branch_file(storage, branch).parent
        partners.append((parent.branch, parent))
    for other in list_branches(storage):
        if other in (branch, layout.MAIN_BRANCH):
            continue
        parent = branch_file(storage, other).parent
        if parent.branch == branch:
            partners.append((other, parent))
    own = {f.id for f in manifest.fragments}
    shared: set[int] = set()
    for other, fork_ref in partners:
        fork = resolve_ref(storage, fork_ref)
        shared.update(i for i in own if i < fork.next_fragment_id)
        mine = manifest.merges.get(other)
        if mine is not None:
            shared.update(mine.fragments.values())
        theirs = read_latest(storage, other).merges.get(branch)
        if theirs is not None:
            shared.update(theirs.fragments)
    return shared & own


@dataclasses.dataclass
class _Base:
    """The merge base and how its ids map to each side."""

    manifest: Manifest
    side: Literal["fork", "source", "target"]
    fields: _Ids
    fragments: _Ids

    def source_field(self, base_id: int) -> int | None:
        return base_id if self.side != "target" else self.fields.source(base_id)

    def target_field(self, base_id: int) -> int | None:
        return base_id if self.side != "source" else self.fields.target(base_id)

    def source_fragment(self, base_id: int) -> int | None:
        return base_id if self.side != "target" else self.fragments.source(base_id)

    def target_fragment(self, base_id: int) -> int | None:
        return base_id if self.side != "source" else self.fragments.target(base_id)


def plan_merge(
    storage: Storage, target: Manifest, source_branch: str, *, resolve: Resolve = "error"
) -> MergeBranch | None:
    """Work out what merging ``source_branch`` into ``target`` changes; None if nothing.

    Raises:
        MergeConflictError: Both sides changed the same cells (with ``resolve="error"``),
            renamed a column differently (with ``resolve="error"``), the merge would give
            two columns one name, or one side compacted fragments the other still needs.
        BranchNotFoundError: No such branch.
        InvalidMergeError: An unknown ``resolve``, or a merge of a branch into itself.
    """
    check_merge_arguments(target.branch, source_branch, resolve)
    head = read_latest(storage, source_branch)
    fork = _fork_point(storage, target, source_branch)
    source = next(iter_commits(storage, head), None)
    # Only a commit the source made itself counts: a branch that has not committed since
    # its fork reads as an older commit of its parent, which is not a change.
    if source is None or source.branch != source_branch or source.branch_id != head.branch_id:
        return None
    rec_t = target.merges.get(source_branch)  # source -> target merges
    rec_s = source.merges.get(target.branch)  # target -> source merges
    # A record of a deleted branch that had the same name (or one a fork inherited from
    # its parent about such a branch) says nothing about this one (spec 12.3).
    if rec_t is not None and rec_t.branch_id != head.branch_id:
        rec_t = None
    if rec_s is not None and rec_s.branch_id != target.branch_id:
        rec_s = None
    if rec_t is not None and rec_s is not None:
        if rec_s.source_version >= rec_t.target_version:
            rec_t_first = True  # the target -> source merge is the newer
        elif rec_t.source_version >= rec_s.target_version:
            rec_t_first = False
        else:
            raise MergeConflictError(
                f"'{source_branch}' and '{target.branch}' were merged into each other at the "
                "same time (criss-cross); merge one into the other with no concurrent merge"
            )
    else:
        rec_t_first = rec_s is not None

    # -- how ids correspond ---------------------------------------------------------------
    fields_t: dict[int, int] = {}
    frags_t: dict[int, int] = {}
    fields_s: dict[int, int] = {}
    frags_s: dict[int, int] = {}
    record_fields: dict[int, int] = {}
    record_fragments: dict[int, int] = {}
    rec_t_source = rec_s_source = None
    if rec_t is not None:
        rec_t_source = resolve_ref(
            storage, VersionRef(branch=source_branch, version=rec_t.source_version)
        )
        record_fields, record_fragments = _completed(rec_t, rec_t_source, fork)
        fields_t.update(record_fields)
        frags_t.update(record_fragments)
    if rec_s is not None:
        rec_s_source = resolve_ref(
            storage, VersionRef(branch=target.branch, version=rec_s.source_version)
        )
        s_fields, s_frags = _completed(rec_s, rec_s_source, fork)
        fields_s.update(s_fields)
        frags_s.update(s_frags)
    for forward, backward in ((fields_t, fields_s), (frags_t, frags_s)):
        for k, v in list(forward.items()):
            backward.setdefault(v, k)
        for k, v in list(backward.items()):
            forward.setdefault(v, k)
    field_ids = _Ids(fork.next_field_id, fields_t, fields_s)
    fragment_ids = _Ids(fork.next_fragment_id, frags_t, frags_s)

    if rec_s is not None and rec_t_first:
        assert rec_s_source is not None
        base = _Base(rec_s_source, "target", field_ids, fragment_ids)
        first_new = rec_s.target_version  # the source version that merge created
    elif rec_t is not None:
        assert rec_t_source is not None
        base = _Base(rec_t_source, "source", field_ids, fragment_ids)
        first_new = rec_t.source_version + 1
    else:
        base = _Base(fork, "fork", field_ids, fragment_ids)
        first_new = fork.version + 1
    if source.version < first_new:
        return None  # the source has not committed since the base
    return _plan(storage, base, source, target, resolve, record_fields, record_fragments)


def _plan(
    storage: Storage,
    base: _Base,
    source: Manifest,
    target: Manifest,
    resolve: Resolve,
    record_fields: dict[int, int],
    record_fragments: dict[int, int],
) -> MergeBranch | None:
    s_name, t_name = source.branch, target.branch
    ids = base.fields

    # -- schema ---------------------------------------------------------------------------
    base_fields = {f.id: f for f in base.manifest.fields}
    src_fields = {f.id: f for f in source.fields}
    tgt_fields = {f.id: f for f in target.fields}
    from_base: dict[int, int] = {}  # source field id -> base field id
    drops: list[int] = []
    renames: dict[int, str] = {}
    for bid, bf in base_fields.items():
        sid, tid = base.source_field(bid), base.target_field(bid)
        tf = tgt_fields.get(tid) if tid is not None else None
        sf = src_fields.get(sid) if sid is not None else None
        if sf is not None:
            from_base[sf.id] = bid
        if tf is None:
            continue  # the target dropped it: the source's changes to it are moot
        if sf is None:
            drops.append(tf.id)  # dropped on the source (drops win over updates)
            continue
        if sf.name == bf.name or sf.name == tf.name:
            continue
        if tf.name == bf.name or resolve == "theirs":
            renames[tf.id] = sf.name
        elif resolve == "error":
            raise MergeConflictError(
                f"column '{bf.name}' was renamed to '{sf.name}' on '{s_name}' and to "
                f"'{tf.name}' on '{t_name}'; merge(..., resolve='ours' or 'theirs') picks a "
                "name",
                columns=[tf.name, sf.name],
            )
    known: dict[int, int] = {}  # source field id -> target field id, for fields not in base
    new_fields: list[Field] = []
    for sid, sf in src_fields.items():
        if sid in from_base:
            continue
        tid = ids.target(sid)
        if tid is not None and tid in tgt_fields:
            known[sid] = tid
        else:
            new_fields.append(sf)
    base_names = {}  # target field id -> its name in the base
    for bid, bf in base_fields.items():
        tid = base.target_field(bid)
        if tid is not None:
            base_names[tid] = bf.name
    _check_names(target, drops, renames, new_fields, base_names, s_name, t_name)

    def target_field(sid: int) -> int | None:
        """The target id of a source field the target has (None: new or dropped there)."""
        if sid in known:
            return known[sid]
        bid = from_base.get(sid)
        tid = base.target_field(bid) if bid is not None else None
        return tid if tid is not None and tid in tgt_fields else None

    # -- data -----------------------------------------------------------------------------
    base_snap = Snapshot(storage, base.manifest)
    src_snap = Snapshot(storage, source)
    tgt_snap = Snapshot(storage, target)
    src_frags = {f.id: f for f in source.fragments}
    tgt_frags = {f.id: f for f in target.fragments}
    tgt_order = {f.id: k for k, f in enumerate(target.fragments)}
    new_field_ids = {f.id for f in new_fields}
    deletions: dict[int, np.ndarray] = {}
    updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]] = {}
    new_updates: dict[tuple[int, int], tuple[np.ndarray, pa.Array]] = {}
    conflict_cols: set[str] = set()
    conflict_rows: list[int] = []
    in_base: set[int] = set()  # source fragment ids the base has
    for bfrag in base.manifest.fragments:
        sfid = base.source_fragment(bfrag.id)
        tfid = base.target_fragment(bfrag.id)
        sfrag = src_frags.get(sfid) if sfid is not None else None
        tfrag = tgt_frags.get(tfid) if tfid is not None else None
        if sfrag is None:
            raise _compacted_error(storage, source, bfrag.id if sfid is None else sfid, t_name)
        in_base.add(sfrag.id)
        if _fragment_state(sfrag) == _fragment_state(bfrag):
            continue
        if tfrag is None:
            raise _compacted_error(
                storage, target, bfrag.id if tfid is None else tfid, s_name, changed_on=s_name
            )
        assert tfid is not None
        s_deleted = src_snap.deleted(sfrag)
        t_deleted = tgt_snap.deleted(tfrag)
        gone = np.setdiff1d(np.setdiff1d(s_deleted, base_snap.deleted(bfrag)), t_deleted)
        if len(gone):
            deletions[tfid] = gone
        # Cells of rows deleted on either side never change or conflict: the row is gone.
        live = np.setdiff1d(
            np.arange(sfrag.rows, dtype=np.int64), np.union1d(s_deleted, t_deleted)
        ).astype(np.int64)
        for sid, sf in src_fields.items():
            base_id = from_base.get(sid)
            tid = target_field(sid)
            if tid is None and sid not in new_field_ids:
                continue  # the target dropped this column
            b_state = _state(bfrag, base_id)
            if _state(sfrag, sid) == b_state or not len(live):
                continue
            if base_id is not None:
                before = base_snap.read_fragment(bfrag, [base_fields[base_id]], live)[base_id]
            else:  # a column the base lacks: its old rows hold the default
                before = src_snap.default_array(sf, len(live))
            after = src_snap.read_fragment(sfrag, [sf], live)[sid]
            differs = ~_equal_mask(before, after)
            changed = live[differs]
            if not len(changed):
                continue
            values = after.filter(pa.array(differs))
            if tid is None:
                new_updates[(tfid, sid)] = (changed, values)
                continue
            tf = tgt_fields[tid]
            if _state(tfrag, tid) != b_state:
                was = before.filter(pa.array(differs))
                now = tgt_snap.read_fragment(tfrag, [tf], changed)[tid]
                disagree = ~_equal_mask(was, now) & ~_equal_mask(now, values)
                if disagree.any():
                    if resolve == "error":
                        conflict_cols.add(tf.name)
                        live_t = tgt_snap.live_positions(tfrag)
                        start = int(tgt_snap._starts[tgt_order[tfid]])
                        where = np.searchsorted(live_t, changed[disagree])
                        conflict_rows.extend(int(start + i) for i in where)
                        continue
                    if resolve == "ours":
                        keep = ~disagree
                        changed, values = changed[keep], values.filter(pa.array(keep))
                        if not len(changed):
                            continue
            updates[(tfid, tid)] = (changed, values)
    if conflict_cols:
        rows = sorted(set(conflict_rows))
        raise MergeConflictError(
            f"both '{s_name}' and '{t_name}' changed the same cells of column(s) "
            f"{sorted(conflict_cols)} at rows {rows[:20]} of '{t_name}'; "
            "merge(..., resolve='ours' or 'theirs') picks a side",
            rows=rows,
            columns=sorted(conflict_cols),
        )
    # Fragments the source has that the base lacks are new, unless the target already has
    # them (they came from the target, or went to it, after the base).
    templates = [
        f for f in source.fragments if f.id not in in_base and base.fragments.target(f.id) is None
    ]
    if not (new_fields or drops or renames or templates or deletions or updates or new_updates):
        return None
    return MergeBranch(
        source_branch=s_name,
        source_branch_id=source.branch_id,
        source_version=source.version,
        target_base=target,
        new_fields=new_fields,
        drops=drops,
        renames=renames,
        templates=templates,
        deletions=deletions,
        updates=updates,
        new_updates=new_updates,
        field_ids=ids,
        fragment_ids=base.fragments,
        record_fields=record_fields,
        record_fragments=record_fragments,
    )


def _compacted_error(
    storage: Storage,
    side: Manifest,
    fragment_id: int,
    other: str,
    *,
    changed_on: str | None = None,
) -> MergeConflictError:
    """The error for a merge base fragment that ``side`` compacted, saying which version
    did it and what the user can do (a merge cannot map rows through a compaction)."""
    culprit = None  # the oldest commit of ``side`` that lacks the fragment
    where = ""
    for commit in iter_commits(storage, side):
        if any(f.id == fragment_id for f in commit.fragments):
            if culprit is not None:
                what = culprit.message or culprit.operation
                where = f" in version {culprit.version_id} ('{what}')"
            break
        culprit = commit
    rows = f"rows that '{changed_on}' changed" if changed_on else f"rows it shares with '{other}'"
    return MergeConflictError(
        f"'{side.branch}' compacted {rows} since their merge base{where} (optimize rewrote "
        f"fragment {fragment_id}), and a merge cannot follow a compaction of rows both "
        "branches share; nothing was merged. Merge before calling optimize() on a branch "
        "that shares rows with another (automatic compaction never rewrites them). To "
        "bring these changes over now, re-apply them on the other branch (e.g. append "
        "the rows it lacks)."
    )


def _check_names(
    target: Manifest,
    drops: list[int],
    renames: dict[int, str],
    new_fields: list[Field],
    base_names: dict[int, str],
    s_name: str,
    t_name: str,
) -> None:
    """Refuse a merge that would leave two columns with one name, naming both."""
    described: dict[str, list[str]] = {}
    for f in target.fields:
        if f.id in drops:
            continue
        old = base_names.get(f.id)
        if f.id in renames:
            what = f"column '{f.name}' of '{t_name}' renamed to '{renames[f.id]}' on '{s_name}'"
            described.setdefault(renames[f.id], []).append(what)
        elif old is None:
            described.setdefault(f.name, []).append(f"column '{f.name}' added on '{t_name}'")
        elif old != f.name:
            what = f"column '{old}' renamed to '{f.name}' on '{t_name}'"
            described.setdefault(f.name, []).append(what)
        else:
            described.setdefault(f.name, []).append(f"column '{f.name}' of both branches")
    for f in new_fields:
        described.setdefault(f.name, []).append(f"column '{f.name}' added on '{s_name}'")
    clashes = {name: whats for name, whats in described.items() if len(whats) > 1}
    if clashes:
        text = "; ".join(f"'{n}' would name {' and '.join(w)}" for n, w in clashes.items())
        raise MergeConflictError(
            f"merging '{s_name}' into '{t_name}' would give two columns one name: {text}; "
            "rename one of them on either branch, then merge again",
            columns=sorted(clashes),
        )
