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

This module opens no dataset: the handle layer above gives it the pinned handle to query and
a :data:`SourceOpener` for the datasets a query names. ``lakefmt.tql`` is imported inside
the functions that run queries because it imports sqlglot and DuckDB, which ``import
lakefmt`` must not (``tests/test_public_api.py::test_import_is_light``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from lakefmt.dataset.view import DatasetView, WritableRows
from lakefmt.errors import ColumnNotFoundError, ReadOnlyError, TypeMismatchError
from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import ROW_COUNT_FIELD, Snapshot
from lakefmt.indexes.config import SearchConfig
from lakefmt.types import Type, as_array, resolve_type

if TYPE_CHECKING:
    from lakefmt.tql import QueryResult, Source

__all__ = [
    "PinnedRows",
    "QueryView",
    "ResultSnapshot",
    "SourceOpener",
    "dataset_source",
    "explain_query",
    "run_query",
]


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
            first = arrays[0] if arrays else None
            if first is not None and all(a is not None and a.shape == first.shape for a in arrays):
                return np.stack([a for a in arrays if a is not None])
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
        root: PinnedRows | None,
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
            by_id: dict[int, Field] = {}
            for f in lazy:
                source_field = self.columns[f.id].source_field
                assert source_field is not None  # lazy columns are read from the root
                by_id.setdefault(id(source_field), source_field)
            sources = list(by_id.values())
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

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResultSnapshot, (self.root, self.rows, self.columns, self.table))


# -- the view --------------------------------------------------------------------------------------
class PinnedRows(Protocol):
    """A read-only dataset handle pinned at one version: what row results reference."""

    @property
    def url(self) -> str:
        """The dataset's root URL (labels the query source)."""
        ...

    def _snapshot(self) -> Snapshot: ...

    def _data(self) -> Snapshot: ...


#: Opens a ``FROM "url"`` / ``"url@ref"`` a query names, with credentials, as a pinned
#: read-only handle.
SourceOpener = Callable[[str, dict[str, Any] | None], PinnedRows]


class QueryView(DatasetView):
    """The result of a query: a read-only :class:`~lakefmt.dataset.view.DatasetView`.

    Row results reference rows of the version that was queried; their media columns are read
    only when accessed. Aggregate results hold their computed rows.

    Args:
        result: The rows and columns.
        tql: The query that produced them.
        open_source: Opens the other datasets a query of this view names (picklable); a
            query result has no credentials of its own, so it opens them with the default
            credentials.
    """

    def __init__(self, result: ResultSnapshot, tql: str, open_source: SourceOpener) -> None:
        super().__init__(self, None)
        self._result = result
        self._tql = tql
        self._open_source = open_source

    @property
    def tql(self) -> str:
        """The query that produced this view."""
        return self._tql

    def _snapshot(self) -> ResultSnapshot:
        return self._result

    def _data(self) -> ResultSnapshot:
        return self._result

    def __len__(self) -> int:
        return int(self._result.num_rows)

    def _source_len(self) -> int:
        return len(self)

    def _link_creds(self) -> dict[str, Any] | None:
        return None

    def _writable(self) -> WritableRows:
        raise ReadOnlyError(
            "query results are read-only; write through the dataset (ds['col'][i] = value)"
        )

    def _query(self, rows: np.ndarray | None, query: str) -> QueryView:
        return run_query(query, self._query_source(rows), self._open_source, None)

    def _explain(self, rows: np.ndarray | None, query: str) -> str:
        return explain_query(query, self._query_source(rows), self._open_source, None)

    def _query_source(self, rows: np.ndarray | None) -> Source:
        """This result (or its ``rows``) as the implicit source of a query."""
        from lakefmt.tql import DatasetSource, TableSource  # lazy: sqlglot, DuckDB

        result = self._result
        if result.root is None:
            table = result.table if rows is None else result.table.take(pa.array(rows))
            types = {c.name: c.type for c in result.columns if not isinstance(c.type, ComputedType)}
            return TableSource(table, types=types, handle=None, label="query result")
        assert result.rows is not None  # rows of a dataset (root) are referenced by index
        picked = result.rows if rows is None else result.rows[rows]
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

    def __reduce__(self) -> tuple[Any, ...]:
        return (QueryView, (self._result, self._tql, self._open_source))

    def __repr__(self) -> str:
        return f"QueryView(rows={len(self)}, columns={list(self.schema)}, tql={self._tql!r})"


# -- sources ---------------------------------------------------------------------------------------
def dataset_source(pinned: PinnedRows, rows: np.ndarray | None = None) -> Source:
    """The query source for the rows (all, or ``rows``) of a pinned dataset handle."""
    from lakefmt.tql import DatasetSource  # lazy: sqlglot, DuckDB

    return DatasetSource(pinned._snapshot(), rows=rows, handle=pinned, label=pinned.url)


def _resolver(open_source: SourceOpener, creds: dict[str, Any] | None) -> Callable[[str], Source]:
    def resolve(spec: str) -> Source:
        return dataset_source(open_source(spec, creds))

    return resolve


def _view_of(result: QueryResult, tql: str, open_source: SourceOpener) -> QueryView:
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
            ResultSnapshot(handle, np.asarray(rows, dtype=np.int64), columns, table),
            tql,
            open_source,
        )
    by_name = {c.name: c for c in result.columns}
    for name, col in zip(table.column_names, table.columns, strict=True):
        spec = by_name.get(name)
        t = spec.type if spec is not None and spec.type is not None else _type_for(col.type)
        columns.append(_ViewColumn(name, t, None, True))
    return QueryView(ResultSnapshot(None, None, columns, table), tql, open_source)


# -- entry points ----------------------------------------------------------------------------------
def run_query(
    tql: str,
    default: Source | None,
    open_source: SourceOpener,
    creds: dict[str, Any] | None,
    search: SearchConfig | None = None,
) -> QueryView:
    """Run ``tql`` over ``default`` (the implicit source; None: only the sources it names
    in ``FROM``, which ``open_source`` opens with ``creds``); ``search`` says how indexes
    are used.

    Raises:
        QueryError: A syntax error, an unknown column, function or dataset, or a forbidden
            statement, with the position and reason.
    """
    from lakefmt.tql import execute  # lazy: sqlglot, DuckDB

    result = execute(tql, default=default, resolve=_resolver(open_source, creds), search=search)
    return _view_of(result, tql, open_source)


def explain_query(
    tql: str,
    default: Source | None,
    open_source: SourceOpener,
    creds: dict[str, Any] | None,
    search: SearchConfig | None = None,
) -> str:
    """The DuckDB SQL ``tql`` translates to and DuckDB's plan for it (nothing runs); the
    sources as for :func:`run_query`.

    Raises:
        QueryError: As for :func:`run_query`.
    """
    from lakefmt.tql import explain  # lazy: sqlglot, DuckDB

    return explain(tql, default=default, resolve=_resolver(open_source, creds), search=search)
