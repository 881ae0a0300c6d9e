"""Helpers over sqlglot syntax trees shared by the planner and the function library.

Building DuckDB nodes (casts, 1-based brackets), reading TQL's 0-based indices, finding the
SELECTs, stars and CTEs of a query, and naming result columns.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from sqlglot import exp

from lakefmt.tql import parser
from lakefmt.tql.columns import ColumnKind, duck_type, storage_of


def grouped(select: exp.Select) -> bool:
    """Whether ``select`` groups or dedups rows (a passed-on column would not fit)."""
    if any(select.args.get(k) for k in ("group", "distinct", "having")):
        return True
    return any(
        isinstance(e, exp.AggFunc) and e.find_ancestor(exp.Window) is None
        for item in select.expressions
        for e in item.find_all(exp.AggFunc)
    )


def cte(select: exp.Select, name: str) -> exp.Expression | None:
    """The query of the CTE ``name`` visible from ``select``."""
    node: exp.Expr | None = select
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        for cte in with_.expressions if with_ is not None else []:
            if cte.alias == name:
                return cte.this
        node = node.parent
    return None


def cast(node: exp.Expression, duck: str) -> exp.Expression:
    """``CAST(node AS duck)`` in DuckDB's type syntax."""
    return exp.Cast(this=node, to=exp.DataType.build(duck, dialect=parser.DIALECT))


def element_type(kind: ColumnKind, arrow: pa.DataType | None) -> str:
    """The DuckDB element type of a list or vector column (FLOAT by default for vectors)."""
    if arrow is not None:
        storage = storage_of(arrow)
        if (
            pa.types.is_fixed_size_list(storage)
            or pa.types.is_list(storage)
            or pa.types.is_large_list(storage)
        ):
            return duck_type(storage.value_type)
    return "FLOAT" if kind.kind == "vector" else "DOUBLE"


def bracket1(this: exp.Expression, keys: list[exp.Expression]) -> exp.Bracket:
    """A DuckDB bracket whose keys are already 1-based (sqlglot must not shift them)."""
    return exp.Bracket(this=this, expressions=keys, offset=1)


def user_keys(node: exp.Bracket) -> list[exp.Expression]:
    """The keys of a parsed bracket as the user wrote them.

    sqlglot stores a lone integer-literal index shifted to 0-based for DuckDB (``x[0]`` is
    kept as ``-1``); TQL indices are already 0-based, so that shift is undone here.
    """
    keys = list(node.expressions)
    if node.args.get("offset") or len(keys) != 1:
        return keys
    value = int_literal(keys[0])
    if value is None:
        return keys
    value += 1
    return [exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))]


def int_literal(node: exp.Expression) -> int | None:
    """The value of a (possibly negated) whole-number literal, else None."""
    negative = False
    if isinstance(node, exp.Neg):
        negative, node = True, node.this
    if isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit():
        return -int(node.this) if negative else int(node.this)
    return None


def one_based(index: exp.Expression, *, start: bool) -> exp.Expression:
    """A 0-based (numpy) index or slice bound as DuckDB's 1-based, end-inclusive one."""
    literal = index
    negative = False
    if isinstance(literal, exp.Neg) and isinstance(literal.this, exp.Literal):
        negative, literal = True, literal.this
    if isinstance(literal, exp.Literal) and not literal.is_string and str(literal.this).isdigit():
        value = -int(literal.this) if negative else int(literal.this)
        if start:
            return (
                exp.Literal.number(value + 1)
                if value >= 0
                else (exp.Neg(this=exp.Literal.number(-value)))
            )
        return (
            exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(1 - value))
        )
    plus = exp.Add(this=index.copy(), expression=exp.Literal.number(1)) if start else index.copy()
    minus = index.copy() if start else exp.Sub(this=index.copy(), expression=exp.Literal.number(1))
    return exp.Case(
        ifs=[exp.If(this=exp.GTE(this=index, expression=exp.Literal.number(0)), true=plus)],
        default=minus,
    )


def double_list(values: list[float]) -> str:
    """A DuckDB ``DOUBLE[]`` literal (exponent notation keeps DuckDB from reading DECIMALs)."""
    parts = []
    for v in values:
        text = repr(float(v))
        if "e" not in text and "n" not in text:
            text += "e0"
        elif text in ("nan", "inf", "-inf"):
            text = {
                "nan": "'NaN'::DOUBLE",
                "inf": "'Infinity'::DOUBLE",
                "-inf": "'-Infinity'::DOUBLE",
            }[text]
        parts.append(text)
    return "[" + ", ".join(parts) + "]"


def walk_scope(select: exp.Select) -> Iterator[exp.Expression]:
    """Nodes of ``select`` outside nested SELECTs."""
    stack = [select]
    while stack:
        node = stack.pop()
        for child in node.iter_expressions():
            if isinstance(child, (exp.Select, exp.Subquery, exp.SetOperation)):
                continue
            yield child
            stack.append(child)


def has_aggregate(select: exp.Select) -> bool:
    """Whether ``select`` aggregates (an aggregate function outside any window)."""
    for item in [*select.expressions, select.args.get("having"), select.args.get("order")]:
        if item is None:
            continue
        for node in item.walk():
            if (
                isinstance(node, exp.AggFunc)
                and node.find_ancestor(exp.Window) is None
                and node.find_ancestor(exp.Select) in (None, select)
            ):
                return True
    return False


def leaf_selects(node: exp.Expr) -> list[exp.Select]:
    """The SELECTs of a query or set operation (its branches, left to right)."""
    if isinstance(node, exp.Select):
        return [node]
    if isinstance(node, exp.Subquery):
        return leaf_selects(node.this)
    if isinstance(node, exp.SetOperation):
        return leaf_selects(node.this) + leaf_selects(node.expression)
    return []


def star_target(item: exp.Expression) -> str | None:
    """``""`` for ``*``, ``"t"`` for ``t.*``, None for other select items."""
    if isinstance(item, exp.Star):
        return ""
    if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
        return item.table
    return None


def star_excluded(item: exp.Expression) -> set[str]:
    """The names a star leaves out (``* EXCLUDE (a, b)``)."""
    star = item if isinstance(item, exp.Star) else item.this
    names = set()
    for key in ("except", "except_", "exclude"):
        for e in star.args.get(key) or []:
            names.add(e.name if isinstance(e, exp.Expression) else str(e))
    return names


def unique_name(name: str, seen: dict[str, int]) -> str:
    """``name``, or ``name_1``, ``name_2``... if ``seen`` has it; records the result in ``seen``."""
    if name not in seen:
        seen[name] = 0
        return name
    seen[name] += 1
    candidate = f"{name}_{seen[name]}"
    while candidate in seen:
        seen[name] += 1
        candidate = f"{name}_{seen[name]}"
    seen[candidate] = 0
    return candidate


def auto_name(node: exp.Expression) -> str:
    """The name of an unnamed result column: its TQL text (``COUNT(*)``)."""
    return node.sql(dialect=parser.DIALECT)
