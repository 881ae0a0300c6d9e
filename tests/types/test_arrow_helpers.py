"""Arrow plumbing: single chunks are not copied; extension types are rebuilt once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lakefmt.types import Image, as_array


def test_as_array_keeps_a_single_chunk_without_copying() -> None:
    chunk = pa.array([b"a", b"bc", None])
    single = as_array(pa.chunked_array([chunk]))
    assert single.buffers()[2].address == chunk.buffers()[2].address
    assert single.equals(chunk)


def test_as_array_concatenates_several_chunks_and_passes_arrays_through() -> None:
    chunked = pa.chunked_array([pa.array([1, 2]), pa.array([3])])
    assert as_array(chunked).to_pylist() == [1, 2, 3]
    assert as_array(pa.chunked_array([], type=pa.int32())).to_pylist() == []
    plain = pa.array([1.5])
    assert as_array(plain) is plain


def test_extension_types_read_back_equal_and_shared(tmp_path: Path) -> None:
    kinds = [Image("uint8", "jpeg"), Image("uint8", "png")]
    for i, kind in enumerate(kinds):
        arrow = kind.arrow_type
        table = pa.table({"x": pa.ExtensionArray.from_storage(arrow, pa.array([b"\x00"]))})
        pq.write_table(table, tmp_path / f"{i}.parquet", store_schema=True)
    first = [pq.read_table(tmp_path / f"{i}.parquet").schema.field("x").type for i in range(2)]
    again = [pq.read_table(tmp_path / f"{i}.parquet").schema.field("x").type for i in range(2)]
    assert [t.params for t in first] == [k.arrow_type.params for k in kinds]
    assert first[0] is not first[1]  # different parameters stay different types
    assert again[0] is first[0] and again[1] is first[1]  # rebuilt once, then shared
