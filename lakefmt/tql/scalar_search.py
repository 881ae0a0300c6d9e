"""Lookups answered with a sorted-key index: ``WHERE ... col = lit | col IN (...) | ranges``.

A query ``SELECT ... WHERE c1 AND c2 AND ...`` over a whole dataset version, where some
conjunct compares an indexed column with literals of exactly the column's type, runs in
two steps:

1. each such conjunct gives the rows its index finds (live, not dirty) plus every live row
   the index does not answer for (fragments no segment covers, positions updated after the
   build); the *candidates* are the intersection over the conjuncts, a superset of the
   rows the WHERE matches;
2. the original query runs over the candidates (the whole WHERE re-applied), so the
   result is the one without an index.

A literal of another type than the column's (``int_col = 3.5``, ``int_col = '3'``, an
integer out of the column's range) is left to the exact path: DuckDB's coercions decide.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lakefmt.format.manifest import Field, Index
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.coverage import keys_to_rows
from lakefmt.indexes.kinds import KINDS, TEXT_LOOKUP_KINDS
from lakefmt.indexes.scalar import is_text as scalar_is_text
from lakefmt.indexes.scalar import text_hashes
from lakefmt.indexes.segments import Unusable, load_sorted_keys
from lakefmt.tql.index_search import _WHOLE_RELATION, _coverage_of, _exact_rest
from lakefmt.tql.models import DatasetSource, Visible
from lakefmt.tql.parser import ParsedQuery, function_name
from lakefmt.tql.results import QueryResult
from lakefmt.tql.sqltree import star_excluded, star_target
from lakefmt.tql.translate import OutputColumn

#: The most candidate rows an index lookup hands to the query; a wider range runs as a
#: plain query (fragment pruning and a scan beat taking that many rows one by one).
MAX_CANDIDATES = 100_000
#: Largest integer a float64 holds exactly: wider integer literals against a float column
#: are left to DuckDB's coercions.
_EXACT_FLOAT_INT = 1 << 53
_FLIP: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
}
#: Column kinds a direct result takes from the data files as DuckDB would return them.
_DIRECT_KINDS = {"number", "bool", "text"}


@dataclasses.dataclass(frozen=True)
class Condition:
    """One indexable conjunct: ``column IN values`` or ``low <(=) column <(=) high``.

    Attributes:
        field: The column.
        column: Its name in the query.
        values: The literals of ``=``/``IN`` (None for a range).
        low, low_inclusive, high, high_inclusive: The range (None: unbounded).
    """

    field: Field
    column: str
    values: tuple[int | float | str, ...] | None
    low: int | float | None = None
    low_inclusive: bool = True
    high: int | float | None = None
    high_inclusive: bool = True

    def describe(self) -> str:
        """The condition in words (for ``explain``)."""
        if self.values is not None:
            return f"{self.column} IN ({len(self.values)} values)"
        lo = "" if self.low is None else f"{self.low} {'<=' if self.low_inclusive else '<'} "
        hi = "" if self.high is None else f" {'<=' if self.high_inclusive else '<'} {self.high}"
        return f"{lo}{self.column}{hi}"


@dataclasses.dataclass(frozen=True)
class LookupQuery:
    """A query whose WHERE an index narrows.

    Attributes:
        conditions: Its indexable conjuncts.
        whole: Whether the conjuncts are the whole WHERE (then a direct result can apply
            it without DuckDB).
    """

    conditions: tuple[Condition, ...]
    whole: bool


def lookup_query(parsed: ParsedQuery, source: DatasetSource) -> LookupQuery | None:
    """The query as a :class:`LookupQuery`, or None if no conjunct of its WHERE has an
    index of the version that answers it, or the query's shape does not allow one."""
    tree = parsed.tree
    if not isinstance(tree, exp.Select) or parsed.sample is not None:
        return None
    if any(tree.args.get(a) for a in ("from", "joins", "with", "windows", "qualify")):
        return None
    where = tree.args.get("where")
    if where is None:
        return None
    for node in tree.walk():
        if isinstance(node, (exp.Window, exp.Subquery, exp.Union)):
            return None
        if isinstance(node, exp.Select) and node is not tree:
            return None
        if isinstance(node, (exp.Func, exp.Anonymous)) and function_name(node) in _WHOLE_RELATION:
            return None
    indexed = _indexed_fields(source)
    conditions = []
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for conjunct in conjuncts:
        found = _condition(conjunct, indexed)
        if found is not None:
            conditions.append(found)
    whole = len(conditions) == len(conjuncts)
    return LookupQuery(tuple(conditions), whole) if conditions else None


def _indexed_fields(source: DatasetSource) -> dict[str, tuple[Field, pa.DataType]]:
    """Visible stored columns that have a lookup index in the version, by name."""
    ids = {i.field_id for i in source.snapshot.manifest.indexes if _serves_lookups(i)}
    out = {}
    for v in source.visible():
        if v.field is not None and v.field.id in ids and v.kind.kind in ("number", "text"):
            out[v.name] = (v.field, source.snapshot.type_of(v.field).storage_type)
    return out


def _serves_lookups(index: Index) -> bool:
    kind = KINDS.get(index.kind)
    return kind is not None and (kind.family == "scalar" or index.kind in TEXT_LOOKUP_KINDS)


def lookup_index(snapshot: Snapshot, field: Field) -> Index | None:
    """The version's index answering lookups on ``field`` (numeric, or a text kind with
    keys files)."""
    return next(
        (i for i in snapshot.manifest.indexes if i.field_id == field.id and _serves_lookups(i)),
        None,
    )


def _condition(node: exp.Expr, indexed: dict[str, tuple[Field, pa.DataType]]) -> Condition | None:
    if isinstance(node, exp.Paren):
        return _condition(node.this, indexed)
    if isinstance(node, exp.In):
        column = node.this
        if not _is_indexed(column, indexed) or node.args.get("query") or node.args.get("unnest"):
            return None
        field, t = indexed[column.name]
        values = [_literal(v, t) for v in node.expressions]
        if not values or any(v is None for v in values):
            return None
        return Condition(field, column.name, tuple(v for v in values if v is not None))
    if isinstance(node, exp.Between):
        column = node.this
        if not _is_indexed(column, indexed) or node.args.get("symmetric"):
            return None
        field, t = indexed[column.name]
        low, high = _literal(node.args["low"], t), _literal(node.args["high"], t)
        if low is None or high is None or isinstance(low, str) or isinstance(high, str):
            return None
        return Condition(field, column.name, None, low, True, high, True)
    op = type(node)
    if op not in _FLIP:
        return None
    left, right = node.this, node.expression
    if not _is_indexed(left, indexed):
        left, right, op = right, left, _FLIP[op]
        if not _is_indexed(left, indexed):
            return None
    field, t = indexed[left.name]
    value = _literal(right, t)
    if value is None:
        return None
    if op is exp.EQ:
        return Condition(field, left.name, (value,))
    if isinstance(value, str):  # text keys are hashes: equality only
        return None
    if op in (exp.GT, exp.GTE):
        return Condition(field, left.name, None, low=value, low_inclusive=op is exp.GTE)
    return Condition(field, left.name, None, high=value, high_inclusive=op is exp.LTE)


def _is_indexed(node: exp.Expr, indexed: dict[str, tuple[Field, pa.DataType]]) -> bool:
    return isinstance(node, exp.Column) and not node.table and node.name in indexed


def _literal(node: exp.Expr, t: pa.DataType) -> int | float | str | None:
    """The literal's value when it has exactly the column's type; else None."""
    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if not isinstance(node, exp.Literal):
        return None
    text = str(node.this)
    if node.is_string:
        text_column = pa.types.is_string(t) or pa.types.is_large_string(t)
        return text if text_column and not negative else None
    if not text.isascii() or "_" in text:  # 1_000: DuckDB's reading decides
        return None
    if pa.types.is_integer(t):
        if not text.isdigit():  # 3.5, 1e3, 0x10: another type, or DuckDB's business
            return None
        value = -int(text) if negative else int(text)
        info = np.iinfo(t.to_pandas_dtype())
        return value if int(info.min) <= value <= int(info.max) else None
    if pa.types.is_float64(t):
        try:
            number = float(text)
        except ValueError:
            return None
        if (text.isdigit() and int(text) > _EXACT_FLOAT_INT) or not np.isfinite(number):
            return None
        return -number if negative else number
    return None  # float32/float16 against a decimal literal: DuckDB's coercion decides


@dataclasses.dataclass
class LookupCandidates:
    """What a lookup proposes: sorted global rows (None: too many, run the plain query),
    and what was searched how (for ``explain``)."""

    rows: np.ndarray | None
    notes: list[str]


def search_lookup(snapshot: Snapshot, query: LookupQuery) -> LookupCandidates | None:
    """Candidate rows of ``query``; None when a segment cannot be used (the caller then
    answers without the index)."""
    rows: np.ndarray | None = None
    notes = []
    for condition in query.conditions:
        index = lookup_index(snapshot, condition.field)
        if index is None:
            continue
        found = _condition_rows(snapshot, index, condition)
        if found is None:
            return None
        found_rows, outside = found
        rows = found_rows if rows is None else np.intersect1d(rows, found_rows, assume_unique=True)
        notes.append(
            f"index {index.id} ({index.kind}) on column '{condition.column}': "
            f"{condition.describe()}; {outside} rows outside the index are candidates"
        )
        if len(rows) > MAX_CANDIDATES:
            return LookupCandidates(None, [*notes, f"over {MAX_CANDIDATES} candidates"])
    if rows is None:
        return None
    notes.append(f"{len(rows)} candidate rows")
    return LookupCandidates(rows, notes)


def _condition_rows(
    snapshot: Snapshot, index: Index, condition: Condition
) -> tuple[np.ndarray, int] | None:
    """Sorted global rows the index finds for one condition plus the live rows it does
    not answer for (and how many of those); None for an unusable segment."""
    cov, live_masks = _coverage_of(snapshot, index)
    parts_rows: list[np.ndarray] = []
    for (segment, parts), live in zip(cov.segments, live_masks, strict=True):
        try:
            keys = load_sorted_keys(snapshot.storage, index, segment)
        except Unusable:
            return None
        if condition.values is not None:
            wanted = list(condition.values)
            if keys.hashed:
                if not all(isinstance(v, str) for v in wanted):
                    return None
                found = keys.equal(text_hashes([str(v) for v in wanted]))
            else:
                found = keys.equal(np.asarray(wanted, dtype=keys.values.dtype))
        else:
            if keys.hashed:
                return None
            found = keys.between(
                condition.low, condition.low_inclusive, condition.high, condition.high_inclusive
            )
        if not len(found):
            continue
        if live is not None:
            found = found[live[found]]  # deleted and dirty keys never come from the index
        frag, pos = keys_to_rows(parts, found)
        parts_rows.append(snapshot.global_rows(frag, pos))
    exact: dict[int, list[np.ndarray]] = {}
    _exact_rest(snapshot, cov, None, exact)
    outside = 0
    for k, chunks in exact.items():
        positions = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
        if len(positions):
            outside += len(positions)
            parts_rows.append(
                snapshot.global_rows(np.full(len(positions), k, dtype=np.int64), positions)
            )
    if not parts_rows:
        return np.zeros(0, dtype=np.int64), outside
    return np.unique(np.concatenate(parts_rows)), outside


def direct_lookup(
    parsed: ParsedQuery, source: DatasetSource, query: LookupQuery, rows: np.ndarray
) -> QueryResult | None:
    """The result of ``SELECT <stored columns or *> WHERE <indexed conditions>``, built
    from the candidates without DuckDB: the conditions evaluated on the candidates' cells
    as DuckDB compares (NULL never matches; NaN equals nothing but is above every number),
    the cells taken from the data files. None for any other query."""
    tree = parsed.tree
    assert isinstance(tree, exp.Select)
    if not query.whole or any(tree.args.get(a) for a in ("order", "group", "having", "distinct")):
        return None
    window = _limit_window(tree)
    if window is None:
        return None
    visible = {v.name: v for v in source.visible()}
    outputs = _direct_outputs(tree, visible)
    if outputs is None:
        return None
    snapshot = source.snapshot
    fields = {c.field.id: c.field for c in query.conditions}
    cells = snapshot.take(list(fields.values()), rows) if len(rows) else {}
    keep = np.ones(len(rows), dtype=bool)
    for condition in query.conditions:
        if len(rows):
            keep &= _matches(cells[condition.field.id], condition)
    offset, limit = window
    # LIMIT/OFFSET without ORDER BY take the first matching rows in row order (the planner
    # orders such queries by row)
    picked = rows[keep][offset : None if limit is None else offset + limit]
    columns: list[OutputColumn] = []
    arrays: list[pa.Array] = []
    names: list[str] = []
    eager = [v.field for _, v in outputs if v.kind.eager and v.field is not None]
    taken = snapshot.take(eager, picked) if eager else {}
    for name, v in outputs:
        lazy = not v.kind.eager
        columns.append(OutputColumn(name, v.kind, field=v.field, type=v.type, lazy=lazy))
        if not lazy:
            assert v.field is not None
            values = taken[v.field.id]
            arrays.append(values.storage if isinstance(values, pa.ExtensionArray) else values)
            names.append(name)
    table = pa.Table.from_arrays(arrays, names=names)
    return QueryResult(columns, table, source, picked.astype(np.int64), "-- answered by a lookup")


def _limit_window(tree: exp.Select) -> tuple[int, int | None] | None:
    """``(offset, limit)`` of a query's plain integer ``LIMIT``/``OFFSET`` (limit None:
    none), or None for any other form (expressions, percentages, ``FETCH``)."""
    bounds: list[int | None] = []
    for arg in ("offset", "limit"):
        clause = tree.args.get(arg)
        if clause is None:
            bounds.append(None)
            continue
        options = {k for k, v in clause.args.items() if v is not None} - {"expression"}
        if not isinstance(clause, (exp.Limit, exp.Offset)) or options:
            return None
        value = clause.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            return None
        bounds.append(int(value.this))
    offset, limit = bounds
    return (offset or 0), limit


def _direct_outputs(
    tree: exp.Select, visible: dict[str, Visible]
) -> list[tuple[str, Visible]] | None:
    """The projection's stored columns (``*``, names, aliases of names) or None."""
    out: list[tuple[str, Visible]] = []
    for item in tree.expressions:
        target = star_target(item)
        if target is not None:
            if target or star_excluded(item) or item.args.get("replace"):
                return None
            out.extend((v.name, v) for v in visible.values())
            continue
        name, node = (item.alias, item.this) if isinstance(item, exp.Alias) else (None, item)
        if not (isinstance(node, exp.Column) and not node.table and node.name in visible):
            return None
        out.append((name or node.name, visible[node.name]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        return None
    if any(v.kind.eager and v.kind.kind not in _DIRECT_KINDS for _, v in out):
        return None
    return out


def _matches(values: pa.Array, condition: Condition) -> np.ndarray:
    """Which cells satisfy the condition, as DuckDB compares."""
    if isinstance(values, pa.ExtensionArray):
        values = values.storage
    if condition.values is not None and scalar_is_text(values.type):
        hit = pc.is_in(values, value_set=pa.array(list(condition.values), values.type))
    elif condition.values is not None:  # numpy's ==: -0.0 equals 0.0, as in DuckDB
        valid = np.asarray(values.is_valid())
        cells = values.fill_null(0).to_numpy(zero_copy_only=False)
        wanted = np.asarray(condition.values, dtype=cells.dtype)
        return valid & np.isin(cells, wanted)
    else:
        hit = pa.array(np.ones(len(values), dtype=bool))
        nan = pc.is_nan(values) if pa.types.is_floating(values.type) else None
        bounds = [
            (condition.low, pc.greater_equal if condition.low_inclusive else pc.greater, True),
            (condition.high, pc.less_equal if condition.high_inclusive else pc.less, False),
        ]
        for bound, compare, above in bounds:
            if bound is None:
                continue
            side = compare(values, pa.scalar(bound).cast(values.type))
            if nan is not None:  # NaN is above every number
                side = pc.or_(side, nan) if above else pc.and_not(side, nan)
            hit = pc.and_(hit, side)
    return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
