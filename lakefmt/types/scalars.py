"""Scalar column types: integers, floats, bool, text and bytes."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidTypeError, TypeMismatchError
from lakefmt.types.base import Type, as_array, as_list, mismatch
from lakefmt.types.indexes import canonical_index_type

NUMERIC_ARROW_TYPES: dict[str, pa.DataType] = {
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
}


#: pyarrow casts these to numbers silently, dropping the imaginary part
_NUMPY_COMPLEX = frozenset({np.complex64, np.complex128, np.clongdouble})


def _first_bad(values: list[Any], arrow_type: pa.DataType) -> tuple[int | None, Any]:
    """Find the row that makes a bulk conversion fail (only run on the error path)."""
    for i, value in enumerate(values):
        if isinstance(value, complex) or type(value) in _NUMPY_COMPLEX:
            return i, value  # Arrow would take it, dropping the imaginary part
        try:
            pa.array([value], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return i, value
    return None, None


def _arrow_compatible(source: pa.DataType, target: pa.DataType) -> bool:
    """Arrow casts that keep meaning: number to number, bool to bool, null to anything."""
    if pa.types.is_null(source):
        return True
    if pa.types.is_boolean(target) or pa.types.is_boolean(source):
        return pa.types.is_boolean(target) and pa.types.is_boolean(source)
    numeric = (pa.types.is_integer, pa.types.is_floating)
    return any(f(source) for f in numeric) and any(f(target) for f in numeric)


def _check_integral(values: Any, column: str, dtype: str) -> None:
    """Refuse fractional floats for integer columns (Arrow would truncate them silently)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isnan(values) & (~np.isfinite(values) | (np.mod(values, 1) != 0)))
        if len(bad):
            raise mismatch(column, int(bad[0]), dtype, values.reshape(-1)[bad[0]].item())
    elif isinstance(values, (list, tuple)):
        for i, v in enumerate(values):
            if isinstance(v, (float, np.floating)) and not float(v).is_integer():
                raise mismatch(column, i, dtype, v)


def _check_no_overflow(values: Any, result: pa.Array, column: str, dtype: str) -> None:
    """Refuse finite inputs that became infinite in a float16/float32 ``result``."""
    plain = result.fill_null(0) if result.null_count else result
    infinite = np.flatnonzero(np.isinf(plain.to_numpy(zero_copy_only=False)))
    if not len(infinite):
        return
    if isinstance(values, pa.ChunkedArray):
        values = as_array(values)
    for position in infinite:
        i = int(position)
        if isinstance(values, pa.Array):
            value = values[i].as_py()
        elif isinstance(values, np.ndarray):
            value = values[i].item()
        else:
            value = as_list(values)[i]
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError, OverflowError):
            finite = True  # an int too large for a float64
        if finite:
            info = np.finfo(np.dtype(dtype))
            raise TypeMismatchError(
                f"column '{column}' expects {dtype} values, got {value!r} at row {i} (outside "
                f"{dtype}'s range of +-{float(info.max):.6g})"
            )


def check_unicode(value: str, column: str, row: int) -> None:
    """Refuse a string UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``).

    Raises:
        TypeMismatchError: Naming the column, the row and the character's position.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TypeMismatchError(
            f"column '{column}' row {row}: the text has a lone surrogate "
            f"({value[exc.start]!r} at position {exc.start}), which is not Unicode text and "
            "cannot be stored as UTF-8"
        ) from None


def utf8_array(items: list[Any], column: str) -> pa.Array:
    """``str`` values (``None`` for null) as an Arrow ``string`` array.

    Raises:
        TypeMismatchError: A value UTF-8 cannot encode (see :func:`check_unicode`).
    """
    try:
        return pa.array(items, type=pa.string())
    except (UnicodeEncodeError, UnicodeDecodeError):
        for i, v in enumerate(items):
            if isinstance(v, str):
                check_unicode(v, column, i)
        raise


class Numeric(Type):
    """Integers, floats and booleans; ``Numeric("int32")`` is the same as ``Int32()``.

    Args:
        dtype: ``"int8"`` ... ``"uint64"``, ``"float16"`` ... ``"float64"`` or ``"bool"``.
        index_type: A point/range lookup index to build: ``types.Inverted``,
            ``types.NumericIndex()``, ``"inverted"``/``"numeric"``, or ``None`` (no index;
            ``bool`` columns take none). See :mod:`lakefmt.types.indexes`.

    Raises:
        InvalidTypeError: An unknown dtype, or an index a numeric column does not take.
    """

    name: ClassVar[str] = "numeric"

    def __init__(self, dtype: str, index_type: Any = None) -> None:
        if dtype not in NUMERIC_ARROW_TYPES:
            raise InvalidTypeError(
                f"unknown numeric dtype {dtype!r}; expected one of {sorted(NUMERIC_ARROW_TYPES)}"
            )
        if dtype == "bool" and index_type is not None:
            raise InvalidTypeError(f"Bool columns take no index_type, got {index_type!r}")
        self.dtype = dtype
        #: The declared index in its canonical stored form (``"numeric"``), or ``None``.
        self.index_type = canonical_index_type(index_type, "numeric", repr(self))

    def params(self) -> dict[str, Any]:
        """``index_type`` when set."""
        return {"index_type": self.index_type} if self.index_type else {}

    def to_json(self) -> dict[str, Any]:
        """Numeric types are stored under their dtype name (``{"name": "int32"}``), with
        ``params`` only when they declare an index."""
        params = self.params()
        return {"name": self.dtype, "params": params} if params else {"name": self.dtype}

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        shown = f"index_type={self.index_type!r}" if getattr(self, "index_type", None) else ""
        return f"{self.dtype.capitalize().replace('Uint', 'UInt')}({shown})"

    @property
    def storage_type(self) -> pa.DataType:
        """The Arrow primitive type."""
        return NUMERIC_ARROW_TYPES[self.dtype]

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Convert numbers (list, numpy array, Arrow array) without lossy casts.

        Raises:
            TypeMismatchError: A value of another kind, a fractional or out-of-range value
                for an integer column, a finite value out of a float16/float32 column's
                range (it would become infinite; infinities and NaN given as such stay).
        """
        result = self._convert(values, column=column)
        if self.dtype in ("float16", "float32"):
            _check_no_overflow(values, result, column, self.dtype)
        return result

    def _convert(self, values: Any, *, column: str) -> pa.Array:
        arrow_type = self.storage_type
        if pa.types.is_integer(arrow_type):
            _check_integral(values, column, self.dtype)
        try:
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                if isinstance(values, pa.ChunkedArray):
                    values = as_array(values)
                if values.type == arrow_type:
                    return values
                if not _arrow_compatible(values.type, arrow_type):
                    raise pa.ArrowTypeError(f"{values.type} values")
                if pa.types.is_integer(arrow_type) and pa.types.is_floating(values.type):
                    _check_integral(values.to_numpy(zero_copy_only=False), column, self.dtype)
                return values.cast(arrow_type, safe=True)
            if isinstance(values, np.ndarray):
                if values.dtype == object:
                    return pa.array(values.tolist(), type=arrow_type)
                if values.dtype.kind in "USc":
                    raise pa.ArrowTypeError("strings")
                if self.dtype == "bool" and values.dtype.kind != "b":
                    raise pa.ArrowTypeError("not bool")
                if values.ndim != 1:
                    raise pa.ArrowInvalid(f"expected scalars, got an array of shape {values.shape}")
                return pa.array(values, type=arrow_type)
            values = as_list(values)
            if not _NUMPY_COMPLEX.isdisjoint(map(type, values)):
                # pyarrow casts numpy complex scalars to numbers, dropping the imaginary part
                raise pa.ArrowTypeError("complex")
            if self.dtype == "bool" and any(
                v is not None and not isinstance(v, (bool, np.bool_)) for v in values
            ):
                raise pa.ArrowTypeError("not bool")
            return pa.array(values, type=arrow_type)
        except TypeMismatchError:
            raise
        except (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            pa.ArrowNotImplementedError,  # numpy dtypes Arrow has no type for (complex)
            TypeError,
            ValueError,
            OverflowError,
        ) as exc:
            items = as_list(values)
            row, value = _first_bad(items, arrow_type)
            if self.dtype == "bool" and row is None:
                row, value = next(
                    (
                        (i, v)
                        for i, v in enumerate(items)
                        if v is not None and not isinstance(v, (bool, np.bool_))
                    ),
                    (None, None),
                )
            if row is None:
                raise mismatch(column, None, self.dtype, values) from exc
            raise mismatch(column, row, self.dtype, value) from exc

    def decode(self, array: pa.Array) -> Any:
        """Return a numpy array; with nulls, an object array holding ``None``."""
        if isinstance(array, pa.ChunkedArray):
            array = as_array(array)
        if array.null_count:
            return np.array(array.to_pylist(), dtype=object)
        return array.to_numpy(zero_copy_only=False)

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """Return a numpy scalar, or ``None`` for null."""
        scalar = array[index]
        if not scalar.is_valid:
            return None
        return np.dtype(self.dtype).type(scalar.as_py())


class Text(Type):
    """UTF-8 text.

    Args:
        index_type: The text index to build: ``types.BM25`` (``BM25_SIMILARITY``),
            ``types.Inverted`` (``CONTAINS``), ``types.Exact``, a ``TextIndex(...)``, a name
            (``"bm25"``...), a list of them, or ``None`` (no index). See
            :mod:`lakefmt.types.indexes`.

    Raises:
        InvalidTypeError: An index that is not a text index.
    """

    name: ClassVar[str] = "text"

    def __init__(self, index_type: Any = None) -> None:
        #: The declared indexes in their canonical stored form (see ``lakefmt.types.indexes``).
        self.index_type = canonical_index_type(index_type, "text", "Text")

    def params(self) -> dict[str, Any]:
        """``index_type`` when set."""
        return {"index_type": self.index_type} if self.index_type else {}

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``string``."""
        return pa.string()

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Convert ``str`` values (``None`` for null)."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if isinstance(values, pa.ChunkedArray):
                values = as_array(values)
            if (
                pa.types.is_string(values.type)
                or pa.types.is_large_string(values.type)
                or pa.types.is_string_view(values.type)  # polars exports string_view
            ):
                return values.cast(pa.string())
            if values.type == pa.null():
                return pa.nulls(len(values), pa.string())
            raise mismatch(column, None, "text", values)
        if isinstance(values, np.ndarray) and values.dtype.kind == "U":
            try:
                return pa.array(values, type=pa.string())
            except (UnicodeEncodeError, UnicodeDecodeError):
                return utf8_array(values.tolist(), column)
        items = as_list(values)
        for i, v in enumerate(items):
            if v is not None and not isinstance(v, str):
                raise mismatch(column, i, "text (str)", v)
        return utf8_array(items, column)

    def decode(self, array: pa.Array) -> list[str | None]:
        """Return a list of ``str`` (``None`` for null)."""
        return array.to_pylist()

    def decode_one(self, array: pa.Array, index: int) -> str | None:
        """Return one ``str``."""
        return array[index].as_py()


class Bytes(Type):
    """Opaque binary values."""

    name: ClassVar[str] = "bytes"

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``binary``."""
        return pa.binary()

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Convert ``bytes``-like values (``None`` for null)."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if isinstance(values, pa.ChunkedArray):
                values = as_array(values)
            if (
                pa.types.is_binary(values.type)
                or pa.types.is_large_binary(values.type)
                or pa.types.is_binary_view(values.type)
            ):
                return values.cast(pa.binary())
            raise mismatch(column, None, "bytes", values)
        items = as_list(values)
        for i, v in enumerate(items):
            if v is not None and not isinstance(v, (bytes, bytearray, memoryview)):
                raise mismatch(column, i, "bytes", v)
        return pa.array(items, type=pa.binary())

    def decode(self, array: pa.Array) -> list[bytes | None]:
        """Return a list of ``bytes``."""
        return array.to_pylist()

    def decode_one(self, array: pa.Array, index: int) -> bytes | None:
        """Return one ``bytes`` value."""
        return array[index].as_py()


class Int8(Numeric):
    """8-bit signed integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("int8", index_type)


class Int16(Numeric):
    """16-bit signed integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("int16", index_type)


class Int32(Numeric):
    """32-bit signed integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("int32", index_type)


class Int64(Numeric):
    """64-bit signed integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("int64", index_type)


class UInt8(Numeric):
    """8-bit unsigned integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("uint8", index_type)


class UInt16(Numeric):
    """16-bit unsigned integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("uint16", index_type)


class UInt32(Numeric):
    """32-bit unsigned integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("uint32", index_type)


class UInt64(Numeric):
    """64-bit unsigned integers."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("uint64", index_type)


class Float16(Numeric):
    """Half-precision floats."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("float16", index_type)


class Float32(Numeric):
    """Single-precision floats."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("float32", index_type)


class Float64(Numeric):
    """Double-precision floats."""

    def __init__(self, index_type: Any = None) -> None:
        super().__init__("float64", index_type)


class Bool(Numeric):
    """Booleans."""

    def __init__(self) -> None:
        super().__init__("bool")


NUMERIC_DTYPES = tuple(NUMERIC_ARROW_TYPES)
