"""Type inference and translation of TQL's functions and conventions to DuckDB SQL.

:class:`FunctionTranslator` is the half of the planner (:mod:`lakefmt.tql.translate`)
that rewrites expressions once the query's columns are resolved:

* vector functions: ``COSINE_SIMILARITY``/``DOT`` to DuckDB's array functions over
  ``FLOAT[d]`` (list functions when the size is unknown), ``L2_NORM(a - b)`` to
  ``array_distance``, other norms and element-wise arithmetic over lists with lambdas;
* ``CONTAINS`` (text, lists, class labels), ``BM25_SIMILARITY`` (a score column the relation
  computes over the whole source), ``SHAPE`` (image headers through a UDF, array lengths,
  fixed shapes), ``DATA(col, i)`` (the value, read now and inlined), ``ANY``/``ALL``/
  ``ALL_STRICT`` over arrays, ``ROW_NUMBER()`` without ``OVER`` as the row index;
* numpy-style 0-based indexing and slicing (DuckDB is 1-based, end-inclusive), JSON paths on
  ``Dict`` columns, class names compared as their indices, ``*``/``?`` in ``LIKE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lakefmt.errors import QueryError
from lakefmt.tql import parser
from lakefmt.tql.columns import NUMBER, UNKNOWN, ColumnKind, duck_type, sql_literal, storage_of
from lakefmt.tql.models import (
    ROW,
    SIMILARITY_COLUMN,
    Bm25Request,
    DatasetSource,
    SimilarityRequest,
    Source,
    TableSource,
    Visible,
)
from lakefmt.tql.udfs import IMAGE_SHAPE_UDF

if TYPE_CHECKING:
    from lakefmt.tql.translate import _Occurrence, _Origin


class FunctionTranslator:
    """Expression translation; mixed into the planner, whose state it reads.

    The planner provides ``_origins`` (resolved column references), ``_vector_sizes``,
    ``_vector_values`` and ``_snippets`` (lifted literals), ``_select_source`` (the single
    dataset of each SELECT), ``_error`` and ``_fresh``.
    """

    _origins: dict[int, _Origin]
    _vector_sizes: dict[str, int]
    _vector_values: dict[str, list[float]]
    _snippets: dict[str, str]
    _select_source: dict[int, tuple[str, _Occurrence | None]]
    _select_stack: list[exp.Select]
    _by_placeholder: dict[str, _Occurrence]

    def _error(
        self, message: str, node: exp.Expression | None = None, *, position: int | None = None
    ) -> QueryError:
        raise NotImplementedError

    def _fresh(self, stem: str) -> str:
        raise NotImplementedError

    # -- type inference ----------------------------------------------------------------------------
    def _infer(self, node: exp.Expression | None) -> ColumnKind:
        if node is None:
            return UNKNOWN
        if isinstance(node, exp.Column):
            size = self._vector_sizes.get(node.name)
            if size is not None and not node.table:
                return ColumnKind("vector", size=size, depth=1, shape=(size,))
            origin = self._origins.get(id(node))
            return origin.kind if origin else UNKNOWN
        if isinstance(node, (exp.Paren, exp.Alias)):
            return self._infer(node.this)
        if isinstance(node, exp.Literal):
            return _kind_of_literal(node)
        if isinstance(node, exp.Array):
            items = node.expressions
            if items and all(
                (isinstance(i, exp.Literal) and not i.is_string) or isinstance(i, exp.Neg)
                for i in items
            ):
                return ColumnKind("vector", size=len(items), depth=1)
            return ColumnKind("list", depth=1)
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
            left, right = self._infer(node.this), self._infer(node.expression)
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
            base = self._infer(node.this)
            if base.kind in ("json", "json_value"):
                return ColumnKind("json_value")
            if any(isinstance(e, exp.Slice) for e in node.expressions):
                return ColumnKind("list", depth=max(base.depth, 1))
            if base.kind == "array" and base.shape:
                return (
                    NUMBER
                    if len(node.expressions) >= len(base.shape)
                    else ColumnKind("list", depth=1)
                )
            if base.depth > len(node.expressions):
                return ColumnKind("list", depth=base.depth - len(node.expressions))
            if base.kind in ("vector", "list"):
                return NUMBER
            return UNKNOWN
        name = parser.function_name(node)
        if name in (
            "cosine_similarity",
            "l2_norm",
            "l1_norm",
            "linf_norm",
            "dot",
            "bm25_similarity",
        ):
            return NUMBER
        if name == "shape":
            return ColumnKind("list", depth=1)
        if name == "data" and isinstance(node, exp.Anonymous) and node.expressions:
            return self._infer(node.expressions[0])
        if isinstance(
            node, (exp.Predicate, exp.Not, exp.And, exp.Or, exp.Any, exp.All, exp.Contains)
        ):
            return ColumnKind("bool")
        if isinstance(node, (exp.Count, exp.Sum, exp.Avg, exp.RowNumber)):
            return NUMBER
        if isinstance(node, (exp.Min, exp.Max)):
            return self._infer(node.this)
        return UNKNOWN

    # -- translation -------------------------------------------------------------------------------
    def _translate(self, tree: exp.Expression) -> exp.Expression:
        self._select_stack: list[exp.Select] = []
        return self._tr(tree)

    def _tr(self, node: Any) -> Any:
        if not isinstance(node, exp.Expression):
            return node
        if isinstance(node, exp.Select):
            self._select_stack.append(node)
            try:
                self._tr_children(node)
            finally:
                self._select_stack.pop()
            return node
        handler = self._handler(node)
        if handler is not None:
            return handler(node)
        self._tr_children(node)
        return node

    def _tr_children(self, node: exp.Expression) -> None:
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                new = self._tr(value)
                if new is not value:
                    node.set(key, new)
            elif isinstance(value, list):
                new_list = [self._tr(v) if isinstance(v, exp.Expression) else v for v in value]
                if any(a is not b for a, b in zip(new_list, value, strict=True)):
                    node.set(key, new_list)

    def _handler(self, node: exp.Expression) -> Callable[[Any], exp.Expression] | None:
        if isinstance(
            node,
            (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ),
        ):
            return self._comparison
        if isinstance(node, exp.In):
            return self._in
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like
        if isinstance(node, exp.Contains):
            return self._contains
        if isinstance(node, (exp.Any, exp.All)):
            return self._any_all
        if isinstance(node, exp.RowNumber) and not isinstance(node.parent, exp.Window):
            return self._row_number
        if isinstance(node, exp.Bracket):
            return self._bracket
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)) and (
            self._infer(node.this).arrayish or self._infer(node.expression).arrayish
        ):
            return self._elementwise
        name = parser.function_name(node)
        if name in _FUNCTIONS:
            return getattr(self, _FUNCTIONS[name])
        return None

    # comparisons, IN, LIKE, CONTAINS -------------------------------------------------------------
    def _class_index(self, kind: ColumnKind, literal: exp.Expression) -> exp.Expression | None:
        if kind.kind != "class_label" or not (
            isinstance(literal, exp.Literal) and literal.is_string
        ):
            return None
        name = str(literal.this)
        if name not in kind.class_names:
            raise self._error(
                f"'{name}' is not a class of this column; classes are {list(kind.class_names)}",
                literal,
            )
        return exp.Literal.number(kind.class_names.index(name))

    def _comparison(self, node: exp.Expression) -> exp.Expression:
        left, right = node.this, node.expression
        lk, rk = self._infer(left), self._infer(right)
        for col_kind, lit, set_lit in ((lk, right, "expression"), (rk, left, "this")):
            index = self._class_index(col_kind, lit)
            if index is not None:
                node.set(set_lit, index)
                if col_kind.is_list and isinstance(node, (exp.EQ, exp.NEQ)):
                    column = left if set_lit == "expression" else right
                    found = exp.Anonymous(
                        this="list_contains", expressions=[self._tr(column), index]
                    )
                    return found if isinstance(node, exp.EQ) else exp.Not(this=found)
        for kind, value in ((lk, right), (rk, left)):
            if kind.kind == "json_value" and isinstance(value, exp.Literal) and not value.is_string:
                target = left if value is right else right
                target.meta["lf_json"] = "number"
        self._tr_children(node)
        return node

    def _in(self, node: exp.In) -> exp.Expression:
        kind = self._infer(node.this)
        if (
            kind.kind == "json_value"
            and node.expressions
            and all(isinstance(e, exp.Literal) and not e.is_string for e in node.expressions)
        ):
            node.this.meta["lf_json"] = "number"
        if kind.kind == "class_label":
            node.set(
                "expressions",
                [self._class_index(kind, e) or e for e in node.expressions],
            )
        self._tr_children(node)
        return node

    def _like(self, node: exp.Expression) -> exp.Expression:
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            node.set(
                "expression",
                exp.Literal.string(str(pattern.this).replace("*", "%").replace("?", "_")),
            )
        kind = self._infer(node.this)
        if kind.kind == "class_label" and not kind.is_list and kind.class_names:
            names = exp.Array(expressions=[exp.Literal.string(n) for n in kind.class_names])
            index = exp.Add(
                this=exp.Paren(this=self._tr(node.this)), expression=exp.Literal.number(1)
            )
            node.set("this", _bracket1(names, [index]))
            return node
        self._tr_children(node)
        return node

    def _contains(self, node: exp.Expression) -> exp.Expression:
        args = (
            [node.this, node.expression]
            if isinstance(node, exp.Contains)
            else list(node.expressions)
        )
        if len(args) != 2:
            raise self._error("CONTAINS takes two arguments: CONTAINS(column, value)", node)
        target, value = args
        kind = self._infer(target)
        index = self._class_index(kind, value) if kind.kind == "class_label" else None
        value_sql = index if index is not None else self._tr(value)
        target_sql = self._tr(target)
        if kind.kind in ("text", "json", "json_value"):
            return exp.Anonymous(
                this="contains", expressions=[exp.cast(target_sql, "VARCHAR"), value_sql]
            )
        if kind.kind == "class_label" and not kind.is_list:
            return exp.EQ(this=target_sql, expression=value_sql)
        return exp.Anonymous(this="list_contains", expressions=[target_sql, value_sql])

    # arrays ---------------------------------------------------------------------------------------
    def _array_sql(
        self, node: exp.Expression, kind: ColumnKind, *, element: str = "DOUBLE"
    ) -> exp.Expression:
        """``node`` translated and cast to a DuckDB list of ``element``."""
        return _cast(self._tr(node), f"{element}[]")

    def _elementwise(self, node: exp.Expression) -> exp.Expression:
        op = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}[type(node)]
        left, right = node.this, node.expression
        lk, rk = self._infer(left), self._infer(right)
        v, j = "__lf_v", "__lf_j"
        if lk.arrayish:
            base = self._array_sql(left, lk)
            other = (
                _bracket1(self._array_sql(right, rk), [exp.column(j)])
                if rk.arrayish
                else self._tr(right)
            )
            body = exp.maybe_parse(f"{v} {op} x", dialect=parser.DIALECT)
            body.set("expression", other)
        else:
            base = self._array_sql(right, rk)
            body = exp.maybe_parse(f"x {op} {v}", dialect=parser.DIALECT)
            body.set("this", self._tr(left))
        lam = exp.Lambda(this=body, expressions=[exp.to_identifier(v), exp.to_identifier(j)])
        return exp.Anonymous(this="list_transform", expressions=[base, lam])

    def _bracket(self, node: exp.Bracket) -> exp.Expression:
        if node.meta.get("lf_raw"):
            self._tr_children(node)
            return node
        base_kind = self._infer(node.this)
        keys = _user_keys(node)
        if base_kind.kind in ("json", "json_value"):
            return self._json(node)
        if all(isinstance(k, exp.Literal) and k.is_string for k in keys):
            self._tr_children(node)  # struct / map access
            return node
        if base_kind.kind == "array" and base_kind.shape:
            return self._fixed_index(node, base_kind)
        target = self._tr(node.this)
        if base_kind.kind == "vector" and any(isinstance(k, exp.Slice) for k in keys):
            target = _cast(target, f"{_element_type(base_kind, self._origin_arrow(node.this))}[]")
        for key in keys:
            if isinstance(key, exp.Slice):
                lo = _one_based(self._tr(key.this), start=True) if key.this is not None else None
                hi = (
                    _one_based(self._tr(key.expression), start=False)
                    if key.expression is not None
                    else None
                )
                target = _bracket1(target, [exp.Slice(this=lo, expression=hi)])
            else:
                target = _bracket1(target, [_one_based(self._tr(key), start=True)])
        return target

    def _fixed_index(self, node: exp.Bracket, kind: ColumnKind) -> exp.Expression:
        """``x[i, j]`` / ``x[i]`` on a fixed-shape array stored flat (row-major)."""
        shape = kind.shape or ()
        ints = []
        for key in _user_keys(node):
            value = _int_literal(key)
            if value is None:
                raise self._error(
                    "indexing a multi-dimensional array takes whole-number literals (x[1, 2])", key
                )
            ints.append(value)
        if len(ints) > len(shape):
            raise self._error(f"too many indices for an array of shape {list(shape)}", node)
        strides = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
        offset = 0
        for i, value in enumerate(ints):
            if not -shape[i] <= value < shape[i]:
                raise self._error(
                    f"index {value} is out of range for axis {i} of size {shape[i]}", node
                )
            offset += (value % shape[i]) * strides[i]
        target = self._tr(node.this)
        if len(ints) == len(shape):
            return _bracket1(target, [exp.Literal.number(offset + 1)])
        span = strides[len(ints) - 1]
        flat = _cast(target, f"{_element_type(kind, self._origin_arrow(node.this))}[]")
        return _bracket1(
            flat,
            [
                exp.Slice(
                    this=exp.Literal.number(offset + 1),
                    expression=exp.Literal.number(offset + span),
                )
            ],
        )

    def _origin_arrow(self, node: exp.Expression) -> pa.DataType | None:
        if isinstance(node, exp.Column):
            origin = self._origins.get(id(node))
            if origin is not None and origin.visible is not None:
                return origin.visible.arrow_type
        return None

    def _json(self, node: exp.Bracket) -> exp.Expression:
        path: list[exp.Expression] = []
        cur: exp.Expression = node
        mode = node.meta.get("lf_json")
        while isinstance(cur, exp.Bracket) and self._infer(cur.this).kind in ("json", "json_value"):
            path = _user_keys(cur) + path
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
                raise self._error("JSON paths take literal keys and indices (meta['key'][0])", key)
        value = exp.Anonymous(
            this="json_extract_string", expressions=[self._tr(cur), exp.Literal.string(text)]
        )
        if mode == "number":
            return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))
        return value

    def _any_all(self, node: exp.Expression) -> exp.Expression:
        inner = node.this
        if isinstance(inner, (exp.Subquery, exp.Select)) or (
            isinstance(inner, exp.Paren) and isinstance(inner.this, (exp.Select, exp.Subquery))
        ):
            self._tr_children(node)
            return node
        reducer = "list_bool_or" if isinstance(node, exp.Any) else "list_bool_and"
        empty = exp.false() if isinstance(node, exp.Any) else exp.true()
        return self._reduce(node, inner, reducer, empty)

    def _all_fn(self, node: exp.Anonymous) -> exp.Expression:
        if len(node.expressions) != 1:
            raise self._error("ALL takes one argument", node)
        return self._reduce(node, node.expressions[0], "list_bool_and", exp.true())

    def _any_fn(self, node: exp.Anonymous) -> exp.Expression:
        if len(node.expressions) != 1:
            raise self._error("ANY takes one argument", node)
        return self._reduce(node, node.expressions[0], "list_bool_or", exp.false())

    def _all_strict(self, node: exp.Anonymous) -> exp.Expression:
        if len(node.expressions) != 1:
            raise self._error("ALL_STRICT takes one argument", node)
        return self._reduce(node, node.expressions[0], "list_bool_and", exp.false())

    def _reduce(
        self, node: exp.Expression, inner: exp.Expression, reducer: str, empty: exp.Expression
    ) -> exp.Expression:
        while isinstance(inner, exp.Paren):
            inner = inner.this
        arrays = [c for c in inner.find_all(exp.Column) if self._infer(c).arrayish]
        if not arrays:
            if self._infer(inner).arrayish:
                reduced = exp.Anonymous(this=reducer, expressions=[self._tr(inner)])
                return exp.Coalesce(this=reduced, expressions=[empty])
            fn = parser.function_name(node) or type(node).__name__.lower()
            raise self._error(f"{fn.upper()}() needs an array column in its argument", node)
        first = arrays[0].copy()
        index = "__lf_i"
        for col in arrays:
            elem = _bracket1(col.copy(), [exp.column(index)])
            elem.meta["lf_raw"] = True
            self._origins[id(elem.this)] = self._origins[id(col)]
            if col is inner:
                inner = elem
            else:
                col.replace(elem)
        body = self._tr(inner)
        self._origins[id(first)] = self._origins[id(arrays[0])]
        length = exp.Anonymous(this="len", expressions=[self._tr(first)])
        indices = exp.Anonymous(
            this="range",
            expressions=[
                exp.Literal.number(1),
                exp.Add(this=length, expression=exp.Literal.number(1)),
            ],
        )
        lam = exp.Lambda(this=body, expressions=[exp.to_identifier(index)])
        reduced = exp.Anonymous(
            this=reducer,
            expressions=[exp.Anonymous(this="list_transform", expressions=[indices, lam])],
        )
        return exp.Coalesce(this=reduced, expressions=[empty])

    # row identity ---------------------------------------------------------------------------------
    def _current_source(self, node: exp.Expression, what: str) -> tuple[str, _Occurrence]:
        select = self._select_stack[-1] if self._select_stack else None
        found = self._select_source.get(id(select)) if select is not None else None
        if found is None or found[1] is None:
            raise self._error(f"{what} needs a query over one dataset (no join)", node)
        return found  # type: ignore[return-value]

    def _row_number(self, node: exp.Expression) -> exp.Expression:
        alias, occ = self._current_source(node, "ROW_NUMBER() without OVER")
        occ.want_row = True
        return exp.column(ROW, table=exp.to_identifier(alias))

    # functions ------------------------------------------------------------------------------------
    def _args(self, node: exp.Expression, name: str, count: int) -> list[exp.Expression]:
        if isinstance(node, exp.Anonymous):
            args = list(node.expressions)
        else:
            args = [
                a
                for a in [node.this, node.args.get("expression"), *node.expressions]
                if a is not None
            ]
        if len(args) != count:
            raise self._error(
                f"{name.upper()} takes {count} argument{'s' if count != 1 else ''}, "
                f"got {len(args)}",
                node,
            )
        return args

    def _vector_pair(
        self, node: exp.Expression, name: str
    ) -> tuple[exp.Expression, exp.Expression, int | None, str]:
        a, b = self._args(node, name, 2)
        ka, kb = self._infer(a), self._infer(b)
        size = ka.size or kb.size
        element = "FLOAT"
        for arg, kind in ((a, ka), (b, kb)):
            arrow = self._origin_arrow(arg)
            if arrow is not None and _element_type(kind, arrow) == "DOUBLE":
                element = "DOUBLE"
        ta, tb = self._tr(a), self._tr(b)
        if size:
            return _cast(ta, f"{element}[{size}]"), _cast(tb, f"{element}[{size}]"), size, element
        return _cast(ta, "DOUBLE[]"), _cast(tb, "DOUBLE[]"), None, "DOUBLE"

    def _cosine(self, node: exp.Expression) -> exp.Expression:
        precomputed = self._similarity_column(node, "cosine_similarity")
        if precomputed is not None:
            return precomputed
        a, b, size, _ = self._vector_pair(node, "cosine_similarity")
        fn = "array_cosine_similarity" if size else "list_cosine_similarity"
        return exp.Anonymous(this=fn, expressions=[a, b])

    def _dot(self, node: exp.Expression) -> exp.Expression:
        precomputed = self._similarity_column(node, "dot")
        if precomputed is not None:
            return precomputed
        a, b, size, _ = self._vector_pair(node, "dot")
        fn = "array_inner_product" if size else "list_inner_product"
        return exp.Anonymous(this=fn, expressions=[a, b])

    def _similarity_column(self, node: exp.Expression, name: str) -> exp.Expression | None:
        """A vector column of this SELECT's dataset against a long constant vector: a score
        column its relation computes with numpy (see :class:`SimilarityRequest`), or None
        for every other case, which DuckDB's function computes row by row."""
        args = self._args(node, name, 2)
        select = self._select_stack[-1] if self._select_stack else None
        found = self._select_source.get(id(select)) if select is not None else None
        if found is None or found[1] is None or not isinstance(found[1].source, DatasetSource):
            return None
        alias, occ = found
        for col, literal in (args, args[::-1]):
            if not (
                isinstance(col, exp.Column)
                and isinstance(literal, exp.Column)
                and not literal.table
                and literal.name in self._vector_values
            ):
                continue
            origin = self._origins.get(id(col))
            visible = origin.visible if origin is not None else None
            if (
                origin is None
                or origin.occurrence is not occ
                or visible is None
                or visible.field is None
                or visible.kind.kind != "vector"
                or visible.kind.size != self._vector_sizes[literal.name]
            ):
                continue
            size = visible.kind.size
            element = _element_type(visible.kind, visible.arrow_type)
            element = "DOUBLE" if element == "DOUBLE" else "FLOAT"
            metric = "cosine" if name == "cosine_similarity" else "dot"
            fn = "array_cosine_similarity" if metric == "cosine" else "array_inner_product"
            template = exp.Anonymous(
                this=fn,
                expressions=[
                    _cast(exp.column(SIMILARITY_COLUMN), f"{element}[{size}]"),
                    _cast(exp.column(literal.name), f"{element}[{size}]"),
                ],
            ).sql(dialect=parser.DIALECT)
            for req in occ.similarity:  # the same score asked for twice
                if (req.column, req.metric, req.sql) == (origin.name, metric, template):
                    return exp.column(req.output, table=exp.to_identifier(alias))
            output = f"__lf_sim{len(occ.similarity)}"
            assert origin.name is not None
            occ.similarity.append(
                SimilarityRequest(
                    column=origin.name,
                    metric=metric,
                    vector=np.asarray(self._vector_values[literal.name], dtype=np.float64),
                    sql=template,
                    duck_type=element,
                    output=output,
                )
            )
            return exp.column(output, table=exp.to_identifier(alias))
        return None

    def _norm(self, node: exp.Expression, which: str) -> exp.Expression:
        (arg,) = self._args(node, which, 1)
        inner = arg
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if which == "l2_norm" and isinstance(inner, exp.Sub):
            ka, kb = self._infer(inner.this), self._infer(inner.expression)
            if ka.arrayish and kb.arrayish:
                pair = exp.Anonymous(this="x", expressions=[inner.this, inner.expression])
                a, b, size, _ = self._vector_pair(pair, "l2_norm")
                fn = "array_distance" if size else "list_distance"
                return exp.Anonymous(this=fn, expressions=[a, b])
        kind = self._infer(arg)
        if not kind.arrayish:
            raise self._error(f"{which.upper()} takes an array or embedding", node)
        values = self._array_sql(arg, kind)
        v = "__lf_v"
        if which == "l2_norm":
            body = exp.maybe_parse(f"{v} * {v}", dialect=parser.DIALECT)
            lam = exp.Lambda(this=body, expressions=[exp.to_identifier(v)])
            total = exp.Anonymous(
                this="list_sum",
                expressions=[exp.Anonymous(this="list_transform", expressions=[values, lam])],
            )
            return exp.Sqrt(this=total)
        body = exp.maybe_parse(f"abs({v})", dialect=parser.DIALECT)
        lam = exp.Lambda(this=body, expressions=[exp.to_identifier(v)])
        mapped = exp.Anonymous(this="list_transform", expressions=[values, lam])
        return exp.Anonymous(
            this="list_sum" if which == "l1_norm" else "list_max", expressions=[mapped]
        )

    def _l2(self, node: exp.Expression) -> exp.Expression:
        return self._norm(node, "l2_norm")

    def _l1(self, node: exp.Expression) -> exp.Expression:
        return self._norm(node, "l1_norm")

    def _linf(self, node: exp.Expression) -> exp.Expression:
        return self._norm(node, "linf_norm")

    def _source_column(self, node: exp.Expression, fn: str) -> tuple[exp.Column, _Origin]:
        if not isinstance(node, exp.Column) or id(node) not in self._origins:
            raise self._error(f"{fn} takes a column of a dataset as its first argument", node)
        origin = self._origins[id(node)]
        if origin.occurrence is None:
            raise self._error(f"{fn} takes a column of a dataset, not a computed one", node)
        return node, origin

    def _bm25(self, node: exp.Expression) -> exp.Expression:
        column, query = self._args(node, "bm25_similarity", 2)
        col, origin = self._source_column(column, "BM25_SIMILARITY")
        if origin.kind.kind not in ("text", "json"):
            raise self._error("BM25_SIMILARITY takes a text column", column)
        if not (isinstance(query, exp.Literal) and query.is_string):
            raise self._error("BM25_SIMILARITY takes the query as a string literal", query)
        occ = origin.occurrence
        assert occ is not None and origin.name is not None
        terms = list(dict.fromkeys(t.lower() for t in re.findall(r"[^\W_]+", str(query.this))))
        output = f"__lf_bm25_{len(occ.bm25)}"
        select = self._select_stack[-1] if self._select_stack else None
        # the scores are a column of the relation reading the dataset: reached through
        # derived tables or CTEs, each of them passes it on
        alias = self._carry(select, col.table, occ, output) if select is not None else None
        if alias is None:
            raise self._error(
                "BM25_SIMILARITY needs its column to come from a dataset read by this SELECT "
                "or by plain subqueries of its FROM (no join, grouping, DISTINCT or UNION "
                "between them)",
                column,
            )
        occ.bm25.append(Bm25Request(origin.name, terms, output))
        return exp.column(output, table=exp.to_identifier(alias))

    def _carry(self, select: exp.Select, table: str, occ: _Occurrence, output: str) -> str | None:
        """Make the relation column ``output`` of ``occ`` visible in ``select``.

        ``table`` is the FROM item the column is qualified with (``""``: any). Returns the
        alias to qualify ``output`` with in ``select``, or None if ``occ`` is not reached
        through plain single-source subqueries. Unnamed derived tables get an alias.
        """
        from_ = select.args.get("from_")
        items = [from_.this] if from_ is not None else []
        items += [j.this for j in select.args.get("joins") or []]
        for item in items:
            if table and item.alias_or_name != table:
                continue
            if isinstance(item, exp.Table) and self._by_placeholder.get(item.name) is occ:
                return str(item.alias_or_name)
            inner: exp.Expression | None = None
            if isinstance(item, exp.Subquery):
                inner = item.this
            elif isinstance(item, exp.Table) and item.name not in self._by_placeholder:
                inner = self._cte(select, item.name)
            if not isinstance(inner, exp.Select) or _grouped(inner):
                continue
            inner_alias = self._carry(inner, "", occ, output)
            if inner_alias is None:
                continue
            if not any(e.alias_or_name == output for e in inner.expressions):
                inner.append(
                    "expressions",
                    exp.alias_(exp.column(output, table=exp.to_identifier(inner_alias)), output),
                )
            if isinstance(item, exp.Subquery) and not item.alias:
                item.set("alias", exp.TableAlias(this=exp.to_identifier(self._fresh("d"))))
            return str(item.alias_or_name)
        return None

    @staticmethod
    def _cte(select: exp.Select, name: str) -> exp.Expression | None:
        """The query of the CTE ``name`` visible from ``select``."""
        node: exp.Expression | None = select
        while node is not None:
            with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
            for cte in with_.expressions if with_ is not None else []:
                if cte.alias == name:
                    return cte.this
            node = node.parent
        return None

    def _shape(self, node: exp.Expression) -> exp.Expression:
        (arg,) = self._args(node, "shape", 1)
        kind = self._infer(arg)
        if kind.kind == "media":
            if kind.type_name != "lakefmt.image":
                raise self._error(f"SHAPE() of {kind.type_name} columns is not supported", arg)
            return exp.Anonymous(this=IMAGE_SHAPE_UDF, expressions=[_cast(self._tr(arg), "BLOB")])
        if kind.shape:
            return _cast(
                exp.Array(expressions=[exp.Literal.number(d) for d in kind.shape]), "BIGINT[]"
            )
        value = self._tr(arg)
        if kind.arrayish:
            dims: list[exp.Expression] = [exp.Anonymous(this="len", expressions=[value])]
            if kind.depth >= 2:
                first = _bracket1(value.copy(), [exp.Literal.number(1)])
                dims.append(
                    exp.Case(
                        ifs=[
                            exp.If(
                                this=exp.GT(
                                    this=exp.Anonymous(this="len", expressions=[value.copy()]),
                                    expression=exp.Literal.number(0),
                                ),
                                true=exp.Anonymous(this="len", expressions=[first]),
                            )
                        ],
                        default=exp.Literal.number(0),
                    )
                )
            return _cast(exp.Array(expressions=dims), "BIGINT[]")
        return _cast(exp.Array(expressions=[exp.Literal.number(1)]), "BIGINT[]")

    def _data(self, node: exp.Expression) -> exp.Expression:
        column, index = self._args(node, "data", 2)
        _, origin = self._source_column(column, "DATA")
        value = index
        negative = False
        if isinstance(value, exp.Neg):
            negative, value = True, value.this
        if not (
            isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()
        ):
            raise self._error("DATA(column, index) takes a whole number as index", index)
        i = -int(value.this) if negative else int(value.this)
        occ = origin.occurrence
        assert occ is not None and origin.name is not None
        visible = occ.visible[origin.name]
        source = occ.source
        total = _source_len(source)
        if not -total <= i < total:
            raise self._error(f"DATA index {i} is out of range for {total} rows", index)
        i %= total
        array = _read_cell(source, visible, i)
        if isinstance(array, pa.ExtensionArray):
            array = array.storage
        storage = storage_of(visible.arrow_type)
        try:
            literal = sql_literal(array.to_pylist()[0], storage)
        except (TypeError, ValueError) as exc:
            raise self._error(f"DATA() cannot inline this value: {exc}", node) from exc
        name = self._fresh("data_")
        self._snippets[name] = f"({literal})"
        return exp.column(name)


def _grouped(select: exp.Select) -> bool:
    """Whether ``select`` groups or dedups rows (a passed-on column would not fit)."""
    if any(select.args.get(k) for k in ("group", "distinct", "having")):
        return True
    return any(
        isinstance(e, exp.AggFunc) and e.find_ancestor(exp.Window) is None
        for item in select.expressions
        for e in item.find_all(exp.AggFunc)
    )


def _kind_of_literal(node: exp.Expression) -> ColumnKind:
    if isinstance(node, exp.Literal):
        return ColumnKind("text") if node.is_string else NUMBER
    return UNKNOWN


_FUNCTIONS = {
    "cosine_similarity": "_cosine",
    "dot": "_dot",
    "l2_norm": "_l2",
    "l1_norm": "_l1",
    "linf_norm": "_linf",
    "bm25_similarity": "_bm25",
    "shape": "_shape",
    "data": "_data",
    "all_strict": "_all_strict",
    "all": "_all_fn",
    "any": "_any_fn",
    "contains": "_contains",
}


def _source_len(source: Source) -> int:
    if isinstance(source, TableSource):
        return source.table.num_rows
    if source.rows is not None:
        return len(source.rows)
    return source.snapshot.num_rows


def _read_cell(source: Source, visible: Visible, i: int) -> pa.Array:
    if isinstance(source, TableSource):
        return source.table.column(visible.name).slice(i, 1).combine_chunks()
    if visible.field is None:
        assert source.extra is not None
        return source.extra.column(visible.name).slice(i, 1).combine_chunks()
    row = int(source.rows[i]) if source.rows is not None else i
    return source.snapshot.take([visible.field], np.array([row], dtype=np.int64))[visible.field.id]


def _cast(node: exp.Expression, duck: str) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build(duck, dialect=parser.DIALECT))


def _element_type(kind: ColumnKind, arrow: pa.DataType | None) -> str:
    if arrow is not None:
        storage = storage_of(arrow)
        if (
            pa.types.is_fixed_size_list(storage)
            or pa.types.is_list(storage)
            or pa.types.is_large_list(storage)
        ):
            return duck_type(storage.value_type)
    return "FLOAT" if kind.kind == "vector" else "DOUBLE"


def _bracket1(this: exp.Expression, keys: list[exp.Expression]) -> exp.Bracket:
    """A DuckDB bracket whose keys are already 1-based (sqlglot must not shift them)."""
    return exp.Bracket(this=this, expressions=keys, offset=1)


def _user_keys(node: exp.Bracket) -> list[exp.Expression]:
    """The keys of a parsed bracket as the user wrote them.

    sqlglot stores a lone integer-literal index shifted to 0-based for DuckDB (``x[0]`` is
    kept as ``-1``); TQL indices are already 0-based, so that shift is undone here.
    """
    keys = list(node.expressions)
    if node.args.get("offset") or len(keys) != 1:
        return keys
    value = _int_literal(keys[0])
    if value is None:
        return keys
    value += 1
    return [exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))]


def _int_literal(node: exp.Expression) -> int | None:
    negative = False
    if isinstance(node, exp.Neg):
        negative, node = True, node.this
    if isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit():
        return -int(node.this) if negative else int(node.this)
    return None


def _one_based(index: exp.Expression, *, start: bool) -> exp.Expression:
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
