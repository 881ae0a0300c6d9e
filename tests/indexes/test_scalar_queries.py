"""Lookups (``=``, ``IN``, ranges) answered with a sorted-key index return exactly the exact
path's rows, through appends, deletes, updates, optimize and time travel; literals of
another type and damaged files fall back to the exact path."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.errors import FormatError
from lakefmt.format.index_files import INDEX_FILE_CACHE
from lakefmt.indexes.scalar import SortedKeys, build_sorted_keys
from lakefmt.indexes.segments import LOADED
from lakefmt.tql import scalar_search

EXACT = lakefmt.SearchConfig(exact=True)


def _rows(rng: np.random.Generator, start: int, n: int) -> dict[str, object]:
    names: list[str | None] = [f"n{int(v)}" for v in rng.integers(0, 40, n)]
    for i in np.flatnonzero(rng.random(n) < 0.05):
        names[int(i)] = None
    f = rng.integers(-20, 20, n).astype(np.float64) / 4
    f[(f == 0) & (rng.random(n) < 0.5)] = -0.0  # equal to 0.0, as DuckDB compares
    f[rng.random(n) < 0.03] = np.nan
    return {
        "id": np.arange(start, start + n, dtype=np.int64),
        "k": rng.integers(-50, 50, n).astype(np.int32),
        "f": f,
        "name": names,
    }


def _dataset(path: str, rng: np.random.Generator, n: int = 300) -> lakefmt.Dataset:
    ds = lakefmt.create(path)
    ds.add_column("id", types.Int64())
    ds.add_column("k", types.Int32(index_type=types.NumericIndex()))
    ds.add_column("f", types.Float64(index_type="numeric"))
    ds.add_column("name", types.Text(index_type=types.Exact))
    ds.append(_rows(rng, 0, n))
    ds.commit()
    return ds


QUERIES = [
    "SELECT id, k WHERE k = 7",
    "SELECT * WHERE k IN (-3, 0, 49, 1000)",
    "SELECT id WHERE k BETWEEN -5 AND 5 AND id > 20 ORDER BY id DESC LIMIT 17",
    "SELECT id WHERE 10 < k",
    "SELECT id WHERE k <= -48",
    "SELECT COUNT(*) AS c, SUM(k) AS s WHERE k >= 10 AND k < 30",
    "SELECT id WHERE f > 4",
    "SELECT id WHERE f = 1.25",
    "SELECT id WHERE f BETWEEN -1 AND 1.5",
    "SELECT id, name WHERE name = 'n3'",
    "SELECT id WHERE name IN ('n1', 'n39', 'absent') AND k > 0",
    "SELECT id WHERE k = 3 AND name = 'n5'",
    "SELECT id WHERE k = 3.5",
    "SELECT id WHERE k = '7'",
    "SELECT id WHERE k = 4 OR k = 5",
    "SELECT id WHERE f = 0",
    "SELECT id WHERE f IN (-0.0, 0.5)",
    "SELECT id WHERE k BETWEEN 5 AND -5",
    "SELECT id, k WHERE k > 0 LIMIT 3",
    "SELECT * WHERE k > 0 LIMIT 4 OFFSET 2",
    "SELECT id WHERE k < 0 OFFSET 5",
    "SELECT id WHERE k = 7 LIMIT 0",
    "SELECT id WHERE k > 0 LIMIT 2 + 1",
]


def _cells(table: pa.Table) -> tuple[object, list[list[object]]]:
    """A table's schema and values, NaN equal to NaN."""
    columns = [
        ["nan" if isinstance(v, float) and v != v else v for v in c.to_pylist()]
        for c in table.columns
    ]
    return table.schema, columns


def _check(ds: lakefmt.Dataset | lakefmt.ReadOnlyDataset) -> None:
    saved = ds.query_config
    ds.query_config = lakefmt.SearchConfig()
    assert "candidate rows" in ds.explain(QUERIES[0])  # the index is used
    try:
        for tql in QUERIES:
            ds.query_config = lakefmt.SearchConfig()
            got = ds.query(tql).to_arrow()
            ds.query_config = EXACT
            want = ds.query(tql).to_arrow()
            assert _cells(got) == _cells(want), tql
    finally:
        ds.query_config = saved


def test_index_is_built_used_and_exact(tmp_path, monkeypatch):
    ds = _dataset(str(tmp_path / "ds"), np.random.default_rng(1))
    direct = []
    real = scalar_search.direct_lookup

    def counted(*args, **kwargs):
        result = real(*args, **kwargs)
        direct.append(result is not None)
        return result

    monkeypatch.setattr(scalar_search, "direct_lookup", counted)
    kinds = {(i.kind, i.engine) for i in ds._manifest.indexes}
    assert kinds == {("numeric", "lakefmt.sorted"), ("exact", "lakefmt.inverted")}
    name_index = next(i for i in ds._manifest.indexes if i.kind == "exact")
    assert {f.role for f in name_index.segments[0].files} == {"postings", "lengths", "keys"}
    plan = ds.explain("SELECT * WHERE k = 7")
    assert "index 0 (numeric) on column 'k'" in plan and "candidate rows" in plan
    assert "(exact) on column 'name'" in ds.explain("SELECT * WHERE name = 'n1'")
    # literals of another type than the column's: DuckDB's coercions, no index
    assert "Index: none" in ds.explain("SELECT * WHERE k = 3.5")
    assert "Index: none" in ds.explain("SELECT * WHERE k = '3'")
    assert "Index: none" in ds.explain("SELECT * WHERE k = 99999999999")
    assert "Index: none" in ds.explain("SELECT * WHERE name > 'n1'")  # hashes: equality only
    assert "Index: none" in ds.explain("SELECT * WHERE id = 3")  # no index on id
    ds.query_config = EXACT
    assert "Index: none" in ds.explain("SELECT * WHERE k = 3")
    ds.query_config = lakefmt.SearchConfig()
    _check(ds)
    # answered without DuckDB: plain projections of fully indexed WHEREs
    assert sum(direct) >= 9 and not all(direct)


OPS = st.lists(
    st.sampled_from(["append", "delete", "update", "build", "optimize", "tag"]),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, seed=st.integers(0, 1000))
def test_lookups_equal_exact_through_changes(tmp_path_factory, ops, seed):
    rng = np.random.default_rng(seed)
    ds = _dataset(str(tmp_path_factory.mktemp("ds") / "ds"), rng, n=200)
    tagged: list[str] = []
    for step, op in enumerate(ops):
        if op == "append":
            ds.append(_rows(rng, 10_000 + step * 100, 60))
        elif op == "delete" and len(ds) > 10:
            ds.delete(sorted({int(i) for i in rng.integers(0, len(ds), 8)}))
        elif op == "update" and len(ds):
            for i in {int(i) for i in rng.integers(0, len(ds), 3)}:
                ds["k"][i] = int(rng.integers(-50, 50))
                ds["name"][i] = f"n{int(rng.integers(0, 40))}"
                ds["f"][i] = float(rng.integers(-20, 20)) / 4
        elif op == "build":
            ds.commit()
            ds.build_indexes()
        elif op == "optimize":
            ds.commit()
            ds.optimize()
        elif op == "tag":
            ds.commit()
            tagged.append(f"t{step}")
            ds.tag(tagged[-1])
        ds.commit()
        _check(ds)
    for tag in tagged:
        _check(lakefmt.open_read_only(ds.url, version=tag))


def test_damaged_keys_file_falls_back_to_exact(tmp_path):
    ds = _dataset(str(tmp_path / "ds"), np.random.default_rng(2))
    tql = "SELECT id WHERE k IN (1, 2, 3)"
    ds.query_config = EXACT
    want = ds.query(tql).to_arrow()
    ds.query_config = lakefmt.SearchConfig()
    index = next(i for i in ds._manifest.indexes if i.kind == "numeric" and i.field_id == 1)
    (keys,) = [f for f in index.segments[0].files if f.role == "keys"]
    path = os.path.join(ds.url, keys.path)
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    INDEX_FILE_CACHE.clear()  # as in a new process
    LOADED.clear()
    fresh = lakefmt.open(ds.url)
    assert _cells(fresh.query(tql).to_arrow()) == _cells(want)
    assert "Index: none" in fresh.explain(tql)  # the damaged segment is not used
    os.remove(path)
    INDEX_FILE_CACHE.clear()
    LOADED.clear()
    assert _cells(lakefmt.open(ds.url).query(tql).to_arrow()) == _cells(want)


def test_keys_file_lookups_and_damage():
    values = pa.array([5, None, 3, 5, 9, -1], pa.int64())
    live = np.array([True, True, True, True, False, True])
    keys = SortedKeys.from_bytes(build_sorted_keys(values, live))
    assert list(keys.values) == [-1, 3, 5, 5] and list(keys.keys) == [5, 2, 0, 3]
    assert sorted(keys.equal(np.array([5, 9, 4]))) == [0, 3]  # 9 is deleted
    assert sorted(keys.between(3, False, 5, True)) == [0, 3]
    assert sorted(keys.between(None, True, 3, False)) == [5]
    floats = SortedKeys.from_bytes(
        build_sorted_keys(pa.array([np.nan, 1.0, -2.0]), np.ones(3, bool))
    )
    assert sorted(floats.between(0.5, True, None, True)) == [0, 1]  # NaN above every number
    with pytest.raises(FormatError):
        SortedKeys.from_bytes(b"not parquet")
    with pytest.raises(FormatError):
        SortedKeys.from_bytes(_unsorted_file())


def _unsorted_file() -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"value": [3, 1], "key": [0, 1]})
    pq.write_table(table.replace_schema_metadata({b"lakefmt.scalar": b"numeric"}), sink)
    return sink.getvalue().to_pybytes()
