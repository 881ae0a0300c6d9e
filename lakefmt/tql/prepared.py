"""Parsed queries reused across literals: a query's *template* is parsed once.

Point lookups, BM25 searches and the like repeat one query shape with other literals
(``WHERE id = 17``, ``WHERE id = 42``). Parsing with sqlglot costs 0.3-0.5 ms per query, more
than an index lookup, so parsed queries are cached by their template: the text (after
:func:`~lakefmt.tql.parser.lift_vectors`) with every plain literal cut out, plus each
literal's kind (``int``, ``decimal``, ``string``: kinds decide how a query plans, so
``id = 3``, ``id = 3.5`` and ``id = '3'`` are three templates).

A :class:`PreparedQuery` holds the tree of the template, parsed once with a unique
*sentinel* literal in each slot; :meth:`PreparedQuery.bind` copies the tree and puts the
query's own literals into the slots (and shifts recorded text positions, so errors still
point into the query as written). A template is used only after a check: the first query of
each template is parsed as written too, and the template is kept only if binding that
query's literals reproduces that parse exactly; otherwise the template is remembered as not
preparable and its queries are parsed one by one.

Only literals whose parse cannot depend on their value are slots: decimal integers and
decimals (no exponent, underscore or sign; ``-3`` is ``-`` applied to ``3``) and plain
single-quoted strings, each right after an operator, ``(``, ``[``, ``,`` or one of
:data:`_SLOT_AFTER_WORDS`. Typed literals (``DATE '...'``, ``INTERVAL '1 day'``), ``E'...'``
strings and queries holding a backslash, ``$`` or ``SAMPLE`` (whose clause is cut out and
read apart from the tree) are never templated. Parsing does not read the dataset, so a
parsed template never goes stale; what depends on the dataset (plans, index choices) is
cached elsewhere by version.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from sqlglot import exp

from lakefmt.errors import QueryError
from lakefmt.format.cache import LRUCache
from lakefmt.tql import parser

#: Whether parsed queries are reused (tests compare against running without).
ENABLED = True
#: Templates kept (each a parsed tree of a few kilobytes).
MAX_TEMPLATES = 512

#: Words after which a literal is a value whatever it holds.
_SLOT_AFTER_WORDS = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "LIKE",
        "ILIKE",
        "GLOB",
        "WHEN",
        "THEN",
        "ELSE",
        "IS",
        "SELECT",
        "WHERE",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "ON",
    }
)
_SLOT_AFTER_CHARS = frozenset("=<>!,([+-*/%|")
_SCANNER = re.compile(
    r"""(?P<string>'(?:[^']|'')*')
      | (?P<ident>"(?:[^"]|"")*")
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>(?<![\w.])\d+(?:\.\d+)?(?![\w.]))
      | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_SENTINEL = "\x01lf"
_UNTEMPLATED = ("\\", "$", _SENTINEL)
_SAMPLE = re.compile(r"\bsample\b", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Template:
    """A query text with its slot literals cut out.

    Attributes:
        pieces: The text between the slots (one more than there are slots).
        kinds: Each slot's kind: ``int``, ``decimal`` or ``string``.
        literals: Each slot's literal as written (quotes included for strings).
    """

    pieces: tuple[str, ...]
    kinds: tuple[str, ...]
    literals: tuple[str, ...]

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What identifies the template (literals excluded)."""
        return self.pieces, self.kinds

    def text(self, literals: Sequence[str]) -> str:
        """The template's text with ``literals`` in its slots."""
        out = [self.pieces[0]]
        for literal, piece in zip(literals, self.pieces[1:], strict=True):
            out.append(literal)
            out.append(piece)
        return "".join(out)


def template_of(text: str) -> Template | None:
    """The template of a (lifted) query text, or None when it has no slot or is not one
    this module templates (see the module docstring)."""
    if any(mark in text for mark in _UNTEMPLATED) or _SAMPLE.search(text):
        return None
    pieces: list[str] = []
    kinds: list[str] = []
    literals: list[str] = []
    last = 0
    previous = ""  # the previous significant token, upper-cased
    for match in _SCANNER.finditer(text):
        group = match.lastgroup
        token = match.group()
        if group == "comment":
            continue
        if (
            group in ("string", "number")
            and (previous in _SLOT_AFTER_WORDS or previous in _SLOT_AFTER_CHARS)
            and "%" not in token  # sqlglot rewrites format strings (strftime's '%Y')
        ):
            kind = "string" if group == "string" else "decimal" if "." in token else "int"
            pieces.append(text[last : match.start()])
            kinds.append(kind)
            literals.append(token)
            last = match.end()
        previous = token.upper() if group == "word" else token[-1:]
    if not kinds:
        return None
    pieces.append(text[last:])
    return Template(tuple(pieces), tuple(kinds), tuple(literals))


def _sentinel(kind: str, slot: int) -> str:
    if kind == "string":
        return f"'{_SENTINEL}{slot}'"
    number = f"9{slot:04d}7310"  # digits no plain literal of a query shares (slot's own)
    return f"{number}.5" if kind == "decimal" else number


def _literal_value(literal: str) -> str:
    """What sqlglot keeps in ``Literal.this`` for a slot literal as written."""
    if literal.startswith("'"):
        return literal[1:-1].replace("''", "'")
    return literal


@dataclasses.dataclass
class PreparedQuery:
    """A parsed query template; :meth:`bind` gives the parsed query for given literals.

    Attributes:
        template: The template (the literals of the query it was prepared from).
        parsed: The template parsed with sentinel literals.
        slots: Sentinel value in the tree -> slot number.
    """

    template: Template
    parsed: parser.ParsedQuery
    slots: dict[tuple[str, bool], int]

    @classmethod
    def prepare(cls, template: Template) -> PreparedQuery:
        """Parse ``template`` with sentinels in its slots.

        Raises:
            QueryError: The template does not parse (its queries then fail as written).
        """
        sentinels = [_sentinel(k, i) for i, k in enumerate(template.kinds)]
        parsed = parser.parse(template.text(sentinels))
        slots = {
            (_literal_value(s), kind == "string"): i
            for i, (s, kind) in enumerate(zip(sentinels, template.kinds, strict=True))
        }
        return cls(template, parsed, slots)

    def bind(
        self, text: str, literals: Sequence[str], vectors: dict[str, list[float]]
    ) -> parser.ParsedQuery:
        """The parsed query of ``text``: this template with ``literals`` in its slots.

        Args:
            text: The query as written (kept as the parsed query's text).
            literals: The slot literals of ``text`` (as :func:`template_of` found them).
            vectors: The arrays lifted out of ``text``.
        """
        kinds = self.template.kinds
        sentinel_lengths = [len(_sentinel(k, i)) for i, k in enumerate(kinds)]
        # where each slot starts in the sentinel text, and how much longer the literal is
        starts, at = [], 0
        for piece, size in zip(self.template.pieces, sentinel_lengths, strict=False):
            at += len(piece)
            starts.append(at)
            at += size
        shifts = [len(lit) - size for lit, size in zip(literals, sentinel_lengths, strict=True)]
        tree = self.parsed.tree.copy()
        for node in tree.walk():
            if isinstance(node, exp.Literal):
                slot = self.slots.get((str(node.this), bool(node.is_string)))
                if slot is not None:
                    node.set("this", _literal_value(literals[slot]))
            meta = node._meta
            if meta and "start" in meta:
                _shift(meta, starts, shifts)
        return parser.ParsedQuery(text=text, tree=tree, sample=None, vectors=vectors)


def _shift(meta: dict[str, object], starts: list[int], shifts: list[int]) -> None:
    """Move recorded positions of the sentinel text to the same places in the query text."""
    for name in ("start", "end"):
        value = meta.get(name)
        if isinstance(value, int):
            meta[name] = value + sum(s for at, s in zip(starts, shifts, strict=True) if at < value)


def _positions(tree: exp.Expression) -> list[tuple[object, object]]:
    return [(n._meta.get("start"), n._meta.get("end")) for n in tree.walk() if n._meta]


#: Prepared templates by :attr:`Template.key` (None: not preparable, parse each query).
_PREPARED: LRUCache[PreparedQuery | None] = LRUCache(MAX_TEMPLATES)


def parse(text: str) -> parser.ParsedQuery:
    """:func:`lakefmt.tql.parser.parse`, reusing the parse of the query's template.

    The tree returned is the caller's own (planning may annotate it).

    Raises:
        QueryError: As :func:`lakefmt.tql.parser.parse`.
    """
    if not ENABLED or not isinstance(text, str):
        return parser.parse(text)
    lifted, vectors = parser.lift_vectors(text) if "[" in text else (text, {})
    template = template_of(lifted)
    if template is None:
        return parser.parse(text)
    written: list[parser.ParsedQuery] = []

    def load() -> PreparedQuery | None:
        written.append(parser.parse(text))  # errors are the query's own, as written
        try:
            prepared = PreparedQuery.prepare(template)
        except QueryError:  # a template that does not parse is not used
            return None
        bound = prepared.bind(text, template.literals, vectors)
        own = written[0]
        same = (
            own.sample is None
            and bound.vectors == own.vectors
            and bound.tree == own.tree
            and _positions(bound.tree) == _positions(own.tree)
        )
        return prepared if same else None

    prepared = _PREPARED.get_or_load(template.key, load)
    if written:
        return written[0]
    if prepared is None:
        return parser.parse(text)
    return prepared.bind(text, template.literals, vectors)


def clear() -> None:
    """Forget every prepared template."""
    _PREPARED.clear()
