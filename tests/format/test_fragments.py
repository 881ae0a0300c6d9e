"""Writing data files: media row groups and the size reserved for them in memory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakefmt.format import encoding, fragments
from lakefmt.storage.memory import MemoryStorage


@pytest.fixture
def memory() -> Iterator[MemoryStorage]:
    storage = MemoryStorage(f"fragments-{uuid.uuid4().hex}")
    yield storage
    storage.delete_all()


def media_table(sizes: list[int | None], columns: int = 1) -> pa.Table:
    values = [None if n is None else os.urandom(n) for n in sizes]
    return pa.table({f"c{i}": pa.array(values, pa.binary()) for i in range(columns)})


def test_media_row_groups_are_sized_by_bytes(memory: MemoryStorage) -> None:
    table = media_table([15_000] * 1000)
    data_file = fragments.write_data_file(memory, table, [0], media=True)
    rows = encoding.MEDIA_ROW_GROUP_BYTES // (table.nbytes // table.num_rows)
    assert data_file.row_groups[:-1] == [rows] * (len(data_file.row_groups) - 1)
    assert sum(data_file.row_groups) == 1000
    # a full group holds more than 1 MiB, the size under which pyarrow writes pages slowly
    assert rows * 15_000 > 1 << 20
    read = pq.read_table(memory.open_input(data_file.path))
    assert read.column(0).to_pylist() == table.column(0).to_pylist()


@given(
    sizes=st.lists(st.one_of(st.none(), st.integers(0, 40_000)), min_size=0, max_size=300),
    tiny=st.integers(0, 5_000),
    columns=st.integers(1, 3),
)
def test_reserved_size_covers_the_written_media_file(
    sizes: list[int | None], tiny: int, columns: int
) -> None:
    storage = MemoryStorage(f"fragments-{uuid.uuid4().hex}")
    try:
        table = media_table(sizes + [3] * tiny, columns)
        rows = encoding.rows_per_group(
            table, encoding.MEDIA_ROW_GROUP_BYTES, encoding.MAX_MEDIA_ROW_GROUP_ROWS
        )
        data_file = fragments.write_data_file(storage, table, list(range(columns)), media=True)
        assert encoding.plain_file_size(table, rows) >= data_file.size
        assert sum(data_file.row_groups) == table.num_rows
    finally:
        storage.delete_all()


@pytest.mark.parametrize(("count", "size"), [(100_000, 20), (3, 5_000_000), (40_000, 1_000)])
def test_reserved_size_covers_many_groups_and_pages(
    memory: MemoryStorage, count: int, size: int
) -> None:
    table = pa.table({"m": pa.array([b"z" * size] * count, pa.binary())})
    rows = encoding.rows_per_group(
        table, encoding.MEDIA_ROW_GROUP_BYTES, encoding.MAX_MEDIA_ROW_GROUP_ROWS
    )
    data_file = fragments.write_data_file(memory, table, [0], media=True)
    assert data_file.size <= encoding.plain_file_size(table, rows) < data_file.size * 1.2 + 2e5


def test_a_reservation_that_is_too_small_rewrites_the_file(
    memory: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoding, "plain_file_size", lambda table, rows: 1000)
    table = media_table([15_000] * 300)
    data_file = fragments.write_data_file(memory, table, [7], media=True)
    assert sum(data_file.row_groups) == 300  # groups are not counted twice
    assert data_file.size == memory.size(data_file.path)
    read = pq.read_table(memory.open_input(data_file.path))
    assert read.column(0).to_pylist() == table.column(0).to_pylist()


def test_incompressible_numeric_columns_are_stored_uncompressed(memory: MemoryStorage) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    n = 50_000
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "noise": pa.array(rng.random(n, dtype=np.float32)),
            "emb": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.standard_normal(n * 8, dtype=np.float32)), 8
            ),
            "zeros": pa.array(np.zeros(n, dtype=np.float64)),
            "text": pa.array([f"row {i % 7}" for i in range(n)]),
        }
    )
    data_file = fragments.write_data_file(memory, table, [0, 1, 2, 3, 4])
    metadata = fragments.parquet_file(memory, data_file.path).metadata
    codecs = {
        metadata.row_group(0).column(i).path_in_schema.split(".")[0]: metadata.row_group(0)
        .column(i)
        .compression
        for i in range(metadata.num_columns)
    }
    assert codecs == {
        "id": "UNCOMPRESSED",  # delta-encoded instead (below)
        "noise": "UNCOMPRESSED",
        "emb": "UNCOMPRESSED",
        "zeros": "SNAPPY",
        "text": "SNAPPY",
    }
    back = fragments.read_data_file(memory, data_file, [0, 1, 2, 3, 4], 0, n)
    for fid, name in enumerate(table.column_names):
        assert back[fid].equals(table.column(name).combine_chunks())


def test_integer_and_temporal_columns_are_delta_encoded(memory: MemoryStorage) -> None:
    import tempfile

    import duckdb
    import numpy as np

    rng = np.random.default_rng(1)
    n = 20_000
    wide = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64, endpoint=True)
    wide[:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "wide": pa.array(wide),
            "big": pa.array(rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)),
            "when": pa.array(np.arange(n, dtype=np.int64) * 1_000_000).cast(pa.timestamp("us")),
            "maybe": pa.array([None if i % 5 == 0 else i for i in range(n)], pa.int32()),
            "label": pa.array(np.arange(n, dtype=np.int16) % 4),  # few values: a dictionary
            "score": pa.array(rng.random(n)),
        }
    )
    data_file = fragments.write_data_file(memory, table, list(range(7)))
    metadata = fragments.parquet_file(memory, data_file.path).metadata
    encodings = {
        metadata.row_group(0).column(i).path_in_schema: metadata.row_group(0).column(i).encodings
        for i in range(metadata.num_columns)
    }
    for name in ("id", "wide", "big", "when", "maybe"):
        assert "DELTA_BINARY_PACKED" in encodings[name], name
    assert "RLE_DICTIONARY" in encodings["label"]
    assert "DELTA_BINARY_PACKED" not in encodings["score"]
    sizes = {
        metadata.row_group(0).column(i).path_in_schema: metadata.row_group(0)
        .column(i)
        .total_compressed_size
        for i in range(metadata.num_columns)
    }
    assert sizes["id"] < n // 10  # a counter takes a fraction of a byte per value
    back = fragments.read_data_file(memory, data_file, list(range(7)), 0, n)
    for fid, name in enumerate(table.column_names):
        assert back[fid].equals(table.column(name).combine_chunks()), name
    # any Parquet reader decodes it: DuckDB gives back the same values
    raw = memory.read(data_file.path)
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(raw)
        f.flush()
        query = f"SELECT id, wide, big, \"when\", maybe FROM '{f.name}'"
        got = duckdb.sql(query).to_arrow_table()
    for name in ("id", "wide", "big", "when", "maybe"):
        assert got.column(name).to_pylist() == table.column(name).to_pylist(), name


def test_the_footer_written_is_cached_as_the_file_holds_it(tmp_path: object) -> None:
    from lakefmt.storage.local import LocalStorage

    storage = LocalStorage(str(tmp_path), sync=False)
    table = pa.table({"a": pa.array(range(300_000)), "b": pa.array(["x"] * 300_000)})
    data_file = fragments.write_data_file(storage, table, [0, 1])
    cached = fragments._FOOTERS.get_or_load((storage.url, data_file.path), lambda: None)
    on_disk = pq.read_metadata(os.path.join(str(tmp_path), data_file.path))
    assert cached is not None and cached.equals(on_disk)
    assert [on_disk.row_group(g).num_rows for g in range(on_disk.num_row_groups)] == (
        data_file.row_groups
    )
    read = fragments.read_data_file(storage, data_file, [0, 1], 0, 300_000)
    assert read[0].to_pylist() == list(range(300_000)) and read[1].to_pylist()[-1] == "x"
