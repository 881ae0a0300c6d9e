"""The one place where user input becomes Arrow data of a declared schema.

Accepted: a list of row dicts; a dict of column values (lists, numpy arrays, Arrow arrays, or
single values for a one-row append); a pyarrow Table or RecordBatch; a pandas DataFrame;
anything exporting ``__arrow_c_stream__`` (polars, DuckDB results); a lakefmt view
(``to_arrow``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import (
    ColumnMissingValueError,
    ColumnNotFoundError,
    TypeMismatchError,
    UnevenColumnsError,
)
from lakefmt.types.base import Type, as_array


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnSpec:
    """What conversion needs to know of a column."""

    name: str
    type: Type
    has_default: bool = False
    default: pa.Array | None = None
    """The default as a one-element array of the column's ``arrow_type`` (``None``: null)."""
    default_error: Exception | None = None
    """Why the stored default cannot be read: raised only by appends that need it."""


def _columns_of(data: Any) -> tuple[dict[str, Any], int | None]:
    """Split input into ``{column: values}``; the row count if known to be one row."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return {name: data.column(name) for name in data.column_names}, None
    if hasattr(data, "to_arrow") and hasattr(data, "_lakefmt_view"):
        return _columns_of(data.to_arrow())
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        out: dict[str, Any] = {}
        for name in data.columns:
            series = data[name]
            if series.dtype.kind in "biuf":
                out[str(name)] = series.to_numpy()
            else:  # missing values (NaN, NA, NaT) become nulls
                out[str(name)] = [
                    None if missing else value
                    for value, missing in zip(series.tolist(), series.isna().tolist(), strict=True)
                ]
        return out, None
    if hasattr(data, "__arrow_c_stream__"):
        return _columns_of(pa.table(data))
    if isinstance(data, Mapping):
        return dict(data), None
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return _rows_to_columns(data)
    raise TypeMismatchError(
        f"cannot append a {type(data).__name__}: pass a list of row dicts, a dict of columns, "
        "a pyarrow Table/RecordBatch, a pandas DataFrame or a dataset view"
    )


_MISSING = object()


def _rows_to_columns(rows: Sequence[Any]) -> tuple[dict[str, Any], int | None]:
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeMismatchError(
                f"row {i} of the appended list is a {type(row).__name__}, not a dict of "
                "column values"
            )
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name, _MISSING) for row in rows] for name in names}
    return columns, len(rows)


def to_table(data: Any, columns: Sequence[ColumnSpec]) -> pa.Table:
    """Convert ``data`` to a table with exactly ``columns``, validating every value.

    Nothing is kept if any value fails: the caller gets the error and no partial table.

    Raises:
        ColumnNotFoundError: ``data`` has a column the schema lacks.
        ColumnMissingValueError: A column without default value is missing.
        UnevenColumnsError: Columns of different lengths.
        TypeMismatchError / DecodeError: A value does not fit its column.
    """
    given, row_count = _columns_of(data)
    by_name = {c.name: c for c in columns}
    unknown = [name for name in given if name not in by_name]
    if unknown:
        raise ColumnNotFoundError(
            f"appended data has column(s) {unknown} that the dataset lacks; dataset columns are "
            f"{[c.name for c in columns]} (add them with add_column first)"
        )
    # One-row dict appends: {"image": b"..."} rather than {"image": [b"..."]}. Columns built
    # from a list of row dicts always hold one value per row, even when that looks like a
    # single value (``[None]`` is one null row, not one vector holding a null).
    singles = (
        {name: by_name[name].type.is_single(v) for name, v in given.items()}
        if row_count is None
        else {}
    )
    if singles and all(singles.values()):
        given = {name: [v] for name, v in given.items()}
    elif any(singles.values()):
        one = [n for n, s in singles.items() if s]
        raise UnevenColumnsError(
            f"column(s) {one} hold a single value but other columns hold batches; give every "
            "column a list of values (or every column one value)"
        )
    lengths = {name: len(values) for name, values in given.items()}
    if len(set(lengths.values())) > 1:
        raise UnevenColumnsError(f"appended columns have different lengths: {lengths}")
    num_rows = next(iter(lengths.values()), row_count or 0)
    arrays = []
    for spec in columns:
        values = given.get(spec.name, _MISSING)
        if values is _MISSING:
            if not spec.has_default and num_rows:
                raise ColumnMissingValueError(
                    f"appended data has no values for column '{spec.name}', which has no "
                    "default_value"
                )
            arrays.append(_repeat(spec, num_rows))
            continue
        missing_rows: list[int] = []
        if isinstance(values, list) and any(v is _MISSING for v in values):
            missing_rows = [i for i, v in enumerate(values) if v is _MISSING]
            if not spec.has_default:
                raise ColumnMissingValueError(
                    f"row {missing_rows[0]} of the appended rows has no value for column "
                    f"'{spec.name}', which has no default_value"
                )
            values = [None if v is _MISSING else v for v in values]  # replaced below
        array = spec.type.convert(values, column=spec.name)
        if isinstance(array, pa.ChunkedArray):
            array = as_array(array)
        if missing_rows:
            # the default's stored cell, exactly as add_column stored it
            take = np.arange(len(array), dtype=np.int64)
            take[missing_rows] = len(array)
            array = pa.concat_arrays([array, _repeat(spec, 1)]).take(pa.array(take))
        if _shares_memory(array, values):
            # Zero-copy from the caller's array, which the caller may reuse or change before
            # the rows are written (appends are buffered): keep a copy of our own.
            array = spec.type.convert(np.array(values, copy=True), column=spec.name)
        if len(array) != num_rows:
            raise UnevenColumnsError(
                f"column '{spec.name}' converted to {len(array)} values, expected {num_rows}"
            )
        arrays.append(array)
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([pa.field(c.name, c.type.arrow_type) for c in columns])
    )


def _repeat(spec: ColumnSpec, count: int) -> pa.Array:
    """``count`` copies of a column's default (nulls without one)."""
    if spec.default_error is not None:
        raise spec.default_error
    if spec.default is None:
        return pa.nulls(count, spec.type.arrow_type)
    if count == 0:
        return spec.default.slice(0, 0)
    return spec.default.take(pa.array(np.zeros(count, dtype=np.int64)))


try:
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # numpy < 2
    _byte_bounds = np.byte_bounds  # type: ignore[attr-defined]  # numpy 1 only, absent from numpy 2 stubs


def _shares_memory(array: pa.Array, values: Any) -> bool:
    """Whether ``array`` reads the memory of ``values`` (a numpy array or anything exposing
    one without a copy, such as a CPU torch tensor or a pandas column)."""
    if isinstance(values, (list, tuple, pa.Array, pa.ChunkedArray)) or not (
        isinstance(values, np.ndarray)
        or hasattr(values, "__array_interface__")
        or hasattr(values, "__array__")
    ):
        return False
    try:
        source = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (TypeError, ValueError, RuntimeError):
        return False
    if source.dtype == object or source.nbytes == 0:
        return False
    low, high = _byte_bounds(source)
    return any(
        buffer is not None and buffer.address < high and low < buffer.address + buffer.size
        for buffer in array.buffers()
    )


def as_positions(values: Any) -> np.ndarray:
    """Return ``values`` as an int64 numpy array (for index lists)."""
    return np.asarray(values, dtype=np.int64).reshape(-1)
