"""Expression translation: type inference, TQL's operator conventions, and function dispatch.

Once the planner (:mod:`lakefmt.tql.translate`) has resolved a query's columns,
:class:`ExpressionTranslator` rewrites its expressions for DuckDB:

* TQL functions are looked up in the registry (:data:`lakefmt.tql.functions.FUNCTIONS`),
  which checks their arity and translates them;
* numpy-style 0-based indexing and slicing (DuckDB is 1-based, end-inclusive), also on
  fixed-shape arrays stored flat, and JSON paths on ``Dict`` columns;
* class names compared (``=``, ``IN``, ``LIKE``) as their class indices;
* ``*``/``?`` wildcards in ``LIKE``;
* element-wise arithmetic between arrays, and arrays and numbers.

:meth:`ExpressionTranslator.infer` gives the kind of value any expression has, which these
rules (and the result's columns) depend on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlglot import exp

from lakefmt.tql import parser
from lakefmt.tql.columns import NUMBER, UNKNOWN, ColumnKind
from lakefmt.tql.context import PlanningContext
from lakefmt.tql.functions import FUNCTIONS, FunctionRegistry, array_sql, class_index
from lakefmt.tql.sqltree import bracket1, cast, element_type, int_literal, one_based, user_keys

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_OPERATORS: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
}


class ExpressionTranslator:
    """Infers and translates the expressions of one query.

    Args:
        ctx: The query's planning context.
        functions: The TQL functions it translates.
    """

    def __init__(self, ctx: PlanningContext, functions: FunctionRegistry = FUNCTIONS) -> None:
        self.ctx = ctx
        self.functions = functions

    # -- type inference ----------------------------------------------------------------------------
    def infer(self, node: exp.Expression | None) -> ColumnKind:
        """The kind of value ``node`` gives (``UNKNOWN`` when it cannot tell)."""
        if node is None:
            return UNKNOWN
        if isinstance(node, exp.Column):
            size = self.ctx.vector_sizes.get(node.name)
            if size is not None and not node.table:
                return ColumnKind("vector", size=size, depth=1, shape=(size,))
            origin = self.ctx.origins.get(id(node))
            return origin.kind if origin else UNKNOWN
        if isinstance(node, (exp.Paren, exp.Alias)):
            return self.infer(node.this)
        if isinstance(node, exp.Literal):
            return ColumnKind("text") if node.is_string else NUMBER
        if isinstance(node, exp.Array):
            items = node.expressions
            if items and all(
                (isinstance(i, exp.Literal) and not i.is_string) or isinstance(i, exp.Neg)
                for i in items
            ):
                return ColumnKind("vector", size=len(items), depth=1)
            return ColumnKind("list", depth=1)
        if isinstance(node, _ARITHMETIC):
            left, right = self.infer(node.this), self.infer(node.expression)
            if left.arrayish or right.arrayish:
                size = (
                    left.size
                    if left.arrayish and left.size
                    else right.size
                    if right.arrayish
                    else None
                )
                return (
                    ColumnKind("vector", size=size, depth=1)
                    if size
                    else ColumnKind("list", depth=1)
                )
            return NUMBER
        if isinstance(node, exp.Bracket):
            return self._infer_bracket(node)
        function = self.functions.lookup(node)
        if function is not None:
            return function.returns(self, node)
        if isinstance(node, (exp.Predicate, exp.Not, exp.And, exp.Or)):
            return ColumnKind("bool")
        if isinstance(node, (exp.Count, exp.Sum, exp.Avg, exp.RowNumber)):
            return NUMBER
        if isinstance(node, (exp.Min, exp.Max)):
            return self.infer(node.this)
        return UNKNOWN

    def _infer_bracket(self, node: exp.Bracket) -> ColumnKind:
        base = self.infer(node.this)
        if base.kind in ("json", "json_value"):
            return ColumnKind("json_value")
        if any(isinstance(e, exp.Slice) for e in node.expressions):
            return ColumnKind("list", depth=max(base.depth, 1))
        if base.kind == "array" and base.shape:
            return (
                NUMBER if len(node.expressions) >= len(base.shape) else ColumnKind("list", depth=1)
            )
        if base.depth > len(node.expressions):
            return ColumnKind("list", depth=base.depth - len(node.expressions))
        if base.kind in ("vector", "list"):
            return NUMBER
        return UNKNOWN

    # -- translation -------------------------------------------------------------------------------
    def translate_tree(self, tree: exp.Expression) -> exp.Expression:
        """Translate a whole statement."""
        self.ctx.select_stack = []
        return self.translate(tree)

    def translate(self, node: Any) -> Any:
        """``node`` translated to DuckDB (non-expressions are returned as they are)."""
        if not isinstance(node, exp.Expression):
            return node
        if isinstance(node, exp.Select):
            self.ctx.select_stack.append(node)
            try:
                self.translate_children(node)
            finally:
                self.ctx.select_stack.pop()
            return node
        if isinstance(node, _COMPARISONS):
            return self._comparison(node)
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like(node)
        if isinstance(node, exp.Bracket):
            return self._bracket(node)
        if isinstance(node, _ARITHMETIC) and (
            self.infer(node.this).arrayish or self.infer(node.expression).arrayish
        ):
            return self._elementwise(node)
        function = self.functions.lookup(node)
        if function is not None:
            return function.translate_call(self, node)
        self.translate_children(node)
        return node

    def translate_children(self, node: exp.Expression) -> None:
        """Translate ``node``'s children in place."""
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                new = self.translate(value)
                if new is not value:
                    node.set(key, new)
            elif isinstance(value, list):
                new_list = [
                    self.translate(v) if isinstance(v, exp.Expression) else v for v in value
                ]
                if any(a is not b for a, b in zip(new_list, value, strict=True)):
                    node.set(key, new_list)

    # comparisons, IN, LIKE ------------------------------------------------------------------------
    def _comparison(self, node: exp.Expression) -> exp.Expression:
        left, right = node.this, node.expression
        lk, rk = self.infer(left), self.infer(right)
        for col_kind, lit, set_lit in ((lk, right, "expression"), (rk, left, "this")):
            index = class_index(self.ctx, col_kind, lit)
            if index is not None:
                node.set(set_lit, index)
                if col_kind.is_list and isinstance(node, (exp.EQ, exp.NEQ)):
                    column = left if set_lit == "expression" else right
                    found = exp.Anonymous(
                        this="list_contains", expressions=[self.translate(column), index]
                    )
                    return found if isinstance(node, exp.EQ) else exp.Not(this=found)
        for kind, value in ((lk, right), (rk, left)):
            if kind.kind == "json_value" and isinstance(value, exp.Literal) and not value.is_string:
                target = left if value is right else right
                target.meta["lf_json"] = "number"
        self.translate_children(node)
        return node

    def _in(self, node: exp.In) -> exp.Expression:
        kind = self.infer(node.this)
        if (
            kind.kind == "json_value"
            and node.expressions
            and all(isinstance(e, exp.Literal) and not e.is_string for e in node.expressions)
        ):
            node.this.meta["lf_json"] = "number"
        if kind.kind == "class_label":
            node.set(
                "expressions",
                [class_index(self.ctx, kind, e) or e for e in node.expressions],
            )
        self.translate_children(node)
        return node

    def _like(self, node: exp.Expression) -> exp.Expression:
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            node.set(
                "expression",
                exp.Literal.string(str(pattern.this).replace("*", "%").replace("?", "_")),
            )
        kind = self.infer(node.this)
        if kind.kind == "class_label" and not kind.is_list and kind.class_names:
            names = exp.Array(expressions=[exp.Literal.string(n) for n in kind.class_names])
            index = exp.Add(
                this=exp.Paren(this=self.translate(node.this)), expression=exp.Literal.number(1)
            )
            node.set("this", bracket1(names, [index]))
            return node
        self.translate_children(node)
        return node

    # arrays ---------------------------------------------------------------------------------------
    def _elementwise(self, node: exp.Expression) -> exp.Expression:
        op = _OPERATORS[type(node)]
        left, right = node.this, node.expression
        lk, rk = self.infer(left), self.infer(right)
        v, j = "__lf_v", "__lf_j"
        if lk.arrayish:
            base = array_sql(self, left)
            other = (
                bracket1(array_sql(self, right), [exp.column(j)])
                if rk.arrayish
                else self.translate(right)
            )
            body: exp.Expr = exp.maybe_parse(f"{v} {op} x", dialect=parser.DIALECT)
            body.set("expression", other)
        else:
            base = array_sql(self, right)
            body = exp.maybe_parse(f"x {op} {v}", dialect=parser.DIALECT)
            body.set("this", self.translate(left))
        lam = exp.Lambda(this=body, expressions=[exp.to_identifier(v), exp.to_identifier(j)])
        return exp.Anonymous(this="list_transform", expressions=[base, lam])

    def _bracket(self, node: exp.Bracket) -> exp.Expression:
        if node.meta.get("lf_raw"):
            self.translate_children(node)
            return node
        base_kind = self.infer(node.this)
        keys = user_keys(node)
        if base_kind.kind in ("json", "json_value"):
            return self._json(node)
        if all(isinstance(k, exp.Literal) and k.is_string for k in keys):
            self.translate_children(node)  # struct / map access
            return node
        if base_kind.kind == "array" and base_kind.shape:
            return self._fixed_index(node, base_kind)
        target = self.translate(node.this)
        if base_kind.kind == "vector" and any(isinstance(k, exp.Slice) for k in keys):
            target = cast(target, f"{element_type(base_kind, self.ctx.arrow_type_of(node.this))}[]")
        for key in keys:
            if isinstance(key, exp.Slice):
                lo = (
                    one_based(self.translate(key.this), start=True)
                    if key.this is not None
                    else None
                )
                hi = (
                    one_based(self.translate(key.expression), start=False)
                    if key.expression is not None
                    else None
                )
                target = bracket1(target, [exp.Slice(this=lo, expression=hi)])
            else:
                target = bracket1(target, [one_based(self.translate(key), start=True)])
        return target

    def _fixed_index(self, node: exp.Bracket, kind: ColumnKind) -> exp.Expression:
        """``x[i, j]`` / ``x[i]`` on a fixed-shape array stored flat (row-major)."""
        shape = kind.shape or ()
        ints = []
        for key in user_keys(node):
            value = int_literal(key)
            if value is None:
                raise self.ctx.error(
                    "indexing a multi-dimensional array takes whole-number literals (x[1, 2])", key
                )
            ints.append(value)
        if len(ints) > len(shape):
            raise self.ctx.error(f"too many indices for an array of shape {list(shape)}", node)
        strides = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
        offset = 0
        for i, value in enumerate(ints):
            if not -shape[i] <= value < shape[i]:
                raise self.ctx.error(
                    f"index {value} is out of range for axis {i} of size {shape[i]}", node
                )
            offset += (value % shape[i]) * strides[i]
        target = self.translate(node.this)
        if len(ints) == len(shape):
            return bracket1(target, [exp.Literal.number(offset + 1)])
        span = strides[len(ints) - 1]
        flat = cast(target, f"{element_type(kind, self.ctx.arrow_type_of(node.this))}[]")
        return bracket1(
            flat,
            [
                exp.Slice(
                    this=exp.Literal.number(offset + 1),
                    expression=exp.Literal.number(offset + span),
                )
            ],
        )

    def _json(self, node: exp.Bracket) -> exp.Expression:
        path: list[exp.Expression] = []
        cur: exp.Expression = node
        mode = node.meta.get("lf_json")
        while isinstance(cur, exp.Bracket) and self.infer(cur.this).kind in ("json", "json_value"):
            path = user_keys(cur) + path
            cur = cur.this
        text = "$"
        for key in path:
            if isinstance(key, exp.Literal) and key.is_string:
                text += '."' + str(key.this).replace('"', '\\"') + '"'
            elif isinstance(key, exp.Literal):
                text += f"[{int(key.this)}]"
            elif isinstance(key, exp.Neg) and isinstance(key.this, exp.Literal):
                text += f"[#-{int(key.this.this)}]"
            else:
                raise self.ctx.error(
                    "JSON paths take literal keys and indices (meta['key'][0])", key
                )
        value = exp.Anonymous(
            this="json_extract_string", expressions=[self.translate(cur), exp.Literal.string(text)]
        )
        if mode == "number":
            return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))
        return value
