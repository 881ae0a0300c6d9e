"""DuckDB's exceptions as :class:`~lakefmt.errors.QueryError` in TQL terms.

The exception's class says what failed (``duckdb.BinderException``: a name that does not
bind, ``duckdb.CatalogException``: something missing from the catalog,
``duckdb.PermissionException``: the sandbox refused). DuckDB's Python exceptions carry no
structured fields beyond their class (no column or function name, no position), so the
message is read only for what the class cannot say: the name, and the text shown to the user.
"""

from __future__ import annotations

import re

import duckdb

from lakefmt.errors import QueryError
from lakefmt.tql.parser import find_token

#: What every exception of a DuckDB query is.
DuckDBError = duckdb.Error

#: The name in a BinderException for a column that does not exist.
_UNKNOWN_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
#: The name in a CatalogException for a function that does not exist.
_UNKNOWN_FUNCTION = re.compile(
    r"(?:Scalar|Aggregate|Table) Function with name \"?([\w.]+)\"? does not exist"
)
#: The prefixes DuckDB puts before a message (its error class, in words).
_PREFIXES = (
    "Binder Error: ",
    "Catalog Error: ",
    "Parser Error: ",
    "Conversion Error: ",
    "Invalid Input Error: ",
    "Out of Range Error: ",
    "Permission Error: ",
    "Not implemented Error: ",
    "Invalid Error: ",
    "Constraint Error: ",
)


def error_text(exc: BaseException) -> str:
    """The useful first part of a DuckDB error message (no class prefix, no SQL excerpt)."""
    text = str(exc).strip()
    for prefix in _PREFIXES:
        text = text.replace(prefix, "")
    return text.split("\nLINE ")[0].split("\n\nLINE")[0].strip()


def query_error(exc: BaseException, tql: str) -> QueryError:
    """The QueryError that reports ``exc``, raised while running the query ``tql``."""
    if isinstance(exc, duckdb.BinderException):
        match = _UNKNOWN_COLUMN.search(str(exc))
        if match:
            return _unknown("column", match.group(1), tql)
    if isinstance(exc, duckdb.CatalogException):
        match = _UNKNOWN_FUNCTION.search(str(exc))
        if match:
            return _unknown("function", match.group(1), tql)
    text = error_text(exc)
    if isinstance(exc, duckdb.PermissionException):
        return QueryError(f"the query tried to reach something outside the dataset: {text}")
    return QueryError(f"query failed: {text}")


def _unknown(what: str, name: str, tql: str) -> QueryError:
    position = find_token(tql, name)
    where = f" at position {position}" if position is not None else ""
    return QueryError(f"unknown {what} '{name}'{where}", position=position)
