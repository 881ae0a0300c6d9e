"""The query engine: Deep Lake's TQL, parsed with sqlglot and run by a private DuckDB.

Layer L4: it reads datasets through :mod:`lakefmt.format` and knows nothing of the dataset
objects of :mod:`lakefmt.dataset`. A query reads *sources* (:class:`DatasetSource`,
:class:`TableSource`) and returns a :class:`QueryResult`:

* row references (``rows``) into one source plus the cheap and computed columns (``table``)
  when every result row stands for one source row (filters, sorts, limits, unions of such,
  ``SAMPLE BY``); media and vector columns of those rows are not read by the query;
* a computed table otherwise (aggregates, ``DISTINCT``, joins).

Modules, from the top (an import-linter contract in ``pyproject.toml`` keeps this order):

* :mod:`~lakefmt.tql.translate` (clause planning: sources, scopes, the result's meaning),
  :mod:`~lakefmt.tql.engine` (the sandboxed DuckDB), :mod:`~lakefmt.tql.duckdb_errors`
  (DuckDB exceptions -> ``QueryError``);
* :mod:`~lakefmt.tql.expressions` (type inference, TQL's operator conventions);
* :mod:`~lakefmt.tql.functions` (the registry of TQL functions: one entry each);
* :mod:`~lakefmt.tql.context` (planning state shared with the functions),
  :mod:`~lakefmt.tql.relations` (SQL of the relations reading sources);
* :mod:`~lakefmt.tql.similarity` (numpy vector scoring), :mod:`~lakefmt.tql.sqltree`
  (sqlglot tree helpers), :mod:`~lakefmt.tql.udfs` (Python functions inside DuckDB);
* :mod:`~lakefmt.tql.models` (sources and the columns they show);
* :mod:`~lakefmt.tql.parser` (TQL text -> checked tree), :mod:`~lakefmt.tql.columns`
  (column kinds, DuckDB types), :mod:`~lakefmt.tql.cache` (vector columns kept in RAM).

The package is named ``tql`` rather than ``query`` because ``lakefmt.query`` is the public
*function* ``lakefmt.query(tql)``: a subpackage of the same name would replace that
attribute as soon as it is imported (it is imported lazily, to keep ``import lakefmt`` light).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from lakefmt.errors import QueryError
from lakefmt.format.cache import ByteBudgetCache
from lakefmt.format.manifest import Index
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.config import SearchConfig
from lakefmt.tql import (
    engine,
    index_search,
    parser,
    prepared,
    pruning,
    scalar_search,
    text_search,
)
from lakefmt.tql.cache import VECTORS
from lakefmt.tql.duckdb_errors import DuckDBError, query_error
from lakefmt.tql.models import FRAG, POS, VROW, DatasetSource, Source, TableSource
from lakefmt.tql.relations import RelationBuilder, TableRegistry
from lakefmt.tql.results import QueryResult
from lakefmt.tql.sqltree import unique_name
from lakefmt.tql.translate import WEIGHT, OutputColumn, Plan, Planner

__all__ = [
    "DatasetSource",
    "OutputColumn",
    "QueryResult",
    "Source",
    "TableSource",
    "execute",
    "explain",
    "global_indices",
    "weighted_sample",
]

Resolver = Callable[[str], Source]
IndexQuery = index_search.VectorQuery | index_search.TextQuery


#: Plans of queries over a whole dataset version, by query text and version. A version
#: never changes, so neither does the plan of a query over it (values it reads while
#: planning, like ``DATA(col, i)``, included); queries naming other datasets (``FROM``)
#: are planned anew, since a tag or branch may move. Bounded by the bytes of the Arrow
#: tables plans hold (deletions, updates).
PLANS: ByteBudgetCache[Plan] = ByteBudgetCache(64 << 20, max_entry_share=0.25)


def _plan_key(tql: str, default: Source | None) -> tuple[object, ...] | None:
    if not (
        isinstance(default, DatasetSource)
        and default.rows is None
        and default.columns is None
        and default.extra is None
    ):
        return None
    manifest = default.snapshot.manifest
    return (
        tql,
        default.snapshot.storage.url,
        manifest.dataset_id,
        manifest.branch,
        manifest.version,
        manifest.timestamp,
        id(manifest),  # with the rest: the very version object this handle reads
        VECTORS.max_bytes > 0,  # vector columns from RAM or from DuckDB's reader
        pruning.ENABLED,  # fragments skipped by statistics (tests turn it off)
    )


def _plan(tql: str, default: Source | None, resolve: Resolver | None) -> Plan:
    key = _plan_key(tql, default)
    if key is not None:
        cached = PLANS.get(key)
        if cached is not None:
            if cached.row_source is not None:  # rows of this handle's source, not the first
                cached = dataclasses.replace(cached, row_source=default)
            return cached
    parsed = prepared.parse(tql)

    resolved: list[str] = []

    def tracked(spec: str) -> Source:
        resolved.append(spec)
        assert resolve is not None
        return resolve(spec)

    builder = RelationBuilder(TableRegistry(), _load_column)
    plan = Planner(parsed, default, tracked if resolve is not None else None, builder).plan()
    if key is not None and not resolved and (plan.row_source in (None, default)):
        size = len(plan.sql) + sum(t.nbytes for _, t in plan.tables)
        PLANS.put(key, plan, size)
    return plan


def execute(
    tql: str,
    *,
    default: Source | None = None,
    resolve: Resolver | None = None,
    search: SearchConfig | None = None,
) -> QueryResult:
    """Run a TQL query.

    Args:
        tql: The query.
        default: The implicit source of ``SELECT`` statements without ``FROM``.
        resolve: Opens the sources named by ``FROM "url"`` (``url@version`` etc.).
        search: How index searches try (:class:`~lakefmt.indexes.config.SearchConfig`);
            ``SearchConfig(exact=True)`` never uses an index.

    Returns:
        The result (see :class:`QueryResult`).

    Raises:
        QueryError: A syntax error, an unknown column or function, a forbidden statement or
            function, or a failure while running (with position and reason).
    """
    config = search or SearchConfig()
    parsed = _parsed_for_index(tql, default, config)
    if parsed is not None:
        indexed = _indexed(tql, parsed, default, resolve, config)
        if indexed is not None:
            return indexed
        looked_up = _looked_up(tql, parsed, default, resolve)
        if looked_up is not None:
            return looked_up
    plan = _plan(tql, default, resolve)
    db = engine.database(plan.directories)
    try:
        table = db.run(plan.sql, plan.tables)
    except DuckDBError as exc:
        raise query_error(exc, tql) from None
    assert isinstance(table, pa.Table)
    if plan.sample is not None:
        replace, limit = plan.sample
        weights = table.column(WEIGHT).to_numpy(zero_copy_only=False)
        picked = weighted_sample(
            np.asarray(weights, dtype=np.float64), replace=replace, limit=limit
        )
        table = table.take(pa.array(picked, type=pa.int64()))
    rows = None
    if plan.row_source is not None:
        rows = _rows(plan, table)
        if plan.natural_order and len(rows) > 1 and bool(np.any(np.diff(rows) < 0)):
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            table = table.take(pa.array(order))
    keep = [i for i, n in enumerate(table.column_names) if not n.startswith(parser.RESERVED_PREFIX)]
    if len(keep) != table.num_columns:
        table = table.select(keep)  # by position: DuckDB may repeat a name (x AS a, y AS a)
    seen: dict[str, int] = {}
    names = [unique_name(n, seen) for n in table.column_names]
    if names != table.column_names:  # the names the plan gave its outputs (a, a_1)
        table = table.rename_columns(names)
    return QueryResult(plan.columns, _plain_numbers(table), plan.row_source, rows, plan.sql)


def _parsed_for_index(
    tql: str, default: Source | None, config: SearchConfig
) -> parser.ParsedQuery | None:
    """``tql`` parsed when an index may answer it over ``default`` (a whole version with
    indexes, no exact search asked), else None."""
    if (
        config.exact
        or not isinstance(default, DatasetSource)
        or not default.snapshot.manifest.indexes
        or default.rows is not None
        or default.extra is not None
        or default.columns is not None
    ):
        return None
    return prepared.parse(tql)


def _index_plan(
    parsed: parser.ParsedQuery, default: Source | None
) -> tuple[parser.ParsedQuery, DatasetSource, IndexQuery, Index] | None:
    """The index that answers a parsed query over ``default``, if one does."""
    assert isinstance(default, DatasetSource)
    vector = index_search.vector_query(parsed, default)
    if vector is not None:
        index = index_search.vector_index(default.snapshot, vector)
        return None if index is None else (parsed, default, vector, index)
    words = index_search.text_query(parsed, default)
    if words is not None:
        index = index_search.text_index(default.snapshot, words)
        return None if index is None else (parsed, default, words, index)
    return None


def _looked_up(
    tql: str, parsed: parser.ParsedQuery, default: Source | None, resolve: Resolver | None
) -> QueryResult | None:
    """Run ``tql`` over the candidates of an index lookup (see :mod:`.scalar_search`)."""
    assert isinstance(default, DatasetSource)
    query = scalar_search.lookup_query(parsed, default)
    if query is None:
        return None
    candidates = scalar_search.search_lookup(default.snapshot, query)
    if candidates is None or candidates.rows is None:  # damaged, or too many rows
        return None
    direct = scalar_search.direct_lookup(parsed, default, query, candidates.rows)
    if direct is not None:
        return direct
    view = dataclasses.replace(default, rows=candidates.rows)
    return execute(tql, default=view, resolve=resolve, search=SearchConfig(exact=True))


def _indexed(
    tql: str,
    parsed: parser.ParsedQuery,
    default: Source | None,
    resolve: Resolver | None,
    config: SearchConfig,
) -> QueryResult | None:
    """Run ``tql`` over the candidates of an index search (see :mod:`.index_search`)."""
    found = _index_plan(parsed, default)
    if found is None:
        return None
    parsed, source, query, index = found
    exact = SearchConfig(exact=True)
    allowed = None
    if query.where is not None:
        matched = execute(f"SELECT 1 AS one WHERE {query.where}", default=source, search=exact)
        allowed = matched.rows
    builder = RelationBuilder(TableRegistry(), _load_column)
    if isinstance(query, index_search.TextQuery):
        words = text_search.search_text(
            source.snapshot, query, index, allowed, builder.fragment_column
        )
        if words is None:  # a damaged segment: the exact answer
            return None
        plain = index_search.direct_columns(parsed, source)
        if plain is not None:
            return text_search.direct_result(parsed, source, plain, words)
        stats = {(query.column, query.terms): words.stats}
        view = dataclasses.replace(source, rows=words.rows, bm25_stats=stats)
        return execute(tql, default=view, resolve=resolve, search=exact)
    candidates = index_search.search_vectors(
        source.snapshot, query, index, allowed, config, builder.fragment_column
    )
    direct = index_search.direct_columns(parsed, source)
    if direct is not None:
        return index_search.direct_result(
            parsed, source, query, direct, candidates, builder.fragment_column
        )
    view = dataclasses.replace(source, rows=np.sort(candidates.rows))
    return execute(tql, default=view, resolve=resolve, search=exact)


def _load_column(dirs: Sequence[str], path: str, column: str, arrow_type: pa.DataType) -> pa.Array:
    return engine.database(dirs).load_column(path, column, arrow_type)


def _plain_numbers(table: pa.Table) -> pa.Table:
    """DuckDB's DECIMAL/HUGEINT results (``SUM`` of integers, decimal literals) as int64/float64."""
    for i, field in enumerate(table.schema):
        t = field.type
        if not pa.types.is_decimal(t):
            continue
        column = table.column(i)
        target = pa.float64()
        if t.scale == 0:
            try:
                column = column.cast(pa.int64())  # safe cast: raises if a value does not fit
                target = pa.int64()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        if target == pa.float64():
            column = column.cast(pa.float64(), safe=False)
        table = table.set_column(i, pa.field(field.name, target), column)
    return table


def explain(
    tql: str,
    *,
    default: Source | None = None,
    resolve: Resolver | None = None,
    search: SearchConfig | None = None,
) -> str:
    """The DuckDB SQL a TQL query translates to, DuckDB's plan for it, and the index it
    uses (if any).

    Raises:
        QueryError: As for :func:`execute`.
    """
    config = search or SearchConfig()
    parsed = _parsed_for_index(tql, default, config)
    found = None if parsed is None else _index_plan(parsed, default)
    if found is not None:
        _, source, query, index = found
        lines = index_search.describe(source.snapshot, query, index)
        return (
            f"TQL:\n{tql}\n\nIndex:\n"
            + "\n".join(lines)
            + ("\n\nThe query then runs over the candidate rows, exactly as without an index.")
        )
    lookup = None
    if parsed is not None and isinstance(default, DatasetSource):
        lookup = scalar_search.lookup_query(parsed, default)
    if lookup is not None and isinstance(default, DatasetSource):
        candidates = scalar_search.search_lookup(default.snapshot, lookup)
        if candidates is not None and candidates.rows is not None:
            return (
                f"TQL:\n{tql}\n\nIndex:\n"
                + "\n".join(candidates.notes)
                + "\n\nThe query then runs over the candidate rows, exactly as without an index."
            )
    plan = _plan(tql, default, resolve)
    db = engine.database(plan.directories)
    try:
        text = db.run(plan.sql, plan.tables, explain=True)
    except DuckDBError as exc:
        raise query_error(exc, tql) from None
    kind = "row references" if plan.row_source is not None else "computed table"
    notes = "".join(f"\n{note}" for note in plan.notes) or "\nnone"
    return (
        f"TQL:\n{tql}\n\nIndex: none\n\nResult: {kind}\n\nFragment pruning:{notes}\n\n"
        f"DuckDB SQL:\n{plan.sql}\n\nDuckDB plan:\n{text}"
    )


def _rows(plan: Plan, table: pa.Table) -> np.ndarray:
    if plan.identity == (VROW,):
        return np.asarray(table.column(VROW).to_numpy(zero_copy_only=False), dtype=np.int64)
    source = plan.row_source
    assert isinstance(source, DatasetSource)
    frag = np.asarray(table.column(FRAG).to_numpy(zero_copy_only=False), dtype=np.int64)
    pos = np.asarray(table.column(POS).to_numpy(zero_copy_only=False), dtype=np.int64)
    return global_indices(source.snapshot, frag, pos)


def global_indices(snapshot: Snapshot, frag: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Global row indices of physical rows ``(fragment index, position)`` of a version."""
    return snapshot.global_rows(frag, pos)


def weighted_sample(
    weights: np.ndarray,
    *,
    replace: bool,
    limit: int | None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights``.

    With ``replace`` rows may repeat (``limit`` draws, default: as many as rows); without,
    each row is drawn at most once (Efraimidis-Spirakis keys), and rows of weight 0 never.

    Raises:
        QueryError: A negative weight.
    """
    rng = rng or np.random.default_rng()
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0)
    if len(w) and float(w.min()) < 0:
        raise QueryError(f"SAMPLE BY weights must not be negative (got {float(w.min())})")
    count = len(w) if limit is None else int(limit)
    positive = np.flatnonzero(w > 0)
    if count <= 0 or len(positive) == 0:
        return np.zeros(0, dtype=np.int64)
    if replace:
        p = w[positive] / w[positive].sum()
        return positive[rng.choice(len(positive), size=count, replace=True, p=p)].astype(np.int64)
    count = min(count, len(positive))
    keys = np.log(rng.random(len(positive))) / w[positive]
    top = np.argpartition(-keys, count - 1)[:count]
    top = top[np.argsort(-keys[top], kind="stable")]
    return positive[top].astype(np.int64)
