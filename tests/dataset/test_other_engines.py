"""Reading a version from other engines: ``ds.read_plan()``, ``ds.duckdb_sql()``,
``ds.to_duckdb()`` and ``lakefmt plan`` (spec/format.md section 15).

Random sequences of every operation are checked in ``tests/versioning/test_model.py`` (the
plan reader and ``to_duckdb`` against the model); these tests pin the API around them.
"""

from __future__ import annotations

import io
import json

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import lakefmt
from lakefmt.errors import InvalidArgumentError
from lakefmt.format import fragments
from tests.cli.conftest import assert_ok, run_cli


def _edited(path: str) -> lakefmt.Dataset:
    """Two fragments, a deletion, an update file, a second column group, a rename and a
    column added with a default: everything a glob over the folder gets wrong."""
    ds = lakefmt.create(path, schema={"id": "int64", "label": "text", "score": "float32"})
    ds.append(
        {
            "id": list(range(8)),
            "label": [f"r{i}" for i in range(8)],
            "score": [i / 2 for i in range(8)],
        }
    )
    ds.commit("first")
    ds.append(
        {"id": [8, 9, 10, 11], "label": ["r8", "r9", "r10", "r11"], "score": [4.0, 4.5, 5.0, 5.5]}
    )
    ds.flush()
    ds.delete(2)
    ds["score"][5] = 99.5
    ds["label"][7:11] = ["w", "x", "y", "z"]
    ds.add_column("flag", "bool", default_value=True)
    ds.rename_column("label", "name")
    ds.commit("edits")
    return ds


def test_to_duckdb_equals_to_arrow_where_a_glob_does_not(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    con = duckdb.connect()
    got = ds.to_duckdb(con).to_arrow_table()
    assert got.to_pylist() == ds.to_arrow().to_pylist()
    assert got.num_rows == 11
    glob = con.sql(f"SELECT count(*) FROM '{tmp_path}/ds/data/*.parquet'").fetchall()[0][0]
    assert glob != 11  # the wrong read the plan exists for


def test_view_joins_copies_and_stays_at_its_version(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    con = duckdb.connect()
    ds.to_duckdb(con, name="items")
    con.execute("CREATE TABLE prices AS SELECT range AS id, range * 10 AS price FROM range(12)")
    joined = con.sql(
        "SELECT i.id, p.price FROM items i JOIN prices p USING (id) WHERE i.flag ORDER BY i.id"
    ).fetchall()
    assert joined == [(i, i * 10) for i in [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]]
    out = tmp_path / "out.parquet"
    con.execute(f"COPY items TO '{out}' (FORMAT parquet)")
    assert pq.read_table(out).to_pylist() == ds.to_arrow().to_pylist()
    ds.append({"id": [99], "name": ["new"], "score": [1.0], "flag": [False]})
    ds.commit("more")
    assert con.sql("SELECT count(*) FROM items").fetchall() == [(11,)]
    assert ds.to_duckdb(con).count("*").fetchall() == [(12,)]


def test_filters_and_projections_reach_the_parquet_scan(tmp_path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64", "x": "float64"})
    ds.append({"id": np.arange(1000), "x": np.linspace(0, 1, 1000)})
    ds.commit()
    con = duckdb.connect()
    ds.to_duckdb(con, name="t", ordered=False)
    plan = "\n".join(r[1] for r in con.sql("EXPLAIN SELECT id FROM t WHERE id > 990").fetchall())
    scan = plan[plan.index("READ_PARQUET") :]
    assert "Filters:" in scan and "id > 990" in scan
    assert con.sql("SELECT sum(id) FROM t WHERE id > 990").fetchall() == [(sum(range(991, 1000)),)]


def test_unordered_relation_holds_the_same_rows(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    got = ds.to_duckdb(duckdb.connect(), ordered=False).to_arrow_table().to_pylist()
    assert sorted(got, key=lambda r: r["id"]) == ds.to_arrow().to_pylist()


def test_old_versions_branches_and_empty_datasets(tmp_path) -> None:
    url = str(tmp_path / "ds")
    ds = _edited(url)
    first = next(v for v in ds.history if v.message == "first").id
    old = lakefmt.open_read_only(url, version=first)
    con = duckdb.connect()
    assert old.to_duckdb(con).to_arrow_table().to_pylist() == old.to_arrow().to_pylist()
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.delete([0, 1])
    dev.commit("dev")
    assert dev.to_duckdb(con).to_arrow_table().to_pylist() == dev.to_arrow().to_pylist()
    empty = lakefmt.create(
        str(tmp_path / "empty"), schema={"a": "int32", "v": lakefmt.types.Embedding(3)}
    )
    rel = empty.to_duckdb(con)
    assert rel.columns == ["a", "v"] and rel.fetchall() == []


def test_media_and_vectors_come_as_stored(tmp_path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, format="PNG")
    ds = lakefmt.create(
        str(tmp_path / "ds"),
        schema={
            "img": lakefmt.types.Image(sample_compression="png"),
            "emb": lakefmt.types.Embedding(3),
        },
    )
    ds.append({"img": [buf.getvalue()] * 2, "emb": np.eye(3, dtype=np.float32)[:2]})
    ds.commit()
    rows = ds.to_duckdb(duckdb.connect()).fetchall()
    assert [bytes(r[0]) for r in rows] == [ds["img"].get_bytes(i) for i in range(2)]
    assert [list(r[1]) for r in rows] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_bad_arguments(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    with pytest.raises(InvalidArgumentError, match="duckdb connection"):
        ds.to_duckdb(con="not a connection")
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        ds.to_duckdb(duckdb.connect(), name="")
    mem = lakefmt.create("mem://other-engines", schema={"a": "int32"})
    with pytest.raises(InvalidArgumentError, match="to_arrow"):
        mem.to_duckdb()
    assert mem.read_plan().rows == 0  # the plan itself is fine anywhere
    bare = lakefmt.create(str(tmp_path / "bare"))
    with pytest.raises(InvalidArgumentError, match="no columns"):
        bare.to_duckdb()


def test_plan_lists_only_this_versions_files(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    plan = ds.read_plan()
    assert plan.rows == len(ds) == 11 and [c.name for c in plan.columns] == [
        "id",
        "name",
        "score",
        "flag",
    ]
    frag0, frag1 = plan.fragments
    assert frag0.deletion is not None and frag0.deletion.count == 1
    assert [u.field_id for u in frag0.updates] == [2]
    assert frag0.default_columns == [3] == frag1.default_columns
    names = {c.field_id: c.parquet_column for f in frag1.files for c in f.columns}
    assert names == {0: "id", 1: "label", 2: "score"}  # the rename keeps the file's name
    assert len(frag1.files) == 2 and [c.field_id for c in frag1.files[-1].columns] == [1]
    again = type(plan).model_validate_json(plan.model_dump_json())
    assert again == plan
    ds.optimize()  # the old files stay on disk until cleanup: the plan leaves them out
    listed = {f.path for frag in ds.read_plan().fragments for f in frag.files}
    on_disk = {f"data/{p.name}" for p in (tmp_path / "ds" / "data").iterdir()}
    assert listed < on_disk and len(listed) == 1
    assert ds.to_duckdb(duckdb.connect()).to_arrow_table().to_pylist() == ds.to_arrow().to_pylist()


def test_older_files_are_guarded_against_nan_bounds(tmp_path, monkeypatch) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"x": "float32"})
    with monkeypatch.context() as patch:  # a writer from before NaN counts
        patch.setattr(fragments, "nan_counts", lambda table: {})
        patch.setattr(fragments, "column_stats", lambda *args: None)
        ds.append({"x": np.array([-5, np.nan, -4], np.float32)})
        ds.commit()
    (column,) = ds.read_plan().fragments[0].files[0].columns
    assert column.nan_safe_statistics is False
    rel = ds.to_duckdb(duckdb.connect())
    assert sorted(rel.filter("x <= -2.5").to_arrow_table().column(0).to_pylist()) == [-5.0, -4.0]


def test_cli_plan_prints_json_and_sql(tmp_path) -> None:
    url = str(tmp_path / "ds")
    ds = _edited(url)
    plan = json.loads(assert_ok(run_cli("plan", url)))
    assert plan["rows"] == 11 and plan["version_id"] == ds.version
    sql = assert_ok(run_cli("plan", url, "--format", "sql"))
    rows = duckdb.connect().sql(sql).to_arrow_table()
    assert rows.to_pylist() == ds.to_arrow().to_pylist()
    first = next(v for v in ds.history if v.message == "first").id
    old = json.loads(assert_ok(run_cli("plan", url, "--version", first)))
    assert old["rows"] == 8 and old["version_id"] == first
