"""Fragment pruning: skip fragments whose column statistics rule out a query's WHERE.

The planner takes from the ``WHERE`` of each ``SELECT`` that reads one dataset directly
(no join) the conjuncts of the shapes ``column = literal``, ``column IN (literals)``,
``column BETWEEN a AND b`` and ``column <, <=, >, >= literal`` (:func:`conditions_of`).
A fragment is skipped only when one of them is false for every row it can hold
(:func:`may_match`), judged from the :class:`~lakefmt.format.manifest.ColumnStats` of the
data file the column is read from, or from the column's default where the fragment has no
file with it. Whenever that is not certain, the fragment is read:

* a field with update files in the fragment is never judged by its data file's stats;
* only integer, ``float64``, boolean and text columns are judged, and only against
  literals of their own kind (a string literal never prunes a number column, nor a number
  a text column); ``float64`` bounds are widened by a few ulps (DuckDB may round a decimal
  literal differently from Python), and a column that may hold NaN has no upper bound
  (DuckDB orders NaN above every number);
* null never satisfies these comparisons, so rows that are null can be skipped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lakefmt.errors import LakefmtError
from lakefmt.format.manifest import ColumnStats, Field, Fragment
from lakefmt.format.snapshot import Snapshot
from lakefmt.tql.columns import storage_of

__all__ = [
    "ENABLED",
    "ColumnResolver",
    "Condition",
    "conditions_of",
    "kept_fragments",
    "may_match",
]

#: Whether queries skip fragments by statistics (tests turn it off to compare results).
ENABLED = True

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
_OPS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
#: Integers beyond this are not exact as doubles (DuckDB may compare them as doubles).
_EXACT_DOUBLE = 2**53
_ULPS = 4


@dataclasses.dataclass(frozen=True)
class Condition:
    """A conjunct of a WHERE that statistics can decide: ``column op value`` (``in``: any
    of ``values``). ``values`` are Python literals of the column's kind."""

    column: str
    op: str
    values: tuple[Any, ...]


def _kind(arrow_type: pa.DataType) -> str | None:
    """The comparison family of a column's storage type, if statistics can judge it."""
    t = storage_of(arrow_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_float64(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    return None


def _literal(node: exp.Expression, kind: str) -> Any:
    """The Python value of a literal compared with a column of ``kind``, or None."""
    negate = False
    if isinstance(node, exp.Neg):
        negate, node = True, node.this
    if isinstance(node, exp.Paren):
        return _literal(node.this, kind) if not negate else None
    if kind == "bool":
        return node.this if isinstance(node, exp.Boolean) and not negate else None
    if not isinstance(node, exp.Literal):
        return None
    if kind == "text":
        return node.this if node.is_string and not negate else None
    if node.is_string:
        return None
    text = str(node.this)
    value: int | float
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value) or (kind == "int" and abs(value) >= _EXACT_DOUBLE):
            return None
    if kind == "float" and isinstance(value, int) and abs(value) >= _EXACT_DOUBLE:
        return None
    return -value if negate else value


#: Names the stored column a node of a WHERE reads from the source being planned:
#: ``(visible name, storage type)``, or None for anything else (computed values, outer
#: references, columns of other sources, kinds statistics do not cover).
ColumnResolver = Callable[[exp.Expression], tuple[str, pa.DataType] | None]


def _column(node: exp.Expression, resolve: ColumnResolver) -> tuple[str, str] | None:
    """(visible name, kind) when ``node`` is a stored column statistics can judge."""
    if not isinstance(node, exp.Column):
        return None
    found = resolve(node)
    if found is None:
        return None
    kind = _kind(found[1])
    return None if kind is None else (found[0], kind)


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def conditions_of(where: exp.Expression, resolve: ColumnResolver) -> list[Condition]:
    """The conditions statistics can decide among the AND-ed terms of ``where``, a WHERE
    applied directly to the rows of one source (the planner checks that), whose columns
    ``resolve`` names."""
    out: list[Condition] = []
    for term in _conjuncts(where):
        op = _OPS.get(type(term))
        if op is not None:
            for col, lit, this_op in (
                (term.this, term.expression, op),
                (term.expression, term.this, _FLIP[op]),
            ):
                found = _column(col, resolve)
                if found is None:
                    continue
                value = _literal(lit, found[1])
                if value is not None:
                    out.append(Condition(found[0], this_op, (value,)))
                break
        elif isinstance(term, exp.In) and not term.args.get("query") and term.expressions:
            found = _column(term.this, resolve)
            if found is not None:
                values = [_literal(e, found[1]) for e in term.expressions]
                if all(v is not None for v in values):
                    out.append(Condition(found[0], "in", tuple(values)))
        elif isinstance(term, exp.Between):
            found = _column(term.this, resolve)
            if found is not None and not term.args.get("symmetric"):
                low = _literal(term.args["low"], found[1])
                high = _literal(term.args["high"], found[1])
                if low is not None:
                    out.append(Condition(found[0], ">=", (low,)))
                if high is not None:
                    out.append(Condition(found[0], "<=", (high,)))
    return out


def _widen(value: Any, kind: str) -> tuple[Any, Any]:
    if kind != "float":
        return value, value
    low = high = float(value)
    for _ in range(_ULPS):
        low, high = math.nextafter(low, -math.inf), math.nextafter(high, math.inf)
    return low, high


def _holds(op: str, values: Sequence[Any], lo: Any, hi: Any, kind: str) -> bool:
    """Whether some value in ``[lo, hi]`` (None: unbounded) can satisfy ``op values``."""
    if op in ("=", "in"):
        return any(
            (hi is None or a <= hi) and (lo is None or b >= lo)
            for a, b in (_widen(v, kind) for v in values)
        )
    a, b = _widen(values[0], kind)
    if op == "<":
        return lo is None or bool(lo < b)
    if op == "<=":
        return lo is None or bool(lo <= b)
    if op == ">":
        return hi is None or bool(hi > a)
    return hi is None or bool(hi >= a)


def _fits(value: Any, kind: str) -> bool:
    """Whether a stored bound is of the column's kind (a bound of another type says nothing)."""
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, (int, float))
    return isinstance(value, str)


#: What :func:`_range` returns for a fragment holding no non-null value of the field.
_EMPTY = "empty"


def _range(
    snap: Snapshot, fragment: Fragment, field: Field, kind: str
) -> tuple[Any, Any] | str | None:
    """``(lo, hi)`` bounding the field's non-null values in the fragment (either None:
    unbounded), :data:`_EMPTY` when it holds none, None when nothing is known."""
    if any(u.field_id == field.id for u in fragment.updates):
        return None
    holder = None
    for data_file in fragment.files:
        if field.id in data_file.field_ids:
            holder = data_file  # the last file holding a field wins
    if holder is None:
        try:
            cell = snap.default_cell(field)
        except LakefmtError:
            return None
        if isinstance(cell, pa.ExtensionArray):
            cell = cell.storage
        value = None if cell is None else cell.to_pylist()[0]
        if value is None:
            return _EMPTY
        if not _fits(value, kind) or (isinstance(value, float) and math.isnan(value)):
            return None
        return value, value
    index = holder.field_ids.index(field.id)
    stats = holder.stats[index] if holder.stats is not None and index < len(holder.stats) else None
    if not isinstance(stats, ColumnStats):
        return None
    nan_free = kind != "float" or stats.nan_count == 0
    lo = stats.min if stats.min is not None and _fits(stats.min, kind) else None
    hi = stats.max if stats.max is not None and _fits(stats.max, kind) and nan_free else None
    no_values = stats.null_count == sum(holder.row_groups)
    if stats.min is None and stats.max is None and nan_free and no_values:
        return _EMPTY
    if lo is None and hi is None:
        return None
    return lo, hi


def may_match(
    snap: Snapshot, fragment: Fragment, conditions: Sequence[tuple[Field, str, Condition]]
) -> bool:
    """Whether some row of ``fragment`` may satisfy every condition (``(field, kind,
    condition)``); False only when statistics prove that none can."""
    for field, kind, cond in conditions:
        bounds = _range(snap, fragment, field, kind)
        if bounds is None:
            continue
        if isinstance(bounds, str):  # _EMPTY
            return False  # null satisfies none of these comparisons
        lo, hi = bounds
        if not _holds(cond.op, cond.values, lo, hi, kind):
            return False
    return True


def kept_fragments(
    snap: Snapshot, fields: dict[str, Field], conditions: Sequence[Condition]
) -> set[int] | None:
    """Indices of the fragments of ``snap`` that may hold rows satisfying ``conditions``
    (over visible columns named in ``fields``); None when nothing can be pruned."""
    if not ENABLED or not conditions:
        return None
    judged: list[tuple[Field, str, Condition]] = []
    for cond in conditions:
        field = fields.get(cond.column)
        if field is None:
            continue
        kind = _kind(snap.type_of(field).storage_type)
        if kind is not None:
            judged.append((field, kind, cond))
    if not judged:
        return None
    return {k for k, frag in enumerate(snap.manifest.fragments) if may_match(snap, frag, judged)}
