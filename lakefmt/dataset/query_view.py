"""Queries from the dataset API, and the views they return.

``ds.query(tql)``, ``view.query(tql)`` and ``lakefmt.query(tql)`` hand the query engine
(:mod:`lakefmt.tql`) their sources and turn its :class:`~lakefmt.tql.QueryResult` into a
:class:`QueryView`:

* for row results, a view of row references into a pinned read-only handle of the version
  that was queried (later writes to the dataset do not move its rows). Cheap columns
  (numbers, text) and computed ones came back with the query and are kept as Arrow columns;
  media, vectors and other large columns are read lazily, by row, from the source;
* for aggregates and joins, a view over the computed Arrow table.

Both support everything a :class:`~lakefmt.dataset.view.DatasetView` does for reading:
``len``, ``view["col"][i]``, ``view[i].to_dict()``, ``batches``, ``to_arrow`` (extension
types re-wrapped from the manifest), ``to_pandas``, ``to_polars``, ``query`` (which queries the
view's rows again) and pickling. Query views are read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.dataset.futures import Future, submit
from lakefmt.dataset.view import DatasetView
from lakefmt.errors import (
    BranchNotFoundError,
    ColumnNotFoundError,
    DatasetNotFoundError,
    QueryError,
    ReadOnlyError,
    TypeMismatchError,
    VersionNotFoundError,
)
from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import ROW_COUNT_FIELD

if TYPE_CHECKING:
    from lakefmt.tql import DatasetSource, QueryResult, Source
from lakefmt.types import Type, as_array, resolve_type

__all__ = ["QueryView", "explain_query", "query", "query_async"]


# -- types of computed columns -------------------------------------------------------------------
class ComputedType(Type):
    """The type of a computed query column that is not a lakefmt scalar (lists, decimals...).

    Reads give numpy arrays (stacked when the values have one shape) or Python values.
    """

    name: ClassVar[str] = "query.computed"

    def __init__(self, arrow_type: pa.DataType) -> None:
        self._arrow_type = arrow_type

    def params(self) -> dict[str, Any]:
        """The Arrow type as text (informative)."""
        return {"arrow_type": str(self._arrow_type)}

    @property
    def storage_type(self) -> pa.DataType:
        """The Arrow type DuckDB returned."""
        return self._arrow_type

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Computed columns cannot be written."""
        raise TypeMismatchError(f"column '{column}' is computed by a query and cannot be written")

    def decode(self, array: pa.Array) -> Any:
        """Numbers as numpy; lists of numbers stacked into a 2-D array when they can be."""
        if isinstance(array, pa.ChunkedArray):
            array = as_array(array)
        t = array.type
        if (pa.types.is_integer(t) or pa.types.is_floating(t)) and not array.null_count:
            return array.to_numpy(zero_copy_only=False)
        values = array.to_pylist()
        if (
            pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
        ) and (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
            arrays = [np.asarray(v) if v is not None else None for v in values]
            if arrays and all(a is not None and a.shape == arrays[0].shape for a in arrays):
                return np.stack(arrays)  # type: ignore[arg-type]
            return arrays
        return values

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """One value (a numpy array for lists of numbers)."""
        value = self.decode(array.slice(index, 1))
        return value[0]

    def __reduce__(self) -> tuple[Any, ...]:
        return (ComputedType, (self._arrow_type,))


def _type_for(arrow_type: pa.DataType) -> Type:
    """A lakefmt type for a computed Arrow column."""
    t = arrow_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return resolve_type("text")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return resolve_type("bytes")
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return resolve_type(_numpy_name(t))
    return ComputedType(t)


def _numpy_name(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    return {pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64"}.get(
        t, str(t)
    )


# -- the result as a Snapshot-like reader ----------------------------------------------------------
@dataclasses.dataclass
class _ViewColumn:
    name: str
    type: Type
    source_field: Field | None  # read lazily from the root by row reference
    in_table: bool


class ResultSnapshot:
    """Reads a query result the way :class:`~lakefmt.format.snapshot.Snapshot` reads a version.

    Columns in the result table are sliced from it; lazy columns are read from the queried
    version (``root``) at the rows' global indices.

    Args:
        root: The pinned read-only dataset the rows belong to (None for computed tables).
        rows: Global indices of the rows in ``root`` (None for computed tables).
        columns: The view's columns.
        table: Values of the non-lazy columns.
    """

    def __init__(
        self,
        root: Any,
        rows: np.ndarray | None,
        columns: list[_ViewColumn],
        table: pa.Table,
    ) -> None:
        self.root = root
        self.rows = rows
        self.columns = columns
        self.table = table
        self._fields = [
            Field(id=i, name=c.name, type=c.type.to_json()) for i, c in enumerate(columns)
        ]
        self._by_name = {f.name: f for f in self._fields}
        self.num_rows = len(rows) if rows is not None else table.num_rows
        self._wrapped: dict[int, pa.Array] = {}

    @property
    def fields(self) -> list[Field]:
        """The view's columns as fields."""
        return self._fields

    def field(self, name: str) -> Field:
        """The column called ``name``.

        Raises:
            ColumnNotFoundError: No such column in the result.
        """
        found = self._by_name.get(name)
        if found is None:
            raise ColumnNotFoundError(
                f"no column '{name}' in the query result; "
                f"columns are {[f.name for f in self._fields]}"
            )
        return found

    def type_of(self, field: Field) -> Type:
        """The lakefmt type of a result column."""
        return self.columns[field.id].type

    def arrow_schema(self, fields: Sequence[Field] | None = None) -> pa.Schema:
        """The Arrow schema (extension types included) of some or all columns."""
        return pa.schema(
            [
                pa.field(f.name, self.type_of(f).arrow_type)
                for f in (self._fields if fields is None else fields)
            ]
        )

    def _table_column(self, index: int) -> pa.Array:
        found = self._wrapped.get(index)
        if found is None:
            col = self.columns[index]
            found = col.type.wrap(as_array(self.table.column(col.name)))
            self._wrapped[index] = found
        return found

    def take(self, fields: Sequence[Field], indices: np.ndarray) -> dict[int, pa.Array]:
        """Values of ``fields`` at result positions ``indices`` (any order, repeats allowed)."""
        indices = np.asarray(indices, dtype=np.int64)
        if not fields:  # the rows without columns (see Snapshot's ROW_COUNT_FIELD)
            return {ROW_COUNT_FIELD.id: pa.nulls(len(indices))}
        out: dict[int, pa.Array] = {}
        lazy = []
        for f in fields:
            col = self.columns[f.id]
            if col.in_table:
                out[f.id] = self._table_column(f.id).take(pa.array(indices))
            else:
                lazy.append(f)
        if lazy:
            assert self.rows is not None and self.root is not None
            sources = list(
                {
                    id(self.columns[f.id].source_field): self.columns[f.id].source_field
                    for f in lazy
                }.values()
            )
            got = self.root._data().take(sources, self.rows[indices])
            for f in lazy:
                source_field = self.columns[f.id].source_field
                assert source_field is not None
                out[f.id] = got[source_field.id]
        return out

    def read_range(self, fields: Sequence[Field], start: int, stop: int) -> dict[int, pa.Array]:
        """Values of ``fields`` for result rows ``[start, stop)``."""
        if not fields:
            return {ROW_COUNT_FIELD.id: pa.nulls(stop - start)}
        out: dict[int, pa.Array] = {}
        lazy = [f for f in fields if not self.columns[f.id].in_table]
        if lazy:
            out.update(self.take(lazy, np.arange(start, stop, dtype=np.int64)))
        for f in fields:
            if self.columns[f.id].in_table:
                out[f.id] = self._table_column(f.id).slice(start, stop - start)
        return out

    def iter_batches(
        self, fields: Sequence[Field], batch_size: int, *, drop_last: bool = False
    ) -> Iterator[dict[int, pa.Array]]:
        """Every result row in order, in batches of ``batch_size``."""
        for start in range(0, self.num_rows, batch_size):
            stop = min(start + batch_size, self.num_rows)
            if drop_last and stop - start < batch_size:
                return
            yield self.read_range(fields, start, stop)

    def scan_in_ram(self, fields: Sequence[Field]) -> bool:
        """Never: result rows are gathered from the source row by row, worth reading ahead."""
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResultSnapshot, (self.root, self.rows, self.columns, self.table))


# -- the view --------------------------------------------------------------------------------------
class QueryView(DatasetView):
    """The result of a query: a read-only :class:`~lakefmt.dataset.view.DatasetView`.

    Row results reference rows of the version that was queried; their media columns are read
    only when accessed. Aggregate results hold their computed rows.
    """

    def __init__(self, result: ResultSnapshot, tql: str) -> None:
        super().__init__(self, None)
        self._result = result
        self._tql = tql

    @property
    def tql(self) -> str:
        """The query that produced this view."""
        return self._tql

    def _snapshot(self) -> Any:
        return self._result

    def _data(self) -> Any:
        return self._result

    def __len__(self) -> int:
        return int(self._result.num_rows)

    def _source_len(self) -> int:
        return len(self)

    def _writable(self) -> Any:
        raise ReadOnlyError(
            "query results are read-only; write through the dataset (ds['col'][i] = value)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (QueryView, (self._result, self._tql))

    def __repr__(self) -> str:
        return f"QueryView(rows={len(self)}, columns={list(self.schema)}, tql={self._tql!r})"


# -- sources ---------------------------------------------------------------------------------------
def _pin(dataset: Any) -> Any:
    """A read-only handle pinned at the version ``dataset`` reads now (pending writes flushed)."""
    from lakefmt.dataset.dataset import ReadOnlyDataset

    snap = dataset._data()
    if type(dataset) is ReadOnlyDataset and getattr(dataset, "_pinned", False):
        return dataset
    return ReadOnlyDataset(dataset._storage, snap.manifest, pinned=True)


def _dataset_source(dataset: Any, rows: np.ndarray | None = None) -> DatasetSource:
    from lakefmt.tql import DatasetSource  # lazy: sqlglot, DuckDB

    pinned = _pin(dataset)
    return DatasetSource(
        pinned._snapshot(), rows=rows, handle=pinned, label=getattr(dataset, "url", "")
    )


def _query_view_source(view: QueryView, rows: np.ndarray | None = None) -> Source:
    from lakefmt.tql import DatasetSource, TableSource  # lazy: sqlglot, DuckDB

    result = view._result
    if result.root is None:
        table = result.table if rows is None else result.table.take(pa.array(rows))
        types = {c.name: c.type for c in result.columns if not isinstance(c.type, ComputedType)}
        return TableSource(table, types=types, handle=None, label="query result")
    picked = result.rows if rows is None else result.rows[rows]
    assert picked is not None
    columns = [(c.name, c.source_field) for c in result.columns if c.source_field is not None]
    computed = [c for c in result.columns if c.source_field is None]
    extra = None
    if computed:
        extra = result.table.select([c.name for c in computed])
        if rows is not None:
            extra = extra.take(pa.array(rows))
    return DatasetSource(
        result.root._snapshot(),
        rows=np.asarray(picked, dtype=np.int64),
        columns=columns,
        extra=extra,
        extra_types={c.name: c.type for c in computed if not isinstance(c.type, ComputedType)},
        handle=result.root,
        label="query result",
    )


def source_of(view: DatasetView) -> Source:
    """The query source a dataset or view stands for."""
    if isinstance(view, QueryView):
        return _query_view_source(view)
    if view._indices is None:
        return _dataset_source(view)
    root = view._source
    if isinstance(root, QueryView):
        return _query_view_source(root, np.asarray(view._indices, dtype=np.int64))
    return _dataset_source(root, np.asarray(view._indices, dtype=np.int64))


def _open(spec: str, creds: dict[str, Any] | None) -> Any:
    """Open ``"url"``, ``"url@tag"``, ``"url@branch"`` or ``"url@v3"`` / ``"url@dev/v3"``."""
    from lakefmt.dataset.api import exists, open_read_only

    if "@" in spec:
        url, _, ref = spec.rpartition("@")
        if url and ref and exists(url, creds):
            try:
                return open_read_only(url, creds=creds, version=ref)
            except VersionNotFoundError:
                pass
            try:
                return open_read_only(url, creds=creds, branch=ref)
            except (BranchNotFoundError, ValueError):
                raise QueryError(
                    f"'{ref}' is neither a version id, a tag nor a branch of {url}"
                ) from None
    try:
        return open_read_only(spec, creds=creds)
    except DatasetNotFoundError:
        raise QueryError(f"no dataset at '{spec}'") from None


def _resolver(creds: dict[str, Any] | None) -> Any:
    def resolve(spec: str) -> Source:
        return _dataset_source(_open(spec, creds))

    return resolve


def _view_of(result: QueryResult, tql: str) -> QueryView:
    from lakefmt.tql import DatasetSource  # lazy: sqlglot, DuckDB

    table = result.table
    source = result.source
    columns: list[_ViewColumn] = []
    if isinstance(source, DatasetSource):
        handle = source.handle
        rows = result.rows
        assert rows is not None
        if source.rows is not None:
            rows = source.rows[rows]
        for c in result.columns:
            if c.lazy:
                columns.append(_ViewColumn(c.name, c.type, c.field, False))
            else:
                t = c.type if c.type is not None else _type_for(table.column(c.name).type)
                columns.append(_ViewColumn(c.name, t, c.field, True))
        return QueryView(
            ResultSnapshot(handle, np.asarray(rows, dtype=np.int64), columns, table), tql
        )
    by_name = {c.name: c for c in result.columns}
    for name, col in zip(table.column_names, table.columns, strict=True):
        spec = by_name.get(name)
        t = spec.type if spec is not None and spec.type is not None else _type_for(col.type)
        columns.append(_ViewColumn(name, t, None, True))
    return QueryView(ResultSnapshot(None, None, columns, table), tql)


# -- entry points ----------------------------------------------------------------------------------
def view_query(view: DatasetView, tql: str) -> QueryView:
    """Run ``tql`` on a dataset or view (the implicit source); see ``DatasetView.query``."""
    from lakefmt.tql import execute  # lazy: sqlglot, DuckDB

    creds = getattr(getattr(view, "_storage", None), "creds", None)
    result = execute(tql, default=source_of(view), resolve=_resolver(creds))
    return _view_of(result, tql)


def view_explain(view: DatasetView, tql: str) -> str:
    """The translated SQL and DuckDB's plan of ``tql`` on a dataset or view."""
    from lakefmt.tql import explain  # lazy: sqlglot, DuckDB

    creds = getattr(getattr(view, "_storage", None), "creds", None)
    return explain(tql, default=source_of(view), resolve=_resolver(creds))


def query(query: str, creds: dict[str, Any] | None = None) -> QueryView:
    """Run a TQL query over the datasets it names.

    Args:
        query: TQL naming its sources in ``FROM "url"`` (``"url@tag"``, ``"url@branch"``,
            ``"url@v3"``); joins across datasets are allowed.
        creds: Credentials for the datasets' storage (see ``lakefmt.open``).

    Returns:
        A read-only view: row references into the source for filters, sorts and samples,
        or the computed rows for aggregates and joins.

    Raises:
        QueryError: A syntax error, an unknown column, function or dataset, or a forbidden
            statement, with the position and reason.
    """
    from lakefmt.tql import execute  # lazy: sqlglot, DuckDB

    result = execute(query, default=None, resolve=_resolver(creds))
    return _view_of(result, query)


def query_async(query: str, creds: dict[str, Any] | None = None) -> Future:
    """:func:`query` on the async pool; the awaitable ``Future`` gives the view."""
    return submit(globals()["query"], query, creds)


def explain_query(query: str, creds: dict[str, Any] | None = None) -> str:
    """The DuckDB SQL a TQL query translates to and DuckDB's plan for it (nothing runs).

    Raises:
        QueryError: As for :func:`query`.
    """
    from lakefmt.tql import explain  # lazy: sqlglot, DuckDB

    return explain(query, default=None, resolve=_resolver(creds))
