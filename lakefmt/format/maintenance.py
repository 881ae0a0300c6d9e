"""Compaction and cleanup.

Compaction rewrites runs of adjacent fragments (small ones, ones with deletions, update
files or several column groups) into fresh fragments, as an ordinary commit that changes no
row's content or order. Cleanup deletes what no kept version references, after a grace
period that protects writers whose files are written but whose manifest is not yet
committed (see ``spec/format.md``, "Maintenance").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterable

import pyarrow as pa

from lakefmt.errors import BranchNotFoundError, FormatError, VersionNotFoundError
from lakefmt.format import layout
from lakefmt.format.manifest import DataFile, Fragment, Manifest, VersionRef
from lakefmt.format.refs import read_tag
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.versions import (
    branch_file,
    list_branches,
    list_tag_names,
    locate,
    read_head,
    read_manifest,
)
from lakefmt.storage import Storage

#: A fragment smaller than this (bytes on storage) is worth merging with its neighbours.
SMALL_FRAGMENT_BYTES = 32 << 20
#: Automatic compaction merges runs of this many adjacent small fragments of one size tier
#: (tiers grow by this factor), so each row is rewritten O(log n) times and a branch keeps
#: at most about this many fragments per tier.
AUTO_COMPACT_RUN = 8
#: Rows read per step while rewriting (bounds the memory compaction needs).
REWRITE_BATCH_ROWS = 65_536


def fragment_bytes(fragment: Fragment) -> int:
    """Bytes of a fragment's column groups on storage."""
    return sum(d.size for d in fragment.files)


def needs_rewrite(manifest: Manifest, fragment: Fragment, *, small_bytes: int) -> bool:
    """Whether compaction should rewrite a fragment."""
    live_ids = {f.id for f in manifest.fields}
    has_dead_columns = any(set(d.field_ids) - live_ids for d in fragment.files)
    plain_groups = 2  # one scalar group and one media group is the normal shape
    return (
        fragment.deletion is not None
        or bool(fragment.updates)
        or len(fragment.files) > plain_groups
        or has_dead_columns
        or fragment_bytes(fragment) < small_bytes
    )


def plan_compaction(
    manifest: Manifest, *, small_bytes: int = SMALL_FRAGMENT_BYTES, min_run: int = 1
) -> list[list[Fragment]]:
    """Runs of adjacent fragments to rewrite together (order is kept by rewriting in place).

    A run of a single healthy-but-small fragment is left alone: rewriting it gains nothing.
    """
    runs: list[list[Fragment]] = []
    current: list[Fragment] = []
    for fragment in manifest.fragments:
        if needs_rewrite(manifest, fragment, small_bytes=small_bytes):
            current.append(fragment)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)

    def worth(run: list[Fragment]) -> bool:
        if len(run) > 1:
            return len(run) >= min_run
        only = run[0]
        return (
            only.deletion is not None
            or bool(only.updates)
            or len(only.files) > 2
            or any(set(d.field_ids) - {f.id for f in manifest.fields} for d in only.files)
        )

    return [run for run in runs if worth(run)]


def rewrite_run(
    storage: Storage,
    manifest: Manifest,
    run: list[Fragment],
    write_fragments: Callable[[pa.Table], list[tuple[int, list[DataFile]]]],
    *,
    max_rows: int,
    max_bytes: int,
) -> list[tuple[int, list[DataFile]]]:
    """Read a run's live rows (deletions and updates applied) and write them anew."""
    sub = Snapshot(storage, manifest.model_copy(update={"fragments": run}))
    fields = list(sub.fields)
    schema = sub.arrow_schema(fields)
    drafts: list[tuple[int, list[DataFile]]] = []
    pending: list[pa.Table] = []
    rows = nbytes = 0

    def emit() -> None:
        nonlocal pending, rows, nbytes
        if pending:
            drafts.extend(write_fragments(pa.concat_tables(pending)))
        pending, rows, nbytes = [], 0, 0

    if not fields:
        return [(sum(f.live_rows for f in run), [])] if any(f.live_rows for f in run) else []
    for arrays in sub.iter_batches(fields, REWRITE_BATCH_ROWS):
        table = pa.Table.from_arrays([arrays[f.id] for f in fields], schema=schema)
        pending.append(table)
        rows += table.num_rows
        nbytes += table.nbytes
        if rows >= max_rows or nbytes >= max_bytes:
            emit()
    emit()
    return drafts


def _tier(fragment: Fragment) -> int:
    size = max(fragment_bytes(fragment), 1024)
    tier = 0
    while size >= 1024 * AUTO_COMPACT_RUN ** (tier + 1):
        tier += 1
    return tier


def plan_auto_compaction(
    manifest: Manifest,
    *,
    small_bytes: int = SMALL_FRAGMENT_BYTES,
    keep: Collection[int] = (),
) -> list[Fragment] | None:
    """The run of adjacent small fragments of one size tier that is due for merging, if any.

    Fragments whose id is in ``keep`` are never rewritten and end a run (the rewritten
    fragments take the place of the run, so a run cannot skip one).
    """
    run: list[Fragment] = []
    for fragment in manifest.fragments:
        small = fragment.id not in keep and fragment_bytes(fragment) < small_bytes
        if small and run and _tier(run[-1]) == _tier(fragment):
            run.append(fragment)
        else:
            if len(run) >= AUTO_COMPACT_RUN:
                return run
            run = [fragment] if small else []
    return run if len(run) >= AUTO_COMPACT_RUN else None


# -- cleanup ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class CleanupReport:
    """What cleanup removed (or, in a dry run, would remove)."""

    manifests: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)
    bytes: int = 0

    def __repr__(self) -> str:
        return (
            f"CleanupReport(manifests={len(self.manifests)}, files={len(self.files)}, "
            f"bytes={self.bytes})"
        )


def _referenced(manifest: Manifest) -> Iterable[str]:
    for fragment in manifest.fragments:
        for data_file in fragment.files:
            yield data_file.path
        if fragment.deletion is not None:
            yield fragment.deletion.path
        for update in fragment.updates:
            yield update.path
    for index in manifest.indexes:
        for segment in index.segments:
            for index_file in segment.files:
                yield index_file.path


def cleanup(
    storage: Storage,
    *,
    older_than: float,
    dry_run: bool = False,
    on_delete: Callable[[int], object] | None = None,
) -> CleanupReport:
    """Delete manifests and files that no kept version references.

    Kept: every commit, every tagged version, every branch head and branch fork point, and
    any file or manifest modified less than ``older_than`` seconds ago (in-flight writers).
    Only then are unreferenced data, deletion and update files deleted. Of a deleted
    branch's folder only the tombstone stays.

    Raises:
        FormatError: A manifest, tag or branch file cannot be read (nothing was deleted).
    """
    cutoff = time.time() - older_than
    report = CleanupReport()
    # Kept versions, by the folder their manifest is stored in: a tag or a fork point of a
    # fresh branch names a manifest stored on an ancestor.
    keep_refs: set[tuple[str, int]] = set()

    def keep(ref: VersionRef) -> None:
        try:
            where, _ = locate(storage, ref)
        except (VersionNotFoundError, BranchNotFoundError):
            return  # already gone: nothing to keep
        keep_refs.add((layout.versions_dir(where.branch, where.branch_id), where.version))

    for name in list_tag_names(storage):
        keep(read_tag(storage, name).ref)  # a damaged tag file stops cleanup (FormatError)
    folders: dict[str, str] = {layout.versions_dir(layout.MAIN_BRANCH): layout.MAIN_BRANCH}
    branch_ids: dict[str, str | None] = {layout.MAIN_BRANCH: None}
    for branch in list_branches(storage)[1:]:
        info = branch_file(storage, branch)
        keep(info.parent)
        folders[layout.versions_dir(branch, info.id)] = branch
        branch_ids[branch] = info.id

    referenced: set[str] = set()
    doomed: list[str] = []
    heads: dict[str, tuple[str | None, int]] = {}
    # Folders of deleted branches: everything there is garbage once old enough, except the
    # highest manifest (the tombstone that stops writers still holding the branch).
    orphans: dict[str, list[str]] = {}
    for path in storage.list(layout.TREE_DIR):
        folder = path.rsplit("/", 1)[0]
        if folder not in folders:
            orphans.setdefault(folder, []).append(path)
    for paths in orphans.values():
        numbered = sorted(p for p in paths if layout.parse_manifest_name(p) is not None)
        tombstone = numbered[-1] if numbered else None
        for path in paths:
            if path != tombstone and storage.modified(path) < cutoff:
                doomed.append(path)
    for folder, branch in folders.items():
        branch_id = branch_ids[branch]
        numbers = sorted(
            n
            for n in (layout.parse_manifest_name(p) for p in storage.list(folder))
            if n is not None
        )
        if not numbers:
            continue
        head = read_head(storage, branch, branch_id)
        heads[branch] = (branch_id, head.version)
        for number in numbers:
            path = layout.manifest_path(branch, number, branch_id)
            manifest = head if number == head.version else None
            if manifest is None:
                try:
                    manifest = read_manifest(storage, branch, number, branch_id)
                except (FormatError, OSError) as exc:
                    # Its files cannot be known, so nothing may be deleted: stop here.
                    raise FormatError(
                        f"cleanup stopped before deleting anything: cannot read {path} "
                        f"({exc}); repair or remove that manifest first"
                    ) from exc
            kept = (
                manifest.is_commit
                or number == head.version
                or (folder, number) in keep_refs
                or storage.modified(path) >= cutoff
            )
            if kept:
                referenced.update(_referenced(manifest))
            else:
                doomed.append(path)
    report.manifests = list(doomed)
    for prefix in (
        layout.DATA_DIR,
        layout.DELETIONS_DIR,
        layout.UPDATES_DIR,
        layout.INDEXES_DIR,
        layout.TMP_DIR,
    ):
        for path in storage.list(prefix):
            if path in referenced:
                continue
            if storage.modified(path) >= cutoff:
                continue
            report.files.append(path)
    if not dry_run:
        # Hints first: they must name each head (at or above every gap this leaves), since
        # readers probe upward from the hint. Then manifests: once a manifest is gone
        # nothing points at the files it listed. Files last.
        for branch, (branch_id, head_version) in heads.items():
            hint = layout.latest_hint_path(branch, branch_id)
            storage.write(hint, str(head_version).encode())
        for path in report.manifests:
            storage.delete(path)
            if on_delete is not None:
                on_delete(1)
        for path in report.files:
            try:
                report.bytes += storage.size(path)
            except FileNotFoundError:
                continue
            storage.delete(path)
            if on_delete is not None:
                on_delete(1)
    else:
        for path in report.files:
            try:
                report.bytes += storage.size(path)
            except FileNotFoundError:
                continue
    return report
