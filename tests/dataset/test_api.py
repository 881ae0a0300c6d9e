"""The public Dataset API on scalar columns: lifecycle, indexing, appends, schema evolution,
updates, deletes, versions, read-only handles and pickling."""

from __future__ import annotations

import multiprocessing
import operator
import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import (
    BranchExistsError,
    BranchNotFoundError,
    ColumnExistsError,
    ColumnMissingValueError,
    ColumnNotFoundError,
    DatasetExistsError,
    DatasetNotFoundError,
    InvalidArgumentError,
    ReadOnlyError,
    SchemaError,
    TagExistsError,
    TypeMismatchError,
    UnevenColumnsError,
    VersionNotFoundError,
)
from lakefmt.format.versions import read_latest
from lakefmt.storage import open_storage

# -- helpers --------------------------------------------------------------------------------------


def _fill(ds: lakefmt.Dataset, start: int, stop: int) -> None:
    ds.append({"a": np.arange(start, stop), "b": [f"s{i}" for i in range(start, stop)]})


def _multi_fragment(url: str, sizes: tuple[int, ...] = (10, 7, 13)) -> lakefmt.Dataset:
    """A dataset with one fragment per size: a = 0..n-1, b = "s<a>"."""
    ds = lakefmt.create(url, schema={"a": "int64", "b": "text"})
    start = 0
    for size in sizes:
        _fill(ds, start, start + size)
        ds.flush()
        start += size
    return ds


def _fragments(url: str, branch: str = "main") -> list[Any]:
    return read_latest(open_storage(url), branch).fragments


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values]


# -- lifecycle ------------------------------------------------------------------------------------


def test_create_open_exists_delete(dataset_url: str) -> None:
    assert not lakefmt.exists(dataset_url)
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    assert isinstance(ds, lakefmt.Dataset)
    assert lakefmt.exists(dataset_url)
    assert len(ds) == 0
    assert list(ds.schema) == ["a", "b"]
    assert [c.name for c in ds.schema.columns] == ["a", "b"]
    assert ds.schema["a"] == types.Int64()
    assert ds.schema["b"] == types.Text()

    _fill(ds, 0, 5)
    ds.commit("five rows")

    rw = lakefmt.open(dataset_url)
    assert isinstance(rw, lakefmt.Dataset)
    assert _ints(rw["a"][:]) == [0, 1, 2, 3, 4]
    ro = lakefmt.open_read_only(dataset_url)
    assert isinstance(ro, lakefmt.ReadOnlyDataset)
    assert not isinstance(ro, lakefmt.Dataset)
    assert ro["b"][:] == ["s0", "s1", "s2", "s3", "s4"]

    lakefmt.delete(dataset_url)
    assert not lakefmt.exists(dataset_url)
    assert list(open_storage(dataset_url).list()) == []  # every file is gone
    with pytest.raises(DatasetNotFoundError):
        lakefmt.open(dataset_url)
    # the URL can be used again
    again = lakefmt.create(dataset_url, schema={"x": "bool"})
    assert len(again) == 0
    assert list(lakefmt.open(dataset_url).schema) == ["x"]


def test_create_without_schema_then_add_columns(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url)
    assert len(ds.schema) == 0
    ds.add_column("column1", "int32")
    ds.add_column("column2", "int32")
    ds.append([{"column1": 1, "column2": 2}, {"column1": 3, "column2": 4}])
    ds.append({"column1": [5, 7], "column2": [6, 8]})
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert _ints(again["column1"][:]) == [1, 3, 5, 7]
    assert _ints(again["column2"][:]) == [2, 4, 6, 8]


def test_create_on_existing_dataset(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.flush()
    with pytest.raises(DatasetExistsError):
        lakefmt.create(dataset_url, schema={"a": "int64"})
    with pytest.raises(DatasetExistsError):
        lakefmt.create(dataset_url)
    # the existing dataset is untouched
    assert _ints(lakefmt.open(dataset_url)["a"][:]) == [1]


def test_missing_dataset(dataset_url: str) -> None:
    assert not lakefmt.exists(dataset_url)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.open(dataset_url)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.open_read_only(dataset_url)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.delete(dataset_url)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.copy(dataset_url, f"mem://copy-of-missing-{os.getpid()}-{random.random()}")
    assert isinstance(DatasetNotFoundError("x"), FileNotFoundError)


def test_bad_schema_type(mem_url: str) -> None:
    with pytest.raises(SchemaError, match="'c'"):
        lakefmt.create(mem_url, schema={"c": "complex128"})
    with pytest.raises(SchemaError):
        lakefmt.create(mem_url, schema={"": "int8"})
    assert not lakefmt.exists(mem_url)
    ds = lakefmt.create(mem_url, schema={"a": "int8"})
    with pytest.raises(SchemaError):
        ds.add_column("", "int8")
    with pytest.raises(SchemaError):
        ds.add_column("b", "no-such-type")
    with pytest.raises(SchemaError):
        ds.rename_column("a", "")
    assert list(ds.schema) == ["a"]


def test_schema_forms(mem_url: str) -> None:
    ds = lakefmt.create(
        mem_url, schema={"a": types.Int64, "b": types.Text(), "c": "FLOAT32", "d": np.int16}
    )
    assert ds.schema == {
        "a": types.Int64(),
        "b": types.Text(),
        "c": types.Float32(),
        "d": types.Int16(),
    }
    assert "a" in ds.schema and "z" not in ds.schema
    assert len(ds.schema) == 4
    assert lakefmt.open(mem_url).schema == ds.schema


def _history_dataset(url: str) -> tuple[lakefmt.Dataset, str]:
    ds = lakefmt.create(url, schema={"a": "int64", "b": "text"})
    _fill(ds, 0, 3)
    first = ds.commit("first")
    ds.tag("t1", message="three rows")
    _fill(ds, 3, 5)
    ds.flush()
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.append({"a": [100], "b": ["dev"]})
    dev.commit("on dev")
    ds.metadata["origin"] = "test"
    ds["a"].metadata["unit"] = "m"
    _fill(ds, 5, 7)
    ds.delete([5, 6])  # a deletion file
    ds["b"][4] = "updated"  # one cell of a 5-row fragment
    ds.commit("second")
    return ds, first


def _check_history(url: str, first: str) -> None:
    ds = lakefmt.open(url)
    assert _ints(ds["a"][:]) == [0, 1, 2, 3, 4]
    assert ds["b"][:] == ["s0", "s1", "s2", "s3", "updated"]
    assert ds.tags.names() == ["t1"]
    assert ds.tags["t1"].message == "three rows"
    assert _ints(ds.tags["t1"].open()["a"][:]) == [0, 1, 2]
    assert ds.branches.names() == ["main", "dev"]
    assert _ints(lakefmt.open(url, branch="dev")["a"][:]) == [0, 1, 2, 3, 4, 100]
    assert [v.message for v in ds.history][-2:] == ["first", "second"]
    assert len(lakefmt.open_read_only(url, version=first)) == 3
    assert ds.metadata["origin"] == "test"
    assert ds["a"].metadata["unit"] == "m"


def test_copy_mem_to_file_and_back(mem_url: str, tmp_path: Path) -> None:
    _ds, first = _history_dataset(mem_url)
    on_disk = "file://" + str(tmp_path / "copy")
    lakefmt.copy(mem_url, on_disk)
    _check_history(on_disk, first)
    assert (tmp_path / "copy" / "_lakefmt.json").exists()

    back = f"{mem_url}-back"
    lakefmt.copy(str(tmp_path / "copy"), back)
    _check_history(back, first)

    # every file of the source made it, deletion and update files included
    source_files = {p for p in open_storage(mem_url).list() if not p.startswith("_tmp/")}
    assert {p for p in open_storage(back).list() if not p.startswith("_tmp/")} == source_files
    assert any(p.startswith("_deletions/") for p in source_files)

    # the copies are independent of the source
    src = lakefmt.open(mem_url)
    src.append({"a": [9], "b": ["new"]})
    src.flush()
    assert len(lakefmt.open(on_disk)) == 5
    assert len(lakefmt.open(back)) == 5

    with pytest.raises(DatasetExistsError):
        lakefmt.copy(mem_url, on_disk)


def test_copy_across_backends(dataset_url: str, tmp_path: Path) -> None:
    _ds, first = _history_dataset(dataset_url)
    target = str(tmp_path / "target")
    lakefmt.copy(dataset_url, target)
    _check_history(target, first)


def test_like_from_a_dataset_object(mem_url: str) -> None:
    src = lakefmt.create(mem_url, schema={"a": "uint8"})
    src.append({"a": [1]})
    new = lakefmt.like(lakefmt.open_read_only(mem_url), f"{mem_url}-like")
    assert new.schema == {"a": types.UInt8()}
    assert len(new) == 0


def test_like(dataset_url: str) -> None:
    src = lakefmt.create(dataset_url, schema={"a": "int16", "b": "text"})
    src.add_column("c", "float32", default_value=0.5)
    _fill(src, 0, 4)
    src.metadata["k"] = [1, 2]
    src["b"].metadata["lang"] = "en"
    src.commit()

    target = f"mem://like-{os.urandom(6).hex()}"
    new = lakefmt.like(dataset_url, target)
    assert isinstance(new, lakefmt.Dataset)
    assert len(new) == 0
    assert new.schema == src.schema
    assert new.metadata["k"] == [1, 2]
    assert new["b"].metadata["lang"] == "en"
    new.append({"a": [1], "b": ["x"]})  # "c" has a default value in the copy too
    assert float(new["c"][0]) == 0.5
    assert len(lakefmt.open(dataset_url)) == 4  # the source is untouched
    with pytest.raises(DatasetExistsError):
        lakefmt.like(dataset_url, target)


# -- indexing -------------------------------------------------------------------------------------


@pytest.fixture
def numbers(mem_url: str) -> lakefmt.Dataset:
    """30 rows in 3 fragments: a = 0..29 (int64), b = "s0".."s29"."""
    return _multi_fragment(mem_url)


def test_column_indexing(numbers: lakefmt.Dataset) -> None:
    ref = list(range(30))
    col = numbers["a"]
    assert isinstance(col, lakefmt.Column)
    assert col.name == "a"
    assert col.dtype == types.Int64()
    assert len(col) == 30
    assert col[0] == 0 and isinstance(col[0], np.int64)
    assert col[17] == 17
    assert col[-1] == 29
    assert col[-30] == 0
    for sl in [
        slice(2, 5),
        slice(8, 23),
        slice(0, 30),
        slice(25, 100),
        slice(5, 5),
        slice(1, 29, 3),
        slice(None, None, -1),
        slice(-5, None),
        slice(20, 3, -4),
    ]:
        got = col[sl]
        assert isinstance(got, np.ndarray)
        assert got.tolist() == ref[sl], sl
    for idx in ([5, 1, 29], [-1, 0], [12, 12, 3], [9, 10, 20, 19]):
        assert col[idx].tolist() == [ref[i] for i in idx]
    assert col[np.array([3, 4])].tolist() == [3, 4]
    assert col[[]].tolist() == []
    text = numbers["b"]
    assert text[3] == "s3"
    assert text[-2] == "s28"
    assert text[9:12] == ["s9", "s10", "s11"]
    assert text[[29, 0]] == ["s29", "s0"]
    assert text[5:5] == []


@pytest.mark.parametrize("bad", [30, -31, 1000, [0, 30], [-31], [1, 2, 99]])
def test_index_out_of_range(numbers: lakefmt.Dataset, bad: Any) -> None:
    with pytest.raises(IndexError):
        numbers["a"][bad]
    with pytest.raises(IndexError):
        numbers["b"][bad]
    with pytest.raises(IndexError):
        numbers[bad]


def test_index_wrong_type(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(TypeError):
        numbers[1.5]
    with pytest.raises(TypeError):
        numbers["a"][1.5]


def test_unknown_column(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(ColumnNotFoundError, match="nope"):
        numbers["nope"]
    with pytest.raises(KeyError):  # also a KeyError, as for a dict
        numbers["nope"]
    with pytest.raises(ColumnNotFoundError):
        numbers[3]["nope"]
    with pytest.raises(ColumnNotFoundError):
        list(numbers.batches(5, columns=["nope"]))
    with pytest.raises(ColumnNotFoundError):
        numbers.schema["nope"]


def test_rows(numbers: lakefmt.Dataset) -> None:
    row = numbers[7]
    assert isinstance(row, lakefmt.Row)
    assert row.to_dict() == {"a": 7, "b": "s7"}
    assert row["a"] == 7 and row["b"] == "s7"
    assert numbers[-1].to_dict() == {"a": 29, "b": "s29"}
    assert numbers[10].to_dict() == {"a": 10, "b": "s10"}  # first row of the 2nd fragment


def test_row_ranges(numbers: lakefmt.Dataset) -> None:
    view = numbers[2:10]
    assert isinstance(view, lakefmt.RowRange)
    assert len(view) == 8
    assert view["a"][:].tolist() == list(range(2, 10))
    assert view["b"][0] == "s2"
    assert view["a"][-1] == 9
    assert view[0].to_dict() == {"a": 2, "b": "s2"}
    nested = view[1:3]
    assert isinstance(nested, lakefmt.RowRange)
    assert len(nested) == 2
    assert nested["a"][:].tolist() == [3, 4]
    assert nested["b"][:] == ["s3", "s4"]
    assert numbers[2:10][1:3][1].to_dict() == {"a": 4, "b": "s4"}
    assert view[[0, -1]]["a"][:].tolist() == [2, 9]
    d = view.to_dict()
    assert d["a"].tolist() == list(range(2, 10))
    assert d["b"] == [f"s{i}" for i in range(2, 10)]
    with pytest.raises(IndexError):
        view[8]
    with pytest.raises(IndexError):
        view["a"][8]

    stepped = numbers[1:29:4]
    assert stepped["a"][:].tolist() == list(range(1, 29, 4))
    assert stepped[1:3]["a"][:].tolist() == [5, 9]
    picked = numbers[[25, 3, 11]]
    assert isinstance(picked, lakefmt.RowRange)
    assert picked["b"][:] == ["s25", "s3", "s11"]
    assert numbers[-3:]["a"][:].tolist() == [27, 28, 29]
    assert numbers[::-10]["a"][:].tolist() == [29, 19, 9]
    assert [r["a"] for r in numbers[8:12]] == [8, 9, 10, 11]
    assert numbers[8:12].to_arrow().column("a").to_pylist() == [8, 9, 10, 11]


def test_iteration(numbers: lakefmt.Dataset) -> None:
    rows = list(numbers)
    assert len(rows) == 30
    assert [int(r["a"]) for r in rows] == list(range(30))
    assert [r["b"] for r in numbers] == [f"s{i}" for i in range(30)]
    assert _ints(numbers["a"]) == list(range(30))


def _concat(batches: list[dict[str, Any]], name: str) -> list[Any]:
    out: list[Any] = []
    for batch in batches:
        out.extend(batch[name].tolist() if isinstance(batch[name], np.ndarray) else batch[name])
    return out


@pytest.mark.parametrize("size", [1, 4, 7, 10, 13, 29, 30, 31, 100])
def test_batches(numbers: lakefmt.Dataset, size: int) -> None:
    batches = list(numbers.batches(size))
    expected_sizes = [size] * (30 // size) + ([30 % size] if 30 % size else [])
    assert [len(b["a"]) for b in batches] == expected_sizes
    assert all(set(b) == {"a", "b"} for b in batches)
    assert all(isinstance(b["a"], np.ndarray) and b["a"].dtype == np.int64 for b in batches)
    assert _concat(batches, "a") == list(range(30))
    assert _concat(batches, "b") == [f"s{i}" for i in range(30)]

    dropped = list(numbers.batches(size, drop_last=True))
    assert [len(b["a"]) for b in dropped] == [size] * (30 // size)
    assert _concat(dropped, "a") == list(range(30 // size * size))

    only_b = list(numbers.batches(size, columns=["b"]))
    assert all(set(b) == {"b"} for b in only_b)
    assert _concat(only_b, "b") == [f"s{i}" for i in range(30)]


def test_batches_over_many_small_fragments(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    ds.auto_compact = False  # keep every small fragment (automatic compaction would merge them)
    rng = random.Random(7)
    n = 0
    for k in range(20):
        size = rng.randint(1, 9)
        _fill(ds, n, n + size)
        n += size
        if k % 3 != 2:
            ds.flush()
    ds.flush()
    assert len(_fragments(mem_url)) >= 10
    again = lakefmt.open(mem_url)
    for size in (1, 5, 8, 16, n - 1, n):
        batches = list(again.batches(size))
        sizes = [len(b["a"]) for b in batches]
        assert sizes[:-1] == [size] * (len(sizes) - 1)
        assert 0 < sizes[-1] <= size
        assert sum(sizes) == n
        assert _concat(batches, "a") == list(range(n))
        assert _concat(batches, "b") == [f"s{i}" for i in range(n)]
        exact = list(again.batches(size, drop_last=True, columns=["a"]))
        assert all(len(b["a"]) == size for b in exact)
        assert len(exact) == n // size


def test_batches_invalid_size(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(ValueError):
        list(numbers.batches(0))


def test_empty_dataset_reads(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    assert len(ds) == 0
    assert ds["a"][:].tolist() == []
    assert ds["b"][:] == []
    assert list(ds) == []
    assert list(ds.batches(3)) == []
    assert ds.to_arrow().num_rows == 0
    with pytest.raises(IndexError):
        ds[0]


# -- appends --------------------------------------------------------------------------------------

_ROWS = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]


def _append_forms(other_url: str) -> dict[str, Any]:
    other = lakefmt.create(other_url, schema={"a": "int64", "b": "text"})
    other.append({"a": [0, 1, 2, 3, 4, 5, 6], "b": ["o0", "x", "y", None, "o4", "o5", "o6"]})
    return {
        "row_dicts": _ROWS,
        "dict_of_lists": {"a": [1, 2, 3], "b": ["x", "y", None]},
        "dict_of_numpy": {
            "a": np.array([1, 2, 3], dtype=np.int64),
            "b": np.array(["x", "y", None], dtype=object),
        },
        "dict_of_numpy_str": {"a": np.array([1, 2, 3], dtype=np.int32), "b": ["x", "y", None]},
        "dict_of_arrow": {"a": pa.array([1, 2, 3]), "b": pa.array(["x", "y", None])},
        "arrow_table": pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}),
        "arrow_table_reordered": pa.table(
            {"b": ["x", "y", None], "a": pa.array([1, 2, 3], pa.int32())}
        ),
        "record_batch": pa.RecordBatch.from_pydict({"a": [1, 2, 3], "b": ["x", "y", None]}),
        "pandas": pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}, dtype=object).astype(
            {"a": "int64"}
        ),
        "view": other[1:4],
        "view_list": other[[1, 2, 3]],
    }


_FORM_NAMES = [
    "row_dicts",
    "dict_of_lists",
    "dict_of_numpy",
    "dict_of_numpy_str",
    "dict_of_arrow",
    "arrow_table",
    "arrow_table_reordered",
    "record_batch",
    "pandas",
    "view",
    "view_list",
]


@pytest.mark.parametrize("form", _FORM_NAMES)
def test_append_forms(dataset_url: str, form: str) -> None:
    data = _append_forms(f"mem://other-{os.urandom(6).hex()}")[form]
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    ds.append(data)
    assert len(ds) == 3
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert _ints(again["a"][:]) == [1, 2, 3]
    assert again["b"][:] == ["x", "y", None]


def test_appended_arrays_are_copied_not_aliased(mem_url: str) -> None:
    """Appends are buffered: a caller reusing its numpy buffers (or changing a DataFrame)
    after ``append`` must not change the rows that get written."""
    ds = lakefmt.create(
        mem_url,
        schema={
            "i": "int64",
            "f": "float32",
            "e": lakefmt.types.Embedding(4),
            "m": lakefmt.types.Array("float64", shape=(2, 2)),
        },
    )
    ints = np.arange(5, dtype=np.int64)
    floats = np.ones(5, dtype=np.float32)
    vectors = np.ones((5, 4), dtype=np.float32)
    matrices = np.ones((5, 2, 2))
    ds.append({"i": ints, "f": floats, "e": vectors, "m": matrices})
    frame = pd.DataFrame({"i": np.arange(5, 8), "f": np.full(3, 2.0, dtype=np.float32)})
    ds.append(frame.assign(e=list(vectors[:3] * 2), m=list(matrices[:3] * 2)))
    for array in (ints, floats, vectors, matrices):
        array[...] = -1  # the caller reuses its buffers
    frame.loc[:, "f"] = -1.0  # in place, as far as pandas lets
    frame.loc[:, "i"] = -1
    ds.flush()
    back = lakefmt.open_read_only(mem_url)
    assert back["i"][:].tolist() == list(range(8))
    assert back["f"][:].tolist() == [1.0] * 5 + [2.0] * 3
    assert np.stack(back["e"][:]).min() == 1.0
    assert np.stack(back["m"][:]).min() == 1.0


def test_append_polars_numbers(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "f": "float32"})
    ds.append(pl.DataFrame({"a": [1, 2, 3], "f": [0.5, 1.5, None]}))
    assert _ints(ds["a"][:]) == [1, 2, 3]
    assert list(ds["f"][:]) == [0.5, 1.5, None]


def test_append_polars_text(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    ds.append(pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}))
    assert _ints(ds["a"][:]) == [1, 2, 3]
    assert ds["b"][:] == ["x", "y", None]


def test_append_pandas_without_nulls(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "f": "float64", "b": "text", "t": "bool"})
    ds.append(
        pd.DataFrame({"a": [1, 2], "f": [0.5, float("nan")], "b": ["x", ""], "t": [True, False]})
    )
    assert _ints(ds["a"][:]) == [1, 2]
    assert ds["f"][0] == 0.5 and np.isnan(ds["f"][1])
    assert ds["b"][:] == ["x", ""]
    assert ds["t"][:].tolist() == [True, False]


def test_append_pandas_string_column_with_missing_value(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    ds.append(pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}))
    assert ds["b"][:] == ["x", "y", None]


def test_append_single_row_dict(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text", "c": "bytes"})
    ds.append({"a": 1, "b": "x", "c": b"raw"})
    ds.append({"a": np.int64(2), "b": "y", "c": b""})
    assert len(ds) == 2
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert again[0].to_dict() == {"a": 1, "b": "x", "c": b"raw"}
    assert again[1].to_dict() == {"a": 2, "b": "y", "c": b""}
    with pytest.raises(UnevenColumnsError):
        ds.append({"a": 1, "b": ["x", "y"], "c": [b"", b""]})


def test_append_view_of_another_dataset(numbers: lakefmt.Dataset, dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    ds.append(numbers[0:5])
    ds.append(numbers[[29, 10]])
    ds.append(numbers)  # a whole dataset is a view too
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert _ints(again["a"][:]) == [0, 1, 2, 3, 4, 29, 10, *range(30)]
    assert again["b"][:7] == ["s0", "s1", "s2", "s3", "s4", "s29", "s10"]


def test_append_rows_leaving_out_defaulted_columns(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64"})
    ds.add_column("b", "text", default_value="dflt")
    ds.append([{"a": 1}, {"a": 2, "b": "given"}])
    assert ds["b"][:] == ["dflt", "given"]


def test_append_row_dicts_with_only_defaults(mem_url: str) -> None:
    ds = lakefmt.create(mem_url)
    ds.add_column("b", "text", default_value="dflt")
    ds.add_column("n", "int32", default_value=7)
    ds.append([{}, {}])
    ds.append([{"b": "given"}, {}])
    assert len(ds) == 4
    assert ds["b"][:] == ["dflt", "dflt", "given", "dflt"]
    assert ds["n"][:].tolist() == [7, 7, 7, 7]


def test_append_empty(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    ds.append({"a": [], "b": []})
    ds.append([])
    ds.append(pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())}))
    assert len(ds) == 0
    version = ds.version
    ds.flush()
    assert ds.version == version  # nothing to write: no new version


def test_append_schema_errors(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(ColumnNotFoundError, match="'c'"):
        numbers.append({"a": [1], "b": ["x"], "c": [1]})
    with pytest.raises(ColumnNotFoundError):
        numbers.append([{"a": 1, "b": "x", "zzz": 2}])
    with pytest.raises(ColumnNotFoundError):
        numbers.append(pa.table({"a": [1], "b": ["x"], "extra": [1.0]}))
    with pytest.raises(ColumnMissingValueError, match="'b'"):
        numbers.append({"a": [1, 2]})
    with pytest.raises(ColumnMissingValueError, match="'b'"):
        numbers.append([{"a": 1, "b": "x"}, {"a": 2}])
    with pytest.raises(ColumnMissingValueError):
        numbers.append(pd.DataFrame({"a": [1]}))
    with pytest.raises(UnevenColumnsError):
        numbers.append({"a": [1, 2, 3], "b": ["x", "y"]})
    with pytest.raises(UnevenColumnsError):
        numbers.append({"a": np.arange(4), "b": ["x"]})
    with pytest.raises(TypeMismatchError):
        numbers.append("not a batch")
    with pytest.raises(TypeMismatchError):
        numbers.append([1, 2, 3])
    assert len(numbers) == 30
    assert _ints(numbers["a"][:]) == list(range(30))


# -- schema evolution -----------------------------------------------------------------------------


def test_add_column_with_default(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url, (4, 3))
    ds.add_column("score", "float32", default_value=0.25)
    ds.add_column("label", "text", default_value="none")
    assert ds["score"][:].tolist() == [0.25] * 7
    assert ds["label"][:] == ["none"] * 7
    ds.append({"a": [7, 8], "b": ["s7", "s8"]})  # without the new columns: defaults
    ds.append([{"a": 9, "b": "s9", "score": 9.5}])  # one given, one defaulted
    ds.append([{"a": 10, "b": "s10", "label": "ten"}, {"a": 11, "b": "s11"}])
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert again["score"][:].tolist() == [0.25] * 9 + [9.5, 0.25, 0.25]
    assert again["label"][:] == ["none"] * 10 + ["ten", "none"]
    assert _ints(again["a"][:]) == list(range(12))
    assert again.schema["score"] == types.Float32()
    assert list(again.schema) == ["a", "b", "score", "label"]


def test_add_column_with_invalid_default(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64"})
    with pytest.raises(TypeMismatchError):
        ds.add_column("small", "int8", default_value=1000)
    assert "small" not in ds.schema


def test_add_column_without_default(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url, (3, 2))
    ds.add_column("n", "int32")
    assert list(ds["n"][:]) == [None] * 5
    assert ds[0].to_dict() == {"a": 0, "b": "s0", "n": None}
    with pytest.raises(ColumnMissingValueError, match="'n'"):
        ds.append({"a": [5], "b": ["s5"]})
    with pytest.raises(ColumnMissingValueError, match="'n'"):
        ds.append([{"a": 5, "b": "s5"}])
    ds.append({"a": [5], "b": ["s5"], "n": [50]})
    ds.append({"a": [6], "b": ["s6"], "n": [None]})
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert list(again["n"][:]) == [None] * 5 + [50, None]
    assert len(again) == 7


def test_remove_column(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url, (3, 2))
    ds.remove_column("b")
    assert list(ds.schema) == ["a"]
    with pytest.raises(ColumnNotFoundError):
        ds["b"]
    with pytest.raises(ColumnNotFoundError):
        ds.remove_column("b")
    with pytest.raises(ColumnNotFoundError):
        ds.append({"a": [5], "b": ["x"]})
    ds.append({"a": [5]})
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert list(again.schema) == ["a"]
    assert _ints(again["a"][:]) == [0, 1, 2, 3, 4, 5]
    assert again[0].to_dict() == {"a": 0}
    # a column of the same name can be added again; it does not resurrect the old data
    again.add_column("b", "text")
    assert again["b"][:] == [None] * 6


def test_rename_column(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url, (3, 2))
    ds["b"].metadata["note"] = "kept"
    ds.rename_column("b", "label")
    assert list(ds.schema) == ["a", "label"]
    assert ds["label"][:] == ["s0", "s1", "s2", "s3", "s4"]
    with pytest.raises(ColumnNotFoundError):
        ds["b"]
    ds.append({"a": [5], "label": ["s5"]})
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert again["label"][:] == [f"s{i}" for i in range(6)]
    assert again["label"].metadata["note"] == "kept"
    with pytest.raises(ColumnNotFoundError):
        again.rename_column("nope", "x")


def test_column_exists(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    with pytest.raises(ColumnExistsError, match="'a'"):
        ds.add_column("a", "int8")
    with pytest.raises(ColumnExistsError, match="'b'"):
        ds.rename_column("a", "b")
    assert ds.schema["a"] == types.Int64()
    assert list(ds.schema) == ["a", "b"]


# -- updates and deletes --------------------------------------------------------------------------


def test_updates(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url)
    ref_a, ref_b = list(range(30)), [f"s{i}" for i in range(30)]
    ds["a"][0] = 100
    ref_a[0] = 100
    ds["a"][-1] = 129
    ref_a[-1] = 129
    ds["a"][8:12] = [108, 109, 110, 111]  # spans two fragments
    ref_a[8:12] = [108, 109, 110, 111]
    ds["b"][[3, 25, 15]] = ["u3", "u25", "u15"]
    ref_b[3], ref_b[25], ref_b[15] = "u3", "u25", "u15"
    ds[20]["b"] = "row-set"
    ref_b[20] = "row-set"
    ds["a"][5:25:5] = np.array([205, 210, 215, 220])
    for i, v in zip(range(5, 25, 5), [205, 210, 215, 220], strict=True):
        ref_a[i] = v
    ds["b"][4] = None
    ref_b[4] = None
    assert ds["a"][:].tolist() == ref_a  # the writer sees its own updates
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert again["a"][:].tolist() == ref_a
    assert again["b"][:] == ref_b
    # later assignment to the same cell wins
    again["a"][1] = 5
    again["a"][1] = 6
    again.flush()
    assert lakefmt.open(dataset_url)["a"][1] == 6


def test_update_orders_and_repeats(numbers: lakefmt.Dataset) -> None:
    numbers["a"][::-1] = list(range(100, 130))  # reversed slice: values in slice order
    assert numbers["a"][:].tolist() == list(range(129, 99, -1))
    numbers["a"][[1, 1]] = [5, 6]  # the later value for a repeated index wins
    numbers["b"][[20, 3]] = ["x20", "x3"]
    numbers.flush()
    again = lakefmt.open(numbers.url)
    assert again["a"][1] == 6
    assert again["b"][3] == "x3" and again["b"][20] == "x20"


def test_update_buffered_rows(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    _fill(ds, 0, 5)  # not flushed
    ds["a"][-1] = 44
    ds[0]["b"] = "first"
    assert _ints(ds["a"][:]) == [0, 1, 2, 3, 44]
    assert _ints(lakefmt.open(mem_url)["a"][:]) == [0, 1, 2, 3, 44]
    assert lakefmt.open(mem_url)["b"][0] == "first"


@pytest.mark.parametrize(
    ("dtype", "values", "new"),
    [
        ("bool", [True, False, True, None], [None, True]),
        ("float16", [0.5, 1.5, 2.5, 3.5], [-1.0, None]),
        ("uint64", [1, 2, 3, 4], [2**64 - 1, 0]),
        ("bytes", [b"a", b"b", None, b"d"], [b"", b"\x00\xff"]),
        ("text", ["a", "b", "c", "d"], ["ü", None]),
    ],
)
def test_update_each_type(dataset_url: str, dtype: str, values: list[Any], new: list[Any]) -> None:
    ds = lakefmt.create(dataset_url, schema={"v": dtype})
    ds.append({"v": values})
    ds.flush()
    ds["v"][1] = new[0]
    ds["v"][[3]] = [new[1]]
    ds.flush()
    expected = [values[0], new[0], values[2], new[1]]
    got = lakefmt.open(dataset_url)["v"][:]
    assert [None if v is None else (v.item() if hasattr(v, "item") else v) for v in got] == expected


def test_updates_on_added_columns(mem_url: str) -> None:
    ds = _multi_fragment(mem_url)
    ds.add_column("n", "int32")
    ds.add_column("m", "text", default_value="d")
    ds["n"][[0, 15]] = [7, 8]  # a few cells of a column no data file holds yet
    ds["m"][1] = "x"
    ds.flush()
    again = lakefmt.open(mem_url)
    expected_n: list[Any] = [None] * 30
    expected_n[0], expected_n[15] = 7, 8
    assert list(again["n"][:]) == expected_n
    assert again["m"][:3] == ["d", "x", "d"]
    assert again["m"][29] == "d"
    assert [r["n"] for r in again][:2] == [7, None]


def test_update_through_row_range(numbers: lakefmt.Dataset) -> None:
    view = numbers[10:20]
    view["a"][0] = -10
    view[2]["b"] = "view-set"
    view["a"][[1, -1]] = [-11, -19]
    assert numbers["a"][10:13].tolist() == [-10, -11, 12]
    assert numbers["a"][19] == -19
    assert numbers["b"][12] == "view-set"


def test_update_errors(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(UnevenColumnsError):
        numbers["a"][0:3] = [1, 2]
    with pytest.raises(IndexError):
        numbers["a"][30] = 1
    with pytest.raises(ColumnNotFoundError):
        numbers[0]["nope"] = 1
    assert numbers["a"][:3].tolist() == [0, 1, 2]


def test_scalar_to_one_row_slice(numbers: lakefmt.Dataset) -> None:
    numbers["a"][0:2] = 7
    assert numbers["a"][0:2].tolist() == [7, 7]
    numbers["a"][5:6] = 9
    assert numbers["a"][5] == 9


@pytest.mark.parametrize(
    ("index", "removed"),
    [
        (0, [0]),
        (29, [29]),
        (-1, [29]),
        (12, [12]),
        ([3, 15, 27], [3, 15, 27]),
        ([27, 3, 3], [3, 27]),
        (slice(5, 15), list(range(5, 15))),
        (slice(0, 30, 2), list(range(0, 30, 2))),
        (slice(8, 12), [8, 9, 10, 11]),
        ([], []),
    ],
)
def test_delete(dataset_url: str, index: Any, removed: list[int]) -> None:
    ds = _multi_fragment(dataset_url)
    ds.delete(index)
    expected = [i for i in range(30) if i not in removed]
    assert ds["a"][:].tolist() == expected
    assert len(ds) == len(expected)
    again = lakefmt.open(dataset_url)
    assert again["a"][:].tolist() == expected
    assert again["b"][:] == [f"s{i}" for i in expected]
    assert [r["a"] for r in again] == expected
    assert _concat(list(again.batches(4)), "b") == [f"s{i}" for i in expected]


def test_batches_skip_a_fully_deleted_fragment(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url)
    ds.delete(slice(10, 17))  # all of the 2nd fragment
    ds.delete([0, 1])
    expected = [*range(2, 10), *range(17, 30)]
    again = lakefmt.open(dataset_url)
    assert again["a"][:].tolist() == expected
    for size in (1, 2, 3, 8, 21, 22):
        batches = list(again.batches(size))
        assert [len(b["a"]) for b in batches][:-1] == [size] * (len(batches) - 1)
        assert _concat(batches, "a") == expected
        assert _concat(batches, "b") == [f"s{i}" for i in expected]
    assert again.to_arrow().column("a").to_pylist() == expected


def test_delete_everything_then_append(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url)
    ds.delete(slice(None))
    assert len(ds) == 0
    assert lakefmt.open(dataset_url)["a"][:].tolist() == []
    ds.append({"a": [1], "b": ["x"]})
    ds.flush()
    again = lakefmt.open(dataset_url)
    assert again["a"][:].tolist() == [1]
    assert again[0].to_dict() == {"a": 1, "b": "x"}


def test_delete_out_of_range(numbers: lakefmt.Dataset) -> None:
    with pytest.raises(IndexError):
        numbers.delete(30)
    with pytest.raises(IndexError):
        numbers.delete([1, 31])
    assert len(numbers) == 30


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_updates_and_deletes_against_a_model(dataset_url: str, seed: int) -> None:
    rng = random.Random(seed)
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    ds.auto_compact = False  # keep the fragments as written
    model_a: list[int | None] = []
    model_b: list[str | None] = []
    next_value = 0

    def append(count: int) -> None:
        nonlocal next_value
        values = list(range(next_value, next_value + count))
        next_value += count
        ds.append({"a": values, "b": [f"s{v}" for v in values]})
        model_a.extend(values)
        model_b.extend(f"s{v}" for v in values)

    for _ in range(5):
        append(rng.randint(3, 12))
        ds.flush()
    assert len(_fragments(dataset_url)) == 5

    for step in range(60):
        n = len(model_a)
        op = rng.choice(
            [
                "set",
                "set_slice",
                "set_list",
                "row_set",
                "del_one",
                "del_list",
                "del_slice",
                "append",
                "flush",
                "check",
            ]
        )
        if op == "append" or n < 4:
            append(rng.randint(1, 6))
            if rng.random() < 0.5:
                ds.flush()
        elif op == "set":
            i = rng.randrange(-n, n)
            ds["a"][i] = 1000 + step
            model_a[i] = 1000 + step
        elif op == "set_slice":
            lo = rng.randrange(n)
            hi = rng.randint(lo, n)
            values = [2000 + step * 100 + k for k in range(hi - lo)]
            ds["a"][lo:hi] = values
            model_a[lo:hi] = values
        elif op == "set_list":
            idx = rng.sample(range(n), min(n, rng.randint(1, 4)))
            values = [f"t{step}-{k}" if rng.random() < 0.8 else None for k in range(len(idx))]
            ds["b"][idx] = values
            for i, v in zip(idx, values, strict=True):
                model_b[i] = v
        elif op == "row_set":
            i = rng.randrange(n)
            ds[i]["b"] = f"row{step}"
            model_b[i] = f"row{step}"
        elif op == "del_one":
            i = rng.randrange(-n, n)
            ds.delete(i)
            del model_a[i]
            del model_b[i]
        elif op == "del_list":
            idx = sorted(set(rng.sample(range(n), min(n - 1, rng.randint(1, 3)))))
            ds.delete(idx)
            for i in reversed(idx):
                del model_a[i]
                del model_b[i]
        elif op == "del_slice":
            lo = rng.randrange(n)
            hi = min(n, lo + rng.randint(1, 4))
            ds.delete(slice(lo, hi))
            del model_a[lo:hi]
            del model_b[lo:hi]
        elif op == "flush":
            ds.flush()
        else:
            reader = lakefmt.open_read_only(dataset_url)
            ds.flush()
            reader.refresh()
            assert list(reader["a"][:]) == model_a
            assert reader["b"][:] == model_b
        assert len(ds) == len(model_a)
        assert list(ds["a"][:]) == model_a, (step, op)

    ds.commit("done")
    assert len(_fragments(dataset_url)) > 1
    again = lakefmt.open(dataset_url)
    assert list(again["a"][:]) == model_a
    assert again["b"][:] == model_b
    assert [again[i].to_dict() for i in range(len(model_a))] == [
        {"a": a, "b": b} for a, b in zip(model_a, model_b, strict=True)
    ]
    assert _concat(list(again.batches(7)), "b") == model_b
    table = again.to_arrow()
    assert table.column("a").to_pylist() == model_a
    assert table.column("b").to_pylist() == model_b


def test_embeddings_column_filled_later(tmp_path: Path) -> None:
    root = tmp_path / "texts"
    url = "file://" + str(root)
    ds = lakefmt.create(url, schema={"text": "text"})
    sizes = [40, 25, 35]
    texts = [f"document {i}" for i in range(sum(sizes))]
    start = 0
    for size in sizes:
        ds.append({"text": texts[start : start + size]})
        ds.flush()
        start += size
    n = len(texts)

    def snapshot() -> dict[str, bytes]:
        out = {}
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                full = os.path.join(dirpath, name)
                out[os.path.relpath(full, root)] = Path(full).read_bytes()
        return out

    before = snapshot()
    fragments_before = _fragments(url)
    assert len(fragments_before) == 3

    ds.add_column("score", "float32")
    values = np.linspace(0, 1, n, dtype=np.float32)
    ds["score"][0:n] = values
    ds.commit("scores")

    after = snapshot()
    for path, data in before.items():
        if path.startswith("_versions/") and not path.endswith(".json"):
            continue  # the latest-version hint is rewritten by design
        assert after[path] == data, f"{path} changed"
    new_files = sorted(set(after) - set(before))
    new_data = [p for p in new_files if not p.startswith("_versions/")]
    assert new_data and all(p.startswith("data/") and p.endswith(".parquet") for p in new_data)

    manifest = read_latest(open_storage(url), "main")
    score_id = manifest.field_by_name("score").id
    text_id = manifest.field_by_name("text").id
    assert len(manifest.fragments) == 3
    added_paths = []
    for old, new in zip(fragments_before, manifest.fragments, strict=True):
        assert new.id == old.id and new.rows == old.rows
        assert new.files[: len(old.files)] == old.files  # old column groups kept as they were
        added = new.files[len(old.files) :]
        assert len(added) == 1
        assert added[0].field_ids == [score_id]
        assert new.updates == []
        added_paths.append(added[0].path)
    assert sorted(added_paths) == new_data
    for path in new_data:
        table = pq.read_table(str(root / path))
        assert table.column_names == ["score"]
        assert table.schema.field("score").metadata[b"PARQUET:field_id"] == str(score_id).encode()
    assert all(text_id in d.field_ids for f in manifest.fragments for d in f.files[:1])

    again = lakefmt.open_read_only(url)
    np.testing.assert_array_equal(again["score"][:], values)
    assert again["text"][:] == texts
    assert again["score"][:].dtype == np.float32


def test_exports(numbers: lakefmt.Dataset) -> None:
    numbers.add_column("n", "int32")
    numbers["n"][0:2] = [1, 2]
    table = numbers.to_arrow()
    assert table.schema == pa.schema([("a", pa.int64()), ("b", pa.string()), ("n", pa.int32())])
    assert table.column("a").to_pylist() == list(range(30))
    assert table.column("n").to_pylist() == [1, 2] + [None] * 28
    assert numbers.to_arrow(columns=["b"]).column_names == ["b"]
    reader = numbers.to_batches(batch_size=8)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.read_all().column("b").to_pylist() == [f"s{i}" for i in range(30)]
    frame = numbers.to_pandas()
    assert list(frame.columns) == ["a", "b", "n"]
    assert frame["a"].tolist() == list(range(30))
    assert frame["b"].tolist()[:2] == ["s0", "s1"]
    assert frame["n"].isna().sum() == 28
    polars_frame = numbers.to_polars()
    assert polars_frame["a"].to_list() == list(range(30))
    assert polars_frame["n"].to_list()[:3] == [1, 2, None]
    assert numbers[5:8].to_arrow().column("b").to_pylist() == ["s5", "s6", "s7"]


# -- metadata -------------------------------------------------------------------------------------


def test_metadata_persisted(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    ds.metadata["description"] = "test data"
    ds.metadata["params"] = {"lr": 0.1, "layers": [1, 2], "ok": True, "none": None}
    ds["a"].metadata["unit"] = "mm"
    ds["a"].metadata["range"] = [0, 10]
    ds["b"].metadata["lang"] = "de"
    del ds.metadata["description"]
    ds.metadata["description"] = "replaced"

    again = lakefmt.open(dataset_url)
    assert again.metadata.to_dict() == {
        "description": "replaced",
        "params": {"lr": 0.1, "layers": [1, 2], "ok": True, "none": None},
    }
    assert dict(again["a"].metadata) == {"unit": "mm", "range": [0, 10]}
    assert again["b"].metadata["lang"] == "de"
    assert "description" in again.metadata
    assert len(again.metadata) == 2
    with pytest.raises(KeyError):
        again.metadata["missing"]
    del again["a"].metadata["unit"]
    assert dict(lakefmt.open_read_only(dataset_url)["a"].metadata) == {"range": [0, 10]}


def test_metadata_must_be_json(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64"})
    with pytest.raises(SchemaError):
        ds.metadata["bad"] = object()
    assert "bad" not in ds.metadata


# -- summary, context manager, flush/commit/rollback ----------------------------------------------


def test_summary(numbers: lakefmt.Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    numbers.add_column("score", "float32")
    numbers.summary()
    out = capsys.readouterr().out
    assert "30" in out
    for name in ("a", "b", "score"):
        assert name in out
    assert "Int64" in out and "Text" in out and "Float32" in out
    lakefmt.open_read_only(numbers.url)[3:9].summary()
    out = capsys.readouterr().out
    assert "6" in out and "a" in out and "b" in out


def test_context_manager_flushes(dataset_url: str) -> None:
    lakefmt.create(dataset_url, schema={"a": "int64"})
    with lakefmt.open(dataset_url) as ds:
        ds.append({"a": [1, 2, 3]})
        assert len(lakefmt.open(dataset_url)) == 0  # not flushed yet
    assert _ints(lakefmt.open(dataset_url)["a"][:]) == [1, 2, 3]
    with lakefmt.open_read_only(dataset_url) as ro:
        assert len(ro) == 3


def test_flush_makes_rows_visible_without_commit(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    early = lakefmt.open_read_only(dataset_url)
    _fill(ds, 0, 4)
    assert len(ds) == 4  # the writer counts its buffered rows
    assert len(lakefmt.open(dataset_url)) == 0
    commits_before = len(ds.history)
    ds.flush()
    assert len(ds.history) == commits_before  # a flush is not a commit
    later = lakefmt.open(dataset_url)
    assert _ints(later["a"][:]) == [0, 1, 2, 3]
    assert lakefmt.open_read_only(dataset_url)["b"][:] == ["s0", "s1", "s2", "s3"]
    assert len(early) == 0
    early.refresh()
    assert len(early) == 4


def test_reading_flushes_the_writer(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"a": "int64", "b": "text"})
    _fill(ds, 0, 3)
    assert ds["a"][2] == 2  # the writer reads its own rows
    assert len(lakefmt.open(mem_url)) == 3


def test_rollback(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    _fill(ds, 0, 3)
    ds.flush()
    _fill(ds, 3, 10)
    assert len(ds) == 10
    ds.rollback()
    assert len(ds) == 3
    version = ds.version
    ds.flush()
    assert ds.version == version
    assert _ints(lakefmt.open(dataset_url)["a"][:]) == [0, 1, 2]
    # pending updates are dropped too
    ds["a"][0] = 99
    ds.rollback()
    assert ds["a"][0] == 0
    # the buffer keeps working after a rollback
    _fill(ds, 3, 5)
    ds.flush()
    assert _ints(lakefmt.open(dataset_url)["a"][:]) == [0, 1, 2, 3, 4]


def test_commit(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64"})
    ds.append({"a": [1, 2]})
    first = ds.commit("two rows")
    assert isinstance(first, str)
    assert ds.version == first
    empty = ds.commit()  # nothing changed since the last commit: no new version (Deep Lake)
    assert empty == first and len(ds.history) == 2
    again = ds.commit("again")
    assert again == first
    ds.append({"a": [3]})
    last = ds.commit("three rows")

    for version, rows in [(first, [1, 2]), (empty, [1, 2]), (last, [1, 2, 3])]:
        old = lakefmt.open_read_only(dataset_url, version=version)
        assert isinstance(old, lakefmt.ReadOnlyDataset)
        assert old.version == version
        assert _ints(old["a"][:]) == rows
    pinned = lakefmt.open(dataset_url, version=first)
    assert _ints(pinned["a"][:]) == [1, 2]
    with pytest.raises(ReadOnlyError):
        pinned.append({"a": [4]})

    history = lakefmt.open(dataset_url).history
    ids = [v.id for v in history]
    assert ids[-2:] == [first, last]  # the empty commits made no version
    assert history[-1].id == last
    assert history[-1].message == "three rows"
    assert history[first].message == "two rows"
    assert _ints(history[first].open()["a"][:]) == [1, 2]
    stamps = [v.timestamp for v in history]
    assert stamps == sorted(stamps)
    with pytest.raises(VersionNotFoundError):
        lakefmt.open_read_only(dataset_url, version="v999")
    with pytest.raises(VersionNotFoundError):
        lakefmt.open_read_only(dataset_url, version="no-such-tag")


def test_tags(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64"})
    ds.append({"a": [1, 2]})
    first = ds.commit("first")
    tag = ds.tag("v-one", message="the first")
    assert isinstance(tag, lakefmt.Tag)
    assert tag.name == "v-one"
    assert tag.version == first
    ds.append({"a": [3]})
    ds.flush()  # a tag of an uncommitted (flushed) version also works
    ds.tag("latest")
    ds.append({"a": [4]})
    ds.commit()
    assert ds.tags.names() == ["latest", "v-one"]
    assert "v-one" in ds.tags
    assert _ints(ds.tags["v-one"].open()["a"][:]) == [1, 2]
    assert _ints(ds.tags["latest"].open()["a"][:]) == [1, 2, 3]
    assert _ints(lakefmt.open_read_only(dataset_url, version="v-one")["a"][:]) == [1, 2]
    assert ds.tags["v-one"].message == "the first"
    with pytest.raises(TagExistsError):
        ds.tag("v-one")
    ds.tag("old", version=first)
    assert _ints(ds.tags["old"].open()["a"][:]) == [1, 2]
    ds.tags["old"].delete()
    assert ds.tags.names() == ["latest", "v-one"]
    for bad in ("has space", "0123456789abcdef", "", "a//b", ".hidden"):
        with pytest.raises(ValueError):
            ds.tag(bad)
    assert ds.tags.names() == ["latest", "v-one"]


def test_branches(dataset_url: str) -> None:
    ds = lakefmt.create(dataset_url, schema={"a": "int64", "b": "text"})
    _fill(ds, 0, 3)
    ds.commit("base")
    dev_ref = ds.branch("dev")
    assert isinstance(dev_ref, lakefmt.Branch)
    assert ds.branches.names() == ["main", "dev"]
    assert ds.current_branch.name == "main"
    with pytest.raises(BranchExistsError):
        ds.branch("dev")
    with pytest.raises(BranchExistsError):
        ds.branch("main")
    with pytest.raises(ValueError):
        ds.branch("bad name")
    with pytest.raises(BranchNotFoundError):
        lakefmt.open(dataset_url, branch="nope")

    dev = lakefmt.open(dataset_url, branch="dev")
    assert dev.current_branch.name == "dev"
    assert _ints(dev["a"][:]) == [0, 1, 2]
    dev.append({"a": [100], "b": ["dev"]})
    dev["b"][0] = "dev-changed"
    dev.commit("dev work")

    _fill(ds, 3, 5)
    ds.delete(1)
    ds.commit("main work")

    main = lakefmt.open(dataset_url)
    assert _ints(main["a"][:]) == [0, 2, 3, 4]
    assert main["b"][:] == ["s0", "s2", "s3", "s4"]
    dev2 = lakefmt.open(dataset_url, branch="dev")
    assert _ints(dev2["a"][:]) == [0, 1, 2, 100]
    assert dev2["b"][:] == ["dev-changed", "s1", "s2", "dev"]
    assert _ints(ds.branches["dev"].open()["a"][:]) == [0, 1, 2, 100]
    assert dev2.history[-1].branch == "dev" and dev2.history[-1].id == dev2.version
    at_dev_head = lakefmt.open_read_only(dataset_url, version=dev2.version)
    assert _ints(at_dev_head["a"][:]) == [0, 1, 2, 100]


# -- read-only handles ----------------------------------------------------------------------------


def _read_only_handles(url: str) -> Iterator[lakefmt.ReadOnlyDataset]:
    ds = _multi_fragment(url, (3, 2))
    ds.metadata["k"] = 1
    version = ds.commit("c")
    yield lakefmt.open_read_only(url)
    yield lakefmt.open_read_only(url, version=version)
    yield lakefmt.open(url, version=version)
    yield ds.history[-1].open()


_WRITES = {
    "append": lambda ro: ro.append({"a": [1], "b": ["x"]}),
    "add_column": lambda ro: ro.add_column("z", "int8"),
    "remove_column": lambda ro: ro.remove_column("a"),
    "rename_column": lambda ro: ro.rename_column("a", "q"),
    "delete": lambda ro: ro.delete(0),
    "column_set": lambda ro: ro["a"].__setitem__(0, 5),
    "column_slice_set": lambda ro: ro["a"].__setitem__(slice(0, 2), [5, 6]),
    "row_set": lambda ro: ro[0].__setitem__("b", "x"),
    "view_set": lambda ro: ro[1:3]["a"].__setitem__(0, 5),
    "commit": lambda ro: ro.commit("nope"),
    "metadata_set": lambda ro: ro.metadata.__setitem__("k", 2),
    "metadata_del": lambda ro: ro.metadata.__delitem__("k"),
    "column_metadata_set": lambda ro: ro["a"].metadata.__setitem__("k", 2),
    "tag": lambda ro: ro.tag("t"),
    "branch": lambda ro: ro.branch("b"),
}


@pytest.mark.parametrize("write", list(_WRITES))
def test_read_only_writes_refused(dataset_url: str, write: str) -> None:
    for ro in _read_only_handles(dataset_url):
        with pytest.raises(ReadOnlyError):
            _WRITES[write](ro)
    after = lakefmt.open_read_only(dataset_url)
    assert _ints(after["a"][:]) == [0, 1, 2, 3, 4]
    assert after["b"][:] == ["s0", "s1", "s2", "s3", "s4"]
    assert list(after.schema) == ["a", "b"]
    assert after.metadata.to_dict() == {"k": 1}
    assert after.tags.names() == []
    assert after.branches.names() == ["main"]
    assert isinstance(ReadOnlyError("x"), PermissionError)


# -- pickling -------------------------------------------------------------------------------------


def _pickled(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))


def test_pickle_round_trip(dataset_url: str) -> None:
    ds = _multi_fragment(dataset_url, (4, 4))
    first = ds.commit("first")
    ds.append({"a": [8, 9], "b": ["s8", "s9"]})  # unflushed: pickling a writer flushes

    copy = _pickled(ds)
    assert isinstance(copy, lakefmt.Dataset)
    assert _ints(copy["a"][:]) == list(range(10))
    copy.append({"a": [10], "b": ["s10"]})  # the copy can write
    copy.flush()
    ds.refresh()
    assert len(ds) == 11

    ro = _pickled(lakefmt.open_read_only(dataset_url))
    assert isinstance(ro, lakefmt.ReadOnlyDataset) and not isinstance(ro, lakefmt.Dataset)
    assert ro["b"][:] == [f"s{i}" for i in range(11)]
    old = _pickled(lakefmt.open_read_only(dataset_url, version=first))
    assert old.version == first
    assert _ints(old["a"][:]) == list(range(8))
    with pytest.raises(ReadOnlyError):
        old.append({"a": [1], "b": ["x"]})

    col = _pickled(ds["b"])
    assert isinstance(col, lakefmt.Column)
    assert col.name == "b"
    assert col[:] == [f"s{i}" for i in range(11)]

    rows = _pickled(ds[2:6])
    assert len(rows) == 4
    assert _ints(rows["a"][:]) == [2, 3, 4, 5]
    assert rows["b"][:] == ["s2", "s3", "s4", "s5"]
    picked = _pickled(lakefmt.open_read_only(dataset_url)[[9, 0]])
    assert _ints(picked["a"][:]) == [9, 0]

    row = _pickled(ds[3])
    assert row.to_dict() == {"a": 3, "b": "s3"}

    ds.branch("dev")
    dev = _pickled(lakefmt.open(dataset_url, branch="dev"))
    assert dev.current_branch.name == "dev"
    dev.append({"a": [99], "b": ["dev"]})
    dev.flush()
    assert len(lakefmt.open(dataset_url, branch="dev")) == 12
    assert len(lakefmt.open(dataset_url)) == 11


def test_pickled_row_range_keeps_its_type(mem_url: str) -> None:
    ds = _multi_fragment(mem_url, (4,))
    rows = _pickled(ds[1:3])
    assert isinstance(rows, lakefmt.RowRange)
    assert rows.to_dict()["b"] == ["s1", "s2"]


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        yield pool


@pytest.mark.parametrize("kind", ["file", "file_url", "tmp"])
def test_pickle_to_spawned_worker(spawn_pool: Any, tmp_path: Path, kind: str) -> None:
    url = {
        "file": str(tmp_path / "ds"),
        "file_url": "file://" + str(tmp_path / "ds"),
        "tmp": f"tmp://spawn-{os.urandom(6).hex()}",
    }[kind]
    ds = _multi_fragment(url, (5, 5))
    ds.append({"a": [10, 11], "b": ["s10", "s11"]})  # unflushed: pickling flushes
    assert spawn_pool.apply(len, (ds,)) == 12
    ro = lakefmt.open_read_only(ds.url)
    assert spawn_pool.apply(len, (ro,)) == 12
    np.testing.assert_array_equal(
        spawn_pool.apply(operator.methodcaller("numpy"), (ds["a"],)), np.arange(12)
    )
    texts = spawn_pool.apply(operator.methodcaller("numpy"), (ro["b"],))
    assert texts == [f"s{i}" for i in range(12)]
    table = spawn_pool.apply(operator.methodcaller("to_arrow"), (ds[3:7],))
    assert table.column("a").to_pylist() == [3, 4, 5, 6]
    assert table.column("b").to_pylist() == ["s3", "s4", "s5", "s6"]
    assert spawn_pool.apply(len, (ro[[1, 2, 11]],)) == 3


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_read_ahead_hands_over_every_item_in_order_then_the_error(chunk: int) -> None:
    from lakefmt.dataset.view import _read_ahead

    def source() -> Iterator[int]:
        yield from range(10)
        raise ValueError("source broke after 10 items")

    got: list[int] = []
    with pytest.raises(ValueError, match="after 10 items"):
        for item in _read_ahead(source(), chunk=chunk):
            got.append(item)
    assert got == list(range(10))
    assert list(_read_ahead(iter(range(7)), chunk=chunk)) == list(range(7))


def test_a_view_of_picked_rows_scans_them_in_order(tmp_path: Path) -> None:
    # rows picked by index go through the read-ahead thread, several batches per hand-over
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64"})
    ds.append({"id": np.arange(50_000)})
    ds.commit()
    picked = np.random.default_rng(5).permutation(50_000)[:20_000]
    ids = np.concatenate([b["id"] for b in ds[picked].batches(1_000)])
    assert np.array_equal(ids, picked)


def test_pytorch_refuses_num_workers_instead_of_dropping_it() -> None:
    ds = lakefmt.create("mem://pytorch-num-workers", schema={"x": "int64"})
    ds.append({"x": [1, 2]})
    with pytest.raises(InvalidArgumentError, match=r"DataLoader\(ds.pytorch\(\), num_workers=4\)"):
        ds.pytorch(num_workers=4)
    with pytest.raises(InvalidArgumentError):
        ds[0:1].pytorch(None, None, False, 2)  # positionally, as Deep Lake 3 code passes it
