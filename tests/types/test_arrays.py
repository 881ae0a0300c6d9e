"""Embedding and Array columns: layouts, zero-copy reads, shape/dtype checks, random round trips."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lakefmt
from lakefmt import types
from lakefmt.errors import TypeMismatchError

Roundtrip = Callable[..., lakefmt.ReadOnlyDataset]


def _mem() -> str:
    return f"mem://types-{uuid.uuid4().hex}"


# --- Embedding -----------------------------------------------------------------------------------


def test_embedding_storage_and_round_trip(types_roundtrip: Roundtrip) -> None:
    dtype = types.Embedding(4)
    assert dtype.storage_type == pa.list_(pa.float32(), 4)
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4)
    ds = types_roundtrip(
        {"e": dtype},
        {"e": vectors},  # (n, size) array
        {"e": [[1, 2, 3, 4], np.ones(4, np.float32)]},  # list of vectors
        {"e": [0.5, 0.5, 0.5, 0.5]},  # one row
    )
    all_rows = ds["e"][:]
    assert isinstance(all_rows, np.ndarray) and all_rows.shape == (6, 4)
    assert all_rows.dtype == np.float32
    np.testing.assert_array_equal(all_rows[:3], vectors)
    one = ds["e"][5]
    assert one.shape == (4,) and one.tolist() == [0.5] * 4
    assert ds["e"][1:3].shape == (2, 4)


def test_embedding_decode_is_zero_copy() -> None:
    dtype = types.Embedding(3)
    array = dtype.convert(np.arange(30, dtype=np.float32).reshape(10, 3), column="e")
    child = array.storage.values
    buffer_address = child.buffers()[1].address
    decoded = dtype.decode(array.slice(2, 5))
    assert decoded.shape == (5, 3)
    assert decoded.__array_interface__["data"][0] == buffer_address + 6 * 4
    assert dtype.decode_one(array, 4).__array_interface__["data"][0] == buffer_address + 12 * 4


def test_embedding_nulls_and_zero_rows(types_roundtrip: Roundtrip) -> None:
    ds = types_roundtrip(
        {"e": types.Embedding(2, "float16")},
        {"e": np.zeros((0, 2), np.float32)},  # zero-row append
        {"e": [[1, 2], None, [3, 4]]},
    )
    rows = ds["e"][:]
    assert rows[1] is None and rows[0].dtype == np.float16
    assert rows[2].tolist() == [3, 4]
    assert ds["e"][1] is None
    assert len(ds) == 3


@pytest.mark.parametrize(
    "bad,match",
    [
        ([[1, 2, 3, 4], [1, 2, 3]], r"got shape \(3,\) at row 1"),
        (np.zeros((2, 5)), r"shape \(2, 5\)"),
        ([[1, 2, 3, 4], ["a", "b", "c", "d"]], "row 1"),
        ([[1, 2, 3, 4], [1, None, 3, 4]], "row 1"),
        (np.array([[1, 2, 3, 4]], dtype=complex), "complex"),
        ([[1, 2, 3, 4], "text"], "row 1"),
    ],
)
def test_embedding_mismatch_names_column_and_row(types_url: str, bad: Any, match: str) -> None:
    ds = lakefmt.create(types_url, schema={"vec": types.Embedding(4)})
    with pytest.raises(TypeMismatchError, match=match) as info:
        ds.append({"vec": bad})
    assert "'vec'" in str(info.value)
    assert len(ds) == 0


def test_embedding_int8_refuses_floats(types_url: str) -> None:
    ds = lakefmt.create(types_url, schema={"q": types.Embedding(2, "int8")})
    with pytest.raises(TypeMismatchError, match="int8"):
        ds.append({"q": np.array([[0.5, 1.0]])})
    with pytest.raises(TypeMismatchError, match="out of range"):
        ds.append({"q": np.array([[300, 1]])})
    ds.append({"q": np.array([[3, -1]])})
    assert ds["q"][0].tolist() == [3, -1]


# --- Array ---------------------------------------------------------------------------------------


def test_fixed_shape_array(types_roundtrip: Roundtrip) -> None:
    dtype = types.Array("int16", shape=(2, 3))
    assert dtype.storage_type == pa.list_(pa.int16(), 6)
    data = np.arange(24, dtype=np.int16).reshape(4, 2, 3)
    ds = types_roundtrip({"a": dtype}, {"a": data}, {"a": data[0].tolist()})
    rows = ds["a"][:]
    assert rows.shape == (5, 2, 3) and rows.dtype == np.int16
    np.testing.assert_array_equal(rows[:4], data)
    np.testing.assert_array_equal(ds["a"][4], data[0])


def test_ragged_array(types_roundtrip: Roundtrip) -> None:
    dtype = types.Array("float32", dimensions=2)
    assert dtype.storage_type == pa.list_(pa.list_(pa.float32()))
    rows_in = [np.ones((2, 3)), np.zeros((1, 5)), None, np.zeros((0, 0)), [[1.5, 2.5]]]
    ds = types_roundtrip({"a": dtype}, {"a": rows_in})
    rows = ds["a"][:]
    assert isinstance(rows, list)
    assert [None if r is None else r.shape for r in rows] == [(2, 3), (1, 5), None, (0, 0), (1, 2)]
    assert rows[0].dtype == np.float32
    assert rows[4].tolist() == [[1.5, 2.5]]
    assert ds["a"][1].shape == (1, 5)


def test_one_dimensional_ragged_and_empty(types_roundtrip: Roundtrip) -> None:
    ds = types_roundtrip(
        {"a": types.Array("int64", dimensions=1), "b": types.Array("bool", dimensions=1)},
        {"a": [np.arange(3), [], None], "b": [np.zeros(0, bool), [], None]},
    )
    a = ds["a"][:]
    assert a[0].tolist() == [0, 1, 2] and a[1].shape == (0,) and a[2] is None
    b = ds["b"][:]
    assert b[0].shape == (0,) and b[0].dtype == bool and b[2] is None
    with pytest.raises(TypeError, match="positive"):
        types.Array("bool", shape=(0,))  # Parquet cannot hold fixed_size_list[0]


@pytest.mark.parametrize(
    "dtype,bad,match",
    [
        (types.Array("float32", shape=(2, 2)), [np.zeros((2, 2)), np.zeros((2, 3))], r"row 1"),
        (types.Array("float32", shape=(2, 2)), np.zeros((3, 4)), r"shape"),
        (types.Array("int32", shape=(2,)), [[1, 2], [1.5, 2]], r"int32.*float64 at row 1"),
        (types.Array("int32", dimensions=2), [np.zeros((2, 2), int), np.zeros(3, int)], r"row 1"),
        (types.Array("int32", dimensions=1), [[1, 2], [[1], [2, 3]]], r"row 1"),
        (types.Array("bool", dimensions=1), [[True], [1, 0]], r"bool.*row 1"),
        (types.Array("uint8", dimensions=1), [[1], [256]], r"out of range.*row 1"),
        (types.Array("float32", dimensions=1), [[1.0], ["x"]], r"row 1"),
    ],
)
def test_array_mismatch(types_url: str, dtype: types.Array, bad: Any, match: str) -> None:
    ds = lakefmt.create(types_url, schema={"arr": dtype})
    with pytest.raises(TypeMismatchError, match=match) as info:
        ds.append({"arr": bad})
    assert "'arr'" in str(info.value)
    assert len(ds) == 0


def test_array_constructor_checks() -> None:
    with pytest.raises(TypeError):
        types.Array("float32")
    with pytest.raises(TypeError):
        types.Array("float32", dimensions=2, shape=(2, 2))
    with pytest.raises(TypeError):
        types.Array("complex64", shape=(2,))
    with pytest.raises(TypeError):
        types.Array("float32", shape=(-1, 2))
    assert types.Array("float32", shape=[2, 2]) == types.Array(np.float32, shape=(2, 2))


def test_one_row_appends_are_told_apart_from_batches(types_url: str) -> None:
    ds = lakefmt.create(
        types_url,
        schema={
            "fixed": types.Array("int32", shape=(2,)),
            "ragged": types.Array("int32", dimensions=1),
        },
    )
    ds.append({"fixed": [1, 2], "ragged": [1, 2, 3]})  # one row
    ds.append({"fixed": [[1, 2], [3, 4]], "ragged": [[1], [2, 3]]})  # two rows
    assert len(ds) == 3
    assert ds["ragged"][0].tolist() == [1, 2, 3]


# --- hypothesis round trips ----------------------------------------------------------------------


@given(
    size=st.integers(1, 16),
    rows=st.integers(0, 12),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    data=st.data(),
)
def test_random_embeddings_round_trip(
    size: int, rows: int, dtype: str, data: st.DataObject
) -> None:
    vectors = data.draw(hnp.arrays(dtype, (rows, size), elements=st.floats(-1e3, 1e3, width=16)))
    url = _mem()
    ds = lakefmt.create(url, schema={"e": types.Embedding(size, dtype)})
    ds.append({"e": vectors})
    ds.flush()
    back = lakefmt.open_read_only(url)["e"][:]
    assert back.shape == (rows, size)
    np.testing.assert_array_equal(back, vectors)


_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@given(
    shape=_shapes,
    rows=st.integers(0, 6),
    dtype=st.sampled_from(["int8", "uint16", "int64", "float32", "bool"]),
    data=st.data(),
)
def test_random_fixed_arrays_round_trip(
    shape: tuple[int, ...], rows: int, dtype: str, data: st.DataObject
) -> None:
    values = data.draw(hnp.arrays(dtype, (rows, *shape)))
    if values.dtype.kind == "f":
        values = np.nan_to_num(values)
    url = _mem()
    ds = lakefmt.create(url, schema={"a": types.Array(dtype, shape=shape)})
    ds.append({"a": values})
    ds.flush()
    back = lakefmt.open_read_only(url)["a"][:]
    assert back.shape == (rows, *shape) and back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, values)


@given(
    ndim=st.integers(1, 3),
    dtype=st.sampled_from(["int32", "float64", "bool", "uint8"]),
    data=st.data(),
)
def test_random_ragged_arrays_round_trip(ndim: int, dtype: str, data: st.DataObject) -> None:
    shapes = data.draw(
        st.lists(st.none() | st.tuples(*[st.integers(1, 4)] * ndim), min_size=0, max_size=5)
    )
    rows = [None if s is None else data.draw(hnp.arrays(dtype, s)) for s in shapes]
    rows = [r if r is None or r.dtype.kind != "f" else np.nan_to_num(r) for r in rows]
    url = _mem()
    ds = lakefmt.create(url, schema={"a": types.Array(dtype, dimensions=ndim)})
    ds.append([{"a": r} for r in rows])
    ds.flush()
    back = lakefmt.open_read_only(url)["a"][:]
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        if want is None:
            assert got is None
        else:
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, want)
