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
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# -- Arrow streams, pyarrow datasets, polars -------------------------------------------------


def test_to_batches_filter_streams_the_kept_rows_in_order(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    reader = ds.to_batches(["id", "name"], batch_size=3, filter="score > 2 AND flag")
    assert isinstance(reader, pa.RecordBatchReader)
    batches = list(reader)
    assert max(b.num_rows for b in batches) <= 3
    got = pa.Table.from_batches(batches).to_pylist()
    want = [{"id": r["id"], "name": r["name"]} for r in ds.to_arrow().to_pylist() if r["score"] > 2]
    assert got == want
    with pytest.raises(InvalidArgumentError, match="condition"):
        ds.to_batches(filter="  ")
    with pytest.raises(lakefmt.QueryError):
        ds.to_batches(filter="no_such_column > 1")


def test_views_are_arrow_streams(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    assert pa.table(ds).to_pylist() == ds.to_arrow().to_pylist()
    view = ds.query("SELECT * WHERE id > 8")
    assert pa.table(view).column("id").to_pylist() == [9, 10, 11]
    assert pl.DataFrame(view)["id"].to_list() == [9, 10, 11]
    assert duckdb.sql("SELECT count(*) FROM view").fetchall() == [(3,)]


def test_to_pyarrow_dataset_only_where_files_are_the_rows(tmp_path) -> None:
    ds = _edited(str(tmp_path / "ds"))
    with pytest.raises(InvalidArgumentError, match=r"deleted rows.*to_batches"):
        ds.to_pyarrow_dataset()
    ds.optimize()
    dataset = ds.to_pyarrow_dataset()
    assert dataset.to_table().to_pylist() == ds.to_arrow().to_pylist()
    assert dataset.to_table(filter=pads.field("id") > 9).column("id").to_pylist() == [10, 11]
    ds.add_column("extra", "int32")  # no default: old rows read null, as pyarrow fills them
    ds.commit()
    assert ds.to_pyarrow_dataset().to_table().to_pylist() == ds.to_arrow().to_pylist()
    ds.add_column("seven", "int32", default_value=7)
    ds.commit()
    with pytest.raises(InvalidArgumentError, match="default"):
        ds.to_pyarrow_dataset()
    ds.remove_column("seven")
    ds.rename_column("name", "label")
    ds.commit()
    with pytest.raises(InvalidArgumentError, match="renamed"):
        ds.to_pyarrow_dataset()
    mem = lakefmt.create("mem://pyarrow-dataset", schema={"a": "int32"})
    with pytest.raises(InvalidArgumentError, match="local disk"):
        mem.to_pyarrow_dataset()


def test_scan_polars_equals_to_polars_and_pushes_down(tmp_path, monkeypatch) -> None:
    url = str(tmp_path / "ds")
    ds = _edited(url)
    lazy = lakefmt.scan_polars(url)
    assert lazy.collect().equals(ds.to_polars())
    seen: list[list[str]] = []
    original = lakefmt.ReadOnlyDataset.to_batches

    def spy(self, columns=None, batch_size=65_536, **kwargs):
        seen.append(list(columns))
        return original(self, columns, batch_size, **kwargs)

    monkeypatch.setattr(lakefmt.ReadOnlyDataset, "to_batches", spy)
    got = lazy.filter(pl.col("score") > 3).select("id").collect()
    assert got["id"].to_list() == [6, 7, 8, 9, 10, 11]
    assert seen[-1] == ["id", "score"]  # projection: only the columns the query needs
    assert lazy.head(2).collect()["id"].to_list() == [0, 1]
    assert lazy.select(pl.len()).collect().item() == 11
    # the frame is pinned at the version it was made at
    ds.append({"id": [50], "name": ["late"], "score": [0.0], "flag": [True]})
    ds.commit()
    assert lazy.collect().height == 11 and lakefmt.scan_polars(url).collect().height == 12
    first = next(v for v in ds.history if v.message == "first").id
    assert lakefmt.scan_polars(url, version=first).collect().height == 8


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    threshold=st.floats(-1, 6),
    columns=st.lists(st.sampled_from(["id", "name", "score", "flag"]), min_size=1, unique=True),
    limit=st.none() | st.integers(0, 12),
)
def test_scan_polars_matches_eager_polars(tmp_path_factory, threshold, columns, limit) -> None:
    url = _SHARED.get("url")
    if url is None:
        url = str(tmp_path_factory.mktemp("scan") / "ds")
        _edited(url)
        _SHARED["url"] = url
    eager = (
        lakefmt.open_read_only(url).to_polars().filter(pl.col("score") > threshold).select(columns)
    )
    lazy = lakefmt.scan_polars(url).filter(pl.col("score") > threshold).select(columns)
    if limit is not None:
        eager, lazy = eager.head(limit), lazy.head(limit)
    assert lazy.collect().equals(eager)


_SHARED: dict[str, str] = {}
