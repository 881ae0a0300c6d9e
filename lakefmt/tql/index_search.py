"""Queries answered with an index: the shape they must have, and the candidate rows.

Text queries (``ORDER BY BM25_SIMILARITY(col, '...') DESC LIMIT k``, recognised here as a
:class:`TextQuery`) take the same steps in :mod:`lakefmt.tql.text_search`: the segments, and
in-memory indexes of rows no segment covers, propose their best allowed rows with their exact
scores under the version's exact collection statistics.

A query ``SELECT ... [WHERE p] ORDER BY COSINE_SIMILARITY(col, ARRAY[...]) DESC LIMIT k``
(or ``DOT``) over a whole dataset version whose column has a vector index of that metric
is answered in three steps, each exact where it matters:

1. ``p`` is evaluated over the version like any query (the rows it matches form the
   *allowed set*);
2. each index segment proposes ``k x accuracy_factor`` allowed rows, searching *with* the
   allowed set (deleted and updated rows are never in it); rows no segment covers, and covered rows
   when the allowed set is too small for a graph search, are scored exactly;
3. the original query runs over the union of those candidates, so every value and score
   it returns is computed exactly, as without an index.

So a result always has ``min(k, matching rows)`` rows, and an index can only lose recall,
never return a wrong, stale or deleted row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lakefmt.format.cache import LRUCache
from lakefmt.format.manifest import Field, Index
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes import text
from lakefmt.indexes.config import SearchConfig
from lakefmt.indexes.coverage import (
    Coverage,
    allowed_keys,
    coverage,
    keys_to_rows,
)
from lakefmt.indexes.embedding import default_nprobe
from lakefmt.indexes.kinds import KINDS
from lakefmt.indexes.segments import Unusable, load_segment
from lakefmt.tql.cache import VECTORS
from lakefmt.tql.columns import classify
from lakefmt.tql.models import DatasetSource, SimilarityRequest, Visible
from lakefmt.tql.parser import ParsedQuery, function_name
from lakefmt.tql.results import QueryResult
from lakefmt.tql.similarity import similarity_scores
from lakefmt.tql.sqltree import star_excluded, star_target
from lakefmt.tql.translate import OutputColumn

#: Metric of each similarity function an index can answer (higher scores first).
_METRICS = {"cosine_similarity": "cosine", "dot": "dot"}
#: HNSW candidate list of a search (scaled by ``cluster_search_accuracy_factor``): at 500k
#: clustered 384-d vectors, graphs built with ef_construction 40 need 256 for recall 0.95.
DEFAULT_EF_SEARCH = 256
#: The most rows (LIMIT + OFFSET) an index search is used for.
MAX_K = 10_000
#: Functions whose value depends on other rows or on chance: no restriction to candidates.
_WHOLE_RELATION = {"row_number", "bm25_similarity", "random", "setseed"}

FragmentColumn = Callable[[Snapshot, int, Field], pa.Array]
_SCORE_TYPES = {"FLOAT": pa.float32(), "DOUBLE": pa.float64()}


@dataclasses.dataclass(frozen=True)
class VectorQuery:
    """A query an index can answer.

    Attributes:
        field: The vector column.
        column: Its name in the query.
        metric: ``cosine`` or ``dot``.
        vector: The constant query vector.
        k: Rows the query needs (``LIMIT`` + ``OFFSET``).
        where: The ``WHERE`` condition as TQL text, or None.
    """

    field: Field
    column: str
    metric: str
    vector: np.ndarray
    k: int
    where: str | None


@dataclasses.dataclass(frozen=True)
class _TopK:
    """``SELECT ... [WHERE p] ORDER BY <call> DESC LIMIT k [OFFSET o]`` over one source."""

    call: exp.Expression
    args: list[exp.Expression]
    k: int
    where: str | None


def _top_k(parsed: ParsedQuery, scored_by: str) -> _TopK | None:
    """The query's top-k shape when it orders by one call of ``scored_by`` (a function
    name) and nothing in it depends on other rows; else None."""
    tree = parsed.tree
    if not isinstance(tree, exp.Select) or parsed.sample is not None:
        return None
    if any(tree.args.get(a) for a in ("from", "joins", "group", "having", "distinct", "qualify")):
        return None
    if tree.args.get("with") or tree.args.get("windows"):
        return None
    k = _count(tree)
    order = tree.args.get("order")
    if k is None or order is None or len(order.expressions) != 1:
        return None
    ordered = order.expressions[0]
    if not isinstance(ordered, exp.Ordered) or not ordered.args.get("desc"):
        return None
    call = _resolve_alias(tree, ordered.this)
    if not isinstance(call, (exp.Anonymous, exp.Func)) or function_name(call) != scored_by:
        return None
    for node in tree.walk():
        if isinstance(node, (exp.AggFunc, exp.Window, exp.Subquery, exp.Union)):
            return None
        if isinstance(node, exp.Select) and node is not tree:
            return None
        name = function_name(node) if isinstance(node, (exp.Func, exp.Anonymous)) else ""
        # BM25 scores depend on every row: only the ordering call itself is allowed
        if name in _WHOLE_RELATION and not (name == scored_by and node == call):
            return None
    where = tree.args.get("where")
    where_tql = None
    if where is not None:
        if any(isinstance(n, exp.Column) and n.name in parsed.vectors for n in where.walk()):
            return None
        where_tql = where.this.sql(dialect="duckdb")
    args = list(call.expressions) if isinstance(call, exp.Anonymous) else list(call.args.values())
    return _TopK(call, args, k, where_tql)


def vector_query(parsed: ParsedQuery, source: DatasetSource) -> VectorQuery | None:
    """The query as a :class:`VectorQuery`, or None if it does not have that shape."""
    for name, metric in _METRICS.items():
        shape = _top_k(parsed, name)
        if shape is None or len(shape.args) != 2:
            continue
        visible = {v.name: v for v in source.visible()}
        for column, constant in (shape.args, shape.args[::-1]):
            if not isinstance(column, exp.Column) or column.table:
                continue
            v = visible.get(column.name)
            vector = _constant(parsed, constant)
            if v is None or v.field is None or v.kind.kind != "vector" or vector is None:
                continue
            usable = (
                vector.shape == (v.kind.size,)
                and bool(np.isfinite(vector).all())
                and (metric != "cosine" or bool(np.any(vector != 0)))
            )
            if not usable:  # the exact path gives its answer or its error
                return None
            return VectorQuery(v.field, column.name, metric, vector, shape.k, shape.where)
    return None


@dataclasses.dataclass(frozen=True)
class TextQuery:
    """``... ORDER BY BM25_SIMILARITY(col, 'terms') DESC LIMIT k`` over a text column.

    Attributes:
        field: The text column.
        column: Its name in the query.
        terms: The query's terms (:func:`lakefmt.indexes.text.query_terms`).
        k: Rows the query needs (``LIMIT`` + ``OFFSET``).
        where: The ``WHERE`` condition as TQL text, or None.
    """

    field: Field
    column: str
    terms: tuple[str, ...]
    k: int
    where: str | None


def text_query(parsed: ParsedQuery, source: DatasetSource) -> TextQuery | None:
    """The query as a :class:`TextQuery`, or None if it does not have that shape."""
    shape = _top_k(parsed, "bm25_similarity")
    if shape is None or len(shape.args) != 2:
        return None
    column, query = shape.args
    if not isinstance(column, exp.Column) or column.table:
        return None
    if not (isinstance(query, exp.Literal) and query.is_string):
        return None
    v = {v.name: v for v in source.visible()}.get(column.name)
    if v is None or v.field is None or v.kind.kind != "text":
        return None
    terms = tuple(text.query_terms(str(query.this)))
    return TextQuery(v.field, column.name, terms, shape.k, shape.where)


def text_index(snapshot: Snapshot, query: TextQuery) -> Index | None:
    """The version's text index on the query's column (any text kind: they share postings)."""
    for index in snapshot.manifest.indexes:
        kind = KINDS.get(index.kind)
        if kind is not None and kind.family == "text" and index.field_id == query.field.id:
            return index
    return None


def _count(tree: exp.Select) -> int | None:
    limit = tree.args.get("limit")
    if limit is None:
        return None
    total = 0
    for node in (limit, tree.args.get("offset")):
        if node is None:
            continue
        value = node.expression
        if not (isinstance(value, exp.Literal) and not value.is_string):
            return None
        try:
            total += int(value.this)
        except ValueError:
            return None
    return total if 0 < total <= MAX_K else None


def _resolve_alias(tree: exp.Select, node: exp.Expression) -> exp.Expression:
    """An ORDER BY that names a projection's alias stands for the projection."""
    if isinstance(node, exp.Column) and not node.table:
        for projection in tree.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == node.name:
                return projection.this
    return node


def _constant(parsed: ParsedQuery, node: exp.Expression) -> np.ndarray | None:
    if isinstance(node, exp.Column) and not node.table and node.name in parsed.vectors:
        return np.asarray(parsed.vectors[node.name], dtype=np.float64)
    if isinstance(node, exp.Array) and node.expressions:
        values = []
        for item in node.expressions:
            negative = isinstance(item, exp.Neg)
            item = item.this if negative else item
            if not (isinstance(item, exp.Literal) and not item.is_string):
                return None
            values.append(-float(item.this) if negative else float(item.this))
        return np.asarray(values, dtype=np.float64)
    return None


def vector_index(snapshot: Snapshot, query: VectorQuery) -> Index | None:
    """The version's index that answers ``query`` (a vector kind of the query's metric)."""
    for index in snapshot.manifest.indexes:
        kind = KINDS.get(index.kind)
        if (
            kind is not None
            and kind.family == "vector"
            and index.field_id == query.field.id
            and index.params.get("metric", "cosine") == query.metric
        ):
            return index
    return None


@dataclasses.dataclass
class Candidates:
    """What an index search proposes.

    Attributes:
        rows: Global row indices containing the query's answer, best first.
        notes: What was searched how (for ``explain``).
    """

    rows: np.ndarray
    notes: list[str]


def _masks(snapshot: Snapshot, allowed: np.ndarray | None) -> dict[int, np.ndarray] | None:
    """Per fragment holding allowed rows, a bool mask over its physical positions."""
    if allowed is None:
        return None
    rows = np.asarray(allowed, dtype=np.int64)
    if len(rows) > 1 and bool(np.any(rows[1:] < rows[:-1])):
        rows = np.sort(rows)
    fragments = snapshot.manifest.fragments
    live = np.array([f.live_rows for f in fragments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(live)])
    cuts = np.searchsorted(rows, starts)  # rows of fragment k: rows[cuts[k]:cuts[k + 1]]
    masks: dict[int, np.ndarray] = {}
    for k, fragment in enumerate(fragments):
        if cuts[k] == cuts[k + 1]:
            continue
        local = rows[cuts[k] : cuts[k + 1]] - starts[k]
        physical = local if fragment.deletion is None else snapshot.live_positions(fragment)[local]
        mask = np.zeros(fragment.rows, dtype=bool)
        mask[physical] = True
        masks[k] = mask
    return masks


#: Above this share of a fragment's rows, exact scoring multiplies the whole matrix (one
#: pass over memory, row norms cached) rather than gathering the rows first.
_DENSE_SHARE = 0.25


def _scores(
    column: pa.Array, positions: np.ndarray, query: VectorQuery, norms_key: tuple[Any, ...]
) -> np.ndarray:
    """Exact scores of rows of a fragment, ordered as DuckDB sorts them descending: NaN
    (undefined cosine) first, NULL last.

    Scored in place on the column's values (a zero-copy view of the cached Arrow column when
    it is float32): many rows (appended rows no segment covers, a broad filter's allowed
    rows) by one product with the whole matrix and cached row norms, few rows (candidates)
    by gathering them. Nothing is copied per row.
    """
    if isinstance(column, pa.ExtensionArray):
        column = column.storage
    size = column.type.list_size
    values = column.values.slice(column.offset * size, len(column) * size)
    matrix = values.to_numpy(zero_copy_only=False).reshape(len(column), size)
    q = query.vector.astype(np.float32)
    dense = len(positions) >= _DENSE_SHARE * len(column) and matrix.dtype == np.float32
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if dense:
            scores = (matrix @ q)[positions].astype(np.float64)
            if query.metric == "cosine":

                def norms() -> pa.Array:
                    return pa.array(np.sqrt(np.einsum("ij,ij->i", matrix, matrix)))

                row_norms = VECTORS.get_or_load(
                    (*norms_key, "norms", "FLOAT"), norms, lambda a: a.nbytes
                ).to_numpy()
                scores /= row_norms[positions] * np.linalg.norm(q)
        else:
            rows = matrix[positions].astype(np.float32, copy=False)
            scores = (rows @ q).astype(np.float64)
            if query.metric == "cosine":
                scores /= np.sqrt(np.einsum("ij,ij->i", rows, rows)) * np.linalg.norm(q)
    scores[np.isnan(scores)] = np.inf
    if column.null_count:
        scores[~np.asarray(column.is_valid())[positions]] = -np.inf
    return scores


def _norms_key(snapshot: Snapshot, k: int, field: Field) -> tuple[Any, ...]:
    """Names a fragment's column values for caching their row norms: data and update file
    names are never reused, so the files a column is read from identify its values."""
    fragment = snapshot.manifest.fragments[k]
    holder = next((d.path for d in reversed(fragment.files) if field.id in d.field_ids), None)
    updates = tuple(u.path for u in fragment.updates if u.field_id == field.id)
    return (snapshot.storage.url, "index_search", field.id, holder, updates, fragment.rows)


def search_vectors(
    snapshot: Snapshot,
    query: VectorQuery,
    index: Index,
    allowed: np.ndarray | None,
    config: SearchConfig,
    fragment_column: FragmentColumn,
) -> Candidates:
    """Candidate rows for ``query`` from ``index`` and exact scoring of what it lacks.

    ``allowed``: global rows matching the WHERE (None: every row).
    """
    cov, live_masks = _coverage_of(snapshot, index)
    masks = _masks(snapshot, allowed)
    fragments = snapshot.manifest.fragments
    want = query.k * config.refine
    exact: dict[int, list[np.ndarray]] = {}  # fragment index -> positions scored exactly
    proposed: list[tuple[np.ndarray, np.ndarray]] = []  # (fragments, positions)
    notes = [f"index {index.id} ({index.kind}) on column '{query.column}'"]
    for (segment, parts), live in zip(cov.segments, live_masks, strict=True):
        if masks is not None:
            mask = allowed_keys(snapshot, segment, parts, masks)
        else:
            mask = np.ones(segment.rows, dtype=bool) if live is None else live
        matching = int(np.count_nonzero(mask))
        if matching == 0:
            continue
        covered = sum(fragments[p.fragment].live_rows - len(p.dirty) for p in parts)
        if masks is not None and (matching <= want or matching < config.exact_below * covered):
            frag, pos = keys_to_rows(parts, np.flatnonzero(mask))
            _add(exact, frag, pos)
            notes.append(f"segment {segment.id}: {matching} matching rows scored exactly")
            continue
        try:
            loaded = load_segment(snapshot.storage, index, segment)
        except Unusable as exc:
            frag, pos = keys_to_rows(parts, np.flatnonzero(mask))
            _add(exact, frag, pos)
            notes.append(f"segment {segment.id} not used ({exc}): its rows scored exactly")
            continue
        every = masks is None and live is None  # no filter, nothing deleted: no selector
        search_mask = None if every else mask
        keys = _graph_search(
            loaded.graph, query, search_mask, min(want, matching), config, matching
        )
        if keys is None:  # the graph could not find enough allowed rows
            frag, pos = keys_to_rows(parts, np.flatnonzero(mask))
            _add(exact, frag, pos)
            notes.append(f"segment {segment.id}: too few rows found, scored exactly")
            continue
        unsearchable = loaded.unsearchable[mask[loaded.unsearchable]]
        proposed.append(keys_to_rows(parts, np.concatenate([keys, unsearchable])))
        notes.append(
            f"segment {segment.id}: {len(keys)} of {matching} rows proposed by {index.kind}"
        )
    _exact_rest(snapshot, cov, masks, exact)
    rest = sum(len(p) for ps in exact.values() for p in ps)
    notes.append(f"{rest} rows outside the index or its allowed sets scored exactly")
    rows = _top(snapshot, query, proposed, exact, fragment_column)
    return Candidates(rows, notes)


#: Coverage of an index in a version, and each segment's keys that are live: a version
#: never changes, so neither do they (by dataset, version id and index id).
_COVERAGE: LRUCache[tuple[Coverage, list[np.ndarray | None]]] = LRUCache(64)


def _coverage_of(snapshot: Snapshot, index: Index) -> tuple[Coverage, list[np.ndarray | None]]:
    def load() -> tuple[Coverage, list[np.ndarray | None]]:
        cov = coverage(snapshot, index)
        live = [allowed_keys(snapshot, s, parts) for s, parts in cov.segments]
        return cov, [None if bool(m.all()) else m for m in live]  # None: every key

    manifest = snapshot.manifest
    key = (snapshot.storage.url, manifest.id, manifest.timestamp, index.id)
    return _COVERAGE.get_or_load(key, load)


def _add(exact: dict[int, list[np.ndarray]], frag: np.ndarray, pos: np.ndarray) -> None:
    for k in np.unique(frag):
        exact.setdefault(int(k), []).append(pos[frag == k])


def _graph_search(
    graph: Any,
    query: VectorQuery,
    mask: np.ndarray | None,
    want: int,
    config: SearchConfig,
    matching: int,
) -> np.ndarray | None:
    """Keys from a graph search with the allowed set inside it (None: every key); None
    when even a wider search returns fewer than the query needs."""
    share = 1.0 if mask is None else matching / max(len(mask), 1)
    scale = config.cluster_search_accuracy_factor
    need = min(query.k, matching)
    hnsw = graph.structure == "hnsw"
    if hnsw:
        # a filter hides part of the graph: look further, 4x for 10x fewer rows (measured
        # at 500k x 384: recall 0.95 at 5% selectivity with ef 1024)
        widen = 1.0 if share >= 0.5 else (0.5 / max(share, 1e-3)) ** 0.6
        effort = config.ef_search or max(want, int(max(DEFAULT_EF_SEARCH, want) * scale))
        effort = max(want, min(int(effort * widen), 4096))
        most = 16384
    else:
        # a filter leaves ``share`` of each list's rows: visit 1 / share as many lists, so
        # as many allowed rows are scored as an unfiltered search scores rows
        nlist = graph.params.nlist or 1
        effort = config.nprobe or max(1, int(default_nprobe(nlist, graph.indexed) * scale))
        effort = max(1, min(math.ceil(effort / max(share, 1e-3)), nlist))
        most = nlist
    for _ in range(3):
        knobs = {"ef_search": effort} if hnsw else {"nprobe": effort}
        keys = np.asarray(graph.search(query.vector, want, allowed=mask, **knobs), dtype=np.int64)
        if len(keys) >= need:
            return keys
        effort = min(effort * 4, most)
    return None


def _exact_rest(
    snapshot: Snapshot,
    cov: Coverage,
    masks: dict[int, np.ndarray] | None,
    exact: dict[int, list[np.ndarray]],
) -> None:
    """Add uncovered fragments and dirty positions (allowed, not deleted) to ``exact``."""
    fragments = snapshot.manifest.fragments

    def allowed_live(k: int, positions: np.ndarray) -> np.ndarray:
        fragment = fragments[k]
        deleted = snapshot.deleted(fragment)
        if masks is None and not len(deleted):
            return positions
        keep = np.ones(fragment.rows, dtype=bool)
        keep[deleted] = False
        if masks is not None:
            keep &= masks.get(k, np.zeros(fragment.rows, dtype=bool))
        return positions[keep[positions]]

    for _, parts in cov.segments:
        for part in parts:
            if len(part.dirty):
                exact.setdefault(part.fragment, []).append(allowed_live(part.fragment, part.dirty))
    for k in cov.uncovered:
        positions = np.arange(fragments[k].rows, dtype=np.int64)
        exact.setdefault(k, []).append(allowed_live(k, positions))


def _distinct(chunks: list[np.ndarray]) -> np.ndarray:
    """The positions of ``chunks``, each once, ascending (a whole uncovered fragment is one
    ascending chunk already: not sorted again)."""
    if not chunks:
        return np.zeros(0, np.int64)
    if len(chunks) == 1 and (len(chunks[0]) < 2 or bool(np.all(chunks[0][1:] > chunks[0][:-1]))):
        return chunks[0]
    return np.unique(np.concatenate(chunks))


def _top(
    snapshot: Snapshot,
    query: VectorQuery,
    proposed: list[tuple[np.ndarray, np.ndarray]],
    exact: dict[int, list[np.ndarray]],
    fragment_column: FragmentColumn,
) -> np.ndarray:
    """The best ``k`` (plus a margin for ties) of every proposed and exact row, by exact
    score, as global rows, best first."""
    by_fragment: dict[int, list[np.ndarray]] = {k: list(v) for k, v in exact.items()}
    for frag, pos in proposed:
        _add(by_fragment, frag, pos)
    frags: list[np.ndarray] = []
    poss: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for k, chunks in by_fragment.items():
        positions = _distinct(chunks)
        if not len(positions):
            continue
        column = fragment_column(snapshot, k, query.field)
        scores.append(_scores(column, positions, query, _norms_key(snapshot, k, query.field)))
        frags.append(np.full(len(positions), k, dtype=np.int64))
        poss.append(positions)
    if not scores:
        return np.zeros(0, dtype=np.int64)
    score = np.concatenate(scores)
    frag = np.concatenate(frags)
    pos = np.concatenate(poss)
    keep = min(len(score), query.k + 8)  # the margin: float ties at the k-th score
    best = np.argpartition(-score, keep - 1)[:keep] if keep < len(score) else np.arange(len(score))
    best = best[np.argsort(-score[best], kind="stable")]
    return snapshot.global_rows(frag[best], pos[best])


def describe(snapshot: Snapshot, query: VectorQuery | TextQuery, index: Index) -> list[str]:
    """What an index search of ``query`` would use (for ``explain``), without searching
    (segments are loaded, so that one that cannot be used is named with the reason)."""
    cov = coverage(snapshot, index)
    lines = [
        f"index {index.id} ({index.kind}, {index.engine} {index.engine_version}) on column "
        f"'{query.column}': {len(cov.segments)} segment(s) covering "
        f"{cov.covered_rows(snapshot)} rows; {cov.uncovered_rows(snapshot)} rows scored exactly",
        f"candidates: the best LIMIT+OFFSET ({query.k}) of each segment"
        + (" x accuracy_factor" if isinstance(query, VectorQuery) else "")
        + ", then the query runs over them"
        + (f"; WHERE {query.where} evaluated first (the allowed set)" if query.where else ""),
    ]
    for segment, _ in cov.segments:  # a damaged segment is searched exactly: say so
        try:
            load_segment(snapshot.storage, index, segment)
        except Unusable as exc:
            lines.append(f"segment {segment.id} not used ({exc}): its rows scored exactly")
    return lines


#: Column kinds whose values a direct result takes from the data files as DuckDB would
#: return them (anything else runs through DuckDB over the candidates).
_DIRECT_KINDS = {"number", "bool", "text"}


@dataclasses.dataclass(frozen=True)
class DirectColumn:
    """One output of a query answered without DuckDB: a stored column or the score."""

    name: str
    visible: Visible | None
    """The stored column, or None for the similarity score."""


def direct_columns(parsed: ParsedQuery, source: DatasetSource) -> list[DirectColumn] | None:
    """The outputs of a :class:`VectorQuery` or :class:`TextQuery` whose projection is only
    stored columns (``*``, names, aliases of names) and the score it orders by; None for
    anything else."""
    tree = parsed.tree
    assert isinstance(tree, exp.Select)
    order_call = _resolve_alias(tree, tree.args["order"].expressions[0].this)
    visible = {v.name: v for v in source.visible()}
    out: list[DirectColumn] = []
    for item in tree.expressions:
        target = star_target(item)
        if target is not None:
            if target or star_excluded(item) or item.args.get("replace"):
                return None
            out.extend(DirectColumn(v.name, v) for v in visible.values())
            continue
        name, node = (item.alias, item.this) if isinstance(item, exp.Alias) else (None, item)
        if isinstance(node, exp.Column) and not node.table and node.name in visible:
            out.append(DirectColumn(name or node.name, visible[node.name]))
        elif name and node == order_call:
            out.append(DirectColumn(name, None))
        else:
            return None
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        return None
    for c in out:
        v = c.visible
        if v is not None and v.kind.eager and v.kind.kind not in _DIRECT_KINDS:
            return None
    return out


def direct_result(
    parsed: ParsedQuery,
    source: DatasetSource,
    query: VectorQuery,
    columns: list[DirectColumn],
    candidates: Candidates,
    fragment_column: FragmentColumn,
) -> QueryResult:
    """The query's result built from the candidates, without DuckDB: stored cells taken
    from the data files, scores computed as the exact path computes them."""
    snapshot = source.snapshot
    rows = candidates.rows
    t = snapshot.type_of(query.field)
    duck = "DOUBLE" if pa.types.is_float64(t.storage_type.value_type) else "FLOAT"
    request = SimilarityRequest(query.column, query.metric, query.vector, "", duck, "")
    scores = _output_scores(snapshot, query, rows, request, fragment_column)
    rank = scores.to_numpy(zero_copy_only=False).astype(np.float64)
    rank[np.isnan(rank)] = np.inf  # DuckDB sorts NaN above every number, NULL last
    if scores.null_count:
        rank[~np.asarray(scores.is_valid())] = -np.inf
    order = np.argsort(-rank, kind="stable")
    return assemble_direct(parsed, source, columns, rows, scores, order, candidates.notes)


def assemble_direct(
    parsed: ParsedQuery,
    source: DatasetSource,
    columns: list[DirectColumn],
    rows: np.ndarray,
    scores: pa.Array,
    order: np.ndarray,
    notes: list[str],
) -> QueryResult:
    """A direct result (:func:`direct_columns`): ``rows`` (global) with their ``scores``,
    in ``order`` (positions into both, best first), cut to the query's OFFSET and LIMIT."""
    snapshot = source.snapshot
    tree = parsed.tree
    offset = int(tree.args["offset"].expression.this) if tree.args.get("offset") else 0
    limit = int(tree.args["limit"].expression.this)
    picked = order[offset : offset + limit]
    out_rows = rows[picked]
    outputs: list[OutputColumn] = []
    arrays: list[pa.Array] = []
    names: list[str] = []
    fields = [c.visible.field for c in columns if c.visible is not None and c.visible.kind.eager]
    taken = snapshot.take([f for f in fields if f is not None], out_rows) if fields else {}
    for c in columns:
        v = c.visible
        if v is None:
            outputs.append(OutputColumn(c.name, classify(None, scores.type)))
            arrays.append(scores.take(pa.array(picked, pa.int64())))
            names.append(c.name)
            continue
        lazy = not v.kind.eager
        outputs.append(OutputColumn(c.name, v.kind, field=v.field, type=v.type, lazy=lazy))
        if not lazy:
            assert v.field is not None
            values = taken[v.field.id]
            if isinstance(values, pa.ExtensionArray):
                values = values.storage
            arrays.append(values)
            names.append(c.name)
    table = pa.Table.from_arrays(arrays, names=names)
    sql = "-- answered from " + "; ".join(notes)
    return QueryResult(outputs, table, source, out_rows.astype(np.int64), sql)


def _output_scores(
    snapshot: Snapshot,
    query: VectorQuery,
    rows: np.ndarray,
    request: SimilarityRequest,
    fragment_column: FragmentColumn,
) -> pa.Array:
    """Scores of ``rows`` (in their order) as the relations compute them."""
    parts: list[pa.Array] = []
    slots: list[np.ndarray] = []
    for k, positions, at in snapshot.locate(rows):
        column = fragment_column(snapshot, k, query.field)
        taken = column.take(pa.array(positions, pa.int64()))
        scores = similarity_scores(taken, request, None)
        if scores is None:  # null elements: DuckDB's function gives NULL
            scores = pa.nulls(len(positions), _SCORE_TYPES[request.duck_type])
        parts.append(scores)
        slots.append(at)
    if not parts:
        return pa.array([], _SCORE_TYPES[request.duck_type])
    merged = pa.concat_arrays(parts)
    slot = np.concatenate(slots)
    inverse = np.empty_like(slot)
    inverse[slot] = np.arange(len(slot))
    return merged.take(pa.array(inverse))
