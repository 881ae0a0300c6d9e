"""Reading a version from other engines: its read plan, and a DuckDB relation over its files.

Both describe exactly one version (``spec/format.md`` section 15), so another tool never
sees the superseded, deleted or not-yet-applied rows that sit in the dataset's folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakefmt.errors import InvalidArgumentError, MissingDependencyError
from lakefmt.format.read_plan import PlanColumn, PlanFragment, ReadPlan, read_plan
from lakefmt.format.snapshot import Snapshot
from lakefmt.storage import Storage

if TYPE_CHECKING:
    import pyarrow.dataset as pads

__all__ = ["duckdb_readable", "duckdb_relation", "plan_of", "plan_sql", "pyarrow_dataset"]

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


def pyarrow_dataset(snap: Snapshot) -> pads.Dataset:
    """A ``pyarrow.dataset`` over the version's data files, where their rows are exactly the
    version's: no deletions, no update files, one file per fragment, every column stored
    under its current name, and no default that is not null.

    Raises:
        InvalidArgumentError: The version does not qualify (the message says why, and that
            ``to_batches()`` streams any version), or the dataset is not on local disk.
    """
    if "://" in snap.storage.url and not snap.storage.url.startswith("file://"):
        raise InvalidArgumentError(
            "to_pyarrow_dataset() serves datasets on local disk; ds.to_batches() streams the "
            "rows from any storage"
        )
    plan = plan_of(snap)
    columns = {c.field_id: c for c in plan.columns}
    paths = []
    for fragment in plan.fragments:
        reason = _why_not_plain(fragment, columns)
        if reason is not None:
            raise InvalidArgumentError(
                f"this version's files are not its rows ({reason}); ds.to_batches() or "
                "ds.to_duckdb() read any version (ds.optimize() folds deletions, updates and "
                "column groups into new files)"
            )
        if fragment.files:
            paths.append(fragment.files[0].url.removeprefix("file://"))
    schema = pa.schema(
        [
            pa.field(c.name, snap.type_of(f).storage_type)
            for c, f in zip(plan.columns, snap.fields, strict=True)
        ]
    )
    import pyarrow.dataset as pads  # lazy: a heavier import only this needs

    return pads.dataset(paths, schema=schema, format="parquet")


def _why_not_plain(fragment: PlanFragment, columns: dict[int, PlanColumn]) -> str | None:
    if fragment.deletion is not None:
        return f"fragment {fragment.id} has deleted rows"
    if fragment.updates:
        return f"fragment {fragment.id} has updated cells"
    if len(fragment.files) > 1:
        return f"fragment {fragment.id} is stored as {len(fragment.files)} column groups"
    for fid in fragment.default_columns:
        if columns[fid].has_default and columns[fid].default is not None:
            return f"column {columns[fid].name!r} reads its default in fragment {fragment.id}"
    for data_file in fragment.files:
        for c in data_file.columns:
            if c.parquet_column != columns[c.field_id].name:
                return f"column {columns[c.field_id].name!r} was renamed"
    return None
