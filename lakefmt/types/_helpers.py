"""Shared plumbing of the multimodal types: Arrow unwrapping, dtype checks, ragged tensors.

Nothing here is public; the types in :mod:`lakefmt.types.media`, :mod:`~lakefmt.types.array`,
:mod:`~lakefmt.types.link` and the label, geometry, mask and container types build on it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from lakefmt._pool import shared_pool
from lakefmt.errors import DecodeError, InvalidTypeError, LakefmtError, TypeMismatchError
from lakefmt.types.base import as_array, mismatch
from lakefmt.types.scalars import NUMERIC_ARROW_TYPES

if TYPE_CHECKING:
    from lakefmt.types.base import Type

T = TypeVar("T")
R = TypeVar("R")

#: Numeric dtypes an Array/Embedding/label type may hold, with their Arrow types.
ARROW_NUMERIC: dict[str, pa.DataType] = NUMERIC_ARROW_TYPES
INT_DTYPES = tuple(d for d in ARROW_NUMERIC if d.startswith(("int", "uint")))


def normalize_dtype(dtype: Any, allowed: Iterable[str] = ARROW_NUMERIC) -> str:
    """Return the canonical numpy dtype name of ``dtype`` if it is one of ``allowed``.

    Raises:
        InvalidTypeError: Not a dtype, or not one of ``allowed`` (also a ``TypeError``).
    """
    allowed = tuple(allowed)
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"unknown dtype {dtype!r}; expected one of {list(allowed)}"
        ) from None
    if name not in allowed:
        raise InvalidTypeError(
            f"dtype {name!r} is not allowed here; expected one of {list(allowed)}"
        )
    return name


# -- Arrow ---------------------------------------------------------------------------------------


def storage_of(array: Any) -> pa.Array:
    """The plain storage array of an (extension or chunked) Arrow array."""
    if isinstance(array, pa.ChunkedArray):
        array = as_array(array)
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    return array


def as_extension(dtype: Type, storage: pa.Array) -> pa.Array:
    """Wrap a storage array as ``dtype``'s extension array (casting the storage if needed)."""
    if storage.type != dtype.storage_type:
        storage = storage.cast(dtype.storage_type)
    return pa.ExtensionArray.from_storage(dtype.arrow_type, storage)


def arrow_input(values: Any, dtype: Type, column: str) -> pa.Array | None:
    """If ``values`` is Arrow data, return it as ``dtype``'s storage type, else ``None``.

    Arrow input of the right storage type (or of this very extension type) is taken as is;
    other Arrow types go through ``to_pylist`` by the caller (``None`` is returned).
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        return None
    storage = storage_of(values)
    if storage.type == dtype.storage_type:
        return storage
    if storage.type == pa.null():
        return pa.nulls(len(storage), dtype.storage_type)
    return None


def validity(items: Sequence[Any]) -> pa.Array | None:
    """A ``mask`` for ``from_arrays`` (True where the item is None), or None without nulls."""
    nulls = [item is None for item in items]
    return pa.array(nulls, type=pa.bool_()) if any(nulls) else None


def to_items(values: Any) -> list[Any]:
    """A batch of values as a list (numpy arrays split along the first axis)."""
    if isinstance(values, list):
        return values
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return storage_of(values).to_pylist()
    if isinstance(values, np.ndarray):
        return list(values) if values.ndim > 1 or values.dtype == object else values.tolist()
    if isinstance(values, (str, bytes, dict)):
        raise TypeMismatchError(f"expected a batch of values, got a {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise TypeMismatchError(
            f"expected a batch of values (a list or array), got a {type(values).__name__}"
        ) from None


def at_row(exc: LakefmtError, column: str, row: int) -> LakefmtError:
    """Re-label a codec error with the column and row it came from (same class)."""
    cls = DecodeError if isinstance(exc, DecodeError) else TypeMismatchError
    return cls(f"column '{column}' row {row}: {exc}")


def is_pil_image(value: Any) -> bool:
    """Whether ``value`` is a Pillow image (without importing Pillow)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


# -- numbers -------------------------------------------------------------------------------------


def cast_numeric(array: np.ndarray, dtype: str, *, column: str, row: int | None) -> np.ndarray:
    """Cast ``array`` to ``dtype`` without losing values; raise TypeMismatchError otherwise.

    Integers fit integer columns if in range; integers and floats fit float columns; only
    booleans fit bool columns.
    """
    target = np.dtype(dtype)
    src = array.dtype
    if src == target:
        return array
    kind = src.kind
    if target.kind == "b":
        ok = kind == "b"
    elif target.kind in "iu":
        ok = kind in "iu"
        if ok and array.size and not np.can_cast(src, target):
            info = np.iinfo(target)
            ok = bool(array.min() >= info.min and array.max() <= info.max)
            if not ok:
                if row is None and array.ndim == 1:  # a column of scalars: name the row
                    bad = np.flatnonzero((array < info.min) | (array > info.max))
                    row = int(bad[0])
                raise TypeMismatchError(
                    f"column '{column}' expects {dtype} values, got values out of range "
                    f"({array.min()}..{array.max()})"
                    + (f" at row {row}" if row is not None else "")
                )
    elif target.kind == "f":
        ok = kind in "iuf"
    else:
        ok = False
    if not ok:
        raise TypeMismatchError(
            f"column '{column}' expects {dtype} values, got {src}"
            + (f" at row {row}" if row is not None else "")
        )
    with np.errstate(over="ignore"):  # overflow to inf is reported below
        out = array.astype(target)
    if target.kind == "f" and target.itemsize < 8:  # float16/float32 overflow to inf
        check_float_range(array, out, column=column, dtype=dtype, row=row)
    return out


def check_float_range(
    source: np.ndarray, result: np.ndarray, *, column: str, dtype: str, row: int | None
) -> None:
    """Refuse finite values that became infinite in a narrower float type (``1e308`` in a
    float32 column); infinities given as such stay.

    Raises:
        TypeMismatchError: Naming the column, the row (``row``, or the first bad one of a
            1-D ``source``) and the value.
    """
    if result.dtype.kind != "f":
        return
    with np.errstate(invalid="ignore"):
        overflow = np.isinf(result) & ~np.isinf(source.astype(np.float64))
    if not overflow.any():
        return
    first = np.argwhere(overflow)[0]
    if row is None and source.ndim == 1:
        row = int(first[0])
    value = source[tuple(first)].item()
    info = np.finfo(result.dtype)
    raise TypeMismatchError(
        f"column '{column}' expects {dtype} values, got {value!r} (outside {dtype}'s range "
        f"of +-{float(info.max):.6g})" + (f" at row {row}" if row is not None else "")
    )


def as_ndarray(value: Any, dtype: str, *, column: str, row: int, expected: str) -> np.ndarray:
    """One row's value as a numpy array of ``dtype`` (lists, tuples, arrays, tensors)."""
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise mismatch(column, row, expected, value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        raise mismatch(column, row, expected, value) from None
    if array.size == 0 and array.dtype.kind in "biufO":
        return array.astype(dtype)  # np.asarray([]) is float64: an empty row fits any dtype
    if array.dtype == object:
        raise mismatch(column, row, expected, value)
    if array.dtype.kind not in "biuf":
        raise TypeMismatchError(
            f"column '{column}' expects {expected}, got an array of {array.dtype} at row {row}"
        )
    return cast_numeric(array, dtype, column=column, row=row)


# -- fixed-size rows: fixed_size_list<dtype>[n] ----------------------------------------------------


def fixed_to_arrow(
    values: Any, shape: tuple[int, ...], dtype: str, *, column: str, expected: str
) -> pa.FixedSizeListArray:
    """Rows of one fixed shape as ``fixed_size_list<dtype>[prod(shape)]`` (row-major)."""
    size = math.prod(shape)
    value_type = ARROW_NUMERIC[dtype]
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.ndim != len(shape) + 1 or tuple(values.shape[1:]) != shape:
            raise TypeMismatchError(
                f"column '{column}' expects {expected}; got an array of shape {values.shape} "
                f"(rows of shape {tuple(values.shape[1:])}) at row 0"
            )
        if values.dtype.kind not in "biuf":
            raise TypeMismatchError(
                f"column '{column}' expects {expected}, got an array of {values.dtype} at row 0"
            )
        flat = _cast_rows(values, dtype, column).reshape(-1)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=value_type), size)
    items = to_items(values)
    rows = np.zeros((len(items), *shape), dtype=dtype)
    for i, item in enumerate(items):
        if item is None:
            continue
        array = as_ndarray(item, dtype, column=column, row=i, expected=expected)
        if array.shape != shape:
            raise TypeMismatchError(
                f"column '{column}' expects {expected}; got shape {array.shape} at row {i}"
            )
        rows[i] = array
    return pa.FixedSizeListArray.from_arrays(
        pa.array(rows.reshape(-1), type=value_type), size, mask=validity(items)
    )


def _cast_rows(values: np.ndarray, dtype: str, column: str) -> np.ndarray:
    try:
        return cast_numeric(values, dtype, column=column, row=None)
    except TypeMismatchError:
        # name the first bad row
        for i in range(len(values)):
            cast_numeric(values[i], dtype, column=column, row=i)
        raise


def fixed_from_arrow(array: Any, shape: tuple[int, ...], dtype: str) -> Any:
    """Decode fixed-size rows: an ``(n, *shape)`` array, or a list with ``None`` for nulls.

    Without nulls the result is a zero-copy view of the Arrow buffer (numeric dtypes).
    """
    storage = storage_of(array)
    n = len(storage)
    flat = storage.flatten()  # honours the slice offset; skips null slots
    values = flat.to_numpy(zero_copy_only=False)
    if storage.null_count == 0:
        return values.reshape((n, *shape))
    rows = values.reshape((n - storage.null_count, *shape))
    valid = storage.is_valid().to_numpy(zero_copy_only=False)
    out: list[np.ndarray | None] = [None] * n
    for slot, i in enumerate(np.flatnonzero(valid)):
        out[int(i)] = rows[slot]
    return out


def fixed_one(array: Any, index: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """Decode one fixed-size row (a zero-copy view where possible)."""
    storage = storage_of(array)
    if not storage.is_valid()[index].as_py():
        return None
    return storage.slice(index, 1).flatten().to_numpy(zero_copy_only=False).reshape(shape)


# -- ragged rows: k levels of list<...> ------------------------------------------------------------

_INT32_MAX = 2**31 - 1


def _offsets(lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > _INT32_MAX:
        raise TypeMismatchError("an append of more than 2**31 nested values must be split")
    return pa.array(offsets.astype(np.int32), type=pa.int32())


def ragged_to_arrow(rows: Sequence[np.ndarray | None], ndim: int, dtype: str) -> pa.ListArray:
    """Rows of ``ndim``-dimensional arrays (any shape each) as ``ndim`` levels of lists."""
    present = [r for r in rows if r is not None]
    flat = (
        np.concatenate([r.reshape(-1) for r in present]) if present else np.zeros(0, dtype)
    ).astype(dtype, copy=False)
    array: pa.Array = pa.array(flat, type=ARROW_NUMERIC[dtype])
    for level in reversed(range(ndim)):
        if level == 0:
            lengths = np.array([0 if r is None else r.shape[0] for r in rows], dtype=np.int64)
            mask = validity(rows)
        else:
            parts = [np.full(math.prod(r.shape[:level]), r.shape[level], np.int64) for r in present]
            lengths = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            mask = None
        array = pa.ListArray.from_arrays(_offsets(lengths), array, mask=mask)
    return array


def ragged_from_arrow(array: Any, ndim: int) -> list[np.ndarray | None]:
    """Decode ``ndim`` levels of lists into one array per row (``None`` for nulls).

    Each row is a view of the flat value buffer; an empty row has shape ``(0,)*ndim`` when
    its inner sizes cannot be known.
    """
    storage = storage_of(array)
    n = len(storage)
    offsets = [storage.offsets.to_numpy()]
    child = storage.values
    for _ in range(1, ndim):
        offsets.append(child.offsets.to_numpy())
        child = child.values
    leaf = child.to_numpy(zero_copy_only=False)
    valid = storage.is_valid().to_numpy(zero_copy_only=False) if storage.null_count else None
    out: list[np.ndarray | None] = []
    for i in range(n):
        if valid is not None and not valid[i]:
            out.append(None)
            continue
        lo, hi = int(offsets[0][i]), int(offsets[0][i + 1])
        dims = [hi - lo]
        for level in range(1, ndim):
            o = offsets[level]
            dims.append(int(o[lo + 1] - o[lo]) if hi > lo else 0)
            lo, hi = int(o[lo]), int(o[hi])
        out.append(leaf[lo:hi].reshape(dims))
    return out


# -- a shared thread pool ------------------------------------------------------------------------


def parallel_map(fn: Callable[[T], R], items: Sequence[T], *, inline_below: int = 4) -> list[R]:
    """``[fn(x) for x in items]`` on the shared ``types`` pool (for I/O or GIL-releasing work).

    The first exception (in item order) is re-raised.
    """
    if len(items) < inline_below:
        return [fn(x) for x in items]
    return list(shared_pool("types").map(fn, items))


#: Python types a binary value may be given as.
BYTE_TYPES = (bytes, bytearray, memoryview)
#: Values that are one value, never a batch of rows (though iterable).
NOT_A_ROW = (str, bytes, bytearray, memoryview, dict)


def null_mask(items: list[Any]) -> np.ndarray | None:
    """A numpy mask, True where the item is None, or None without nulls."""
    nulls = np.array([v is None for v in items], dtype=bool)
    return nulls if nulls.any() else None
