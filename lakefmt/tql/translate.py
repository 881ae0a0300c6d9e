"""TQL syntax tree -> DuckDB SQL over the sources' relations, and what the result means.

The planner works on the sqlglot tree of a checked query (:mod:`lakefmt.tql.parser`):

1. ``SELECT`` statements without ``FROM`` get the implicit source (the dataset ``ds.query``
   was called on); every table name is resolved to a source (``FROM "url@version"``) and
   replaced by a placeholder for its relation.
2. Scopes (sqlglot's) are walked bottom-up: column references are resolved against their
   sources (unknown ones raise :class:`QueryError` listing the columns), ``*`` is expanded
   (media columns only when named), and each ``SELECT`` is classified: does each of its result
   rows stand for one source row (a filter, sort, limit, window, union of such), or is it a
   new row (aggregate, ``DISTINCT``, join)?
3. If the whole query keeps row identity, the result is *row references*: the top
   projection returns the hidden identity columns, the cheap columns (numbers, text) and the
   computed ones; media, vectors and other large columns are not read at all, the result
   view reads them lazily by row. Otherwise the result is a computed table.
4. Expressions are translated to DuckDB by :mod:`lakefmt.tql.expressions` (TQL's operator
   conventions) and the function registry :mod:`lakefmt.tql.functions` (vector similarity
   and norms, ``CONTAINS``, BM25, ``SHAPE``, ``DATA``, ``ANY``/``ALL`` over arrays,
   ``ROW_NUMBER()`` as the row index), reading and adding to the query's
   :class:`~lakefmt.tql.context.PlanningContext`.
5. The relations of the sources (:mod:`lakefmt.tql.relations`) replace their placeholders.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from lakefmt.errors import LakefmtError, QueryError
from lakefmt.tql import parser, pruning
from lakefmt.tql.columns import ColumnKind
from lakefmt.tql.context import Occurrence, Origin, PlanningContext
from lakefmt.tql.expressions import ExpressionTranslator
from lakefmt.tql.functions import FUNCTIONS
from lakefmt.tql.models import (
    FRAG,
    POS,
    DatasetSource,
    Source,
)
from lakefmt.tql.relations import RelationBuilder, readable_dirs
from lakefmt.tql.sqltree import (
    auto_name,
    double_list,
    has_aggregate,
    leaf_selects,
    star_excluded,
    star_target,
    unique_name,
    walk_scope,
)

IMPLICIT = "__lf_implicit"
WEIGHT = "__lf_weight"
_REL = "__lf_rel_"

Resolver = Callable[[str], Source]


@dataclasses.dataclass
class OutputColumn:
    """One column of a query result.

    Attributes:
        name: Its name.
        kind: How the engine classified it.
        field: The dataset field it passes through unchanged, if any.
        type: Its lakefmt type when known (extension types are re-wrapped from it).
        lazy: Not in the result table: read from the source by row reference.
    """

    name: str
    kind: ColumnKind
    field: Any = None
    type: Any = None
    lazy: bool = False


@dataclasses.dataclass
class Plan:
    """A translated query.

    Attributes:
        sql: The DuckDB SQL.
        tables: Arrow tables to register for it.
        directories: Local dataset directories it reads.
        row_source: For row-reference results, the source the rows belong to.
        identity: Names of the identity columns in the result (row results).
        columns: The result's columns (row results: all of them, lazy ones included).
        sample: ``(replace, limit)`` when the query samples (weights in ``__lf_weight``).
        natural_order: Row results without ORDER BY come back in source order.
        notes: What the relations skipped (fragments pruned by statistics), for explain.
    """

    sql: str
    tables: list[tuple[str, pa.Table]]
    directories: tuple[str, ...]
    row_source: Source | None
    identity: tuple[str, ...]
    columns: list[OutputColumn]
    sample: tuple[bool, int | None] | None
    natural_order: bool
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _ScopeInfo:
    outputs: list[tuple[str, Origin]]
    preserving: Occurrence | None  # the occurrence whose rows each result row stands for
    source_alias: str | None = None  # alias of the single FROM source (row-preserving selects)


class Planner:
    """Translates one parsed query.

    Args:
        parsed: The checked syntax tree.
        default: The implicit source (``ds.query``), or None (``lakefmt.query``).
        resolve: Opens a ``FROM "url@version"`` source.
        builder: Builds relation SQL for sources.
    """

    def __init__(
        self,
        parsed: parser.ParsedQuery,
        default: Source | None,
        resolve: Resolver | None,
        builder: RelationBuilder,
    ) -> None:
        self.parsed = parsed
        self.text = parsed.text
        self.default = default
        self.resolve = resolve
        self.builder = builder
        self.occurrences: list[Occurrence] = []
        self.ctx = PlanningContext(parsed.vectors)
        # lifted vector literals go back into the SQL text at the end
        self.ctx.snippets.update({n: double_list(v) for n, v in parsed.vectors.items()})
        self.expressions = ExpressionTranslator(self.ctx)
        self._sources: dict[str, Source] = {}
        self._info: dict[int, _ScopeInfo] = {}
        self._aliases: set[str] = set()
        self._from_cols: dict[int, dict[str, list[tuple[str, Origin]]]] = {}
        self._root_branches: set[int] = set()

    # -- entry point -------------------------------------------------------------------------------
    def plan(self) -> Plan:
        """Translate the query; see :class:`Plan`."""
        tree = self.parsed.tree
        sample = self.parsed.sample
        sample_limit: int | None = None
        if sample is not None:
            tree, sample_limit = self._prepare_sample(tree, sample)
        self._add_implicit_from(tree)
        self._bind_tables(tree)
        self._aliases = {a.alias for a in tree.find_all(exp.Alias) if a.alias}
        scopes = traverse_scope(tree)
        root_scope = scopes[-1] if scopes else None
        self._preserving_pass(scopes)
        row_kind = (
            root_scope is not None and self._info[id(root_scope.expression)].preserving is not None
        )
        if (
            row_kind
            and root_scope is not None
            and isinstance(root_scope.expression, exp.SetOperation)
        ):
            self._root_branches = {id(s) for s in leaf_selects(root_scope.expression)}
        for scope in scopes:
            self._resolve_scope(scope, row_kind=row_kind, is_root=scope is root_scope)
        self._find_conditions(tree)
        columns: list[OutputColumn] = []
        identity: tuple[str, ...] = ()
        row_source: Source | None = None
        if row_kind:
            assert root_scope is not None
            occ = self._info[id(root_scope.expression)].preserving
            assert occ is not None
            row_source = occ.source
            identity = occ.source.identity
            columns = self._rewrite_root(root_scope, identity)
        else:
            columns = self._table_columns(root_scope)
        self._order_limited_subqueries(tree, root_scope)
        tree = self.expressions.translate_tree(tree)
        natural = False
        if row_kind:
            has_order = tree.args.get("order") is not None
            if not has_order and (
                tree.args.get("limit") is not None or tree.args.get("offset") is not None
            ):
                tree.set(
                    "order",
                    exp.Order(expressions=[exp.Ordered(this=exp.column(c)) for c in identity]),
                )
            natural = not has_order and sample is None
        sql = tree.sql(dialect=parser.DIALECT)
        sql = self._substitute(sql)
        directories: list[str] = []
        for occ in self.occurrences:
            if isinstance(occ.source, DatasetSource):
                directories.extend(readable_dirs(occ.source.snapshot.storage))
        return Plan(
            sql=sql,
            tables=self.builder.registry.tables,
            directories=tuple(dict.fromkeys(directories)),
            row_source=row_source,
            identity=identity,
            columns=columns,
            sample=(sample.replace, sample_limit) if sample is not None else None,
            natural_order=natural,
            notes=list(self.builder.notes),
        )

    def _order_limited_subqueries(self, tree: exp.Expression, root: Scope | None) -> None:
        """``LIMIT``/``OFFSET`` without ``ORDER BY`` takes the first rows in source order.

        (The top-level SELECT of a row query is handled by :meth:`plan`.)
        """
        for select in tree.find_all(exp.Select):
            if root is not None and select is root.expression:
                continue
            if select.args.get("order") is not None or (
                select.args.get("limit") is None and select.args.get("offset") is None
            ):
                continue
            info = self._info.get(id(select))
            if info is None or info.preserving is None or info.source_alias is None:
                continue
            alias = exp.to_identifier(info.source_alias)
            keys = [
                exp.Ordered(this=exp.column(c, table=alias.copy()))
                for c in info.preserving.source.identity
            ]
            select.set("order", exp.Order(expressions=keys))

    # -- SAMPLE BY ---------------------------------------------------------------------------------
    def _prepare_sample(
        self, tree: exp.Expression, sample: parser.SampleClause
    ) -> tuple[exp.Expression, int | None]:
        limit_node = tree.args.get("limit")
        limit: int | None = None
        if limit_node is not None:
            value = limit_node.expression if isinstance(limit_node, exp.Limit) else limit_node
            if not (
                isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()
            ):
                raise self.ctx.error(
                    "SAMPLE BY ... LIMIT takes a whole number", position=sample.position
                )
            limit = int(value.this)
            tree.set("limit", None)
        if tree.args.get("offset") is not None:
            raise self.ctx.error(
                "SAMPLE BY cannot be combined with OFFSET", position=sample.position
            )
        if tree.args.get("order") is not None:
            raise self.ctx.error(
                "SAMPLE BY cannot be combined with ORDER BY", position=sample.position
            )
        weight = exp.Alias(this=exp.Paren(this=sample.weight), alias=exp.to_identifier(WEIGHT))
        if (
            isinstance(tree, exp.Select)
            and not tree.args.get("distinct")
            and not tree.args.get("group")
        ):
            tree.append("expressions", weight)
            return tree, limit
        wrapped = exp.Select(expressions=[exp.Star(), weight])
        wrapped.set(
            "from_",
            exp.From(
                this=exp.Subquery(
                    this=tree, alias=exp.TableAlias(this=exp.to_identifier("__lf_sampled"))
                )
            ),
        )
        return wrapped, limit

    # -- sources -----------------------------------------------------------------------------------
    def _add_implicit_from(self, tree: exp.Expression) -> None:
        for select in list(tree.find_all(exp.Select)):
            if select.args.get("from_") is not None:
                continue
            uses_rows = False
            for node in walk_scope(select):
                if isinstance(node, exp.Column) and node.name in self.ctx.snippets:
                    continue
                function = FUNCTIONS.lookup(node)
                if isinstance(node, (exp.Column, exp.Star)) or (
                    function is not None and function.reads_rows
                ):
                    uses_rows = True
                    break
            if not uses_rows:
                continue
            if self.default is None:
                raise QueryError(
                    'no dataset to query: name one with FROM "url" (or call ds.query on a dataset)',
                    position=0,
                )
            select.set(
                "from_", exp.From(this=exp.Table(this=exp.to_identifier(IMPLICIT, quoted=True)))
            )

    def _bind_tables(self, tree: exp.Expression) -> None:
        ctes = {str(c.alias).lower() for c in tree.find_all(exp.CTE) if c.alias}
        for table in list(tree.find_all(exp.Table)):
            name = table.name
            if not table.args.get("db") and name.lower() in ctes and not table.this.quoted:
                continue
            if name == IMPLICIT:
                source = self.default
                spec = "(the dataset)"
            else:
                source = self._sources.get(name)
                spec = name
                if source is None:
                    if self.resolve is None:
                        raise self.ctx.error(f"cannot open dataset {name!r} here", table)
                    try:
                        source = self.resolve(name)
                    except QueryError as exc:
                        if exc.position is not None:
                            raise
                        raise self.ctx.error(str(exc), table) from None
                    except LakefmtError as exc:
                        raise self.ctx.error(f"cannot open dataset {name!r}: {exc}", table) from exc
                    except (OSError, ValueError) as exc:
                        raise self.ctx.error(f"cannot open dataset {name!r}: {exc}", table) from exc
                    self._sources[name] = source
            assert source is not None
            k = len(self.occurrences)
            alias = table.alias or f"__lf_s{k}"
            occ = Occurrence(k, source, alias, spec)
            occ.visible = {v.name: v for v in source.visible()}
            self.occurrences.append(occ)
            placeholder = f"{_REL}{k}"
            self.ctx.by_placeholder[placeholder] = occ
            table.set("this", exp.to_identifier(placeholder, quoted=True))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))

    def _occurrence_of(self, table: exp.Table) -> Occurrence | None:
        return self.ctx.by_placeholder.get(table.name)

    def _find_conditions(self, tree: exp.Expression) -> None:
        """The WHERE terms each occurrence's statistics can decide (fragment pruning): only
        of a SELECT reading that one occurrence with no join, so the WHERE filters exactly
        its rows before anything else sees them."""
        for select in tree.find_all(exp.Select):
            found = self.ctx.select_source.get(id(select))
            where = select.args.get("where")
            if found is None or found[1] is None or where is None:
                continue
            occ = found[1]
            stored = functools.partial(self._stored_column, occ)
            occ.conditions.extend(pruning.conditions_of(where.this, stored))

    def _stored_column(
        self, occ: Occurrence, node: exp.Expression
    ) -> tuple[str, pa.DataType] | None:
        """(visible name, Arrow type) of a scalar stored column of ``occ`` that ``node`` reads."""
        origin = self.ctx.origins.get(id(node))
        visible = origin.visible if origin is not None else None
        if (
            origin is None
            or origin.occurrence is not occ
            or visible is None
            or visible.field is None
            or visible.kind.kind not in ("number", "bool", "text")
        ):
            return None
        return visible.name, visible.arrow_type

    # -- scope analysis ----------------------------------------------------------------------------
    def _preserving_pass(self, scopes: list[Scope]) -> None:
        """Which scopes keep row identity, and of which occurrence."""
        for scope in scopes:
            node = scope.expression
            if isinstance(node, exp.SetOperation):
                branches = [self._info.get(id(s.expression)) for s in scope.set_operation_scopes]
                occs = [b.preserving if b else None for b in branches]
                keep = None
                if occs and all(o is not None for o in occs):
                    first = occs[0]
                    assert first is not None
                    if all(o.source is first.source for o in occs if o is not None):
                        keep = first
                self._info[id(node)] = _ScopeInfo([], keep)
                continue
            if not isinstance(node, exp.Select):
                self._info[id(node)] = _ScopeInfo([], None)
                continue
            keep = None
            alias = None
            from_ = node.args.get("from_")
            if (
                from_ is not None
                and not node.args.get("joins")
                and not node.args.get("distinct")
                and not node.args.get("group")
                and not node.args.get("having")
                and not has_aggregate(node)
            ):
                target = from_.this
                alias = target.alias_or_name
                if isinstance(target, exp.Table):
                    occ = self._occurrence_of(target)
                    if occ is not None:
                        keep = occ
                    else:  # a CTE
                        child = scope.sources.get(alias)
                        if isinstance(child, Scope):
                            info = self._info.get(id(child.expression))
                            keep = info.preserving if info else None
                elif isinstance(target, exp.Subquery):
                    child = scope.sources.get(alias)
                    if isinstance(child, Scope):
                        info = self._info.get(id(child.expression))
                        keep = info.preserving if info else None
            self._info[id(node)] = _ScopeInfo([], keep, alias)
            if (
                from_ is not None
                and isinstance(from_.this, exp.Table)
                and not node.args.get("joins")
            ):
                occ = self._occurrence_of(from_.this)
                self.ctx.select_source[id(node)] = (from_.this.alias_or_name, occ)

    def _source_columns(self, scope: Scope, name: str, source: Any) -> list[tuple[str, Origin]]:
        """The columns a FROM item of ``scope`` shows (its name ``name``)."""
        if isinstance(source, exp.Table):
            occ = self._occurrence_of(source)
            if occ is None:
                return []
            return [(v.name, Origin(v.kind, occ, v.name)) for v in occ.visible.values()]
        if isinstance(source, Scope):
            info = self._info.get(id(source.expression))
            return list(info.outputs) if info else []
        return []

    def _resolve_scope(self, scope: Scope, *, row_kind: bool, is_root: bool) -> None:
        node = scope.expression
        info = self._info[id(node)]
        if isinstance(node, exp.SetOperation):
            first = (
                self._info.get(id(scope.set_operation_scopes[0].expression))
                if scope.set_operation_scopes
                else None
            )
            info.outputs = list(first.outputs) if first else []
            if info.preserving is not None and (scope.is_derived_table or scope.is_cte):
                for branch in leaf_selects(node):
                    self._add_identity(branch, info.preserving)
            return
        if not isinstance(node, exp.Select):
            return
        selected = dict(scope.selected_sources)
        columns_of = {
            name: self._source_columns(scope, name, src) for name, (_, src) in selected.items()
        }
        self._from_cols[id(node)] = columns_of
        select_aliases = {e.alias for e in node.expressions if isinstance(e, exp.Alias)}
        # column references (sqlglot also lists a subquery's unqualified columns here, as
        # possible outer references: those belong to the subquery's own scope, resolved there)
        for col in scope.columns:
            if isinstance(col.this, exp.Star) or col.find_ancestor(exp.Select) is not node:
                continue
            self._resolve_column(scope, col, columns_of, select_aliases)
        # star expansion (not in the root of a row query: that projection is rewritten later)
        root_like = row_kind and (is_root or id(node) in self._root_branches)
        expand = not root_like and not scope.is_subquery
        if is_root and not row_kind:
            self._name_root_items(node)
        outputs: list[tuple[str, Origin]] = []
        new_items: list[exp.Expr] = []
        seen: dict[str, int] = {}
        changed = False
        for item in node.expressions:
            star_of = star_target(item)
            if star_of is not None and expand:
                changed = True
                excluded = star_excluded(item)
                for src_name, cols in columns_of.items():
                    if star_of and src_name != star_of:
                        continue
                    for name, origin in cols:
                        if name in excluded or name.startswith(parser.RESERVED_PREFIX):
                            continue
                        heavy = origin.kind.heavy
                        if heavy and row_kind and not self._named_anywhere(name):
                            # lazy: never projected
                            outputs.append((unique_name(name, seen), origin))
                            continue
                        if origin.occurrence is not None and origin.name is not None:
                            origin.occurrence.need(origin.name)
                        out = unique_name(name, seen)
                        ref = exp.column(  # an unnamed derived table: no qualifier
                            exp.to_identifier(name, quoted=True),
                            table=exp.to_identifier(src_name) if src_name else None,
                        )
                        self.ctx.origins[id(ref)] = origin
                        new_items.append(
                            ref if out == name else exp.alias_(ref, out, quoted=True, copy=False)
                        )
                        outputs.append((out, origin))
                continue
            if star_of is not None:  # root of a row query, or a subquery: keep the star
                new_items.append(item)
                for src_name, cols in columns_of.items():
                    if star_of and src_name != star_of:
                        continue
                    for name, origin in cols:
                        if name.startswith(parser.RESERVED_PREFIX):
                            continue
                        if (
                            not root_like
                            and origin.occurrence is not None
                            and origin.name is not None
                            and (not origin.kind.heavy or self._named_anywhere(name))
                        ):
                            origin.occurrence.need(origin.name)
                        outputs.append((unique_name(name, seen), origin))
                continue
            new_items.append(item)
            inner = item.this if isinstance(item, exp.Alias) else item
            name = item.alias_or_name
            if isinstance(inner, exp.Column) and id(inner) in self.ctx.origins:
                origin = self.ctx.origins[id(inner)]
            else:
                origin = Origin(self.expressions.infer(inner))
            outputs.append((unique_name(name, seen), origin))
        if changed:
            node.set("expressions", new_items)
        info.outputs = outputs
        if info.preserving is not None and (scope.is_derived_table or scope.is_cte) and not is_root:
            self._add_identity(node, info.preserving)

    def _name_root_items(self, select: exp.Select) -> None:
        """Give unnamed computed result columns their TQL text as name (``COUNT(*)``)."""
        items: list[exp.Expr] = []
        for item in select.expressions:
            if isinstance(item, (exp.Alias, exp.Column, exp.Star)):
                items.append(item)
            else:
                items.append(exp.alias_(item, auto_name(item), quoted=True, copy=False))
        select.set("expressions", items)

    def _named_anywhere(self, name: str) -> bool:
        return any(c.name == name for c in self.parsed.tree.find_all(exp.Column))

    def _add_identity(self, select: exp.Select, occ: Occurrence) -> None:
        info = self._info.get(id(select))
        alias = info.source_alias if info else None
        present = {e.alias_or_name for e in select.expressions}
        for col in occ.source.identity:
            if col in present:
                continue
            ref = exp.column(col, table=exp.to_identifier(alias) if alias else None)
            select.append("expressions", exp.alias_(ref, col, copy=False))

    def _resolve_column(
        self,
        scope: Scope,
        col: exp.Column,
        columns_of: dict[str, list[tuple[str, Origin]]],
        select_aliases: set[str],
    ) -> None:
        name = col.name
        table = col.table
        if name.startswith(parser.RESERVED_PREFIX):
            return
        if table:
            if table in scope.sources:
                cols = columns_of.get(table)
                if cols is None:
                    cols = self._source_columns(scope, table, scope.sources[table])
                match = [o for n, o in cols if n == name]
                if not match:
                    if not cols:
                        return  # a source we know nothing about (e.g. a CTE without columns)
                    raise self._unknown_column(col, [n for n, _ in cols])
                self._set_origin(col, match[0])
                return
            parent = scope.parent
            while parent is not None:  # a correlated reference to an outer query's source
                if isinstance(parent.expression, exp.Select) and table in parent.sources:
                    cols = self._source_columns(parent, table, parent.sources[table])
                    match = [o for n, o in cols if n == name]
                    if match:
                        self._set_origin(col, match[0])
                    return
                parent = parent.parent
            return  # struct field access: DuckDB resolves it
        matches = [o for cols in columns_of.values() for n, o in cols if n == name]
        if len(matches) >= 1:
            self._set_origin(col, matches[0])
            return
        if name in select_aliases or name in self._aliases:
            return
        parent = scope.parent
        while parent is not None:  # a correlated reference to an outer query
            if isinstance(parent.expression, exp.Select):
                outer = {
                    n: self._source_columns(parent, n, s)
                    for n, (_, s) in dict(parent.selected_sources).items()
                }
                found = [o for cols in outer.values() for n, o in cols if n == name]
                if found:
                    self._set_origin(col, found[0])
                    return
            parent = parent.parent
        available = sorted({n for cols in columns_of.values() for n, _ in cols})
        if all(not cols for cols in columns_of.values()) and any(
            isinstance(s, Scope) for _, s in dict(scope.selected_sources).values()
        ):
            return  # columns of a derived table we could not see: let DuckDB decide
        raise self._unknown_column(col, available)

    def _unknown_column(self, col: exp.Column, available: list[str]) -> QueryError:
        pos = self.ctx.position(col)
        where = f" at position {pos}" if pos is not None else ""
        return QueryError(
            f"unknown column '{col.sql(dialect=parser.DIALECT).replace(chr(34), '')}'{where}; "
            f"columns are {available}",
            position=pos,
        )

    def _set_origin(self, col: exp.Column, origin: Origin) -> None:
        self.ctx.origins[id(col)] = origin
        if origin.occurrence is not None and origin.name is not None:
            origin.occurrence.need(origin.name)

    # -- the result's projection -------------------------------------------------------------------
    def _rewrite_root(self, root: Scope, identity: tuple[str, ...]) -> list[OutputColumn]:
        node = root.expression
        columns: list[OutputColumn] | None = None
        for select in leaf_selects(node):
            cols = self._rewrite_select(select, identity)
            if columns is None:
                columns = cols
        return columns or []

    def _rewrite_select(self, select: exp.Select, identity: tuple[str, ...]) -> list[OutputColumn]:
        info = self._info[id(select)]
        scope_sources = self._from_columns(select)
        alias = info.source_alias
        items: list[exp.Expr] = [
            exp.alias_(
                exp.column(c, table=exp.to_identifier(alias) if alias else None), c, copy=False
            )
            for c in identity
        ]
        columns: list[OutputColumn] = []
        seen: dict[str, int] = {}

        def add_passthrough(name: str, ref: exp.Expression, origin: Origin) -> None:
            out = unique_name(name, seen)
            visible = origin.visible
            lazy = not origin.kind.eager and visible is not None and visible.field is not None
            columns.append(
                OutputColumn(
                    out,
                    origin.kind,
                    field=visible.field if visible is not None else None,
                    type=visible.type if visible is not None else None,
                    lazy=lazy,
                )
            )
            if not lazy:
                items.append(exp.alias_(ref, out, quoted=True, copy=False))

        for item in select.expressions:
            star_of = star_target(item)
            if star_of is not None:
                excluded = star_excluded(item)
                for name, origin in scope_sources:
                    if name in excluded or name.startswith(parser.RESERVED_PREFIX):
                        continue
                    ref = exp.column(
                        exp.to_identifier(name, quoted=True),
                        table=exp.to_identifier(alias) if alias else None,
                    )
                    if (
                        origin.kind.eager
                        and origin.occurrence is not None
                        and origin.name is not None
                    ):
                        origin.occurrence.need(origin.name)
                    add_passthrough(name, ref, origin)
                continue
            if isinstance(item, exp.Alias) and item.alias == WEIGHT:
                items.append(item)
                continue
            inner = item.this if isinstance(item, exp.Alias) else item
            name = (
                item.alias_or_name
                if isinstance(item, exp.Alias) or isinstance(inner, exp.Column)
                else auto_name(inner)
            )
            if isinstance(inner, exp.Column) and id(inner) in self.ctx.origins:
                add_passthrough(name, inner, self.ctx.origins[id(inner)])
                continue
            out = unique_name(name, seen)
            columns.append(OutputColumn(out, self.expressions.infer(inner)))
            items.append(exp.alias_(inner, out, quoted=True, copy=False))
        select.set("expressions", items)
        return columns

    def _from_columns(self, select: exp.Select) -> list[tuple[str, Origin]]:
        """The columns of the single FROM source of ``select``."""
        columns_of = self._from_cols.get(id(select), {})
        out: list[tuple[str, Origin]] = []
        for cols in columns_of.values():
            out.extend((n, o) for n, o in cols if not n.startswith(parser.RESERVED_PREFIX))
        return out

    def _table_columns(self, root: Scope | None) -> list[OutputColumn]:
        if root is None:
            return []
        info = self._info.get(id(root.expression))
        if info is None:
            return []
        out = []
        for name, origin in info.outputs:
            if name.startswith(parser.RESERVED_PREFIX):
                continue
            visible = origin.visible
            out.append(
                OutputColumn(
                    name,
                    origin.kind,
                    field=visible.field if visible is not None else None,
                    type=visible.type if visible is not None else None,
                )
            )
        return out

    # -- SQL text ----------------------------------------------------------------------------------
    def _substitute(self, sql: str) -> str:
        # aggregates never read the identity columns: the relations can leave them out
        identity = FRAG in sql or POS in sql
        for occ in self.occurrences:
            relation = self.builder.relation(
                occ.source,
                occ.needed,
                want_row=occ.want_row,
                bm25=occ.bm25,
                similarity=occ.similarity,
                identity=identity,
                conditions=occ.conditions,
            )
            placeholder = f'"{_REL}{occ.index}"'
            if placeholder not in sql:
                raise QueryError(f"internal error: lost the relation of {occ.spec}")
            sql = sql.replace(placeholder, f"({relation})", 1)
        for name in sorted(self.ctx.snippets, key=len, reverse=True):
            sql = sql.replace(name, self.ctx.snippets[name])
        return sql
