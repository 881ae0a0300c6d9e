"""Read access shared by datasets and views: rows, columns, batches, Arrow/pandas export."""

from __future__ import annotations

import contextlib
import importlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakefmt.dataset.futures import Future, submit
from lakefmt.dataset.metadata import ColumnMetadata
from lakefmt.dataset.protocols import RowReader, RowSource, WritableRows
from lakefmt.dataset.torch_loader import make_torch_dataset
from lakefmt.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    InvalidIndexError,
    MissingDependencyError,
    RowIndexError,
)
from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import batch_rows
from lakefmt.types import Type, link_credentials
from lakefmt.types.indexes import declared_index_types

if TYPE_CHECKING:
    import pandas

Key = int | slice | Sequence[int] | np.ndarray


def _optional_module(name: str, caller: str) -> ModuleType:
    """Import the optional package ``name`` (also the name of its lakefmt extra), or raise a
    ``MissingDependencyError`` that says how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{caller} needs {name}: pip install 'lakefmt[{name}]'"
        ) from exc


def _is_int(value: Any) -> bool:
    # timedelta64 is an np.integer, but not a position
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.timedelta64))


def _slice_bound(value: Any, what: str) -> int | None:
    if value is None or _is_int(value):
        return None if value is None else int(value)
    raise InvalidIndexError(
        f"slice {what} must be an integer or None, got {type(value).__name__} {value!r}"
    )


def normalize_index(key: Any, length: int) -> int | np.ndarray:
    """Turn an int, slice or index list into a non-negative int or an int64 array.

    Raises:
        RowIndexError: An index is out of range, or a boolean mask has the wrong length
            (also an ``IndexError``).
        InvalidIndexError: ``key`` is not a row index (also a ``TypeError``).
        InvalidArgumentError: A slice step of 0 (also a ``ValueError``).
    """
    if isinstance(key, np.ndarray) and key.ndim == 0:
        key = key[()]  # a 0-d array is a scalar, as in numpy
    if _is_int(key):
        i = int(key)
        if i < -length or i >= length:
            raise RowIndexError(f"row index {i} is out of range for {length} rows")
        return i + length if i < 0 else i
    if isinstance(key, slice):
        start = _slice_bound(key.start, "start")
        stop = _slice_bound(key.stop, "stop")
        step = _slice_bound(key.step, "step")
        if step == 0:
            raise InvalidArgumentError("slice step cannot be zero")
        return np.arange(*slice(start, stop, step).indices(length), dtype=np.int64)
    if isinstance(key, range):
        key = list(key)
    if isinstance(key, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(key)
        except ValueError:  # ragged nesting
            arr = np.asarray(key, dtype=object)
        if arr.ndim == 1 and arr.dtype == object and all(_is_int(x) for x in arr):
            # ints numpy cannot hold in 64 bits: out of range for any dataset
            big = next(int(x) for x in arr if not -length <= int(x) < length)
            raise RowIndexError(f"row index {big} is out of range for {length} rows")
        if arr.ndim > 1 or arr.dtype == object:
            raise InvalidIndexError(
                f"row indices must be a flat list or 1-D array, got shape {arr.shape}"
            )
        if arr.dtype == bool:
            if len(arr) != length:
                raise RowIndexError(f"boolean mask of length {len(arr)} for {length} rows")
            return np.flatnonzero(arr).astype(np.int64)
        if arr.size and arr.dtype.kind not in "iu":
            raise InvalidIndexError(
                f"row indices must be integers, got {type(arr.flat[0]).__name__} values "
                f"({arr.dtype})"
            )
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise RowIndexError(f"row index {int(arr.max())} is out of range for {length} rows")
        arr = arr.astype(np.int64).reshape(-1)
        bad = (arr < -length) | (arr >= length)
        if bad.any():
            raise RowIndexError(f"row index {int(arr[bad][0])} is out of range for {length} rows")
        return np.where(arr < 0, arr + length, arr)
    raise InvalidIndexError(
        f"cannot index rows with {type(key).__name__}; use an int, slice or list"
    )


class Schema:
    """The columns of a dataset or view: ``schema["col"]`` a type, ``schema.columns`` the list."""

    def __init__(self, fields: Sequence[tuple[str, Type]]) -> None:
        self._fields = list(fields)

    @property
    def columns(self) -> list[ColumnDefinition]:
        """The columns, in order."""
        return [ColumnDefinition(name, dtype) for name, dtype in self._fields]

    def __getitem__(self, name: str) -> Type:
        for n, t in self._fields:
            if n == name:
                return t
        raise ColumnNotFoundError(f"no column '{name}'; columns are {[n for n, _ in self._fields]}")

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self._fields)

    def __iter__(self) -> Iterator[str]:
        return (n for n, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def to_dict(self) -> dict[str, Type]:
        """``{name: type}``."""
        return dict(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Schema):
            return self._fields == other._fields
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {t!r}" for n, t in self._fields)
        return f"Schema({{{inner}}})"


class ColumnDefinition:
    """A column's name and type, as listed by ``Schema.columns``."""

    def __init__(self, name: str, dtype: Type) -> None:
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"ColumnDefinition({self.name!r}, {self.dtype!r})"


class DatasetView:
    """Rows of a dataset (all of them, a range, a selection or a query result).

    A view holds row references into its source; column values are read (and media decoded)
    only when accessed.
    """

    _lakefmt_view = True

    def __init__(self, source: RowSource, indices: np.ndarray | None) -> None:
        self._source = source
        self._indices = indices

    # -- what subclasses provide -----------------------------------------------------------
    def _snapshot(self) -> RowReader:
        """The source's current version, for schema lookups (never flushes)."""
        return self._source._snapshot()

    def _data(self) -> RowReader:
        """The source's current version, with pending writes flushed, for reading rows."""
        return self._source._data()

    def _globals(self, local: int | np.ndarray) -> int | np.ndarray:
        """Map view positions to source (global) row indices."""
        if self._indices is None:
            return local
        return int(self._indices[local]) if isinstance(local, int) else self._indices[local]

    def _link_creds(self) -> dict[str, Any] | None:
        """Credentials for ``Link`` columns: those the source dataset was opened with."""
        return self._source._link_creds()

    def _writable(self) -> WritableRows:
        """The dataset that accepts writes through this view."""
        return self._source._writable()

    # -- size and schema ----------------------------------------------------------------------
    def __len__(self) -> int:
        if self._indices is None:
            return self._source_len()
        return len(self._indices)

    def _source_len(self) -> int:
        return len(self._source)

    @property
    def schema(self) -> Schema:
        """The columns and their types."""
        snap = self._snapshot()
        return Schema([(f.name, snap.type_of(f)) for f in snap.fields])

    def _fields(self, columns: Sequence[str] | None) -> list[Field]:
        snap = self._snapshot()
        if columns is None:
            return list(snap.fields)
        if isinstance(columns, str):
            columns = [columns]
        if not isinstance(columns, (list, tuple)):
            try:
                columns = list(columns)
            except TypeError:
                raise InvalidArgumentError(
                    f"columns must be a column name or a list of names, got {columns!r}"
                ) from None
        return [snap.field(name) for name in columns]

    # -- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        """``view["col"]`` a Column; ``view[i]`` a Row; ``view[a:b]`` / ``view[[i, j]]`` a view."""
        if isinstance(key, str):
            self._snapshot().field(key)  # raises ColumnNotFoundError
            return Column(self, key)
        index = normalize_index(key, len(self))
        if isinstance(index, int):
            return Row(self, index)
        return RowRange(self, index)

    def __iter__(self) -> Iterator[Row]:
        for i in range(len(self)):
            yield Row(self, i)

    def _read(self, fields: Sequence[Field], local: np.ndarray) -> dict[int, pa.Array]:
        snap = self._data()
        global_idx = self._globals(local)
        assert isinstance(global_idx, np.ndarray)
        if self._indices is None and len(local) and local[-1] - local[0] + 1 == len(local):
            return snap.read_range(fields, int(local[0]), int(local[-1]) + 1)
        return snap.take(fields, global_idx)

    # -- bulk reads -----------------------------------------------------------------------------
    def batches(
        self,
        batch_size: int = 1000,
        drop_last: bool = False,
        columns: Sequence[str] | None = None,
        *,
        decode: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Iterate over rows in batches of ``batch_size``: ``{column: numpy array or list}``.

        The next row groups are decoded on background threads (one per core) while the
        caller works on the current batch. With media columns, reading and decoding images
        are two more stages on two threads, so the image decode pool never waits for the next
        batch to be read. Columns already decoded in the row-group cache cost no decoding.
        """
        _check_batch_size(batch_size)
        fields = self._fields(columns)
        snap = self._snapshot()
        types = {f.id: snap.type_of(f) for f in fields}
        creds = self._link_creds()
        batches = self._iter_arrays(fields, batch_size, drop_last)
        two_stages = decode and any(t.is_media for t in types.values())
        if two_stages:
            batches = _read_ahead(batches, name="lakefmt-read")

        def produce() -> Iterator[dict[str, Any]]:
            with contextlib.closing(batches):  # stops the read stage when decoding stops
                for arrays in batches:
                    if decode:
                        # Entered here: context variables do not cross into read-ahead threads.
                        with _links(creds):
                            decoded = {f.name: types[f.id].decode(arrays[f.id]) for f in fields}
                        yield decoded
                    else:
                        yield {f.name: arrays[f.id] for f in fields}

        if two_stages:
            return _read_ahead(produce(), name="lakefmt-decode")
        media = any(t.is_media for t in types.values())
        if self._indices is None and not media:
            # a scan of plain columns: row groups are decoded ahead on the decode pool (or
            # come from RAM), and a read-ahead thread would only add its hand-overs
            return produce()
        # plain columns (rows picked by a view): a few batches per hand-over; media bytes
        # (without decoding) one batch at a time, which bounds the memory ahead
        chunk = 1 if media else max(1, READ_AHEAD_CHUNK_ROWS // batch_size)
        return _read_ahead(produce(), chunk=chunk)

    def _iter_arrays(
        self, fields: Sequence[Field], batch_size: int, drop_last: bool
    ) -> Generator[dict[int, pa.Array], None, None]:
        snap = self._data()
        if self._indices is None:
            yield from snap.iter_batches(fields, batch_size, drop_last=drop_last)
            return
        total = len(self._indices)
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            if drop_last and stop - start < batch_size:
                return
            yield snap.take(fields, self._indices[start:stop])

    def to_arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Return the rows as an Arrow table (multimodal columns keep their extension types)."""
        fields = self._fields(columns)
        snap = self._snapshot()
        schema = snap.arrow_schema(fields)
        batches = [
            _record_batch(arrays, fields, schema)
            for arrays in self._iter_arrays(fields, 65_536, False)
        ]
        return pa.Table.from_batches(batches, schema=schema)

    def to_batches(
        self,
        columns: Sequence[str] | None = None,
        batch_size: int = 65_536,
        *,
        filter: str | None = None,
    ) -> pa.RecordBatchReader:
        """Stream the rows as an Arrow ``RecordBatchReader``, ``batch_size`` rows at a time,
        without holding them all in memory.

        Args:
            columns: The columns to read (default: all).
            batch_size: Rows per batch.
            filter: A TQL condition (what follows ``WHERE``, e.g. ``"label = 'cat' AND
                score > 0.5"``): only the rows it keeps, in their order. The query finds
                the rows first (their positions, not their values), then they stream.

        Raises:
            InvalidArgumentError: ``filter`` is empty or not a string.
            QueryError: ``filter`` is not a valid condition (its position is named).
        """
        if filter is not None:
            if not isinstance(filter, str) or not filter.strip():
                raise InvalidArgumentError('filter must be a TQL condition such as "x > 1"')
            return self.query(f"SELECT * WHERE {filter}").to_batches(columns, batch_size)
        _check_batch_size(batch_size)
        fields = self._fields(columns)
        schema = self._snapshot().arrow_schema(fields)
        gen = (
            _record_batch(arrays, fields, schema)
            for arrays in self._iter_arrays(fields, batch_size, False)
        )
        return pa.RecordBatchReader.from_batches(schema, gen)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The rows as an Arrow C stream (the Arrow PyCapsule protocol): ``pa.table(view)``,
        ``polars.DataFrame(view)``, DuckDB and other Arrow consumers read the view directly,
        batch by batch."""
        return self.to_batches().__arrow_c_stream__(requested_schema)

    def to_pandas(
        self, columns: Sequence[str] | None = None, *, decode: bool = False
    ) -> pandas.DataFrame:
        """Return the rows as a pandas DataFrame.

        Media columns hold their stored bytes unless ``decode=True`` (decoded objects).

        Raises:
            MissingDependencyError: pandas is not installed (says what to install).
        """
        pd = _optional_module("pandas", "to_pandas()")

        if not decode:
            return _plain(self.to_arrow(columns)).to_pandas()
        fields = self._fields(columns)
        data: dict[str, list[Any]] = {f.name: [] for f in fields}
        for batch in self.batches(65_536, columns=[f.name for f in fields]):
            for f in fields:
                data[f.name].extend(list(batch[f.name]))
        return pd.DataFrame(data)

    def to_polars(self, columns: Sequence[str] | None = None) -> Any:
        """Return the rows as a polars DataFrame.

        Raises:
            MissingDependencyError: polars is not installed (says what to install).
        """
        pl = _optional_module("polars", "to_polars()")

        return pl.from_arrow(_plain(self.to_arrow(columns)))

    def pytorch(
        self,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        batch_size: int | None = None,
        shuffle: bool = False,
        num_workers: int = 0,
        columns: Sequence[str] | None = None,
    ) -> Any:
        """Return a torch ``IterableDataset`` over these rows (needs ``lakefmt[torch]``).

        Rows come as ``{column: value}`` dicts (decoded), passed through ``transform``; with
        ``batch_size`` it yields stacked batches instead (use ``DataLoader(batch_size=None)``).
        Worker processes are the ``DataLoader``'s: ``DataLoader(ds.pytorch(),
        num_workers=4)``; each worker reads a disjoint share, and the object pickles by URL.
        ``num_workers`` here is kept for code written for Deep Lake 3, whose ``pytorch()``
        made the loader: only ``0`` is accepted. ``shuffle`` permutes rows anew every epoch.

        Raises:
            InvalidArgumentError: ``num_workers`` is not 0 (pass it to the ``DataLoader``).
            MissingDependencyError: torch is not installed.
        """
        if num_workers != 0:
            # silently dropping it would leave the user loading on one process unawares
            raise InvalidArgumentError(
                f"pytorch(num_workers={num_workers!r}): worker processes are the DataLoader's; "
                f"use torch.utils.data.DataLoader(ds.pytorch(), num_workers={num_workers!r})"
            )
        return make_torch_dataset(
            self, transform=transform, batch_size=batch_size, shuffle=shuffle, columns=columns
        )

    def query(self, query: str) -> DatasetView:
        """Run a TQL query with these rows as the implicit source (no ``FROM`` needed).

        Args:
            query: TQL, e.g. ``"SELECT * WHERE label = 'cat' ORDER BY score DESC LIMIT 10"``.

        Returns:
            A read-only view: row references for filters, sorts and samples (media read
            lazily), or the computed rows for aggregates and joins.

        Raises:
            QueryError: A syntax error, an unknown column or function, or a forbidden
                statement, with the position and reason.
        """
        return self._source._query(self._query_rows(), query)

    def query_async(self, query: str) -> Future:
        """:meth:`query` on the async pool; the awaitable ``Future`` gives the view."""
        return submit(self.query, query)

    def explain(self, query: str) -> str:
        """The DuckDB SQL that ``query`` translates to, and DuckDB's plan for it.

        Raises:
            QueryError: As for :meth:`query`.
        """
        return self._source._explain(self._query_rows(), query)

    def _query_rows(self) -> np.ndarray | None:
        """This view's rows of its source, as a query names them (None: all of them)."""
        return None if self._indices is None else np.asarray(self._indices, dtype=np.int64)

    def summary(self) -> None:
        """Print the number of rows and the columns with their types."""
        print(self._summary_text())

    def _summary_text(self) -> str:
        lines = [f"{type(self).__name__}: {len(self)} rows", "columns:"]
        for col in self.schema.columns:
            lines.append(f"  {col.name:<24} {col.dtype!r}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rows={len(self)}, columns={list(self.schema)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_view, (self._source, self._indices))


def _check_batch_size(batch_size: Any) -> None:
    if not _is_int(batch_size) or batch_size <= 0:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")


def _links(creds: dict[str, Any] | None) -> Any:
    """Credentials for Link reads: the dataset's, else whatever the caller entered."""
    return link_credentials(creds) if creds is not None else contextlib.nullcontext()


def _record_batch(
    arrays: dict[int, pa.Array], fields: Sequence[Field], schema: pa.Schema
) -> pa.RecordBatch:
    """A batch of ``fields``; without fields it still has the batch's rows (a version whose
    columns were all removed keeps its rows, spec 8.1 step 9)."""
    if fields:
        return pa.RecordBatch.from_arrays([arrays[f.id] for f in fields], schema=schema)
    return pa.record_batch([pa.nulls(batch_rows(arrays))], names=["_"]).select([])


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with extension columns replaced by their storage (for pandas and polars)."""
    if not any(isinstance(t, pa.ExtensionType) for t in table.schema.types):
        return table  # also keeps the rows of a table without columns
    return pa.table([_storage_chunked(c) for c in table.columns], names=table.column_names)


def _storage_chunked(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(column.type, pa.ExtensionType):
        return pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
    return column


def _rebuild_view(source: RowSource, indices: np.ndarray | None) -> DatasetView:
    return DatasetView(source, indices)


def _rebuild_row_range(source: RowSource, indices: np.ndarray) -> RowRange:
    view = RowRange.__new__(RowRange)
    DatasetView.__init__(view, source, indices)
    return view


class RowRange(DatasetView):
    """Several rows of a dataset or view (``ds[a:b]``, ``ds[[i, j]]``)."""

    def __init__(self, parent: DatasetView, local: np.ndarray) -> None:
        global_idx = parent._globals(local)
        assert isinstance(global_idx, np.ndarray)
        # Chain to the dataset, not through intermediate views: a view of a view of rows
        # still reads straight from the source (a dataset is its own source).
        super().__init__(parent._source, np.asarray(global_idx, dtype=np.int64))

    def _source_len(self) -> int:
        return len(self._source)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_row_range, (self._source, self._indices))

    def to_dict(self) -> dict[str, Any]:
        """``{column: values}`` of these rows."""
        return {name: self[name][:] for name in self.schema}


class Column:
    """One column of a dataset or view.

    ``col[i]`` gives one value, ``col[a:b]`` / ``col[[i, j]]`` several (numbers as numpy
    arrays, text as lists, images as decoded arrays); ``col[i] = v`` updates in place.
    """

    def __init__(self, view: DatasetView, name: str) -> None:
        self._view = view
        self.name = name

    def _field(self) -> Field:
        return self._view._snapshot().field(self.name)

    @property
    def dtype(self) -> Type:
        """The column's type."""
        snap = self._view._snapshot()
        return snap.type_of(snap.field(self.name))

    @property
    def metadata(self) -> Any:
        """Column metadata (a dict-like object; persisted on writable datasets)."""
        return ColumnMetadata(self._view, self.name)

    def __len__(self) -> int:
        return len(self._view)

    @property
    def indexes(self) -> list[str]:
        """The canonical names of the indexes this column declares (``["bm25"]``...)."""
        params = self._field().type.get("params") or {}
        return [d.name for d in declared_index_types(params)]

    def create_index(self, index_type: Any) -> None:
        """Declare an index on this column and build it over its rows, in a new version
        (of the whole dataset, also when called on a view's column).

        ``index_type`` as ``Embedding(index_type=...)``/``Text(index_type=...)`` take it:
        ``types.EmbeddingIndex(types.ClusteredQuantized)``, ``types.BM25``, ``"inverted"``...
        Later commits keep it current (see ``Dataset.indexing_mode``).

        Raises:
            ReadOnlyError: The dataset is read-only.
            InvalidTypeError: ``index_type`` is not an index this column's type can have.
            InvalidArgumentError: The column already has an index of that kind.
            MissingDependencyError: A vector index needs faiss (``lakefmt[index]``).
        """
        self._view._writable()._create_index(self.name, index_type)

    def drop_index(self, index_type: Any) -> None:
        """Remove an index of this column (older versions keep theirs), in a new version.

        Raises:
            ReadOnlyError: The dataset is read-only.
            InvalidArgumentError: The column has no index of that kind.
        """
        self._view._writable()._drop_index(self.name, index_type)

    def _arrays(self, key: Any) -> tuple[pa.Array, bool]:
        index = normalize_index(key, len(self._view))
        field = self._field()
        if isinstance(index, int):
            return self._view._read([field], np.array([index], dtype=np.int64))[field.id], True
        return self._view._read([field], index)[field.id], False

    def __getitem__(self, key: Any) -> Any:
        array, single = self._arrays(key)
        dtype = self.dtype
        with _links(self._view._link_creds()):
            return dtype.decode_one(array, 0) if single else dtype.decode(array)

    def get_async(self, key: Any) -> Future:
        """Read ``col[key]`` on the async pool; returns an awaitable ``Future``."""
        return submit(self.__getitem__, key)

    def set_async(self, key: Any, value: Any) -> Future:
        """Run ``col[key] = value`` on the async pool; returns an awaitable ``Future``."""
        return submit(self.__setitem__, key, value)

    def get_bytes(self, key: Any) -> Any:
        """Return stored values without decoding (e.g. the original JPEG bytes)."""
        array, single = self._arrays(key)
        if isinstance(array, pa.ExtensionArray):
            array = array.storage
        values = array.to_pylist()
        return values[0] if single else values

    def __setitem__(self, key: Any, value: Any) -> None:
        index = normalize_index(key, len(self._view))
        global_idx = self._view._globals(index)
        self._view._writable()._update_cells(
            self.name, global_idx, value, single=isinstance(index, int)
        )

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def numpy(self) -> Any:
        """All values of the column (same as ``col[:]``)."""
        return self[:]

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.dtype!r}, rows={len(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Column, (self._view, self.name))


class Row:
    """One row of a dataset or view: ``row["col"]``, ``row["col"] = v``, ``row.to_dict()``."""

    def __init__(self, view: DatasetView, index: int) -> None:
        self._view = view
        self.row_id = index

    def __getitem__(self, column: str) -> Any:
        return Column(self._view, column)[self.row_id]

    def __setitem__(self, column: str, value: Any) -> None:
        Column(self._view, column)[self.row_id] = value

    def get_async(self, column: str) -> Future:
        """Read ``row[column]`` on the async pool; returns an awaitable ``Future``."""
        return submit(self.__getitem__, column)

    def set_async(self, column: str, value: Any) -> Future:
        """Run ``row[column] = value`` on the async pool; returns an awaitable ``Future``."""
        return submit(self.__setitem__, column, value)

    def get_bytes(self, column: str) -> Any:
        """The stored (undecoded) value of ``column`` in this row."""
        return Column(self._view, column).get_bytes(self.row_id)

    def to_dict(self) -> dict[str, Any]:
        """``{column: value}`` of this row."""
        snap = self._view._snapshot()
        fields = list(snap.fields)
        arrays = self._view._read(fields, np.array([self.row_id], dtype=np.int64))
        with _links(self._view._link_creds()):
            return {f.name: snap.type_of(f).decode_one(arrays[f.id], 0) for f in fields}

    def keys(self) -> list[str]:
        """The column names."""
        return list(self._view.schema)

    def __repr__(self) -> str:
        return f"Row(index={self.row_id})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Row, (self._view, self.row_id))


_END = object()
#: Rows of plain columns handed from the read-ahead thread to the consumer at once.
READ_AHEAD_CHUNK_ROWS = 65_536


def _read_ahead(
    source: Iterator[Any], depth: int = 2, *, name: str = "lakefmt-read-ahead", chunk: int = 1
) -> Generator[Any, None, None]:
    """Run ``source`` on a thread, ``depth`` hand-overs ahead of the consumer.

    Items cross in lists of up to ``chunk`` (each hand-over between threads costs tens of
    microseconds, more than slicing a batch of plain columns). The thread stops (and closes
    ``source``) soon after the consumer stops or is closed, even when the queue is full; an
    exception in ``source`` is raised in the consumer after the items produced before it.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        pending: list[Any] = []
        try:
            for item in source:
                pending.append(item)
                if len(pending) >= chunk:
                    if not put((pending, None)):
                        return
                    pending = []
            if pending and not put((pending, None)):
                return
            put((_END, None))
        except BaseException as exc:  # re-raised in the consumer
            if not pending or put((pending, None)):
                put((_END, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # runs the source's cleanup, e.g. stopping an inner read-ahead

    thread = threading.Thread(target=run, daemon=True, name=name)
    thread.start()

    def consume() -> Generator[Any, None, None]:
        try:
            while True:
                items, exc = q.get()
                if items is _END:
                    if exc is not None:
                        raise exc
                    return
                yield from items
        finally:
            stop.set()

    return consume()
