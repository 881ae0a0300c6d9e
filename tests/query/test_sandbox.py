"""A query string can never read or write files outside the dataset, nor reach the engine."""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path

import duckdb
import pytest

import lakefmt
from lakefmt import QueryError

engine = importlib.import_module("lakefmt.tql.engine")


@pytest.fixture
def local_ds(tmp_path: Path) -> lakefmt.Dataset:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64", "name": "text"})
    ds.append({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    ds.flush()
    return ds


def _attacks(tmp: Path) -> list[str]:
    secret = tmp / "secret.csv"
    out = tmp / "out.csv"
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        f"SELECT * FROM read_parquet('{tmp}/other.parquet')",
        "SELECT * FROM read_json('/etc/hostname')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT read_text('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM query('SELECT 42')",
        f"SELECT * FROM '{secret}'",
        "SELECT * FROM '/etc/passwd'",
        f"COPY (SELECT 1) TO '{out}'",
        f"COPY (SELECT * FROM \"mem://x\") TO '{out}' (FORMAT csv)",
        f"ATTACH '{tmp}/attached.db' AS a",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA database_list",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "CREATE TABLE t AS SELECT 1",
        f"EXPORT DATABASE '{tmp}/export'",
        "SELECT * INTO newtable FROM (SELECT 1)",
        "SELECT 1; SELECT 2",
        "SELECT * WHERE id IN (SELECT * FROM read_csv('/etc/passwd'))",
        "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x",
        "SELECT * FROM (SELECT * FROM read_parquet('/etc/passwd'))",
        "SELECT * FROM duckdb_settings()",
        "SELECT current_setting('allowed_directories')",
        "SELECT getenv('HOME')",
        "SELECT * FROM parquet_metadata('/etc/passwd')",
        "CALL pragma_version()",
        "DESCRIBE SELECT 1",
        "EXPLAIN SELECT 1",
        "SELECT * FROM __lf_t0",
    ]


def test_attacks_raise_query_error_and_touch_nothing(
    local_ds: lakefmt.Dataset, tmp_path: Path
) -> None:
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    for tql in _attacks(tmp_path):
        with pytest.raises(QueryError) as info:
            local_ds.query(tql)
        assert "hunter2" not in str(info.value) and "root:" not in str(info.value), tql
        with pytest.raises(QueryError):
            lakefmt.query(tql)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "attached.db").exists()


def test_queries_cannot_reach_python_variables(local_ds: lakefmt.Dataset) -> None:
    secret_table = duckdb.sql("SELECT 'hunter2' AS pw").to_arrow_table()  # noqa: F841
    with pytest.raises(QueryError):
        local_ds.query("SELECT * FROM secret_table")


def test_the_connection_itself_is_locked_down(local_ds: lakefmt.Dataset, tmp_path: Path) -> None:
    """Defence in depth: even SQL that got past the checks cannot leave the dataset."""
    from lakefmt.tql.relations import readable_dirs

    db = engine.database(readable_dirs(local_ds._storage))
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    for sql in [
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{tmp_path}/secret.csv')",
        f"SELECT * FROM read_csv('{local_ds._storage.root}/data/../../secret.csv')",
        f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
        f"ATTACH '{tmp_path}/x.db'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
    ]:
        with pytest.raises(duckdb.Error):
            db.run(sql, ())
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.db").exists()
    # while the dataset's own files stay readable
    assert len(local_ds.query("SELECT * WHERE id > 1")) == 2


def test_databases_are_recreated_after_fork(local_ds: lakefmt.Dataset) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    local_ds.query("SELECT * WHERE id > 0")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = 0 if len(local_ds.query("SELECT * WHERE id > 1")) == 2 else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    result = os.read(read, 1)
    os.waitpid(pid, 0)
    assert result == b"\x00"


def test_mem_datasets_need_no_file_access() -> None:
    ds = lakefmt.create(f"mem://query-{uuid.uuid4().hex}", schema={"id": "int64"})
    ds.append({"id": [1, 2]})
    ds.flush()
    assert len(ds.query("SELECT * WHERE id = 2")) == 1
    db = engine.database(())
    with pytest.raises(duckdb.Error):
        db.run("SELECT * FROM read_csv('/etc/passwd')", ())


def test_registered_tables_do_not_outlive_their_query() -> None:
    ds = lakefmt.create(f"mem://query-{uuid.uuid4().hex}", schema={"id": "int64"})
    ds.append({"id": [1, 2]})
    ds.flush()
    assert len(ds.query("SELECT * WHERE id = 2")) == 1  # registers __lf_t0 on this thread
    db = engine.database(())
    with pytest.raises(duckdb.Error):
        db.run('SELECT * FROM "__lf_t0"', ())
    # a failed query leaves the thread's connection usable
    with pytest.raises(QueryError):
        ds.query("SELECT id + 'x'")
    assert len(ds.query("SELECT * WHERE id >= 1")) == 2
