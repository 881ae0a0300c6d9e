"""The state one query's planning shares between the planner and the function library.

The planner (:mod:`lakefmt.tql.translate`) resolves the query's sources and columns into a
:class:`PlanningContext`; the expression translator (:mod:`lakefmt.tql.expressions`) and the
TQL functions (:mod:`lakefmt.tql.functions`) read it and add to it (score columns asked of a
relation, literals inlined into the SQL). Function translators reach the expression
translator through the :class:`Translator` protocol, so no module reaches into another
class's private state.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import pyarrow as pa
from sqlglot import exp

from lakefmt.errors import QueryError
from lakefmt.tql.columns import ColumnKind
from lakefmt.tql.models import Bm25Request, SimilarityRequest, Source, Visible
from lakefmt.tql.pruning import Condition


@dataclasses.dataclass(eq=False)
class Occurrence:
    """One place a query reads a source (one relation in the SQL).

    Attributes:
        index: Its number in the query (its placeholder is ``__lf_rel_<index>``).
        source: What it reads.
        alias: Its alias in the SQL.
        spec: How the query named it (messages).
        needed: The visible columns the query reads from it.
        want_row: The query uses its row index (``ROW_NUMBER()`` without ``OVER``).
        bm25: BM25 score columns its relation computes.
        similarity: Similarity score columns its relation computes (numpy fast path).
        visible: Its columns by name.
        conditions: Terms of the WHERE applied directly to its rows that fragment
            statistics can decide (:mod:`lakefmt.tql.pruning`).
    """

    index: int
    source: Source
    alias: str
    spec: str
    needed: list[str] = dataclasses.field(default_factory=list)
    want_row: bool = False
    bm25: list[Bm25Request] = dataclasses.field(default_factory=list)
    similarity: list[SimilarityRequest] = dataclasses.field(default_factory=list)
    visible: dict[str, Visible] = dataclasses.field(default_factory=dict)
    conditions: list[Condition] = dataclasses.field(default_factory=list)

    def need(self, name: str) -> None:
        """Record that the query reads the visible column ``name``."""
        if name not in self.needed:
            self.needed.append(name)


@dataclasses.dataclass
class Origin:
    """Where a column of a scope comes from.

    Attributes:
        kind: How queries treat it.
        occurrence: The source occurrence it passes through from, if any.
        name: The visible column of that occurrence.
    """

    kind: ColumnKind
    occurrence: Occurrence | None = None
    name: str | None = None

    @property
    def visible(self) -> Visible | None:
        """The source column behind it, if it passes one through."""
        if self.occurrence is None or self.name is None:
            return None
        return self.occurrence.visible.get(self.name)


class PlanningContext:
    """What the planner knows of one query while translating it.

    Args:
        vectors: Long numeric array literals lifted out of the text: placeholder -> values.

    Attributes:
        origins: Resolved column references: ``id(Column node)`` -> origin.
        vector_sizes: Lengths of the lifted vectors.
        vector_values: The lifted vectors.
        snippets: Placeholder name -> SQL text substituted into the final SQL.
        select_source: ``id(Select)`` -> (alias, occurrence) of its single ``FROM`` table
            (occurrence None for a CTE).
        select_stack: The SELECTs enclosing the expression being translated.
        by_placeholder: Placeholder table name -> the occurrence it stands for.
    """

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.origins: dict[int, Origin] = {}
        self.vector_sizes = {name: len(values) for name, values in vectors.items()}
        self.vector_values = vectors
        self.snippets: dict[str, str] = {}
        self.select_source: dict[int, tuple[str, Occurrence | None]] = {}
        self.select_stack: list[exp.Select] = []
        self.by_placeholder: dict[str, Occurrence] = {}
        self._counter = 0

    def fresh(self, stem: str) -> str:
        """A new reserved name ``__lf_<stem><n>``."""
        self._counter += 1
        return f"__lf_{stem}{self._counter}"

    @staticmethod
    def position(node: exp.Expression | None) -> int | None:
        """Offset in the query text where ``node`` starts, when the parser recorded it."""
        if node is None:
            return None
        for ident in [node, *node.find_all(exp.Identifier)]:
            meta = ident._meta or {}
            if "start" in meta:
                return int(meta["start"])
        return None

    def error(
        self, message: str, node: exp.Expression | None = None, *, position: int | None = None
    ) -> QueryError:
        """A QueryError about ``node`` (or ``position``), with the position in the message."""
        pos = position if position is not None else self.position(node)
        where = f" at position {pos}" if pos is not None else ""
        return QueryError(f"{message}{where}", position=pos)

    def current_select(self) -> exp.Select | None:
        """The innermost SELECT around the expression being translated."""
        return self.select_stack[-1] if self.select_stack else None

    def current_source(self) -> tuple[str, Occurrence] | None:
        """(alias, occurrence) of the single dataset the current SELECT reads, if it has one."""
        select = self.current_select()
        found = self.select_source.get(id(select)) if select is not None else None
        if found is None or found[1] is None:
            return None
        return found[0], found[1]

    def arrow_type_of(self, node: exp.Expression) -> pa.DataType | None:
        """The Arrow type of the source column ``node`` reads, if it is a resolved column."""
        if isinstance(node, exp.Column):
            origin = self.origins.get(id(node))
            if origin is not None and origin.visible is not None:
                return origin.visible.arrow_type
        return None


class Translator(Protocol):
    """What function translators call back into: the expression translator of the query."""

    ctx: PlanningContext

    def translate(self, node: exp.Expression) -> exp.Expression:
        """``node`` translated to DuckDB (may return a new node)."""
        ...

    def translate_children(self, node: exp.Expression) -> None:
        """Translate ``node``'s children in place."""
        ...

    def infer(self, node: exp.Expression | None) -> ColumnKind:
        """The kind of value ``node`` gives."""
        ...
