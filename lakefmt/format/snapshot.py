"""One resolved version: which rows exist and how to read their columns.

Rows are addressed two ways. A *global index* counts live rows across fragments in manifest
order (what users index with). A *(fragment, position)* pair names a physical row of a
fragment; positions never change while the fragment exists, which is why deletions and
updates are stored against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import ColumnNotFoundError, FormatError
from lakefmt.format import fragments as files
from lakefmt.format.cache import LRUCache
from lakefmt.format.defaults import default_cell
from lakefmt.format.manifest import DataFile, Field, Fragment, Manifest, UpdateFile
from lakefmt.storage import Storage
from lakefmt.types import Type, type_from_json, with_column_metadata

Arrays = dict[int, pa.Array]


#: A stand-in read when no column is wanted: its nulls carry each batch's row count (a version
#: with rows and no columns still has those rows, spec 8.1 step 9). It is never read from a
#: file (see :func:`_file_ids`).
ROW_COUNT_FIELD = Field(id=-1, name="__lakefmt_rows", type={"name": "bool"})


def _file_ids(fields: Sequence[Field]) -> set[int]:
    """The ids of ``fields`` to look for in data and update files.

    Field ids of a manifest are never negative; a negative id in a file's ``field_ids`` is a
    column no field matches (a merge maps a source's dropped columns so, spec 12.4 step 2),
    so :data:`ROW_COUNT_FIELD` is never looked for in files: it reads as its nulls.
    """
    return {f.id for f in fields if f.id >= 0}


def batch_rows(arrays: Arrays) -> int:
    """Rows of one batch read by :meth:`Snapshot.take` or :meth:`Snapshot.iter_batches`."""
    return len(next(iter(arrays.values()))) if arrays else 0


class Snapshot:
    """Read access to one manifest's rows.

    Args:
        storage: The dataset root.
        manifest: The version to read.
    """

    def __init__(self, storage: Storage, manifest: Manifest) -> None:
        self.storage = storage
        self.manifest = manifest
        self._types: dict[int, Type] = {}
        self._defaults: dict[int, pa.Array | None] = {}
        live = np.array([f.live_rows for f in manifest.fragments], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(live)]).astype(np.int64)
        self._by_name = {f.name: f for f in manifest.fields}

    # -- schema -------------------------------------------------------------------------
    @property
    def num_rows(self) -> int:
        """Live rows in this version."""
        return int(self._starts[-1])

    @property
    def fields(self) -> list[Field]:
        """The schema's fields, in column order."""
        return self.manifest.fields

    def field(self, name: str) -> Field:
        """The field called ``name``.

        Raises:
            ColumnNotFoundError: No such column.
        """
        field = self._by_name.get(name) if isinstance(name, str) else None
        if field is None:
            what = (
                f"'{name}'" if isinstance(name, str) else f"named by {type(name).__name__} {name!r}"
            )
            raise ColumnNotFoundError(
                f"no column {what}; columns are {[f.name for f in self.fields]}"
            )
        return field

    def type_of(self, field: Field) -> Type:
        """The lakefmt type of a field (cached)."""
        found = self._types.get(field.id)
        if found is None:
            # column metadata may complete the type (Deep Lake's ClassLabel class names)
            found = with_column_metadata(type_from_json(field.type), field.metadata)
            self._types[field.id] = found
        return found

    def arrow_schema(self, fields: Sequence[Field] | None = None) -> pa.Schema:
        """The Arrow schema (extension types included) of some or all columns."""
        return pa.schema(
            [
                pa.field(f.name, self.type_of(f).arrow_type)
                for f in (self.fields if fields is None else fields)
            ]
        )

    # -- rows -----------------------------------------------------------------------------
    def deleted(self, fragment: Fragment) -> np.ndarray:
        """Sorted deleted positions of a fragment."""
        if fragment.deletion is None:
            return np.zeros(0, dtype=np.int64)
        positions = files.read_positions(
            self.storage, fragment.deletion.path, fragment.deletion.size
        )
        # a damaged file must not silently delete other rows than the manifest counts
        if len(positions) != fragment.deletion.count or (
            len(positions) and positions[-1] >= fragment.rows
        ):
            raise FormatError(
                f"{self.storage.url}/{fragment.deletion.path} is damaged: it holds "
                f"{len(positions)} positions up to {positions[-1] if len(positions) else '-'}, "
                f"the manifest says {fragment.deletion.count} of fragment {fragment.id}'s "
                f"{fragment.rows} rows"
            )
        return positions

    def live_positions(self, fragment: Fragment) -> np.ndarray:
        """Sorted positions of the fragment's rows that are not deleted."""
        positions = np.arange(fragment.rows, dtype=np.int64)
        if fragment.deletion is None:
            return positions
        return np.delete(positions, self.deleted(fragment))

    def locate(self, indices: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Map global indices to ``(fragment index, physical positions, output slots)``.

        Positions come back sorted per fragment; ``output slots`` says where each row goes
        in the caller's order.
        """
        if len(indices) == 0:
            return []
        frag_of = np.searchsorted(self._starts, indices, side="right") - 1
        order = np.argsort(frag_of, kind="stable")
        result = []
        sorted_frags = frag_of[order]
        cuts = np.flatnonzero(np.diff(sorted_frags)) + 1
        for slots in np.split(order, cuts):
            k = int(frag_of[slots[0]])
            local = indices[slots] - self._starts[k]
            fragment = self.manifest.fragments[k]
            physical = local if fragment.deletion is None else self.live_positions(fragment)[local]
            inner = np.argsort(physical, kind="stable")
            result.append((k, physical[inner], slots[inner]))
        return result

    def global_rows(self, frag: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Global row indices of live physical rows ``(fragment index, position)``."""
        frag = np.asarray(frag, dtype=np.int64)
        out = self._starts[frag] + np.asarray(pos, dtype=np.int64)
        for k in np.unique(frag):
            fragment = self.manifest.fragments[int(k)]
            if fragment.deletion is None:
                continue
            at = frag == k
            out[at] -= np.searchsorted(self.deleted(fragment), pos[at])
        return out.astype(np.int64)

    def read_fragment(
        self, fragment: Fragment, fields: Sequence[Field], positions: np.ndarray
    ) -> Arrays:
        """Read the cells of ``fields`` at sorted physical ``positions`` of a fragment."""
        wanted = _file_ids(fields)
        out: Arrays = {}
        for data_file in reversed(fragment.files):  # the last file holding a field wins
            fids = [fid for fid in data_file.field_ids if fid in wanted and fid not in out]
            if fids:
                self._check_types(data_file, fields, fids)
                out.update(files.read_data_file_positions(self.storage, data_file, fids, positions))
        for field in fields:
            if field.id not in out:
                out[field.id] = self.default_array(field, len(positions))
            else:
                out[field.id] = self.type_of(field).wrap(out[field.id])
        for update in fragment.updates:
            if update.field_id in wanted:
                out[update.field_id] = self._apply_update(out[update.field_id], update, positions)
        return out

    def _check_types(self, data_file: DataFile, fields: Sequence[Field], fids: list[int]) -> None:
        """Refuse a data file whose columns are stored with another type than the fields'."""
        by_id = {f.id: f for f in fields}
        files.check_stored_types(
            self.storage,
            data_file,
            {fid: (by_id[fid].name, self.type_of(by_id[fid]).storage_type) for fid in fids},
        )

    def default_cell(self, field: Field) -> pa.Array | None:
        """A field's default as a one-element array of its Arrow type (``None``: no default;
        cached).

        Raises:
            FormatError: The manifest's default is malformed.
            TypeMismatchError: A format-1 default its type refuses (unreadable in format 1 too).
        """
        if field.id not in self._defaults:
            self._defaults[field.id] = default_cell(field, self.type_of(field))
        return self._defaults[field.id]

    def default_array(self, field: Field, count: int) -> pa.Array:
        """``count`` copies of a field's default (nulls when it has none)."""
        cell = self.default_cell(field)
        if cell is None:
            return pa.nulls(count, self.type_of(field).arrow_type)
        return repeat_cell(cell, count)

    def _apply_update(self, base: pa.Array, update: UpdateFile, positions: np.ndarray) -> pa.Array:
        upd_pos, upd_values = files.read_update_file(self.storage, update.path, update.size)
        where = np.searchsorted(upd_pos, positions)
        where_clipped = np.minimum(where, max(len(upd_pos) - 1, 0))
        hit = (
            (where < len(upd_pos)) & (upd_pos[where_clipped] == positions)
            if len(upd_pos)
            else (np.zeros(len(positions), dtype=bool))
        )
        if not hit.any():
            return base
        take = np.arange(len(positions), dtype=np.int64)
        take[hit] = len(positions) + where_clipped[hit]
        values = upd_values if upd_values.type == base.type else upd_values.cast(base.type)
        return pa.concat_arrays([base, values]).take(pa.array(take))

    def take(self, fields: Sequence[Field], indices: np.ndarray) -> Arrays:
        """Read ``fields`` at global ``indices`` (any order, repeats allowed)."""
        indices = np.asarray(indices, dtype=np.int64)
        fields = list(fields) or [ROW_COUNT_FIELD]
        parts: dict[int, list[pa.Array]] = {f.id: [] for f in fields}
        slots_all: list[np.ndarray] = []
        for k, positions, slots in self.locate(indices):
            got = self.read_fragment(self.manifest.fragments[k], fields, positions)
            for f in fields:
                parts[f.id].append(got[f.id])
            slots_all.append(slots)
        out: Arrays = {}
        if not slots_all:
            return {f.id: self.default_array(f, 0) for f in fields}
        slots = np.concatenate(slots_all)
        inverse = np.empty_like(slots)
        inverse[slots] = np.arange(len(slots))
        identity = bool(np.all(inverse == np.arange(len(slots))))
        for f in fields:
            merged = pa.concat_arrays(parts[f.id]) if len(parts[f.id]) > 1 else parts[f.id][0]
            out[f.id] = merged if identity else merged.take(pa.array(inverse))
        return out

    def read_range(self, fields: Sequence[Field], start: int, stop: int) -> Arrays:
        """Read rows ``[start, stop)``."""
        return self.take(fields, np.arange(start, stop, dtype=np.int64))

    def iter_batches(
        self, fields: Sequence[Field], batch_size: int, *, drop_last: bool = False
    ) -> Iterator[Arrays]:
        """Stream every live row in order, in batches of exactly ``batch_size`` rows.

        A repeated scan whose columns are small enough decoded (see
        :func:`~lakefmt.format.fragments.fits_group_cache`) leaves its row groups decoded in
        the row-group cache, so the epochs after it decode nothing.
        """
        fields = list(fields) or [ROW_COUNT_FIELD]
        pending: list[Arrays] = []
        pending_rows = 0
        # the cheap check first: a first scan (every compaction) never needs the sizes
        cached = self._scanned_before(fields) and self.scan_fits_cache(fields)
        for fragment in self.manifest.fragments:
            for piece in self._iter_fragment(fragment, fields, batch_size, cached=cached):
                pending.append(piece)
                pending_rows += batch_rows(piece)
                while pending_rows >= batch_size:
                    batch, pending, pending_rows = _cut(pending, fields, batch_size)
                    yield batch
        if pending_rows and not drop_last:
            yield {f.id: _concat([p[f.id] for p in pending]) for f in fields}

    def _files_of(self, fragment: Fragment, wanted: set[int]) -> list[tuple[DataFile, list[int]]]:
        """The data files a fragment's wanted fields are read from (the last file holding a
        field wins), with the fields each gives."""
        out = []
        covered: set[int] = set()
        for data_file in reversed(fragment.files):
            fids = [fid for fid in data_file.field_ids if fid in wanted and fid not in covered]
            if fids:
                covered.update(fids)
                out.append((data_file, fids))
        return out

    def _scanned_before(self, fields: Sequence[Field]) -> bool:
        """Whether these columns of this version were scanned before in this process: only a
        repeated scan fills the row-group cache (filling costs a copy of every group, which a
        one-off scan would pay for nothing)."""
        key = (
            self.storage.url,
            tuple(d.path for f in self.manifest.fragments for d in f.files),
            tuple(f.id for f in fields),
        )
        first: list[bool] = []

        def first_scan() -> bool:
            first.append(True)
            return True

        _SCANNED.get_or_load(key, first_scan)
        return not first

    def scan_fits_cache(self, fields: Sequence[Field]) -> bool:
        """Whether ``fields`` decoded are small enough for a scan of them to be kept in the
        row-group cache (:func:`~lakefmt.format.fragments.fits_group_cache`)."""
        wanted = _file_ids(fields)
        total = 0
        for fragment in self.manifest.fragments:
            for data_file, fids in self._files_of(fragment, wanted):
                total += files.decoded_size(self.storage, data_file, fids)
                if not files.fits_group_cache(total):
                    return False
        return True

    def _iter_fragment(
        self, fragment: Fragment, fields: Sequence[Field], batch_size: int, *, cached: bool
    ) -> Iterator[Arrays]:
        wanted = _file_ids(fields)
        cursors: list[tuple[list[int], _Cursor | _GroupCursor]] = []
        for data_file, fids in self._files_of(fragment, wanted):
            self._check_types(data_file, fields, fids)
            if cached and files.groups_cached(self.storage, data_file, fids):
                cursors.append((fids, _GroupCursor(self.storage, data_file, fids)))
            else:
                stream = files.iter_data_file_caching if cached else files.iter_data_file
                batches = stream(self.storage, data_file, fids, batch_size)
                cursors.append((fids, _Cursor(batches)))
        deleted = self.deleted(fragment)
        updates = [u for u in fragment.updates if u.field_id in wanted]
        for start in range(0, fragment.rows, batch_size):
            count = min(batch_size, fragment.rows - start)
            out: Arrays = {}
            for fids, cursor in cursors:
                arrays = cursor.take(count)
                for fid, arr in zip(fids, arrays, strict=True):
                    out[fid] = arr
            for field in fields:
                out[field.id] = (
                    self.type_of(field).wrap(out[field.id])
                    if field.id in out
                    else self.default_array(field, count)
                )
            if updates:
                positions = np.arange(start, start + count, dtype=np.int64)
                for update in updates:
                    out[update.field_id] = self._apply_update(
                        out[update.field_id], update, positions
                    )
            if len(deleted):
                lo, hi = np.searchsorted(deleted, [start, start + count])
                if hi > lo:
                    mask = np.ones(count, dtype=bool)
                    mask[deleted[lo:hi] - start] = False
                    keep = pa.array(mask)
                    out = {fid: arr.filter(keep) for fid, arr in out.items()}
            yield out


class _Cursor:
    """Pulls exactly ``n`` rows at a time out of a stream of record batches."""

    def __init__(self, batches: Any) -> None:
        self._iter = iter(batches)
        self._batch: pa.RecordBatch | None = None
        self._offset = 0  # rows of the current batch already taken

    def take(self, n: int) -> list[pa.Array]:
        parts: list[list[pa.Array]] = []
        while n > 0:
            if self._batch is None or self._offset >= self._batch.num_rows:
                self._batch, self._offset = next(self._iter), 0
                continue
            count = min(n, self._batch.num_rows - self._offset)
            columns = [c.slice(self._offset, count) for c in self._batch.columns]
            if parts:
                for chunks, column in zip(parts, columns, strict=True):
                    chunks.append(column)
            else:
                parts = [[column] for column in columns]
            self._offset += count
            n -= count
        return [_concat(chunks) for chunks in parts]


#: Scans seen in this process (see ``Snapshot._scanned_before``).
_SCANNED: LRUCache[bool] = LRUCache(256)


class _GroupCursor:
    """Pulls ``n`` rows at a time out of a data file's row groups, read through the decoded
    row-group cache (a group not cached yet is decoded whole and cached)."""

    def __init__(self, storage: Storage, data_file: DataFile, field_ids: list[int]) -> None:
        self._storage = storage
        self._file = data_file
        self._fids = field_ids
        self._bounds = [0, *np.cumsum(data_file.row_groups).tolist()]
        self._group = -1
        self._arrays: dict[int, pa.Array] = {}
        self._pos = 0  # row of the file the next take starts at

    def take(self, n: int) -> list[pa.Array]:
        parts: list[list[pa.Array]] = [[] for _ in self._fids]
        while n > 0:
            if self._group < 0 or self._pos >= self._bounds[self._group + 1]:
                self._group += 1
                self._arrays = files.read_row_groups(
                    self._storage, self._file, self._fids, [self._group]
                )
            start = self._pos - self._bounds[self._group]
            count = min(n, self._bounds[self._group + 1] - self._pos)
            for i, fid in enumerate(self._fids):
                parts[i].append(self._arrays[fid].slice(start, count))
            self._pos += count
            n -= count
        return [_concat(chunks) for chunks in parts]


def repeat_cell(cell: pa.Array, count: int) -> pa.Array:
    """``count`` copies of the one value of ``cell``."""
    if count == 0:
        return cell.slice(0, 0)
    if count < 16:
        return pa.concat_arrays([cell] * count)
    return cell.take(pa.array(np.zeros(count, dtype=np.int64)))


def _concat(arrays: list[pa.Array]) -> pa.Array:
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def _cut(
    pending: list[Arrays], fields: Sequence[Field], size: int
) -> tuple[Arrays, list[Arrays], int]:
    """Split exactly ``size`` rows off the front of the pending pieces."""
    taken: list[Arrays] = []
    rows = 0
    rest: list[Arrays] = []
    for i, piece in enumerate(pending):
        n = len(next(iter(piece.values())))
        if rows + n <= size:
            taken.append(piece)
            rows += n
            if rows == size:
                rest = pending[i + 1 :]
                break
        else:
            need = size - rows
            taken.append({fid: arr.slice(0, need) for fid, arr in piece.items()})
            rest = [{fid: arr.slice(need) for fid, arr in piece.items()}, *pending[i + 1 :]]
            rows = size
            break
    batch = {f.id: _concat([p[f.id] for p in taken]) for f in fields}
    remaining = sum(len(next(iter(p.values()))) for p in rest)
    return batch, rest, remaining
