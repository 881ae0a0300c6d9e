"""Filters on floating columns holding NaN, over files of this writer and of older ones.

Parquet bounds leave NaN out, and DuckDB orders NaN above every number, so a reader that
trusted an older writer's ``min``/``max`` would judge ``x <= -2.5`` always true over
``[-5, -3, NaN]`` and return the NaN row. The expected answers come from DuckDB over the
same values as an Arrow table, which has no statistics to trust.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt.format import fragments

VALUES = [-5.0, -3.0, float("nan"), -4.0, None, -3.5]
CONDITIONS = [
    "{c} <= -2.5",
    "{c} < -2.5",
    "{c} > -10",
    "{c} >= -5",
    "{c} != -4",
    "{c} = -4",
    "{c} BETWEEN -6 AND -2",
    "{c} IN (-5, -3)",
    "NOT ({c} > -3.2)",
    "{c} IS NULL",
    "isnan({c})",
]
COLUMNS = {"f64": np.float64, "f32": np.float32, "f16": np.float16}


@pytest.fixture(params=["current", "older"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "older":
        # a writer before NaN counts: Parquet statistics always, no ColumnStats
        monkeypatch.setattr(fragments, "nan_counts", lambda table: {})
        monkeypatch.setattr(fragments, "column_stats", lambda *args: None)
    return str(request.param)


def _arrays() -> dict[str, pa.Array]:
    mask = np.array([v is None for v in VALUES])
    raw = np.array([0.0 if v is None else v for v in VALUES])
    return {name: pa.array(raw.astype(dtype), mask=mask) for name, dtype in COLUMNS.items()}


def _dataset(tmp_path, writer: str, fragments_count: int) -> lakefmt.Dataset:
    ds = lakefmt.create(str(tmp_path / f"ds-{writer}"))
    ds.add_column("f64", lakefmt.types.Float64())
    ds.add_column("f32", lakefmt.types.Float32())
    ds.add_column("f16", lakefmt.types.Float16())
    for _ in range(fragments_count):
        ds.append(_arrays())
        ds.commit()
    return ds


def _expected(condition: str, copies: int) -> dict[str, list]:
    con = duckdb.connect()
    # DuckDB reads no Arrow float16: the values are exact in float32
    arrays = {k: v.cast(pa.float32()) if k == "f16" else v for k, v in _arrays().items()}
    con.register("t", pa.concat_tables([pa.table(arrays)] * copies))
    out = {}
    for name in COLUMNS:
        rows = con.sql(f"SELECT {name} FROM t WHERE {condition.format(c=name)}").fetchall()
        out[name] = [r[0] for r in rows]
    return out


@pytest.mark.parametrize("condition", CONDITIONS)
def test_filters_on_nan_columns_match_unfiltered_semantics(
    tmp_path, writer: str, condition: str
) -> None:
    ds = _dataset(tmp_path, writer, fragments_count=2)
    expected = _expected(condition, copies=2)
    for name in COLUMNS:
        got = ds.query(f"SELECT {name} WHERE {condition.format(c=name)}").to_arrow()
        values = sorted(
            got.column(0).to_pylist(), key=lambda v: (v is None, np.isnan(v) if v else 0, v)
        )
        want = sorted(expected[name], key=lambda v: (v is None, np.isnan(v) if v else 0, v))
        assert len(values) == len(want), (name, condition, values, want)
        assert np.array_equal(
            np.array(values, dtype=float), np.array(want, dtype=float), equal_nan=True
        ), (name, condition)


def test_older_files_really_carry_bounds_without_nan(tmp_path, writer: str) -> None:
    """The case above is real: an older writer's file has bounds DuckDB misreads, while
    this writer's file has none for a column holding NaN and marks it."""
    ds = _dataset(tmp_path, writer, fragments_count=1)
    data_file = ds._manifest.fragments[0].files[0]
    path = f"{ds.url.removeprefix('file://')}/{data_file.path}"
    stats = pq.ParquetFile(path).metadata.row_group(0).column(0).statistics
    raw = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}') WHERE f64 <= -2.5").fetchall()[0]
    if writer == "older":
        assert stats is not None and stats.has_min_max
        assert data_file.stats is None
        assert raw == (5,)  # DuckDB alone returns the NaN row as well: the bug guarded against
    else:
        assert stats is None or not stats.has_min_max
        assert data_file.stats is not None
        assert [s.nan_count for s in data_file.stats] == [1, 1, 1]
        assert raw == (4,)


def test_mixed_old_and_new_fragments_and_compaction(tmp_path, monkeypatch) -> None:
    ds = lakefmt.create(str(tmp_path / "mixed"))
    ds.add_column("x", lakefmt.types.Float32())
    with monkeypatch.context() as patch:
        patch.setattr(fragments, "nan_counts", lambda table: {})
        patch.setattr(fragments, "column_stats", lambda *args: None)
        ds.append({"x": np.array([-5, np.nan, -4], np.float32)})
        ds.commit()
    ds.append({"x": np.array([-3, np.nan], np.float32)})
    ds.commit()
    query = "SELECT x WHERE x <= -2.5"
    assert sorted(ds.query(query).to_arrow().column(0).to_pylist()) == [-5.0, -4.0, -3.0]
    ds.optimize()
    assert sorted(ds.query(query).to_arrow().column(0).to_pylist()) == [-5.0, -4.0, -3.0]
    assert ds.query("SELECT count(*) AS n WHERE isnan(x)").to_arrow().column(0).to_pylist() == [2]
