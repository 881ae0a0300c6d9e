"""ReadOnlyDataset and Dataset: a branch head (or a pinned version) plus the write path.

Writes go through a buffer: ``append`` converts and validates the input at once (a bad
append leaves nothing behind), and a flush (automatic past ``FLUSH_BYTES``, and on
``flush``, ``commit``, context exit and interpreter exit) writes fragments and a new manifest
that every reader of the branch sees. ``commit`` additionally marks the version as a commit
in history.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import difflib
import functools
import gc
import logging
import os
import re
import sys
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt._progress import Progress
from lakefmt.dataset.metadata import DatasetMetadata
from lakefmt.dataset.query_view import QueryView, dataset_source, explain_query, run_query
from lakefmt.dataset.versions import Branch, Branches, History, Tag, Tags
from lakefmt.dataset.view import DatasetView, RowSource, normalize_index
from lakefmt.errors import (
    BranchNotFoundError,
    ColumnExistsError,
    CommitConflictError,
    DatasetNotFoundError,
    InvalidArgumentError,
    LakefmtError,
    QueryError,
    ReadOnlyError,
    SchemaError,
    UnevenColumnsError,
    UnknownAttributeError,
    VersionNotFoundError,
)
from lakefmt.format import commit as commits
from lakefmt.format import fragments as files
from lakefmt.format import layout, maintenance, protocol, refs
from lakefmt.format.defaults import encode_default
from lakefmt.format.manifest import DataFile, Fragment, Manifest
from lakefmt.format.merge import check_merge_arguments, plan_merge, shared_fragments
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.stats import VersionStats, version_stats
from lakefmt.format.verify import verify_manifest, verify_refs
from lakefmt.format.versions import physical_ref, read_head
from lakefmt.storage import Storage, open_storage
from lakefmt.types import as_array, check_column_metadata, resolve_type, type_from_json
from lakefmt.types.convert import ColumnSpec, to_table

logger = logging.getLogger(__name__)


class _CyclicCollection:
    """Whether the cyclic garbage collector is running, from ``gc.callbacks``.

    A handle found only by the collector is finalized wherever the collection started:
    possibly in the middle of lakefmt's own code, holding a lock the flush needs. Such a
    handle's flush runs on a thread of its own instead (see ``Dataset.__del__``).
    """

    running = False

    @classmethod
    def callback(cls, phase: str, info: dict[str, int]) -> None:
        cls.running = phase == "start"


gc.callbacks.append(_CyclicCollection.callback)

#: Buffered appends are flushed once they pass this many bytes (Arrow, uncompressed).
FLUSH_BYTES = 64 << 20
#: Appends of at least this many rows are buffered (and flushed) in slices, with a bar.
LARGE_APPEND_ROWS = 1_000_000
APPEND_SLICE_ROWS = 262_144
#: A fragment holds at most this many rows; larger flushes are split.
FRAGMENT_MAX_ROWS = 1 << 20
#: A fragment holds at most this many bytes (media fragments stay small enough to rewrite).
FRAGMENT_MAX_BYTES = 256 << 20

#: Full append buffers being written behind at most (each holds ``FLUSH_BYTES`` in memory).
WRITE_BEHIND_DEPTH = 2
#: Threads writing the data files of full append buffers while the caller keeps appending.
_WRITE_BEHIND: tuple[int, ThreadPoolExecutor] | None = None
_WRITE_BEHIND_LOCK = threading.Lock()


def _write_behind_pool() -> ThreadPoolExecutor:
    """The process's pool for write-behind (made anew after a fork, which keeps no threads)."""
    global _WRITE_BEHIND
    with _WRITE_BEHIND_LOCK:
        if _WRITE_BEHIND is None or _WRITE_BEHIND[0] != os.getpid():
            pool = ThreadPoolExecutor(2, thread_name_prefix="lakefmt-write")
            _WRITE_BEHIND = (os.getpid(), pool)
        return _WRITE_BEHIND[1]


def _write_fragments(
    storage: Storage, snap: Snapshot, table: pa.Table
) -> list[tuple[int, list[DataFile]]]:
    """Write appended rows as fragments (split by rows and bytes), one data file per
    column group: plain columns, media columns. Returns ``(rows, files)`` per fragment."""
    fields = snap.fields
    media = [f for f in fields if snap.type_of(f).is_media]
    plain = [f for f in fields if not snap.type_of(f).is_media]
    per_row = max(1, table.nbytes // max(table.num_rows, 1))
    step = int(max(1, min(FRAGMENT_MAX_ROWS, FRAGMENT_MAX_BYTES // per_row)))
    drafts = []
    for start in range(0, table.num_rows, step):
        part = table.slice(start, step)
        data_files = []
        for group, is_media in ((plain, False), (media, True)):
            if group:
                data_files.append(
                    files.write_data_file(
                        storage,
                        part.select([f.name for f in group]),
                        [f.id for f in group],
                        media=is_media,
                    )
                )
        drafts.append((part.num_rows, data_files))
    return drafts


@dataclasses.dataclass
class _BehindWrite:
    """A full append buffer whose data files are being written on the write-behind pool."""

    tables: list[pa.Table]
    rows: int
    future: Future[list[tuple[int, list[DataFile]]]]
    pid: int


#: Cleanup keeps unreferenced files younger than this, for writers still committing.
DEFAULT_CLEANUP_AGE = datetime.timedelta(days=7)

_OPEN_WRITERS: weakref.WeakSet[Dataset] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for ds in list(_OPEN_WRITERS):
        try:
            ds.flush()
        except Exception:  # the interpreter is going away: report, never raise
            logger.exception("lakefmt: could not flush %s at exit", ds.url)


class ReadOnlyDataset(DatasetView):
    """A dataset opened for reading: the head of a branch or a pinned version.

    Any write raises :class:`~lakefmt.errors.ReadOnlyError`.
    """

    def __init__(self, storage: Storage, manifest: Manifest, *, pinned: bool = False) -> None:
        super().__init__(self, None)
        self._storage = storage
        self._manifest = manifest
        self._snap = Snapshot(storage, manifest)
        self._pinned = pinned
        self._lock = threading.RLock()

    def __setattr__(self, name: str, value: Any) -> None:
        # Refuse typos and options of other libraries (``ds.auto_commit_enabled = True``),
        # which would otherwise be stored and silently do nothing. Private names (the
        # handle's own state) take one string test.
        if name[:1] != "_":
            known = getattr(type(self), name, _MISSING)
            if known is _MISSING or (isinstance(known, property) and known.fset is None):
                raise _unknown_attribute(self, name, known is not _MISSING)
        object.__setattr__(self, name, value)

    # A dataset is its own source. A property rather than an attribute, so a handle holds
    # no reference cycle and is freed (and flushed) as soon as the user drops it.
    @property
    def _source(self) -> RowSource:
        return self

    @_source.setter
    def _source(self, value: RowSource) -> None:
        pass

    # -- reading ----------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        return self._snap

    def _data(self) -> Snapshot:
        return self._snap

    def __len__(self) -> int:
        return self._snap.num_rows

    def _set_manifest(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._snap = Snapshot(self._storage, manifest)

    @property
    def url(self) -> str:
        """The dataset's root URL."""
        return self._storage.url

    @property
    def metadata(self) -> DatasetMetadata:
        """Dataset-level metadata (dict-like)."""
        return DatasetMetadata(self)

    # -- versions ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """Id of the version this handle is at: a commit's id, or, after changes flushed
        but not committed, the id of that flushed version (``lakefmt.open(url,
        version=ds.version)`` always reads what this handle reads; only commits are in
        ``history``, and cleanup may remove flushed versions)."""
        return self._manifest.version_id

    @property
    def history(self) -> History[ReadOnlyDataset]:
        """The commits leading here, oldest first."""
        return History(self, self._manifest)

    @property
    def tags(self) -> Tags[ReadOnlyDataset]:
        """The dataset's tags."""
        return Tags(self)

    @property
    def branches(self) -> Branches[Dataset]:
        """The dataset's branches."""
        return Branches(self)

    @property
    def current_branch(self) -> Branch[Dataset]:
        """The branch this handle reads (and writes)."""
        return Branch(self, self._manifest.branch)

    def refresh(self) -> None:
        """Move to the newest version of the branch, to see other writers' changes.

        A handle opened at a fixed version stays there.
        """
        if self._pinned:
            return
        with self._lock:
            self._set_manifest(self._read_head())

    def _read_head(self) -> Manifest:
        # The folder this handle was opened on: a deleted branch raises, never moves into
        # a later branch of the same name.
        m = self._manifest
        return read_head(self._storage, m.branch, m.branch_id)

    def _open_version(self, version: str) -> ReadOnlyDataset:
        return self._pinned_at(self._resolve(version))

    def _resolve(self, version: str) -> Manifest:
        m = self._manifest
        return protocol.resolve_version(self._storage, version, (m.branch, m.branch_id))

    def _pinned_at(self, manifest: Manifest) -> ReadOnlyDataset:
        return ReadOnlyDataset(self._storage, manifest, pinned=True)

    def _pinned_now(self) -> ReadOnlyDataset:
        """A read-only handle pinned at the version this handle reads now (pending writes
        flushed): what a query's rows refer to, unmoved by later writes."""
        snap = self._data()
        if type(self) is ReadOnlyDataset and self._pinned:
            return self
        return ReadOnlyDataset(self._storage, snap.manifest, pinned=True)

    def _open_branch(self, name: str) -> Dataset:
        return open_writer(open_storage(self.url, self._storage.creds), name)

    # -- queries ------------------------------------------------------------------------------
    def _link_creds(self) -> dict[str, Any] | None:
        return self._storage.creds

    def _query_opener(self, rows: np.ndarray | None) -> functools.partial[ReadOnlyDataset]:
        # As before the opener took the credentials from the handle queried: ``ds.query``
        # opens the datasets it names with this dataset's credentials, a view of some of its
        # rows with the default ones.
        return functools.partial(
            open_query_source, creds=self._storage.creds if rows is None else None
        )

    def _query(self, rows: np.ndarray | None, query: str) -> QueryView:
        return run_query(query, dataset_source(self._pinned_now(), rows), self._query_opener(rows))

    def _explain(self, rows: np.ndarray | None, query: str) -> str:
        opener = self._query_opener(rows)
        return explain_query(query, dataset_source(self._pinned_now(), rows), opener)

    # -- writes are refused -------------------------------------------------------------------
    def _check_writable(self) -> None:
        raise ReadOnlyError(
            f"{self.url} is open read-only (at {self.version}); use lakefmt.open() to write"
        )

    def _writable(self) -> Dataset:
        self._check_writable()
        raise AssertionError("unreachable")  # _check_writable raised

    def verify(self, *, deep: bool = False, progress: bool | None = None) -> list[str]:
        """Check every file this version references: present, readable, as the manifest says.

        Every page of every data, deletion and update file is read and its CRC32 checked,
        and the dataset's format file, tags and branches are read (a progress bar shows on
        a terminal). Damaged files are listed, never raised.

        Args:
            deep: Also decode every image, video and mesh (slow: a full decode of each) and
                list each row that does not decode.
            progress: Show a progress bar (default: on a terminal).

        Returns:
            The problems found; an empty list means the version is intact.
        """
        total = sum(len(f.files) for f in self._manifest.fragments)
        with Progress(total, "verify", progress, "files") as bar:
            problems = verify_manifest(self._storage, self._manifest, on_file=bar.update, deep=deep)
        return [*problems, *verify_refs(self._storage)]

    def summary(self) -> None:
        """Print rows, columns with types, version, fragments and bytes on storage."""
        print(self._summary_text())

    @property
    def stats(self) -> VersionStats:
        """Sizes of the version this handle is at: fragments, bytes of data files referenced
        and (estimated) still live, rows deleted pending compaction. Read from the manifest,
        no file is opened; rows appended but not flushed are not counted."""
        return version_stats(self._manifest)

    def _summary_text(self) -> str:
        m = self._manifest
        stats = self.stats
        lines = [
            f"Dataset {self.url} (branch {m.branch}, version {self.version}"
            + (
                ", read-only)"
                if isinstance(self, ReadOnlyDataset) and not isinstance(self, Dataset)
                else ")"
            ),
            f"rows: {len(self)}",
            "columns:",
        ]
        for col in self.schema.columns:
            lines.append(f"  {col.name:<24} {col.dtype!r}")
        lines.append(
            f"fragments: {stats.fragments}, deleted rows pending compaction: "
            f"{stats.deleted_rows}, data files: {stats.data_bytes / 1e6:.2f} MB referenced, "
            f"~{stats.live_bytes / 1e6:.2f} MB live (optimize reclaims the rest)"
        )
        lines.append(
            f"commits: {len(self.history)}, tags: {len(self.tags)}, branches: {len(self.branches)}"
        )
        return "\n".join(lines)

    def __enter__(self) -> ReadOnlyDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _reopen,
            (
                self.url,
                self._storage.creds,
                self._manifest.branch,
                self.version if self._pinned else None,
                True,
            ),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, version={self.version!r}, rows={len(self)})"


_MISSING = object()


def _unknown_attribute(ds: ReadOnlyDataset, name: str, read_only: bool) -> UnknownAttributeError:
    kind = type(ds).__name__
    if read_only:
        return UnknownAttributeError(f"{kind}.{name} is read-only; nothing was set")
    settable = sorted(
        n
        for n in dir(type(ds))
        if not n.startswith("_")
        and not callable(getattr(type(ds), n))
        and not isinstance(getattr(type(ds), n), property)
    )
    close = difflib.get_close_matches(name, [n for n in dir(type(ds)) if not n.startswith("_")])
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownAttributeError(
        f"{kind} has no attribute {name!r}{hint}; nothing was set. Settable attributes: "
        f"{', '.join(settable) or 'none'}"
    )


def _refuse(name: str) -> Any:
    def method(self: ReadOnlyDataset, *args: Any, **kwargs: Any) -> Any:
        self._check_writable()

    method.__name__ = name
    method.__doc__ = f"Not allowed on a read-only dataset: raises ReadOnlyError ({name})."
    return method


for _name in (
    "append",
    "add_column",
    "remove_column",
    "rename_column",
    "delete",
    "flush",
    "commit",
    "rollback",
    "tag",
    "branch",
    "optimize",
    "cleanup",
    "merge",
):
    setattr(ReadOnlyDataset, _name, _refuse(_name))


class Dataset(ReadOnlyDataset):
    """A dataset opened for reading and writing at the head of a branch."""

    #: Compact automatically once small fragments pile up (see ``optimize``); fragments
    #: another branch shares are left alone, so that merges stay possible.
    auto_compact: bool = True

    def __init__(self, storage: Storage, manifest: Manifest) -> None:
        super().__init__(storage, manifest)
        commits.check_atomic(storage)
        commits.check_writer_features(manifest, storage.url)
        # Appended rows not committed yet: ``_behind`` (full buffers being written on
        # other threads, oldest first) and then ``_buffer``; ``_buffer_rows`` counts both,
        # ``_buffer_bytes`` only ``_buffer``.
        self._buffer: list[pa.Table] = []
        self._behind: list[_BehindWrite] = []
        self._buffer_rows = 0
        self._buffer_bytes = 0
        self._pending: dict[tuple[int, int], list[tuple[np.ndarray, pa.Array]]] = {}
        self._specs: list[ColumnSpec] | None = None
        self._written: tuple[pa.Table, list[tuple[int, list[DataFile]]]] | None = None
        self.auto_compact = True
        _OPEN_WRITERS.add(self)

    # -- plumbing ------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        return None

    def _writable(self) -> Dataset:
        return self

    def _data(self) -> Snapshot:
        if self._has_rows() or self._pending:
            self.flush()
        return self._snap

    def _has_rows(self) -> bool:
        """Whether appended rows wait to be committed."""
        return bool(self._buffer or self._behind)

    def __len__(self) -> int:
        return self._snap.num_rows + self._buffer_rows

    def _set_manifest(self, manifest: Manifest) -> None:
        super()._set_manifest(manifest)
        self._specs = None

    def _column_specs(self) -> list[ColumnSpec]:
        if self._specs is None:
            specs = []
            for f in self._snap.fields:
                try:
                    cell, error = self._snap.default_cell(f), None
                except LakefmtError as exc:  # a damaged default fails only appends needing it
                    cell, error = None, exc
                specs.append(ColumnSpec(f.name, self._snap.type_of(f), f.has_default, cell, error))
            self._specs = specs
        return self._specs

    def _commit_ops(
        self, ops: list[commits.Operation], *, is_commit: bool = False, message: str | None = None
    ) -> Manifest:
        manifest = commits.commit(
            self._storage, self._manifest, ops, is_commit=is_commit, message=message
        )
        self._set_manifest(manifest)
        return manifest

    # -- appends --------------------------------------------------------------------------------
    def append(self, data: Any, *, progress: bool | None = None) -> None:
        """Append rows.

        ``data`` is a list of row dicts, a dict of column values (lists or arrays; the fast
        path), a pyarrow Table/RecordBatch, a pandas DataFrame, an Arrow stream (polars,
        DuckDB) or a dataset view. Every column must be given unless it has a
        ``default_value``. Rows are buffered and flushed automatically. Appends of a
        million rows or more show a progress bar on a terminal (``progress`` forces it on
        or off).

        Each time the buffer passes ``FLUSH_BYTES``, its data files are written on a
        background thread while appending goes on (two such buffers at most); they are
        committed in order as later buffers fill, or by ``flush``/``commit``. A failure
        of that write is raised by the call that commits it, and the rows stay buffered.

        Raises:
            ColumnNotFoundError: A column the dataset lacks.
            ColumnMissingValueError: A column without default value is missing.
            UnevenColumnsError: Columns of different lengths.
            TypeMismatchError: A value of the wrong type, shape or size.
            DecodeError: Corrupt media bytes.
            OSError: Writing an earlier full buffer failed (a ``StorageError`` on object
                stores); its rows, and this call's, stay buffered.
        """
        with self._lock:
            table = to_table(data, self._column_specs())
            if table.num_rows == 0:
                return
            step = table.num_rows if table.num_rows < LARGE_APPEND_ROWS else APPEND_SLICE_ROWS
            shown = None if table.num_rows >= LARGE_APPEND_ROWS else False
            with Progress(table.num_rows, "append", shown if progress is None else progress) as bar:
                for start in range(0, table.num_rows, step):
                    part = table.slice(start, step)
                    self._buffer.append(part)
                    self._buffer_rows += part.num_rows
                    self._buffer_bytes += part.nbytes
                    if self._buffer_bytes >= FLUSH_BYTES:
                        self._write_behind()
                    bar.update(part.num_rows)

    def _write_behind(self) -> None:
        """Hand the full buffer to a background writer, so that Parquet encoding and I/O
        overlap the caller's next appends; first commit the oldest buffer written behind
        if :data:`WRITE_BEHIND_DEPTH` are in flight."""
        if self._pending:
            self.flush()  # updates were buffered before these rows: all go in one version
            return
        while len(self._behind) >= WRITE_BEHIND_DEPTH:
            oldest = self._await_behind(1)
            if oldest is None:
                break  # written in the parent of this fork: the rows are buffered again
            self._commit_ops([commits.AppendFragments(oldest[0])])
            self._buffer_rows -= self._behind.pop(0).rows
        tables = self._buffer
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        try:
            # not a bound method: a dropped handle must not wait for the pool to let go
            future = _write_behind_pool().submit(_write_fragments, self._storage, self._snap, table)
        except RuntimeError:  # the interpreter is shutting down (an exit handler appends)
            self.flush()
            return
        rows = sum(t.num_rows for t in tables)
        self._behind.append(_BehindWrite(tables, rows, future, os.getpid()))
        self._buffer, self._buffer_bytes = [], 0
        self._written = None

    def _await_behind(self, count: int) -> list[list[tuple[int, list[DataFile]]]] | None:
        """The data files of the oldest ``count`` buffers written behind, in order.

        If one of those writes failed, or ran in the parent of this forked process, every
        buffer written behind goes back to the front of the buffer (the next flush writes
        it again): None after a fork, the error raised after a failure.
        """
        out = []
        for behind in self._behind[:count]:
            if behind.pid != os.getpid():
                self._restore_behind()
                return None
            try:
                out.append(behind.future.result())
            except BaseException:
                self._restore_behind()
                raise
        return out

    def _restore_behind(self) -> None:
        self._buffer = [*(t for b in self._behind for t in b.tables), *self._buffer]
        self._buffer_bytes = sum(t.nbytes for t in self._buffer)
        self._behind = []  # writes still running finish unreferenced: cleanup removes them
        self._written = None

    def _write_fragments(self, table: pa.Table) -> list[tuple[int, list[DataFile]]]:
        return _write_fragments(self._storage, self._snap, table)

    def flush(self) -> None:
        """Write buffered rows and pending updates as a new version visible to every reader."""
        with self._lock:
            self._commit_pending()

    def _compaction(self, run: list[Fragment]) -> commits.ReplaceFragments:
        """Rewrite a run of adjacent fragments; the operation that swaps them in."""
        drafts = maintenance.rewrite_run(
            self._storage,
            self._manifest,
            run,
            self._write_fragments,
            max_rows=FRAGMENT_MAX_ROWS,
            max_bytes=FRAGMENT_MAX_BYTES,
        )
        return commits.ReplaceFragments(self._manifest, [f.id for f in run], drafts)

    def _auto_compaction(self) -> commits.ReplaceFragments | None:
        """The compaction due on the current version, if any: it rides along with the next
        commit of new rows (one manifest, one round of syncs, instead of a commit of its own)."""
        if not self.auto_compact:
            return None
        if maintenance.plan_auto_compaction(self._manifest) is None:
            return None  # the common case: no branch lookups needed
        # Never rewrite rows another branch shares: a merge could not follow (spec 11.1).
        try:
            keep = shared_fragments(self._storage, self._manifest)
        except LakefmtError:
            return None  # a damaged or vanished ref: what is shared is unknown, so wait
        run = maintenance.plan_auto_compaction(self._manifest, keep=keep)
        return None if run is None else self._compaction(run)

    def optimize(self, *, progress: bool | None = None) -> str:
        """Compact small fragments and column groups and apply deletions and updates.

        Runs as an ordinary commit that changes no row's content or order, so earlier
        versions stay readable until :meth:`cleanup` removes their files. A progress bar
        shows on a terminal (``progress=False`` hides it, ``True`` forces it).

        Unlike automatic compaction, this also rewrites rows this branch shares with a
        branch it can merge with; a merge cannot follow that (it raises
        :class:`MergeConflictError`), so merge first.

        Returns:
            The new version id.

        Raises:
            CommitConflictError: A concurrent writer changed the same fragments.
        """
        with self._lock:
            self.flush()
            runs = maintenance.plan_compaction(self._manifest)
            ops: list[commits.Operation] = []
            with Progress(sum(len(r) for r in runs), "optimize", progress, "fragments") as bar:
                for run in runs:
                    ops.append(self._compaction(run))
                    bar.update(len(run))
            self._commit_ops(ops, is_commit=True, message="optimize")
            return self.version

    def cleanup(
        self,
        older_than: datetime.timedelta | float = DEFAULT_CLEANUP_AGE,
        *,
        dry_run: bool = False,
        progress: bool | None = None,
    ) -> maintenance.CleanupReport:
        """Delete manifests and files that no kept version references.

        Kept: every commit, tag and branch head, and anything written less than
        ``older_than`` ago (a ``timedelta`` or seconds; ``0`` keeps only what versions
        reference). The grace period protects writers that are still committing.

        Returns:
            What was (or with ``dry_run`` would be) deleted.
        """
        if isinstance(older_than, datetime.timedelta):
            seconds = older_than.total_seconds()
        elif isinstance(older_than, (int, float, np.integer, np.floating)) and not isinstance(
            older_than, bool
        ):
            seconds = float(older_than)
        else:
            raise InvalidArgumentError(
                f"older_than must be a timedelta or a number of seconds, got {older_than!r}"
            )
        if seconds < 0:
            raise InvalidArgumentError(f"older_than must not be negative, got {older_than!r}")
        with self._lock:
            self.flush()
            with Progress(None, "cleanup", progress, "files") as bar:
                return maintenance.cleanup(
                    self._storage, older_than=seconds, dry_run=dry_run, on_delete=bar.update
                )

    def _commit_pending(self, *, is_commit: bool = False, message: str | None = None) -> bool:
        """Commit buffered rows and updates; returns whether anything was pending.

        On a conflict the buffered rows stay buffered (they rebase on the next flush) and
        only the conflicting updates are dropped, so no appended row is ever lost.
        """
        ops = self._pending_operations()
        if not ops and not is_commit:
            return False
        compaction = self._auto_compaction() if self._has_rows() else None
        try:
            try:
                self._commit_ops(
                    ops if compaction is None else [*ops, compaction],
                    is_commit=is_commit,
                    message=message,
                )
            except CommitConflictError:
                if compaction is None:
                    raise
                # Perhaps only the compaction conflicts (a concurrent writer touched those
                # fragments): it waits for a later commit; the user's changes go in alone.
                self._commit_ops(ops, is_commit=is_commit, message=message)
        except CommitConflictError:
            self._pending = {}
            raise
        self._buffer, self._buffer_rows, self._buffer_bytes = [], 0, 0
        self._behind = []
        self._pending = {}
        self._written = None
        return bool(ops)

    def _write_buffer(self) -> list[tuple[int, list[DataFile]]]:
        """Write the buffer's rows (once: a retry after a conflict, or a second call,
        reuses the files written for the same buffer)."""
        if self._written is None or self._written[0] is not self._buffer[-1]:
            table = pa.concat_tables(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
            self._written = (self._buffer[-1], self._write_fragments(table))
        return self._written[1]

    def _pending_operations(self) -> list[commits.Operation]:
        ops: list[commits.Operation] = []
        drafts: list[tuple[int, list[DataFile]]] = []
        if self._behind:
            if self._buffer:
                self._write_buffer()  # while the writes behind it finish on other threads
            written = self._await_behind(len(self._behind))
            drafts = [draft for drafts_of in written or [] for draft in drafts_of]
        if self._buffer:
            drafts = [*drafts, *self._write_buffer()]
        if drafts:
            ops.append(commits.AppendFragments(drafts))
        if self._pending:
            changes = {}
            for key, parts in self._pending.items():
                positions = np.concatenate([p for p, _ in parts])
                values = pa.concat_arrays([v for _, v in parts])
                # the last assignment to a cell wins
                rev_unique, rev_first = np.unique(positions[::-1], return_index=True)
                last = len(positions) - 1 - rev_first
                changes[key] = (rev_unique, values.take(pa.array(last)))
            ops.append(commits.UpdateCells(self._manifest, changes))
        return ops

    def commit(self, message: str | None = None) -> str:
        """Flush and record a commit: a version that can be reopened by its id.

        With nothing changed since this handle's last commit, no version is made (as in
        Deep Lake) and the current commit's id is returned.

        Returns:
            The commit's version id.

        Raises:
            BranchNotFoundError: The branch was deleted (by another handle) meanwhile.
            InvalidArgumentError: ``message`` is not a string.
        """
        _check_message(message)
        with self._lock:
            if self._manifest.is_commit and not self._has_rows() and not self._pending:
                return self.version
            self._commit_pending(is_commit=True, message=message)
            return self.version

    def rollback(self) -> None:
        """Drop buffered rows and updates that were not flushed yet."""
        with self._lock:
            self._buffer, self._buffer_rows, self._buffer_bytes = [], 0, 0
            self._behind = []  # files still being written stay unreferenced (cleanup)
            self._pending = {}
            self._written = None

    # -- updates and deletes ----------------------------------------------------------------------
    def _update_cells(self, column: str, indices: Any, value: Any, *, single: bool) -> None:
        with self._lock:
            if self._has_rows():
                self.flush()  # row indices must refer to written rows
            field = self._snap.field(column)
            dtype = self._snap.type_of(field)
            idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
            broadcast = single or dtype.is_single(value)
            try:
                values = dtype.convert([value] if broadcast else value, column=column)
            except LakefmtError as exc:
                renamed = _at_rows(exc, idx, broadcast)
                if renamed is exc:
                    raise
                raise renamed from exc
            if broadcast and len(idx) != 1:
                values = values.take(pa.array(np.zeros(len(idx), dtype=np.int64)))
            if isinstance(values, pa.ChunkedArray):
                values = as_array(values)
            if len(values) != len(idx):
                raise UnevenColumnsError(
                    f"cannot assign {len(values)} values to {len(idx)} rows of column '{column}'"
                )
            for k, positions, slots in self._snap.locate(idx):
                frag_id = self._manifest.fragments[k].id
                self._pending.setdefault((frag_id, field.id), []).append(
                    (positions, values.take(pa.array(slots)))
                )

    def delete(self, index: Any) -> None:
        """Delete rows by index (an int, a slice or a list); later rows move up.

        Raises:
            IndexError: An index is out of range.
        """
        with self._lock:
            self.flush()
            idx = normalize_index(index, len(self))
            idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
            if len(idx) == 0:
                return
            by_fragment = {
                self._manifest.fragments[k].id: positions
                for k, positions, _ in self._snap.locate(np.unique(idx))
            }
            self._commit_ops([commits.DeleteRows(self._manifest, by_fragment)])

    # -- schema ----------------------------------------------------------------------------------
    def add_column(self, name: str, dtype: Any, default_value: Any = None) -> None:
        """Add a column; existing rows get ``default_value`` (or null). No data is rewritten.

        Appends that leave the column out also get ``default_value``; without one they must
        give it.

        Raises:
            ColumnExistsError: The name is taken.
            TypeMismatchError: ``default_value`` does not fit ``dtype``.
            DecodeError: ``default_value`` is corrupt media bytes.
        """
        with self._lock:
            _check_column_name(name)
            if name in {f.name for f in self._snap.fields}:
                raise ColumnExistsError(f"column '{name}' already exists")
            column_type = resolve_type(dtype, column=name)
            # validated and converted now, as an appended value would be, not on read
            encoded = (
                None
                if default_value is None
                else encode_default(default_value, column_type, column=name)
            )
            self.flush()
            field = {
                "name": name,
                "type": column_type.to_json(),
                "arrow_type": str(column_type.storage_type),
                "default": encoded,
                "has_default": default_value is not None,
            }
            self._commit_ops([commits.ChangeSchema("add", name, new_field=field)])

    def remove_column(self, name: str) -> None:
        """Remove a column (its data stays in old versions; no file is rewritten).

        Raises:
            ColumnNotFoundError: No such column.
        """
        with self._lock:
            field = self._snap.field(name)
            self.flush()
            self._commit_ops([commits.ChangeSchema("drop", name, field_id=field.id)])

    def rename_column(self, name: str, new_name: str) -> None:
        """Rename a column (data files are addressed by field id, so nothing is rewritten).

        Raises:
            ColumnNotFoundError: No column ``name``.
            ColumnExistsError: ``new_name`` is taken.
        """
        with self._lock:
            _check_column_name(new_name)
            field = self._snap.field(name)
            if new_name in {f.name for f in self._snap.fields}:
                raise ColumnExistsError(f"column '{new_name}' already exists")
            self.flush()
            self._commit_ops(
                [commits.ChangeSchema("rename", name, field_id=field.id, new_name=new_name)]
            )

    def _set_metadata(self, values: dict[str, Any], removed: list[str]) -> None:
        with self._lock:
            self.flush()
            self._commit_ops([commits.SetMetadata(values, removed)])

    def _set_column_metadata(self, column: str, metadata: dict[str, Any]) -> None:
        with self._lock:
            field = self._snap.field(column)
            check_column_metadata(type_from_json(field.type), metadata, column=column)
            self.flush()
            self._commit_ops(
                [commits.ChangeSchema("metadata", column, field_id=field.id, metadata=metadata)]
            )

    # -- refs ----------------------------------------------------------------------------------
    def tag(
        self, name: str, message: str | None = None, version: str | None = None
    ) -> Tag[ReadOnlyDataset]:
        """Name a version (the current one by default, pending writes flushed first).

        Any name a git user would give works (``v1``, ``v1.0``, ``v2.0-rc1``, ``release``,
        ``release/2024``): ``/``-separated parts of ASCII letters, digits, ``_ . - +``.

        Raises:
            TagExistsError: The name is taken.
            VersionNotFoundError: ``version`` does not exist.
            InvalidNameError: The name is not valid (or looks like a version id).
        """
        _check_message(message)
        with self._lock:
            refs.check_ref_name(name, "tag")
            manifest = self._manifest_at(version)
            where = physical_ref(self._storage, manifest)
            info = refs.create_tag(self._storage, name, where, manifest, message)
            return Tag(self, info)

    def _manifest_at(self, version: str | None) -> Manifest:
        """The manifest of ``version``, or of the current version with pending writes flushed."""
        if version is None:
            self.flush()
            return self._manifest
        return self._resolve(version)

    def branch(self, name: str, version: str | None = None) -> Branch[Dataset]:
        """Create a branch from a version (the current one by default); no data is copied.

        Raises:
            BranchExistsError: The name is taken.
            InvalidNameError: The name is not valid (or looks like a version id).
        """
        with self._lock:
            if name != layout.MAIN_BRANCH:
                refs.check_ref_name(name, "branch")
            manifest = self._manifest_at(version)
            refs.create_branch(self._storage, name, manifest.ref)
            return Branch(self, name)

    def merge(self, branch: str, *, resolve: str = "error") -> str | None:
        """Bring another branch's committed changes into this branch, as a commit.

        Appended rows, deletions, cell updates and column additions, drops and renames of
        ``branch`` (up to its latest commit) are applied here. Cells both branches changed
        to different values raise :class:`MergeConflictError` naming the rows and columns,
        and nothing changes; ``resolve="ours"`` keeps this branch's values, ``"theirs"``
        takes ``branch``'s.

        Returns:
            The merge commit's version id, or None if there was nothing to merge.

        Raises:
            MergeConflictError: Conflicting changes (see above), or the branches have no
                direct fork point.
            InvalidMergeError: ``branch`` is this branch, or ``resolve`` is unknown.
            BranchNotFoundError: No such branch.
        """
        with self._lock:
            check_merge_arguments(self._manifest.branch, branch, resolve)
            self.flush()
            self.refresh()
            op = plan_merge(self._storage, self._manifest, branch, resolve=resolve)  # type: ignore[arg-type]
            if op is None:
                return None
            self._commit_ops([op], is_commit=True, message=f"merge {branch}")
            return self.version

    def refresh(self) -> None:
        """Move to the newest version of the branch (pending writes are kept and rebase).

        Raises:
            BranchNotFoundError: The branch was deleted.
        """
        with self._lock:
            self._set_manifest(self._read_head())

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def __del__(self) -> None:
        # A handle dropped with buffered rows (``lakefmt.open(u).append(rows)``) flushes
        # them, as Deep Lake does; errors are logged, since __del__ cannot raise.
        pending = getattr(self, "_pending", None)
        if getattr(self, "_buffer", None) or getattr(self, "_behind", None) or pending:
            if sys.is_finalizing():
                # The exit handler already tried to flush every writer (and logged why it
                # failed); this late, builtins such as open are gone, so trying again would
                # only log a NameError in place of the real reason.
                with contextlib.suppress(Exception):
                    logger.error(
                        "lakefmt: %s rows buffered in %s were not written (the flush at "
                        "exit failed)",
                        getattr(self, "_buffer_rows", "some"),
                        self.url,
                    )
                return
            if _CyclicCollection.running:
                # Found by the collector, which may have interrupted lakefmt code holding a
                # lock the flush takes: flush on a thread of its own (not a daemon, so the
                # interpreter waits for it at exit) once that code has let go.
                threading.Thread(
                    target=self._flush_dropped, name="lakefmt-dropped-handle-flush"
                ).start()
                return
            self._flush_dropped()

    def _flush_dropped(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("lakefmt: could not flush %s when the handle was dropped", self.url)

    def __reduce__(self) -> tuple[Any, ...]:
        self.flush()  # the other side reopens by URL and must see these rows
        return (_reopen, (self.url, self._storage.creds, self._manifest.branch, None, False))


_AT_ROW = re.compile(r"\brow (\d+)\b")


def _at_rows(exc: LakefmtError, rows: np.ndarray, broadcast: bool) -> LakefmtError:
    """``exc`` of converting updated values, naming the dataset's rows: a conversion error
    names "row i" of the values given, which is row ``rows[i]`` (every updated row for one
    value assigned to several)."""
    where = [int(r) for r in rows[:5]]
    updated = (f"row {where[0]}" if len(where) == 1 else f"rows {where}") + (
        ", ..." if len(rows) > 5 else ""
    )

    def dataset_row(match: re.Match[str]) -> str:
        i = int(match.group(1))
        if broadcast or i >= len(rows):
            return updated
        return f"row {int(rows[i])}"

    message, n = _AT_ROW.subn(dataset_row, str(exc), count=1)
    if n == 0:
        message = f"{exc} (updating {updated})"
    try:
        renamed = type(exc)(message)
    except TypeError:  # an error class with other required arguments: keep it as it is
        return exc
    return renamed


def _check_message(message: Any) -> None:
    # checked before anything is written: a manifest or tag file with a message of another
    # type would be refused by every later read
    if message is not None and not isinstance(message, str):
        raise InvalidArgumentError(
            f"a message must be a string or None, got {type(message).__name__} {message!r}"
        )


def _check_column_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"column names must be non-empty strings, got {name!r}")


def open_reader(
    storage: Storage, version: str | None = None, branch: str | None = None
) -> ReadOnlyDataset:
    """A read-only handle at the head of ``branch`` (default main), or at ``version``.

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    if version is None:
        return ReadOnlyDataset(storage, protocol.open_head(storage, branch))
    return ReadOnlyDataset(storage, protocol.open_version(storage, version, branch), pinned=True)


def open_writer(storage: Storage, branch: str | None = None) -> Dataset:
    """A writable handle at the head of ``branch`` (default main).

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    return Dataset(storage, protocol.open_head(storage, branch))


def open_query_source(spec: str, creds: dict[str, Any] | None) -> ReadOnlyDataset:
    """Open what a query names in ``FROM``: ``"url"``, ``"url@tag"``, ``"url@branch"`` or
    ``"url@v3"`` / ``"url@dev/v3"``, pinned at the version read now.

    Raises:
        QueryError: No dataset there, or the part after ``@`` names nothing.
    """
    return _open_spec(spec, creds)._pinned_now()


def _open_spec(spec: str, creds: dict[str, Any] | None) -> ReadOnlyDataset:
    if "@" in spec:
        url, _, ref = spec.rpartition("@")
        if url and ref and protocol.dataset_exists(open_storage(url, creds)):
            try:
                return open_reader(open_storage(url, creds), version=ref)
            except VersionNotFoundError:
                pass
            try:
                return open_reader(open_storage(url, creds), branch=ref)
            except (BranchNotFoundError, ValueError):
                raise QueryError(
                    f"'{ref}' is neither a version id, a tag nor a branch of {url}"
                ) from None
    try:
        return open_reader(open_storage(spec, creds))
    except DatasetNotFoundError:
        raise QueryError(f"no dataset at '{spec}'") from None


def _reopen(
    url: str, creds: dict[str, Any] | None, branch: str, version: str | None, read_only: bool
) -> ReadOnlyDataset:
    if read_only:
        return open_reader(open_storage(url, creds), version, branch)
    return open_writer(open_storage(url, creds), branch)
