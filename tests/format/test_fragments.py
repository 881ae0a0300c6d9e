"""Writing data files: media row groups."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakefmt.format import fragments
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
    rows = fragments.MEDIA_ROW_GROUP_BYTES // (table.nbytes // table.num_rows)
    assert data_file.row_groups[:-1] == [rows] * (len(data_file.row_groups) - 1)
    assert sum(data_file.row_groups) == 1000
    # a full group holds more than 1 MiB, the size under which pyarrow writes pages slowly
    assert rows * 15_000 > 1 << 20
    read = pq.read_table(memory.open_input(data_file.path))
    assert read.column(0).to_pylist() == table.column(0).to_pylist()
