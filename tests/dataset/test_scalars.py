"""Scalar column types: round trips through storage, type checks, random schemas."""

from __future__ import annotations

import itertools
import math
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.errors import TypeMismatchError

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]
NUMERIC_DTYPES = [*INT_DTYPES, *FLOAT_DTYPES, "bool"]

_ARROW = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "bytes": pa.binary(),
}

_CONSTRUCTORS = {
    "int8": types.Int8,
    "int16": types.Int16,
    "int32": types.Int32,
    "int64": types.Int64,
    "uint8": types.UInt8,
    "uint16": types.UInt16,
    "uint32": types.UInt32,
    "uint64": types.UInt64,
    "float16": types.Float16,
    "float32": types.Float32,
    "float64": types.Float64,
    "bool": types.Bool,
    "text": types.Text,
    "bytes": types.Bytes,
}


def _int_values(dtype: str) -> list[Any]:
    info = np.iinfo(dtype)
    values = [int(info.min), int(info.max), 0, 1, None, int(info.max) - 1]
    if info.min < 0:
        values += [-1, int(info.min) + 1]
    return values


def _float_values(dtype: str) -> list[Any]:
    info = np.finfo(dtype)
    return [
        0.0,
        -0.0,
        1.5,
        -2.25,
        float(info.max),
        float(info.min),
        float(info.tiny),
        float(info.smallest_subnormal),
        None,
        math.inf,
        -math.inf,
        math.nan,
        0.1,
    ]


LONG_TEXT = "lorem ipsum " * 5000
VALUES: dict[str, list[Any]] = {
    **{d: _int_values(d) for d in INT_DTYPES},
    **{d: _float_values(d) for d in FLOAT_DTYPES},
    "bool": [True, False, None, True],
    "text": ["", "hello", "ünïcødé ☃ 中文 🎉", None, "a\x00b", "line\nbreak\ttab", LONG_TEXT, " "],
    "bytes": [b"", b"\x00\xff", None, bytes(range(256)), b"x" * 100_000, b"\x00"],
}

# (how the user names the type, the dtype it stands for)
TYPE_SPECS: list[tuple[Any, str]] = [
    *[(d, d) for d in NUMERIC_DTYPES],
    ("text", "text"),
    ("bytes", "bytes"),
    (str, "text"),
    (int, "int64"),
    (float, "float64"),
    (types.Int16(), "int16"),
    (types.UInt32(), "uint32"),
    (types.Float16(), "float16"),
    (types.Text(), "text"),
    (types.Bytes(), "bytes"),
    (types.Bool(), "bool"),
]


def _spec_id(spec: tuple[Any, str]) -> str:
    user = spec[0]
    if isinstance(user, type):
        return f"py-{user.__name__}"
    if isinstance(user, types.Type):
        return f"types.{type(user).__name__}"
    return f"str-{user}"


def _norm(value: Any) -> Any:
    """A comparable Python value: numpy scalars unwrapped, NaN made equal to NaN."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and value == 0.0:
        return (0.0, math.copysign(1.0, value))  # keep the sign of zero
    return value


def _expected(dtype: str, values: list[Any]) -> list[Any]:
    """What reading ``values`` back from a ``dtype`` column gives (after rounding floats)."""
    if dtype in FLOAT_DTYPES:
        return [_norm(None if v is None else np.dtype(dtype).type(v)) for v in values]
    return [_norm(v) for v in values]


def _read_back(column: Any) -> list[Any]:
    return [_norm(v) for v in column[:]]


@pytest.mark.parametrize("spec", TYPE_SPECS, ids=[_spec_id(s) for s in TYPE_SPECS])
def test_round_trip(dataset_url: str, spec: tuple[Any, str]) -> None:
    user_type, dtype = spec
    values = VALUES[dtype]
    ds = lakefmt.create(dataset_url, schema={"v": user_type, "i": "int32"})
    assert ds.schema["v"] == _CONSTRUCTORS[dtype]()
    half = len(values) // 2
    ds.append({"v": values[:half], "i": list(range(half))})  # column batch
    ds.append([{"v": v, "i": half + k} for k, v in enumerate(values[half:])])  # row dicts
    assert len(ds) == len(values)
    ds.flush()

    again = lakefmt.open(dataset_url)  # a new handle, reading from storage
    assert len(again) == len(values)
    assert again.schema["v"] == _CONSTRUCTORS[dtype]()
    expected = _expected(dtype, values)
    assert _read_back(again["v"]) == expected
    assert again["i"][:].tolist() == list(range(len(values)))
    # single-cell reads
    for i, want in enumerate(expected):
        got = again["v"][i]
        assert _norm(got) == want
        if got is not None and dtype in NUMERIC_DTYPES:
            assert isinstance(got, np.generic)
            assert got.dtype == np.dtype(dtype)
    # row reads
    assert _norm(again[half].to_dict()["v"]) == expected[half]
    # Arrow export has the declared type and the same values
    table = again.to_arrow()
    assert table.schema.field("v").type == _ARROW[dtype]
    assert [_norm(v) for v in table.column("v").to_pylist()] == expected
    # the read-only view agrees
    ro = lakefmt.open_read_only(dataset_url)
    assert _read_back(ro["v"]) == expected


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_numeric_reads_give_typed_numpy_arrays(mem_url: str, dtype: str) -> None:
    values = [v for v in VALUES[dtype] if v is not None][:4]
    ds = lakefmt.create(mem_url, schema={"v": dtype})
    ds.append({"v": values})
    ds.flush()
    got = lakefmt.open(mem_url)["v"][:]
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.array(values, dtype=dtype))


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_numpy_input_of_the_column_dtype(mem_url: str, dtype: str) -> None:
    values = np.array([v for v in VALUES[dtype] if v is not None][:5], dtype=dtype)
    ds = lakefmt.create(mem_url, schema={"v": dtype})
    ds.append({"v": values})
    ds.flush()
    np.testing.assert_array_equal(lakefmt.open(mem_url)["v"][:], values)


def test_all_types_in_one_dataset(dataset_url: str) -> None:
    dtypes = [*NUMERIC_DTYPES, "text", "bytes"]
    n = max(len(VALUES[d]) for d in dtypes)
    columns = {d: list(itertools.islice(itertools.cycle(VALUES[d]), n)) for d in dtypes}
    ds = lakefmt.create(dataset_url, schema={d: d for d in dtypes})
    ds.append(columns)
    ds.commit("all types")
    again = lakefmt.open_read_only(dataset_url)
    for d in dtypes:
        assert _read_back(again[d]) == _expected(d, columns[d]), d
    rows = [again[i].to_dict() for i in range(n)]
    for d in dtypes:
        assert [_norm(r[d]) for r in rows] == _expected(d, columns[d])


def test_all_nulls_and_empty_strings(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"i": "int16", "t": "text", "b": "bytes", "f": "bool"})
    ds.append({"i": [None] * 3, "t": ["", "", None], "b": [None, b"", b""], "f": [None] * 3})
    ds.flush()
    again = lakefmt.open(mem_url)
    assert list(again["i"][:]) == [None, None, None]
    assert again["t"][:] == ["", "", None]
    assert again["b"][:] == [None, b"", b""]
    assert list(again["f"][:]) == [None, None, None]
    assert again["i"][0] is None
    assert again["t"][0] == ""


# -- type mismatches ------------------------------------------------------------------------------


def _check_mismatch(exc: BaseException, column: str, row: int) -> None:
    message = str(exc)
    assert f"'{column}'" in message, message
    assert f"row {row}" in message, message


def test_overflow_int8(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"small": "int8", "t": "text"})
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"small": [1, 2, 300], "t": ["a", "b", "c"]})
    _check_mismatch(info.value, "small", 2)
    assert "300" in str(info.value)
    with pytest.raises(TypeMismatchError) as info:
        ds.append([{"small": 5, "t": "a"}, {"small": 300, "t": "b"}])
    _check_mismatch(info.value, "small", 1)
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"small": np.array([1, 300, 3], dtype=np.int64), "t": ["a", "b", "c"]})
    _check_mismatch(info.value, "small", 1)
    assert len(ds) == 0


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_out_of_range_for_each_int_dtype(mem_url: str, dtype: str) -> None:
    info = np.iinfo(dtype)
    ds = lakefmt.create(mem_url, schema={"x": dtype})
    for bad in (int(info.max) + 1, int(info.min) - 1):
        with pytest.raises(TypeMismatchError) as exc:
            ds.append({"x": [0, bad]})
        _check_mismatch(exc.value, "x", 1)
    assert len(ds) == 0


@pytest.mark.parametrize("form", ["columns", "rows", "single"])
def test_float_into_int_column(mem_url: str, form: str) -> None:
    ds = lakefmt.create(mem_url, schema={"n": "int32"})
    data: Any = {
        "columns": {"n": [1, 2.5]},
        "rows": [{"n": 1}, {"n": 2.5}],
        "single": {"n": 2.5},
    }[form]
    with pytest.raises(TypeMismatchError) as info:
        ds.append(data)
    _check_mismatch(info.value, "n", 0 if form == "single" else 1)
    assert len(ds) == 0


def test_numpy_float_array_into_int_column_names_row(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"n": "int32"})
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"n": np.array([1.0, 2.5])})
    _check_mismatch(info.value, "n", 1)
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"n": np.array([1.0, 2.0, np.nan])})
    _check_mismatch(info.value, "n", 2)
    assert len(ds) == 0


def test_arrow_float_array_into_int_column_names_row(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"n": "int32"})
    with pytest.raises(TypeMismatchError) as info:
        ds.append(pa.table({"n": [1.0, 2.5]}))
    _check_mismatch(info.value, "n", 1)


@pytest.mark.parametrize(
    ("dtype", "values"),
    [("int64", ["3", "4"]), ("bool", [1, 0]), ("int32", [True, False]), ("float32", ["1.5"])],
    ids=["str-into-int", "int-into-bool", "bool-into-int", "str-into-float"],
)
@pytest.mark.parametrize("form", ["table", "view"])
def test_arrow_input_is_type_checked(
    mem_url: str, dtype: str, values: list[Any], form: str
) -> None:
    with pytest.raises(TypeMismatchError):  # the reference: the same values as a list
        lakefmt.create(f"{mem_url}-list", schema={"col": dtype}).append({"col": values})
    ds = lakefmt.create(mem_url, schema={"col": dtype})
    table = pa.table({"col": values})
    if form == "view":
        source_type = {pa.string(): "text", pa.int64(): "int64", pa.bool_(): "bool"}[
            table["col"].type
        ]
        source = lakefmt.create(f"{mem_url}-src", schema={"col": source_type})
        source.append({"col": values})
        data: Any = source[0:2]
    else:
        data = table
    with pytest.raises(TypeMismatchError, match="'col'"):
        ds.append(data)
    assert len(ds) == 0


def test_str_into_int_column(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"n": "int64", "t": "text"})
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"n": [1, 2, "3"], "t": ["a", "b", "c"]})
    _check_mismatch(info.value, "n", 2)
    with pytest.raises(TypeMismatchError) as info:
        ds.append([{"n": "1", "t": "a"}])
    _check_mismatch(info.value, "n", 0)
    assert len(ds) == 0


def test_int_into_bool_column(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"flag": "bool"})
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"flag": [True, False, 1]})
    _check_mismatch(info.value, "flag", 2)
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"flag": np.array([1, 0])})
    _check_mismatch(info.value, "flag", 0)
    with pytest.raises(TypeMismatchError):
        ds.append({"flag": 0})
    assert len(ds) == 0


@pytest.mark.parametrize(
    ("dtype", "bad", "row"),
    [
        ("text", [b"bytes"], 0),
        ("text", ["ok", 5], 1),
        ("bytes", ["str"], 0),
        ("bytes", [b"ok", b"ok", 7], 2),
        ("float32", ["1.0"], 0),
        ("uint8", [1, -1], 1),
        ("int64", [2**63], 0),
        ("uint64", [2**64], 0),
        ("int16", [1, True], 1),
    ],
)
def test_other_mismatches(mem_url: str, dtype: str, bad: list[Any], row: int) -> None:
    ds = lakefmt.create(mem_url, schema={"col": dtype})
    with pytest.raises(TypeMismatchError) as info:
        ds.append({"col": bad})
    _check_mismatch(info.value, "col", row)
    assert len(ds) == 0


def test_update_with_wrong_type(mem_url: str) -> None:
    ds = lakefmt.create(mem_url, schema={"small": "int8"})
    ds.append({"small": [1, 2, 3]})
    with pytest.raises(TypeMismatchError, match="'small'"):
        ds["small"][1] = 300
    with pytest.raises(TypeMismatchError, match="'small'"):
        ds["small"][0:2] = ["a", "b"]
    ds.flush()
    assert lakefmt.open(mem_url)["small"][:].tolist() == [1, 2, 3]


# -- random schemas -------------------------------------------------------------------------------

_HYPO_DTYPES = [*NUMERIC_DTYPES, "text", "bytes"]


def _value_strategy(dtype: str) -> st.SearchStrategy[Any]:
    if dtype in INT_DTYPES:
        info = np.iinfo(dtype)
        base: st.SearchStrategy[Any] = st.integers(int(info.min), int(info.max))
    elif dtype in FLOAT_DTYPES:
        base = st.floats(width=int(dtype[5:]))
    elif dtype == "bool":
        base = st.booleans()
    elif dtype == "text":
        base = st.text(max_size=20)
    else:
        base = st.binary(max_size=20)
    return st.none() | base


@st.composite
def _random_dataset(draw: st.DrawFn) -> tuple[dict[str, str], list[dict[str, Any]], list[Any]]:
    ncols = draw(st.integers(1, 5))
    dtypes = draw(st.lists(st.sampled_from(_HYPO_DTYPES), min_size=ncols, max_size=ncols))
    schema = {f"c{i}_{d}": d for i, d in enumerate(dtypes)}
    row = st.fixed_dictionaries({name: _value_strategy(d) for name, d in schema.items()})
    rows = draw(st.lists(row, max_size=25))
    # split into batches: (size, "rows" | "columns", flush after?)
    plan = []
    left = len(rows)
    while left:
        size = draw(st.integers(1, left))
        plan.append((size, draw(st.sampled_from(["rows", "columns"])), draw(st.booleans())))
        left -= size
    return schema, rows, plan


def _as_columns(schema: dict[str, str], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [r[name] for r in rows] for name in schema}


def _pylist(table: pa.Table) -> dict[str, list[Any]]:
    return {name: [_norm(v) for v in table.column(name).to_pylist()] for name in table.column_names}


@given(_random_dataset())
def test_random_schemas_round_trip(
    data: tuple[dict[str, str], list[dict[str, Any]], list[tuple[int, str, bool]]],
) -> None:
    schema, rows, plan = data
    urls = [f"mem://hypo-{uuid.uuid4().hex}" for _ in range(3)]
    try:
        mixed = lakefmt.create(urls[0], schema=schema)
        start = 0
        for size, form, flush in plan:
            chunk = rows[start : start + size]
            start += size
            mixed.append(chunk if form == "rows" else _as_columns(schema, chunk))
            if flush:
                mixed.flush()
        assert len(mixed) == len(rows)
        mixed.flush()

        reopened = lakefmt.open(urls[0])
        assert len(reopened) == len(rows)
        for name, dtype in schema.items():
            assert _read_back(reopened[name]) == _expected(dtype, [r[name] for r in rows]), name

        by_rows = lakefmt.create(urls[1], schema=schema)
        by_rows.append(rows)
        by_columns = lakefmt.create(urls[2], schema=schema)
        by_columns.append(_as_columns(schema, rows))
        t_rows, t_columns, t_mixed = by_rows.to_arrow(), by_columns.to_arrow(), reopened.to_arrow()
        assert t_rows.schema == t_columns.schema == t_mixed.schema
        assert _pylist(t_rows) == _pylist(t_columns) == _pylist(t_mixed)
        assert t_rows.num_rows == len(rows)
        for name, dtype in schema.items():
            assert t_rows.schema.field(name).type == _ARROW[dtype]
    finally:
        for url in urls:
            if lakefmt.exists(url):
                lakefmt.delete(url)
