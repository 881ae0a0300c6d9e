"""The TQL function library: one registry entry per function.

Every TQL function the planner translates is one :class:`TqlFunction` in :data:`FUNCTIONS`
at the end of this module: its names, its arity, the kind of value it returns (type
inference), its translation to DuckDB SQL, and what else the planner needs to know (a
cheaper translation tried first, such as the numpy fast path of ``COSINE_SIMILARITY``; that
it reads rows, so a ``SELECT`` using it without ``FROM`` reads the implicit dataset).

**To add a TQL function**, write its translator (and, if its value is not obvious, its type
rule) here and add one ``TqlFunction(...)`` to :data:`FUNCTIONS`; nothing else changes.
``tests/query/test_functions.py`` checks that every entry has a doc and an arity and that
each parsed example call finds its entry.

Functions DuckDB has under the same name and meaning need no entry: calls the registry does
not know pass through to DuckDB unchanged (an unknown name is DuckDB's "unknown function").
The SQL *conventions* TQL changes (0-based indexing, class names in comparisons, ``*``/``?``
in ``LIKE``, element-wise arithmetic on arrays) are operators, not functions: they live in
:mod:`lakefmt.tql.expressions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lakefmt.indexes.text import query_terms
from lakefmt.tql import parser
from lakefmt.tql.columns import NUMBER, UNKNOWN, ColumnKind, sql_literal, storage_of
from lakefmt.tql.context import Occurrence, Origin, PlanningContext, Translator
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
from lakefmt.tql.sqltree import bracket1, cast, cte, element_type, grouped
from lakefmt.tql.udfs import IMAGE_SHAPE_UDF

BOOL = ColumnKind("bool")
LIST = ColumnKind("list", depth=1)

#: Infers the kind of a call's value: (translator, call node) -> kind.
Inference = Callable[[Translator, exp.Expression], ColumnKind]
#: Translates a call: (translator, call node, its arguments) -> DuckDB node, or None
#: where the call does not apply (a fast path).
Translation = Callable[[Translator, exp.Expression, list[exp.Expression]], exp.Expression]
FastPath = Callable[[Translator, exp.Expression, list[exp.Expression]], exp.Expression | None]


def _always(node: exp.Expression) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class TqlFunction:
    """One TQL function.

    Attributes:
        names: Its lower-case SQL names (aliases included).
        arity: How many arguments a call takes; checked before ``translate`` runs, for
            calls written as plain function calls (``node_types`` forms come checked by
            the parser's grammar).
        doc: Its signature and what it does, one line.
        example: A call as a user writes it (tests parse it and look it up).
        returns: The kind of value it gives (type inference).
        translate: Its translation to DuckDB SQL.
        node_types: sqlglot node classes the parser builds for it (``ANY(...)`` is
            ``exp.Any``), besides calls by name.
        arity_message: The message of a wrong argument count, when not the standard one.
        fast_path: A cheaper translation tried first; returns None where it does not apply.
        reads_rows: It reads the rows of a source, so a ``SELECT`` using it without
            ``FROM`` reads the implicit dataset.
        applies: Whether a node of its name or type is this function at all
            (``ROW_NUMBER() OVER (...)`` is DuckDB's window function).
    """

    names: tuple[str, ...]
    arity: int
    doc: str
    example: str
    returns: Inference
    translate: Translation
    node_types: tuple[type[exp.Expression], ...] = ()
    arity_message: str | None = None
    fast_path: FastPath | None = None
    reads_rows: bool = False
    applies: Callable[[exp.Expression], bool] = _always

    def arguments(self, ctx: PlanningContext, node: exp.Expression) -> list[exp.Expression]:
        """The arguments of a call ``node``.

        Raises:
            QueryError: A plain call with the wrong number of arguments.
        """
        if isinstance(node, exp.Anonymous):
            args = list(node.expressions)
        else:
            args = [
                a
                for a in [node.this, node.args.get("expression"), *node.expressions]
                if a is not None
            ]
        if isinstance(node, exp.Anonymous) and len(args) != self.arity:
            message = self.arity_message or (
                f"{parser.function_name(node).upper()} takes {self.arity} "
                f"argument{'s' if self.arity != 1 else ''}, got {len(args)}"
            )
            raise ctx.error(message, node)
        return args

    def translate_call(self, tr: Translator, node: exp.Expression) -> exp.Expression:
        """``node`` (a call of this function) translated to DuckDB."""
        args = self.arguments(tr.ctx, node)
        if self.fast_path is not None:
            fast = self.fast_path(tr, node, args)
            if fast is not None:
                return fast
        return self.translate(tr, node, args)


class FunctionRegistry:
    """TQL functions by name and by parsed node type.

    Raises:
        ValueError: Two entries claim the same name or node type (a programming error).
    """

    def __init__(self, functions: Iterable[TqlFunction]) -> None:
        self._functions = list(functions)
        self._by_name: dict[str, TqlFunction] = {}
        self._by_type: dict[type[exp.Expression], TqlFunction] = {}
        for fn in self._functions:
            for name in fn.names:
                if name in self._by_name:
                    raise ValueError(f"TQL function {name!r} registered twice")
                self._by_name[name] = fn
            for node_type in fn.node_types:
                if node_type in self._by_type:
                    raise ValueError(f"sqlglot node {node_type.__name__} registered twice")
                self._by_type[node_type] = fn

    def __iter__(self) -> Iterator[TqlFunction]:
        return iter(self._functions)

    def names(self) -> frozenset[str]:
        """Every registered name."""
        return frozenset(self._by_name)

    def lookup(self, node: exp.Expression) -> TqlFunction | None:
        """The function ``node`` calls, or None (not a TQL function: DuckDB's own)."""
        fn = self._by_type.get(type(node)) or self._by_name.get(parser.function_name(node))
        if fn is None or not fn.applies(node):
            return None
        return fn


# -- helpers shared by translators -------------------------------------------------------------
def class_index(
    ctx: PlanningContext, kind: ColumnKind, literal: exp.Expression
) -> exp.Expression | None:
    """A class name literal compared with a class-label column, as its class index.

    Raises:
        QueryError: The name is not a class of the column.
    """
    if kind.kind != "class_label" or not (isinstance(literal, exp.Literal) and literal.is_string):
        return None
    name = str(literal.this)
    if name not in kind.class_names:
        raise ctx.error(
            f"'{name}' is not a class of this column; classes are {list(kind.class_names)}",
            literal,
        )
    return exp.Literal.number(kind.class_names.index(name))


def array_sql(tr: Translator, node: exp.Expression, *, element: str = "DOUBLE") -> exp.Expression:
    """``node`` translated and cast to a DuckDB list of ``element``."""
    return cast(tr.translate(node), f"{element}[]")


def _source_column(ctx: PlanningContext, node: exp.Expression, fn: str) -> Origin:
    if not isinstance(node, exp.Column) or id(node) not in ctx.origins:
        raise ctx.error(f"{fn} takes a column of a dataset as its first argument", node)
    origin = ctx.origins[id(node)]
    if origin.occurrence is None:
        raise ctx.error(f"{fn} takes a column of a dataset, not a computed one", node)
    return origin


# -- vectors -----------------------------------------------------------------------------------
def _vector_pair(
    tr: Translator, a: exp.Expression, b: exp.Expression
) -> tuple[exp.Expression, exp.Expression, int | None]:
    """Two vector arguments cast alike: ``FLOAT[d]``/``DOUBLE[d]`` when a size is known."""
    ka, kb = tr.infer(a), tr.infer(b)
    size = ka.size or kb.size
    element = "FLOAT"
    for arg, kind in ((a, ka), (b, kb)):
        arrow = tr.ctx.arrow_type_of(arg)
        if arrow is not None and element_type(kind, arrow) == "DOUBLE":
            element = "DOUBLE"
    ta, tb = tr.translate(a), tr.translate(b)
    if size:
        return cast(ta, f"{element}[{size}]"), cast(tb, f"{element}[{size}]"), size
    return cast(ta, "DOUBLE[]"), cast(tb, "DOUBLE[]"), None


def _vector_function(array_fn: str, list_fn: str) -> Translation:
    def translate(
        tr: Translator, node: exp.Expression, args: list[exp.Expression]
    ) -> exp.Expression:
        a, b, size = _vector_pair(tr, args[0], args[1])
        return exp.Anonymous(this=array_fn if size else list_fn, expressions=[a, b])

    return translate


def _similarity_column(metric: str) -> FastPath:
    """The numpy fast path of ``COSINE_SIMILARITY``/``DOT`` (``metric``: cosine or dot).

    A vector column of this SELECT's dataset against a long constant vector becomes a score
    column its relation computes with numpy (see :class:`SimilarityRequest`); every other
    case is left to DuckDB's function, row by row.
    """

    def fast_path(
        tr: Translator, node: exp.Expression, args: list[exp.Expression]
    ) -> exp.Expression | None:
        ctx = tr.ctx
        found = ctx.current_source()
        if found is None or not isinstance(found[1].source, DatasetSource):
            return None
        alias, occ = found
        for col, literal in (args, args[::-1]):
            if not (
                isinstance(col, exp.Column)
                and isinstance(literal, exp.Column)
                and not literal.table
                and literal.name in ctx.vector_values
            ):
                continue
            origin = ctx.origins.get(id(col))
            visible = origin.visible if origin is not None else None
            if (
                origin is None
                or origin.occurrence is not occ
                or visible is None
                or visible.field is None
                or visible.kind.kind != "vector"
                or visible.kind.size != ctx.vector_sizes[literal.name]
            ):
                continue
            size = visible.kind.size
            element = element_type(visible.kind, visible.arrow_type)
            element = "DOUBLE" if element == "DOUBLE" else "FLOAT"
            fn = "array_cosine_similarity" if metric == "cosine" else "array_inner_product"
            template = exp.Anonymous(
                this=fn,
                expressions=[
                    cast(exp.column(SIMILARITY_COLUMN), f"{element}[{size}]"),
                    cast(exp.column(literal.name), f"{element}[{size}]"),
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
                    vector=np.asarray(ctx.vector_values[literal.name], dtype=np.float64),
                    sql=template,
                    duck_type=element,
                    output=output,
                )
            )
            return exp.column(output, table=exp.to_identifier(alias))
        return None

    return fast_path


def _norm(which: str) -> Translation:
    """``L2_NORM``/``L1_NORM``/``LINF_NORM`` (``which``); ``L2_NORM(a - b)`` is a distance."""

    def translate(
        tr: Translator, node: exp.Expression, args: list[exp.Expression]
    ) -> exp.Expression:
        (arg,) = args
        inner = arg
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if which == "l2_norm" and isinstance(inner, exp.Sub):
            ka, kb = tr.infer(inner.this), tr.infer(inner.expression)
            if ka.arrayish and kb.arrayish:
                a, b, size = _vector_pair(tr, inner.this, inner.expression)
                fn = "array_distance" if size else "list_distance"
                return exp.Anonymous(this=fn, expressions=[a, b])
        kind = tr.infer(arg)
        if not kind.arrayish:
            raise tr.ctx.error(f"{which.upper()} takes an array or embedding", node)
        values = array_sql(tr, arg)
        v = "__lf_v"
        if which == "l2_norm":
            body: exp.Expr = exp.maybe_parse(f"{v} * {v}", dialect=parser.DIALECT)
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

    return translate


# -- BM25 --------------------------------------------------------------------------------------
def _bm25(tr: Translator, node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    ctx = tr.ctx
    column, query = args
    origin = _source_column(ctx, column, "BM25_SIMILARITY")
    if origin.kind.kind not in ("text", "json"):
        raise ctx.error("BM25_SIMILARITY takes a text column", column)
    if not (isinstance(query, exp.Literal) and query.is_string):
        raise ctx.error("BM25_SIMILARITY takes the query as a string literal", query)
    occ = origin.occurrence
    assert occ is not None and origin.name is not None and isinstance(column, exp.Column)
    terms = query_terms(str(query.this))
    output = f"__lf_bm25_{len(occ.bm25)}"
    select = ctx.current_select()
    # the scores are a column of the relation reading the dataset: reached through
    # derived tables or CTEs, each of them passes it on
    alias = _carry(ctx, select, column.table, occ, output) if select is not None else None
    if alias is None:
        raise ctx.error(
            "BM25_SIMILARITY needs its column to come from a dataset read by this SELECT "
            "or by plain subqueries of its FROM (no join, grouping, DISTINCT or UNION "
            "between them)",
            column,
        )
    source = occ.source
    stats = (
        source.bm25_stats.get((origin.name, tuple(terms)))
        if isinstance(source, DatasetSource)
        else None
    )
    occ.bm25.append(Bm25Request(origin.name, terms, output, stats=stats))
    return exp.column(output, table=exp.to_identifier(alias))


def _carry(
    ctx: PlanningContext, select: exp.Select, table: str, occ: Occurrence, output: str
) -> str | None:
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
        if isinstance(item, exp.Table) and ctx.by_placeholder.get(item.name) is occ:
            return str(item.alias_or_name)
        inner: exp.Expression | None = None
        if isinstance(item, exp.Subquery):
            inner = item.this
        elif isinstance(item, exp.Table) and item.name not in ctx.by_placeholder:
            inner = cte(select, item.name)
        if not isinstance(inner, exp.Select) or grouped(inner):
            continue
        inner_alias = _carry(ctx, inner, "", occ, output)
        if inner_alias is None:
            continue
        if not any(e.alias_or_name == output for e in inner.expressions):
            inner.append(
                "expressions",
                exp.alias_(exp.column(output, table=exp.to_identifier(inner_alias)), output),
            )
        if isinstance(item, exp.Subquery) and not item.alias:
            item.set("alias", exp.TableAlias(this=exp.to_identifier(ctx.fresh("d"))))
        return str(item.alias_or_name)
    return None


# -- SHAPE and DATA ----------------------------------------------------------------------------
def _shape(tr: Translator, node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    (arg,) = args
    kind = tr.infer(arg)
    if kind.kind == "media":
        if kind.type_name != "lakefmt.image":
            raise tr.ctx.error(f"SHAPE() of {kind.type_name} columns is not supported", arg)
        return exp.Anonymous(this=IMAGE_SHAPE_UDF, expressions=[cast(tr.translate(arg), "BLOB")])
    if kind.shape:
        return cast(exp.Array(expressions=[exp.Literal.number(d) for d in kind.shape]), "BIGINT[]")
    value = tr.translate(arg)
    if kind.arrayish:
        dims: list[exp.Expression] = [exp.Anonymous(this="len", expressions=[value])]
        if kind.depth >= 2:
            first = bracket1(value.copy(), [exp.Literal.number(1)])
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
        return cast(exp.Array(expressions=dims), "BIGINT[]")
    return cast(exp.Array(expressions=[exp.Literal.number(1)]), "BIGINT[]")


def _data(tr: Translator, node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    ctx = tr.ctx
    column, index = args
    origin = _source_column(ctx, column, "DATA")
    value = index
    negative = False
    if isinstance(value, exp.Neg):
        negative, value = True, value.this
    if not (isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()):
        raise ctx.error("DATA(column, index) takes a whole number as index", index)
    i = -int(value.this) if negative else int(value.this)
    occ = origin.occurrence
    assert occ is not None and origin.name is not None
    visible = occ.visible[origin.name]
    source = occ.source
    total = _source_len(source)
    if not -total <= i < total:
        raise ctx.error(f"DATA index {i} is out of range for {total} rows", index)
    i %= total
    array = _read_cell(source, visible, i)
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    storage = storage_of(visible.arrow_type)
    try:
        literal = sql_literal(array.to_pylist()[0], storage)
    except (TypeError, ValueError) as exc:
        raise ctx.error(f"DATA() cannot inline this value: {exc}", node) from exc
    name = ctx.fresh("data_")
    ctx.snippets[name] = f"({literal})"
    return exp.column(name)


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


def _infer_data(tr: Translator, node: exp.Expression) -> ColumnKind:
    if isinstance(node, exp.Anonymous) and node.expressions:
        return tr.infer(node.expressions[0])
    return UNKNOWN


# -- CONTAINS, ANY, ALL ------------------------------------------------------------------------
def _contains(tr: Translator, node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    target, value = args
    kind = tr.infer(target)
    index = class_index(tr.ctx, kind, value) if kind.kind == "class_label" else None
    value_sql = index if index is not None else tr.translate(value)
    target_sql = tr.translate(target)
    if kind.kind in ("text", "json", "json_value"):
        return exp.Anonymous(
            this="contains", expressions=[exp.cast(target_sql, "VARCHAR"), value_sql]
        )
    if kind.kind == "class_label" and not kind.is_list:
        return exp.EQ(this=target_sql, expression=value_sql)
    return exp.Anonymous(this="list_contains", expressions=[target_sql, value_sql])


def _reducer(reducer: str, empty: Callable[[], exp.Expression]) -> Translation:
    """``ANY``/``ALL``/``ALL_STRICT`` of a condition over the elements of array columns.

    ``x > ANY(SELECT ...)`` (a subquery) keeps SQL's meaning.
    """

    def translate(
        tr: Translator, node: exp.Expression, args: list[exp.Expression]
    ) -> exp.Expression:
        inner = node.this if isinstance(node, (exp.Any, exp.All)) else args[0]
        if isinstance(node, (exp.Any, exp.All)) and (
            isinstance(inner, (exp.Subquery, exp.Select))
            or (isinstance(inner, exp.Paren) and isinstance(inner.this, (exp.Select, exp.Subquery)))
        ):
            tr.translate_children(node)
            return node
        return _reduce(tr, node, inner, reducer, empty())

    return translate


def _reduce(
    tr: Translator,
    node: exp.Expression,
    inner: exp.Expression,
    reducer: str,
    empty: exp.Expression,
) -> exp.Expression:
    ctx = tr.ctx
    while isinstance(inner, exp.Paren):
        inner = inner.this
    arrays = [c for c in inner.find_all(exp.Column) if tr.infer(c).arrayish]
    if not arrays:
        if tr.infer(inner).arrayish:
            reduced = exp.Anonymous(this=reducer, expressions=[tr.translate(inner)])
            return exp.Coalesce(this=reduced, expressions=[empty])
        fn = parser.function_name(node) or type(node).__name__.lower()
        raise ctx.error(f"{fn.upper()}() needs an array column in its argument", node)
    first = arrays[0].copy()
    index = "__lf_i"
    for col in arrays:
        elem = bracket1(col.copy(), [exp.column(index)])
        elem.meta["lf_raw"] = True
        ctx.origins[id(elem.this)] = ctx.origins[id(col)]
        if col is inner:
            inner = elem
        else:
            col.replace(elem)
    body = tr.translate(inner)
    ctx.origins[id(first)] = ctx.origins[id(arrays[0])]
    length = exp.Anonymous(this="len", expressions=[tr.translate(first)])
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


# -- row identity ------------------------------------------------------------------------------
def _row_number(tr: Translator, node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    found = tr.ctx.current_source()
    if found is None:
        raise tr.ctx.error(
            "ROW_NUMBER() without OVER needs a query over one dataset (no join)", node
        )
    alias, occ = found
    occ.want_row = True
    return exp.column(ROW, table=exp.to_identifier(alias))


def _not_windowed(node: exp.Expression) -> bool:
    return not isinstance(node.parent, exp.Window)


def _gives(kind: ColumnKind) -> Inference:
    return lambda tr, node: kind


#: Every TQL function the planner translates (see the module docstring).
FUNCTIONS = FunctionRegistry(
    [
        TqlFunction(
            names=("cosine_similarity",),
            arity=2,
            doc="COSINE_SIMILARITY(a, b): cosine similarity of two vectors",
            example="COSINE_SIMILARITY(emb, ARRAY[1, 0])",
            returns=_gives(NUMBER),
            translate=_vector_function("array_cosine_similarity", "list_cosine_similarity"),
            fast_path=_similarity_column("cosine"),
        ),
        TqlFunction(
            names=("dot",),
            arity=2,
            doc="DOT(a, b): inner product of two vectors",
            example="DOT(emb, ARRAY[1, 0])",
            returns=_gives(NUMBER),
            translate=_vector_function("array_inner_product", "list_inner_product"),
            fast_path=_similarity_column("dot"),
        ),
        TqlFunction(
            names=("l2_norm",),
            arity=1,
            doc="L2_NORM(a): Euclidean norm of an array; L2_NORM(a - b) is their distance",
            example="L2_NORM(emb - ARRAY[1, 0])",
            returns=_gives(NUMBER),
            translate=_norm("l2_norm"),
        ),
        TqlFunction(
            names=("l1_norm",),
            arity=1,
            doc="L1_NORM(a): sum of the absolute values of an array",
            example="L1_NORM(emb)",
            returns=_gives(NUMBER),
            translate=_norm("l1_norm"),
        ),
        TqlFunction(
            names=("linf_norm",),
            arity=1,
            doc="LINF_NORM(a): largest absolute value of an array",
            example="LINF_NORM(emb)",
            returns=_gives(NUMBER),
            translate=_norm("linf_norm"),
        ),
        TqlFunction(
            names=("bm25_similarity",),
            arity=2,
            doc="BM25_SIMILARITY(column, 'query'): BM25 score of a text column over its source",
            example="BM25_SIMILARITY(title, 'red car')",
            returns=_gives(NUMBER),
            translate=_bm25,
            reads_rows=True,
        ),
        TqlFunction(
            names=("shape",),
            arity=1,
            doc="SHAPE(x): shape of an array or image (from its header), as a list",
            example="SHAPE(image)",
            returns=_gives(LIST),
            translate=_shape,
        ),
        TqlFunction(
            names=("data",),
            arity=2,
            doc="DATA(column, i): the value of a column at row i, read once and inlined",
            example="DATA(emb, 0)",
            returns=_infer_data,
            translate=_data,
        ),
        TqlFunction(
            names=("contains",),
            arity=2,
            doc="CONTAINS(column, value): text contains, list contains, or label is",
            example="CONTAINS(labels, 'cat')",
            returns=_gives(BOOL),
            translate=_contains,
            node_types=(exp.Contains,),
            arity_message="CONTAINS takes two arguments: CONTAINS(column, value)",
        ),
        TqlFunction(
            names=("any",),
            arity=1,
            doc="ANY(condition): the condition holds for some element of the arrays in it",
            example="ANY(boxes > 2)",
            returns=_gives(BOOL),
            translate=_reducer("list_bool_or", exp.false),
            node_types=(exp.Any,),
            arity_message="ANY takes one argument",
        ),
        TqlFunction(
            names=("all",),
            arity=1,
            doc="ALL(condition): the condition holds for every element (true when empty)",
            example="ALL(boxes > 2)",
            returns=_gives(BOOL),
            translate=_reducer("list_bool_and", exp.true),
            node_types=(exp.All,),
            arity_message="ALL takes one argument",
        ),
        TqlFunction(
            names=("all_strict",),
            arity=1,
            doc="ALL_STRICT(condition): as ALL, but false for empty arrays",
            example="ALL_STRICT(boxes > 2)",
            returns=_gives(BOOL),
            translate=_reducer("list_bool_and", exp.false),
            arity_message="ALL_STRICT takes one argument",
        ),
        TqlFunction(
            names=("row_number",),
            arity=0,
            doc="ROW_NUMBER(): the row's index in its source (without OVER)",
            example="ROW_NUMBER()",
            returns=_gives(NUMBER),
            translate=_row_number,
            node_types=(exp.RowNumber,),
            reads_rows=True,
            applies=_not_windowed,
        ),
    ]
)
