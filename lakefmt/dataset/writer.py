"""The write path of a handle: rows and cell updates waiting to be committed, and the
write-behind of full append buffers.

``append`` converts and validates its input at once and adds it here (a bad append leaves
nothing behind). Each time the buffer passes ``FLUSH_BYTES`` its data files are written on
the write-behind pool while appending goes on; a flush turns whatever is pending into
commit operations (:meth:`PendingWrites.operations`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt._pool import shared_pool
from lakefmt.errors import LakefmtError, UnevenColumnsError
from lakefmt.format import commit as commits
from lakefmt.format import encoding
from lakefmt.format import fragments as files
from lakefmt.format.manifest import DataFile, Manifest
from lakefmt.format.snapshot import Snapshot
from lakefmt.storage import Storage
from lakefmt.types import Type, as_array
from lakefmt.types.convert import ColumnSpec

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

#: The fragments written for some rows: ``(rows, data files)`` per fragment.
Drafts = list[tuple[int, list[DataFile]]]
#: Cell updates of one column of one fragment: ``(positions, values)`` per assignment.
CellUpdates = list[tuple[np.ndarray, pa.Array]]


def _write_behind_pool() -> ThreadPoolExecutor:
    """The pool writing the data files of full append buffers while the caller keeps
    appending (``lakefmt._pool``'s ``write-behind``: fork-safe)."""
    return shared_pool("write-behind")


def write_fragments(storage: Storage, snap: Snapshot, table: pa.Table) -> Drafts:
    """Write appended rows as fragments (split by rows and bytes), one data file per
    column group: plain columns, media columns. Returns ``(rows, files)`` per fragment."""
    fields = snap.fields
    media = [f for f in fields if snap.type_of(f).is_media]
    plain = [f for f in fields if not snap.type_of(f).is_media]
    per_row = max(1, table.nbytes // max(table.num_rows, 1))
    step = int(max(1, min(FRAGMENT_MAX_ROWS, FRAGMENT_MAX_BYTES // per_row)))
    blooms = {f.id for f in plain if encoding.wants_bloom_filter(f)}
    lookups = any(encoding.wants_lookup_row_groups(f) for f in plain)
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
                        bloom_filters=blooms,
                        lookup_row_groups=lookups and not is_media,
                    )
                )
        drafts.append((part.num_rows, data_files))
    return drafts


def column_specs(snap: Snapshot) -> list[ColumnSpec]:
    """How appends to ``snap``'s version convert each column (type, default cell)."""
    specs = []
    for f in snap.fields:
        try:
            cell, error = snap.default_cell(f), None
        except LakefmtError as exc:  # a damaged default fails only appends needing it
            cell, error = None, exc
        specs.append(ColumnSpec(f.name, snap.type_of(f), f.has_default, cell, error))
    return specs


@dataclasses.dataclass
class BehindWrite:
    """A full append buffer whose data files are being written on the write-behind pool."""

    tables: list[pa.Table]
    rows: int
    future: Future[Drafts]
    pid: int


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class PendingWrites:
    """What one handle appended and updated but did not commit yet.

    Appended rows are in ``behind`` (full buffers being written on other threads, oldest
    first) and then ``tables``; ``rows`` counts both, ``nbytes`` only ``tables``.
    ``updates`` holds cell assignments by ``(fragment id, field id)``, in order.
    """

    tables: list[pa.Table]
    behind: list[BehindWrite]
    rows: int
    nbytes: int
    updates: dict[tuple[int, int], CellUpdates]
    #: The data files written for ``tables`` (keyed by its last table), reused by a retry.
    _written: tuple[pa.Table, Drafts] | None

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything pending: after a commit took it, or on rollback (files still
        being written behind stay unreferenced, for cleanup)."""
        self.tables = []
        self.behind = []
        self.rows = 0
        self.nbytes = 0
        self.updates = {}
        self._written = None

    def has_rows(self) -> bool:
        """Whether appended rows wait to be committed."""
        return bool(self.tables or self.behind)

    def is_empty(self) -> bool:
        """Whether nothing (rows or updates) waits to be committed."""
        return not (self.has_rows() or self.updates)

    def add(self, table: pa.Table) -> bool:
        """Buffer converted rows; returns whether the buffer is now full (``FLUSH_BYTES``)."""
        self.tables.append(table)
        self.rows += table.num_rows
        self.nbytes += table.nbytes
        return self.nbytes >= FLUSH_BYTES

    def add_update(
        self, fragment_id: int, field_id: int, positions: np.ndarray, values: pa.Array
    ) -> None:
        """Buffer new values for cells (physical ``positions`` of one fragment's column)."""
        self.updates.setdefault((fragment_id, field_id), []).append((positions, values))

    def drop_updates(self) -> None:
        """Forget the buffered cell updates (their commit conflicted); rows stay."""
        self.updates = {}

    def write_behind(
        self, storage: Storage, snap: Snapshot, commit_oldest: Callable[[Drafts], None]
    ) -> bool:
        """Hand the buffer to the write-behind pool, so that Parquet encoding and I/O overlap
        the caller's next appends; first commit (``commit_oldest``) the oldest buffer
        written behind while :data:`WRITE_BEHIND_DEPTH` are in flight.

        Returns:
            False if the pool no longer takes work (the interpreter is shutting down): the
            rows stay buffered, for the caller to flush.
        """
        while len(self.behind) >= WRITE_BEHIND_DEPTH:
            oldest = self.await_behind(1)
            if oldest is None:
                break  # written in the parent of this fork: the rows are buffered again
            commit_oldest(oldest[0])
            self.rows -= self.behind.pop(0).rows
        tables = self.tables
        table = _concat(tables)
        try:
            # not a bound method: a dropped handle must not wait for the pool to let go
            future = _write_behind_pool().submit(write_fragments, storage, snap, table)
        except RuntimeError:  # the interpreter is shutting down (an exit handler appends)
            return False
        rows = sum(t.num_rows for t in tables)
        self.behind.append(BehindWrite(tables, rows, future, os.getpid()))
        self.tables, self.nbytes = [], 0
        self._written = None
        return True

    def await_behind(self, count: int) -> list[Drafts] | None:
        """The data files of the oldest ``count`` buffers written behind, in order.

        If one of those writes failed, or ran in the parent of this forked process, every
        buffer written behind goes back to the front of the buffer (the next flush writes
        it again): None after a fork, the error raised after a failure.
        """
        out = []
        for behind in self.behind[:count]:
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
        self.tables = [*(t for b in self.behind for t in b.tables), *self.tables]
        self.nbytes = sum(t.nbytes for t in self.tables)
        self.behind = []  # writes still running finish unreferenced: cleanup removes them
        self._written = None

    def _write_buffer(self, storage: Storage, snap: Snapshot) -> Drafts:
        """Write the buffer's rows (once: a retry after a conflict, or a second call,
        reuses the files written for the same buffer)."""
        if self._written is None or self._written[0] is not self.tables[-1]:
            self._written = (self.tables[-1], write_fragments(storage, snap, _concat(self.tables)))
        return self._written[1]

    def operations(
        self, storage: Storage, snap: Snapshot, manifest: Manifest
    ) -> list[commits.Operation]:
        """The commit operations for everything pending on ``manifest`` (the handle's
        version): data files are written (or awaited) now; nothing is cleared."""
        ops: list[commits.Operation] = []
        drafts: Drafts = []
        if self.behind:
            if self.tables:
                self._write_buffer(storage, snap)  # while the writes behind finish elsewhere
            written = self.await_behind(len(self.behind))
            drafts = [draft for drafts_of in written or [] for draft in drafts_of]
        if self.tables:
            drafts = [*drafts, *self._write_buffer(storage, snap)]
        if drafts:
            ops.append(commits.AppendFragments(drafts))
        if self.updates:
            changes = {}
            for key, parts in self.updates.items():
                positions = np.concatenate([p for p, _ in parts])
                values = pa.concat_arrays([v for _, v in parts])
                # the last assignment to a cell wins
                rev_unique, rev_first = np.unique(positions[::-1], return_index=True)
                last = len(positions) - 1 - rev_first
                changes[key] = (rev_unique, values.take(pa.array(last)))
            ops.append(commits.UpdateCells(manifest, changes))
        return ops


def updated_values(
    dtype: Type, column: str, rows: np.ndarray, value: Any, *, single: bool
) -> pa.Array:
    """Convert the values assigned to ``rows`` of ``column`` (one value for every row when
    ``single`` or when ``value`` is one value of ``dtype``), one per row.

    Raises:
        UnevenColumnsError: The number of values is not the number of rows.
        LakefmtError: As the type's conversion raises it, naming the dataset's rows.
    """
    broadcast = single or dtype.is_single(value)
    try:
        values = dtype.convert([value] if broadcast else value, column=column)
    except LakefmtError as exc:
        renamed = _at_rows(exc, rows, broadcast)
        if renamed is exc:
            raise
        raise renamed from exc
    if broadcast and len(rows) != 1:
        values = values.take(pa.array(np.zeros(len(rows), dtype=np.int64)))
    if isinstance(values, pa.ChunkedArray):
        values = as_array(values)
    if len(values) != len(rows):
        raise UnevenColumnsError(
            f"cannot assign {len(values)} values to {len(rows)} rows of column '{column}'"
        )
    return values


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
