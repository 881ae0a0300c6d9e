"""TQL text -> a checked sqlglot syntax tree.

TQL is SQL with a few additions (Deep Lake's query language): ``SELECT * WHERE ...`` without
``FROM``, double-quoted dataset URLs as table names, ``==``, ``SAMPLE BY``, numpy-like
indexing and a set of functions. Everything but ``SAMPLE BY`` is valid DuckDB syntax, so the
text goes through sqlglot's DuckDB dialect unchanged. ``SAMPLE BY`` is cut out at the token
level (its positions replaced by blanks, so every other position stays valid) and parsed on
its own.

The sandbox starts here: only one ``SELECT`` (or set operation) statement is accepted, table
functions (``read_csv``, ``read_parquet``, ``glob``, ``query``...) are refused wherever they
appear, a single-quoted file name is refused as a table, and names starting with ``__lf_`` are
reserved for the engine.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from lakefmt.errors import QueryError

DIALECT = "duckdb"
#: Prefix of every name the engine adds to the SQL it generates.
RESERVED_PREFIX = "__lf_"

#: Functions that read or list files, run SQL text, or expose the engine's configuration.
#: They are refused even where DuckDB would refuse them anyway, so the error is a clear one.
DENIED_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "read_xlsx",
        "glob",
        "query",
        "query_table",
        "sniff_csv",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_bloom_probe",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "postgres_scan",
        "mysql_scan",
        "st_read",
        "getenv",
        "current_setting",
        "load_extension",
        "install_extension",
        "checkpoint",
        "force_checkpoint",
        "export_database",
        "copy",
        "which_secret",
        "getvariable",
        "set_variable",
    }
)
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "sqlite_", "postgres_", "mysql_", "iceberg_")


@dataclasses.dataclass
class SampleClause:
    """``SAMPLE BY weight [REPLACE bool] [LIMIT n]``: weighted sampling of the result rows.

    Attributes:
        weight: The weight expression (``MAX_WEIGHT``/``SUM_WEIGHT`` already expanded).
        replace: Draw with replacement (Deep Lake's default is ``True``).
        position: Offset of ``SAMPLE`` in the query text.
    """

    weight: exp.Expr
    replace: bool
    position: int


@dataclasses.dataclass
class ParsedQuery:
    """A parsed and checked TQL query.

    Attributes:
        text: The TQL as given.
        tree: The statement (a ``Select`` or a set operation).
        sample: The ``SAMPLE BY`` clause, if any.
    """

    text: str
    tree: exp.Expression
    sample: SampleClause | None
    vectors: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    """Long numeric array literals, lifted out before parsing: placeholder name -> values."""


def offset_of(text: str, line: int, col: int) -> int:
    """Character offset of a 1-based (line, column) position in ``text``."""
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    return sum(len(s) + 1 for s in lines[: line - 1]) + max(col - 1, 0)


def syntax_error(text: str, exc: Exception, *, base: int = 0) -> QueryError:
    """A ``QueryError`` for a sqlglot parse or tokenizer error, with the position in TQL."""
    if isinstance(exc, ParseError) and exc.errors:
        first = exc.errors[0]
        position = base + offset_of(text, int(first.get("line") or 1), int(first.get("col") or 1))
        near = first.get("highlight") or ""
        reason = str(first.get("description") or "syntax error")
        reason = re.sub(r"<class 'sqlglot\.expressions\.[\w.]*?(\w+)'>", r"\1", reason)
        where = f" near {near!r}" if near else ""
        return QueryError(
            f"syntax error at position {position}{where}: {reason}", position=position
        )
    position = base + _unterminated_quote(text)
    return QueryError(f"syntax error at position {position}: {exc}", position=position)


def _unterminated_quote(text: str) -> int:
    """Best guess of where a tokenizer error starts: an unbalanced quote, else the end."""
    for quote in ("'", '"'):
        if text.count(quote) % 2:
            return text.rfind(quote)
    return len(text)


def tokenize(text: str) -> list[Token]:
    """Tokenize TQL with the DuckDB dialect.

    Raises:
        QueryError: The text cannot be tokenized (an unterminated string, ...).
    """
    try:
        return list(Dialect.get_or_raise(DIALECT).tokenize(text))
    except TokenError as exc:
        raise syntax_error(text, exc) from None


def parse(text: str) -> ParsedQuery:
    """Parse and check a TQL query.

    Raises:
        QueryError: A syntax error (with its position), a statement other than ``SELECT``,
            a table function, or a reserved name.
    """
    if not isinstance(text, str):
        raise QueryError(f"a query is a string, not {type(text).__name__} {text!r}", position=0)
    if not text.strip():
        raise QueryError("empty query", position=0)
    lifted, vectors = lift_vectors(text)
    tokens = tokenize(lifted)
    first = next((t for t in tokens if t.token_type != TokenType.L_PAREN), None)
    if first is not None and first.text.upper() not in _STATEMENT_STARTS:
        raise QueryError(
            f"only SELECT queries are allowed, got {first.text.upper()} at position {first.start}",
            position=first.start,
        )
    sample, tokens = _cut_sample(lifted, tokens)
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)  # no "falling back to Command" warnings on stderr
    try:
        parsed = Dialect.get_or_raise(DIALECT).parser().parse(tokens, lifted)
        statements = [s for s in parsed if s is not None]
    except (ParseError, TokenError) as exc:
        raise syntax_error(lifted, exc) from None
    finally:
        log.setLevel(level)
    if len(statements) != 1:
        raise QueryError(
            f"a query is exactly one SELECT statement, got {len(statements)} statements",
            position=0,
        )
    tree = statements[0]
    while isinstance(tree, exp.Subquery) and not tree.args.get("alias"):
        # "(SELECT ...)" alone: keep the outer ORDER BY / LIMIT if the parser put them here
        inner = tree.this
        for key in ("order", "limit", "offset"):
            if tree.args.get(key) is not None and inner.args.get(key) is None:
                inner.set(key, tree.args[key])
        tree = inner
    check(tree, text, allowed=set(vectors))
    _check_aliases(tree, tokens)
    assert isinstance(tree, exp.Expression)  # check() admits only a SELECT or set operation
    return ParsedQuery(text=text, tree=tree, sample=sample, vectors=vectors)


#: Array literals with at least this many numbers are lifted out of the text before sqlglot
#: tokenizes it (tokenizing a 384-float query vector costs sqlglot several milliseconds).
LIFT_MIN_VALUES = 8
_NUMBER_CHARS = frozenset("0123456789.eE+- \t\r\n")


def _skip_quoted(text: str, i: int) -> int:
    """Index after the string, identifier, comment or ``$$`` block starting at ``i``."""
    c = text[i]
    if c in "'\"":
        j = i + 1
        while j < len(text):
            if text[j] == c:
                if j + 1 < len(text) and text[j + 1] == c:  # doubled quote
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(text)
    if text.startswith("--", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j + 1
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j < 0 else j + 2
    if text.startswith("$$", i):
        j = text.find("$$", i + 2)
        return len(text) if j < 0 else j + 2
    return i


def _keywords() -> frozenset[str]:
    global _KEYWORDS
    if _KEYWORDS is None:
        tokenizer = Dialect.get_or_raise(DIALECT).tokenizer_class
        _KEYWORDS = frozenset(k.upper() for k in tokenizer.KEYWORDS)
    return _KEYWORDS


_KEYWORDS: frozenset[str] | None = None


def lift_vectors(text: str) -> tuple[str, dict[str, list[float]]]:
    """Replace long numeric array literals (``ARRAY[0.1, -2, ...]``) by placeholder names.

    The scan skips strings, quoted identifiers and comments, and leaves subscripts
    (``x[1, 2]``) alone. Each literal is replaced by a name padded with spaces to its length,
    so every position after it stays what it was in the query text.
    """
    out: list[str] = []
    vectors: dict[str, list[float]] = {}
    i = last = 0
    n = len(text)
    while i < n:
        skipped = _skip_quoted(text, i)
        if skipped != i:
            i = skipped
            continue
        if text[i] != "[":
            i += 1
            continue
        close = text.find("]", i + 1)
        body = text[i + 1 : close] if close > 0 else ""
        start = i
        k = i - 1
        while k >= 0 and text[k].isspace():
            k -= 1
        word_end = k + 1
        while k >= 0 and (text[k].isalnum() or text[k] == "_"):
            k -= 1
        word = text[k + 1 : word_end]
        if word.upper() == "ARRAY":
            start = k + 1
        elif (word and word.upper() not in _keywords()) or (
            not word and word_end > 0 and text[word_end - 1] in ")]\"'"
        ):
            i += 1  # a subscript: x[...], f(x)[...], "col"[...]
            continue
        if close < 0 or not body or not set(body) <= _NUMBER_CHARS | {","}:
            i += 1
            continue
        try:
            values = [float(part) for part in body.split(",")]
        except ValueError:
            i += 1
            continue
        if len(values) < LIFT_MIN_VALUES:
            i = close + 1
            continue
        name = f"{RESERVED_PREFIX}v{len(vectors)}"
        vectors[name] = values
        out.append(text[last:start])
        out.append(name.ljust(close + 1 - start))
        last = i = close + 1
    out.append(text[last:])
    return "".join(out), vectors


#: DuckDB's reserved keywords (``duckdb_keywords()``, category ``reserved``): never a name
#: unless quoted or after ``AS``. sqlglot reads ``SELECT id LIMIT`` as ``id AS "LIMIT"``,
#: DuckDB calls it a syntax error, and so does TQL.
RESERVED_KEYWORDS = frozenset(
    {
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "default",
        "deferrable",
        "desc",
        "describe",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lambda",
        "lateral",
        "leading",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "pivot",
        "pivot_longer",
        "pivot_wider",
        "placing",
        "primary",
        "qualify",
        "references",
        "returning",
        "select",
        "show",
        "some",
        "summarize",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "unpivot",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    }
)


def _check_aliases(tree: exp.Expr, tokens: list[Token]) -> None:
    """Refuse an unquoted reserved keyword used as an alias without ``AS``, and an alias on
    a star.

    Raises:
        QueryError: ``SELECT id LIMIT``, ``FROM "ds" ORDER``, ... (a missing expression after
            a keyword, usually), or ``SELECT * AS x``.
    """
    after_as = {
        tok.start for prev, tok in itertools.pairwise(tokens) if prev.token_type == TokenType.ALIAS
    }
    for node in tree.find_all(exp.Alias, exp.TableAlias):
        ident = node.args.get("alias") if isinstance(node, exp.Alias) else node.this
        if not isinstance(ident, exp.Identifier):
            continue
        word = str(ident.this)
        start = (getattr(ident, "_meta", None) or {}).get("start")
        if (
            not ident.quoted
            and word.lower() in RESERVED_KEYWORDS
            and start is not None
            and int(start) not in after_as
        ):
            raise QueryError(
                f"syntax error at position {start} near {word!r}: {word.upper()} is a reserved "
                f"keyword and is missing what follows it (to name a column {word!r}, quote "
                f'it: AS "{word}")',
                position=int(start),
            )
        inner = node.this
        if isinstance(node, exp.Alias) and (
            isinstance(inner, exp.Star)
            or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star))
        ):
            raise QueryError(
                f"{inner.sql(dialect=DIALECT)} cannot take an alias ({word!r}) at position "
                f"{start}: it stands for several columns; name columns one by one",
                position=None if start is None else int(start),
            )


#: Words a query may start with (DuckDB's FROM-first form included).
_STATEMENT_STARTS = frozenset({"SELECT", "WITH", "FROM", "VALUES"})


# -- SAMPLE BY ---------------------------------------------------------------------------------
_SAMPLE_END = {"LIMIT", "OFFSET", "ORDER", "UNION", "INTERSECT", "EXCEPT", ";"}


def _cut_sample(text: str, tokens: list[Token]) -> tuple[SampleClause | None, list[Token]]:
    """Find a top-level ``SAMPLE BY`` clause; return it and the tokens without it."""
    depth = 0
    start = None
    for i, tok in enumerate(tokens):
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
        elif (
            depth == 0
            and tok.text.upper() == "SAMPLE"
            and i + 1 < len(tokens)
            and tokens[i + 1].text.upper() == "BY"
        ):
            start = i
            break
    if start is None:
        return None, tokens
    depth = 0
    end = len(tokens)
    replace_at = None
    for j in range(start + 2, len(tokens)):
        tok = tokens[j]
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
            if depth < 0:
                end = j
                break
        elif depth == 0 and tok.text.upper() in _SAMPLE_END:
            end = j
            break
        elif depth == 0 and tok.text.upper() == "REPLACE" and replace_at is None:
            replace_at = j
    weight_end = replace_at if replace_at is not None else end
    weight_tokens = tokens[start + 2 : weight_end]
    position = tokens[start].start
    if not weight_tokens:
        raise QueryError(
            f"SAMPLE BY at position {position} needs a weight expression", position=position
        )
    replace = True
    if replace_at is not None:
        flag = tokens[replace_at + 1 : end]
        word = " ".join(t.text for t in flag).strip().upper()
        if word in ("TRUE", "1", ""):
            replace = True
        elif word in ("FALSE", "0"):
            replace = False
        else:
            where = tokens[replace_at].start
            raise QueryError(
                f"REPLACE at position {where} takes TRUE or FALSE, got {word!r}", position=where
            )
    weight = _weight_expression(text, weight_tokens)
    return SampleClause(weight=weight, replace=replace, position=position), tokens[:start] + tokens[
        end:
    ]


def _parse_piece(text: str, start: int, end: int) -> exp.Expr:
    piece = text[start:end]
    try:
        return sqlglot.parse_one(piece, read=DIALECT, into=exp.Condition)
    except (ParseError, TokenError):
        pass
    try:
        return sqlglot.parse_one(piece, read=DIALECT)
    except (ParseError, TokenError) as exc:
        raise syntax_error(piece, exc, base=start) from None


def _weight_expression(text: str, tokens: list[Token]) -> exp.Expr:
    """Parse ``expr`` or ``MAX_WEIGHT(cond: w, ...)`` / ``SUM_WEIGHT(...)``."""
    head = tokens[0].text.upper()
    if (
        head in ("MAX_WEIGHT", "SUM_WEIGHT")
        and len(tokens) >= 3
        and tokens[1].token_type == TokenType.L_PAREN
        and tokens[-1].token_type == TokenType.R_PAREN
    ):
        cases: list[exp.Expression] = []
        for piece in _split_top(tokens[2:-1], TokenType.COMMA):
            parts = _split_top(piece, TokenType.COLON)
            if len(parts) != 2 or not parts[0] or not parts[1]:
                where = piece[0].start if piece else tokens[0].start
                raise QueryError(
                    f"{head} at position {tokens[0].start} takes 'condition: weight' pairs "
                    f"(position {where})",
                    position=where,
                )
            cond = _parse_piece(text, parts[0][0].start, parts[0][-1].end + 1)
            weight = _parse_piece(text, parts[1][0].start, parts[1][-1].end + 1)
            cases.append(
                exp.Case(
                    ifs=[exp.If(this=cond, true=weight)],
                    default=exp.Literal.number(0),
                )
            )
        if not cases:
            raise QueryError(
                f"{head} needs at least one 'condition: weight' pair", position=tokens[0].start
            )
        if head == "MAX_WEIGHT":
            return (
                exp.Greatest(this=cases[0], expressions=cases[1:]) if len(cases) > 1 else cases[0]
            )
        total: exp.Expression = cases[0]
        for case in cases[1:]:
            total = exp.Add(this=total, expression=case)
        return total
    return _parse_piece(text, tokens[0].start, tokens[-1].end + 1)


def _split_top(tokens: list[Token], sep: TokenType) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
        if depth == 0 and tok.token_type == sep:
            parts.append([])
            continue
        parts[-1].append(tok)
    return parts


# -- the sandbox ---------------------------------------------------------------------------------
def _position(node: exp.Expression, text: str) -> int | None:
    for ident in [node, *node.find_all(exp.Identifier)]:
        meta = getattr(ident, "_meta", None) or {}
        if "start" in meta:
            return int(meta["start"])
    return None


def function_name(node: exp.Expr) -> str:
    """The lower-case SQL name of a function node (``""`` if it is not a function)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def find_token(text: str, word: str, *, after: int = 0) -> int | None:
    """Offset of the first token spelling ``word`` (case-insensitive), at or after ``after``."""
    try:
        tokens = Dialect.get_or_raise(DIALECT).tokenize(text)
    except TokenError:
        return None
    low = word.lower()
    for tok in tokens:
        if tok.start >= after and tok.text.lower() == low:
            return int(tok.start)
    return None


def check(tree: exp.Expr, text: str, *, allowed: set[str] | None = None) -> None:
    """Refuse everything but a read-only query over datasets.

    Raises:
        QueryError: Another statement kind, a table function, a file name as a table,
            ``SELECT ... INTO``, or a reserved ``__lf_`` name.
    """
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        kind = tree.key.upper() if isinstance(tree, exp.Expression) else type(tree).__name__
        if isinstance(tree, exp.Command):
            kind = str(tree.this).upper()
        raise QueryError(f"only SELECT queries are allowed, got {kind} at position 0", position=0)
    for node in tree.walk():
        if isinstance(node, exp.Select) and node.args.get("into") is not None:
            raise QueryError(
                "SELECT ... INTO is not allowed: queries never write",
                position=_position(node, text),
            )
        if isinstance(
            node,
            (
                exp.Command,
                exp.Copy,
                exp.Create,
                exp.Insert,
                exp.Update,
                exp.Delete,
                exp.Drop,
                exp.Set,
                exp.Pragma,
                exp.Attach,
                exp.Detach,
                exp.Use,
                exp.Describe,
                exp.Merge,
                exp.Alter,
                exp.Install,
            ),
        ):
            raise QueryError(
                f"only SELECT queries are allowed, found {node.key.upper()}",
                position=_position(node, text),
            )
        if isinstance(node, exp.Star) and (node.args.get("replace") or node.args.get("rename")):
            # row results read star columns from the source: the new values would be lost
            word = "REPLACE" if node.args.get("replace") else "RENAME"
            raise QueryError(
                f"* {word} (...) is not supported in queries: name the columns one by one "
                "(SELECT a, b + 1 AS b, c AS d)",
                position=find_token(text, word),
            )
        if isinstance(node, exp.Columns):
            # DuckDB would expand it over the engine's hidden columns too: wrong columns
            raise QueryError(
                "COLUMNS(...) is not supported in queries: name the columns, or use * "
                "(* EXCLUDE (...), * REPLACE (...))",
                position=find_token(text, "columns"),
            )
        if isinstance(node, (exp.Lateral, exp.TableFromRows)):
            raise QueryError(
                "table functions are not allowed in queries", position=_position(node, text)
            )
        if isinstance(node, exp.Table):
            _check_table(node, text)
        elif isinstance(node, (exp.From, exp.Join)):
            target = node.this
            if not isinstance(target, (exp.Table, exp.Subquery)):
                name = function_name(target) or target.key
                raise QueryError(
                    f"table function or expression {name!r} is not allowed in FROM/JOIN; "
                    'name a dataset with a double-quoted URL (FROM "mem://name")',
                    position=_position(target, text) or find_token(text, name),
                )
        name = function_name(node)
        if name and (name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES)):
            raise QueryError(
                f"function {name}() is not allowed in queries (no file or engine access)",
                position=find_token(text, name),
            )
        if (
            isinstance(node, exp.Identifier)
            and str(node.this).lower().startswith(RESERVED_PREFIX)
            and str(node.this) not in (allowed or ())
        ):
            raise QueryError(
                f"names starting with {RESERVED_PREFIX!r} are reserved: {node.this!r}",
                position=_position(node, text),
            )
        if (
            isinstance(node, exp.Literal)
            and node.is_string
            and RESERVED_PREFIX + "rel_" in str(node.this).lower()
        ):
            raise QueryError(
                f"string literals may not contain {RESERVED_PREFIX + 'rel_'!r}", position=None
            )


def _check_table(table: exp.Table, text: str) -> None:
    target = table.this
    if not isinstance(target, exp.Identifier):
        name = function_name(target) or target.key
        raise QueryError(
            f"table function {name!r} is not allowed; name a dataset with a double-quoted URL",
            position=find_token(text, name) if name else None,
        )
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        raise QueryError(
            f"{table.sql(dialect=DIALECT)!r} is not a dataset name; quote dataset URLs with "
            'double quotes (FROM "s3://bucket/ds")',
            position=_position(table, text),
        )
    meta = getattr(target, "_meta", None) or {}
    start = meta.get("start")
    if start is not None and 0 <= int(start) < len(text) and text[int(start)] == "'":
        raise QueryError(
            f"'{target.this}' is a string, not a dataset: queries cannot read files; "
            'name a dataset with a double-quoted URL (FROM "mem://name")',
            position=int(start),
        )
