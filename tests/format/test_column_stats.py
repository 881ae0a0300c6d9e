"""Column statistics of data files (``DataFile.stats``) and bloom filters for declared indexes."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt import types
from lakefmt.format import column_stats, encoding
from lakefmt.format import fragments as files
from lakefmt.format.column_stats import MAX_STRING_BOUND
from lakefmt.format.manifest import ColumnStats, DataFile, Field, Manifest, dump_manifest
from lakefmt.storage.local import LocalStorage


@pytest.fixture
def storage(tmp_path: Any) -> Any:
    return LocalStorage(str(tmp_path))


def _write(storage: Any, table: pa.Table, **kwargs: Any) -> DataFile:
    return files.write_data_file(storage, table, list(range(table.num_columns)), **kwargs)


def test_stats_bound_every_value(storage: Any) -> None:
    long = "x" * (MAX_STRING_BOUND + 10)
    table = pa.table(
        {
            "i": pa.array([5, None, -3, 12], pa.int32()),
            "u": pa.array([2**64 - 1, 0, 7, 1], pa.uint64()),
            "f": pa.array([1.5, None, -0.25, 8.0]),
            "b": pa.array([True, True, None, True]),
            "s": pa.array(["pear", None, "apple", long]),
            "g": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
            "l": pa.array([[1], [2], None, []], pa.list_(pa.int64())),
            "after": pa.array([1, 2, 3, 4], pa.int64()),
        }
    )
    stats = _write(storage, table).stats
    assert stats is not None
    i, u, f, b, s, g, lst, after = stats
    assert i == ColumnStats(min=-3, max=12, null_count=1)
    assert u == ColumnStats(min=0, max=2**64 - 1, null_count=0)
    assert f == ColumnStats(min=-0.25, max=8.0, null_count=1, nan_count=0)
    assert b == ColumnStats(min=True, max=True, null_count=1)
    # a long max is left out, a long min would be cut to a prefix: bounds stay bounds
    assert s is not None and s.min == "apple" and s.max is None and s.null_count == 1
    # float32 gets only its NaN count (the mark of NaN-safe Parquet statistics), lists none
    assert g == ColumnStats(nan_count=0) and lst is None
    assert after == ColumnStats(min=1, max=4, null_count=0)  # leaves counted past the list


def test_long_min_is_cut_to_a_prefix(storage: Any) -> None:
    value = "m" * (MAX_STRING_BOUND * 2)
    stats = _write(storage, pa.table({"s": [value, value + "z"]})).stats
    assert stats is not None and stats[0] is not None
    assert stats[0].min == value[:MAX_STRING_BOUND] and stats[0].max is None


def test_float_column_with_nan_has_no_parquet_statistics(storage: Any) -> None:
    data_file = _write(storage, pa.table({"f": [1.0, math.nan, None], "i": [1, 2, 3]}))
    assert data_file.stats == [ColumnStats(nan_count=1), ColumnStats(min=1, max=3, null_count=0)]
    meta = pq.ParquetFile(storage.open_input(data_file.path)).metadata
    assert not meta.row_group(0).column(0).is_stats_set
    assert meta.row_group(0).column(1).is_stats_set


def test_stats_cover_every_row_group(storage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoding, "MAX_ROW_GROUP_ROWS", 3)
    data_file = _write(storage, pa.table({"i": list(range(10, 0, -1))}))
    assert len(data_file.row_groups) > 1
    assert data_file.stats == [ColumnStats(min=1, max=10, null_count=0)]


def test_dump_leaves_out_unknown_members() -> None:
    with_stats = DataFile(
        path="data/a.parquet",
        field_ids=[0, 1],
        size=1,
        row_groups=[1],
        stats=[ColumnStats(min=1, max=2), None],
    )
    without = DataFile(path="data/b.parquet", field_ids=[0], size=1, row_groups=[1])
    manifest = Manifest(
        dataset_id="d",
        branch="main",
        version=1,
        id="0000000000000001",
        timestamp=0,
        fragments=[{"id": 0, "rows": 1, "files": [with_stats, without]}],  # type: ignore[list-item]
    )
    raw = dump_manifest(manifest)
    body = json.loads(raw)
    first, second = body["fragments"][0]["files"]
    assert first["stats"] == [{"min": 1, "max": 2}, None]
    assert "stats" not in second
    # older readers: a DataFile without stats, and unknown ColumnStats members, still parse
    assert DataFile.model_validate({**second}).stats is None
    parsed = DataFile.model_validate({**first, "stats": [{"min": 1, "future": 3}, None]})
    assert parsed.stats == [ColumnStats(min=1), None]


@pytest.mark.parametrize(
    ("params", "wanted"),
    [
        ({}, False),
        ({"index_type": "inverted"}, False),  # sorted keys answer lookups
        ({"index_type": "numeric"}, False),
        ({"index_type": "EXACT"}, False),
        ({"index_type": "BM25"}, True),
        ({"index_type": ["clustered", "bm25"]}, True),
        ({"index_type": "hnsw"}, False),
        ({"index_type": 3}, False),
    ],
)
def test_wants_bloom_filter(params: dict[str, Any], wanted: bool) -> None:
    field = Field(id=0, name="c", type={"name": "int64", "params": params})
    assert encoding.wants_bloom_filter(field) is wanted


def test_bloom_filters_only_on_asked_columns(storage: Any) -> None:
    table = pa.table({"id": list(range(5000)), "name": [f"n{i}" for i in range(5000)]})
    data_file = files.write_data_file(storage, table, [0, 1], bloom_filters={1})
    meta = pq.ParquetFile(storage.open_input(data_file.path)).metadata
    column = meta.row_group(0).column
    assert column(0).to_dict().get("bloom_filter_offset") is None
    assert column(1).to_dict().get("bloom_filter_offset") is not None


def test_stats_for_at_most_the_first_columns(storage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_stats, "MAX_STATS_COLUMNS", 2)
    stats = _write(storage, pa.table({c: [1, 2] for c in "abcd"})).stats
    assert stats == [ColumnStats(min=1, max=2, null_count=0)] * 2 + [None, None]


def test_columns_with_a_lookup_index_get_small_row_groups(tmp_path: Any) -> None:
    n = 3 * encoding.LOOKUP_ROW_GROUP_ROWS + 5
    plain = lakefmt.create(str(tmp_path / "plain"), schema={"id": "int64"})
    indexed = lakefmt.create(
        str(tmp_path / "indexed"), schema={"id": types.Int64(index_type=types.NumericIndex())}
    )
    for ds in (plain, indexed):
        ds.append({"id": np.arange(n)})
        ds.commit()
    (plain_file,) = plain._manifest.fragments[0].files
    (indexed_file,) = indexed._manifest.fragments[0].files
    assert plain_file.row_groups == [n]
    assert indexed_file.row_groups == [encoding.LOOKUP_ROW_GROUP_ROWS] * 3 + [5]
    assert indexed.query("SELECT id WHERE id = 40000")["id"][:].tolist() == [40000]
