"""Reading a version from other engines: its read plan, and a DuckDB relation over its files.

Both describe exactly one version (``spec/format.md`` section 15), so another tool never
sees the superseded, deleted or not-yet-applied rows that sit in the dataset's folder.
"""

from __future__ import annotations

from typing import Any

from lakefmt.errors import InvalidArgumentError, MissingDependencyError
from lakefmt.format.read_plan import ReadPlan, read_plan
from lakefmt.format.snapshot import Snapshot
from lakefmt.storage import Storage

__all__ = ["duckdb_readable", "duckdb_relation", "plan_of", "plan_sql"]

#: URL schemes DuckDB reads itself (object stores through its ``httpfs`` extension, with
#: the connection's own credentials: ``CREATE SECRET``).
_DUCKDB_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfss://", "http://", "https://")


def plan_of(snap: Snapshot) -> ReadPlan:
    """The read plan of a snapshot's version."""
    return read_plan(snap, snap.manifest.branch)


def plan_sql(snap: Snapshot, *, ordered: bool) -> str:
    """The DuckDB statement that reads the snapshot's version from its files."""
    from lakefmt.tql.plan_sql import version_sql  # lazy: lakefmt.tql imports sqlglot, DuckDB

    return version_sql(snap, plan_of(snap), ordered=ordered)


def duckdb_readable(storage: Storage) -> bool:
    """Whether DuckDB can open the dataset's files by their URLs (a local directory or an
    object store; not ``mem://``)."""
    url = storage.url
    return "://" not in url or url.startswith(("file://", *_DUCKDB_SCHEMES))


def duckdb_relation(snap: Snapshot, con: Any | None, name: str | None, *, ordered: bool) -> Any:
    """A DuckDB relation of the version's live rows on ``con`` (DuckDB's default connection
    when None), plus a view ``name`` on that connection when given.

    Raises:
        MissingDependencyError: ``duckdb`` is missing (it is a dependency; a broken install).
        InvalidArgumentError: The dataset is in memory, the version has no columns, ``con``
            is not a DuckDB connection or ``name`` is empty.
    """
    from lakefmt.tql.columns import quote_ident  # lazy: lakefmt.tql imports sqlglot, DuckDB

    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - duckdb is a dependency
        raise MissingDependencyError("to_duckdb needs duckdb: pip install duckdb") from exc
    if not duckdb_readable(snap.storage):
        raise InvalidArgumentError(
            f"{snap.storage.url} is not on a file system or object store DuckDB can read; "
            "use ds.to_arrow() (DuckDB reads Arrow tables too)"
        )
    if not snap.fields:
        raise InvalidArgumentError("the version has no columns: DuckDB has no empty relations")
    if con is None:
        con = duckdb.default_connection()
    elif not isinstance(con, duckdb.DuckDBPyConnection):
        raise InvalidArgumentError(
            f"con must be a duckdb connection (duckdb.connect()), not {type(con).__name__}"
        )
    sql = plan_sql(snap, ordered=ordered)
    if name is not None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("name must be a non-empty string")
        con.execute(f"CREATE OR REPLACE VIEW {quote_ident(name)} AS {sql}")
        return con.table(quote_ident(name))
    return con.sql(sql)
