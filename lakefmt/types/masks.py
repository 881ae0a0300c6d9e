"""Masks: ``SegmentMask`` (class ids per pixel) and ``BinaryMask`` (on/off per pixel),
stored raw or as PNG.

Storage layouts (see ``spec/types.md``):

=====================================  ===================================================
type                                   Arrow storage
=====================================  ===================================================
``SegmentMask(dtype)``                 ``list<list<dtype>>`` (rows of pixels)
``SegmentMask(dtype, "png")``          ``binary`` (a grayscale PNG)
``BinaryMask()``                       ``struct<shape: list<int32>, values: list<bool>>``
``BinaryMask("png")``                  ``binary`` (an 8-bit grayscale PNG, 0 or 255)
=====================================  ===================================================
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.codecs.image import decode_image, decode_images, encode_image
from lakefmt.codecs.image_headers import sniff_image
from lakefmt.errors import (
    DecodeError,
    InvalidTypeError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    ARROW_NUMERIC,
    BYTE_TYPES,
    INT_DTYPES,
    _offsets,
    arrow_input,
    as_extension,
    as_ndarray,
    at_row,
    normalize_dtype,
    ragged_from_arrow,
    ragged_to_arrow,
    storage_of,
    to_items,
    validity,
)
from lakefmt.types.base import Type, _depth, mismatch
from lakefmt.types.registry import register_type

__all__ = [
    "BinaryMask",
    "SegmentMask",
]


def _png_mask_bytes(data: bytes, column: str, row: int) -> bytes:
    try:
        info = sniff_image(data)
    except (DecodeError, TypeMismatchError) as exc:
        raise at_row(exc, column, row) from exc
    if info.format != "png" or info.channels != 1:
        raise DecodeError(
            f"column '{column}' row {row}: expected a single-channel PNG mask, got a "
            f"{info.channels}-channel {info.format} image"
        )
    return data


@register_type
class SegmentMask(Type):
    """Segmentation masks: an ``(H, W)`` array of class ids per row.

    Args:
        dtype: Integer dtype of the class ids (default ``"uint8"``; ``"uint8"`` or
            ``"uint16"`` with PNG compression).
        sample_compression: ``None`` (stored as nested lists, compressed by Parquet) or
            ``"png"`` (each mask a grayscale PNG; PNG bytes may be appended as they are).
    """

    name: ClassVar[str] = "lakefmt.segment_mask"
    is_extension: ClassVar[bool] = True
    row_ndim = 2

    def __init__(self, dtype: str = "uint8", sample_compression: str | None = None) -> None:
        if sample_compression is not None and str(sample_compression).lower() != "png":
            raise InvalidTypeError(
                f"SegmentMask sample_compression must be None or 'png', got {sample_compression!r}"
            )
        self.sample_compression = None if sample_compression is None else "png"
        allowed = ("uint8", "uint16") if self.sample_compression else INT_DTYPES
        self.dtype = normalize_dtype(dtype, allowed)

    def params(self) -> dict[str, Any]:
        """``dtype`` and ``sample_compression`` (when set)."""
        params: dict[str, Any] = {"dtype": self.dtype}
        if self.sample_compression:
            params["sample_compression"] = self.sample_compression
        return params

    @property
    def storage_type(self) -> pa.DataType:
        """``list<list<dtype>>``, or ``binary`` (PNG)."""
        if self.sample_compression:
            return pa.binary()
        return pa.list_(pa.list_(ARROW_NUMERIC[self.dtype]))

    def is_single(self, value: Any) -> bool:
        """An ``(H, W)`` array (or PNG bytes) is one mask."""
        if isinstance(value, BYTE_TYPES):
            return True
        if isinstance(value, np.ndarray):
            return value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 1)
        return super().is_single(value)

    def _mask(self, value: Any, column: str, row: int) -> np.ndarray:
        expected = f"(H, W) {self.dtype} masks"
        array = as_ndarray(value, self.dtype, column=column, row=row, expected=expected)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim != 2:
            raise TypeMismatchError(
                f"column '{column}' expects {expected}; got shape {array.shape} at row {row}"
            )
        return array

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check each mask's shape and dtype (PNG bytes: header only) and pack/encode them.

        Raises:
            TypeMismatchError: A mask that is not 2-D or not of an integer dtype.
            DecodeError: PNG bytes that are corrupt or not single-channel.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        items = to_items(values)
        if not self.sample_compression:
            rows: list[np.ndarray | None] = []
            for i, v in enumerate(items):
                if isinstance(v, BYTE_TYPES):
                    raise mismatch(column, i, f"(H, W) {self.dtype} masks (not bytes)", v)
                rows.append(None if v is None else self._mask(v, column, i))
            return as_extension(self, ragged_to_arrow(rows, 2, self.dtype))
        out: list[bytes | None] = []
        for i, v in enumerate(items):
            if v is None:
                out.append(None)
            elif isinstance(v, BYTE_TYPES):
                out.append(_png_mask_bytes(bytes(v), column, i))
            else:
                mask = self._mask(v, column, i)
                try:
                    out.append(encode_image(np.ascontiguousarray(mask), "png"))
                except (TypeMismatchError, ValueError) as exc:
                    raise TypeMismatchError(f"column '{column}' row {i}: {exc}") from exc
        return as_extension(self, pa.array(out, type=pa.binary()))

    def decode(self, array: pa.Array) -> list[np.ndarray | None]:
        """One ``(H, W)`` array per row (``None`` for nulls)."""
        if not self.sample_compression:
            return ragged_from_arrow(array, 2)
        decoded = decode_images(storage_of(array).to_pylist(), dtype=self.dtype)
        return [None if d is None else d[:, :, 0] for d in decoded]

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """One mask, or ``None``."""
        if not self.sample_compression:
            return ragged_from_arrow(storage_of(array).slice(index, 1), 2)[0]
        data = storage_of(array)[index].as_py()
        return None if data is None else decode_image(data, dtype=self.dtype)[:, :, 0]


_BINARY_MASK_STORAGE = pa.struct(
    [("shape", pa.list_(pa.int32())), ("values", pa.list_(pa.bool_()))]
)


@register_type
class BinaryMask(Type):
    """Binary masks: a boolean ``(H, W)`` or ``(H, W, K)`` array per row (K objects).

    Args:
        sample_compression: ``None`` (``struct<shape, values>`` with bit-packed booleans,
            any number of dimensions) or ``"png"`` (``(H, W)`` masks only, each an 8-bit
            grayscale PNG holding 0 or 255; any single-channel PNG may be appended, non-zero
            pixels read as True).
    """

    name: ClassVar[str] = "lakefmt.binary_mask"
    is_extension: ClassVar[bool] = True

    def __init__(self, sample_compression: str | None = None) -> None:
        if sample_compression is not None and str(sample_compression).lower() != "png":
            raise InvalidTypeError(
                f"BinaryMask sample_compression must be None or 'png', got {sample_compression!r}"
            )
        self.sample_compression = None if sample_compression is None else "png"

    def params(self) -> dict[str, Any]:
        """``sample_compression`` (when set)."""
        return {"sample_compression": self.sample_compression} if self.sample_compression else {}

    @property
    def storage_type(self) -> pa.DataType:
        """``struct<shape: list<int32>, values: list<bool>>``, or ``binary`` (PNG)."""
        return pa.binary() if self.sample_compression else _BINARY_MASK_STORAGE

    def is_single(self, value: Any) -> bool:
        """A 2-D or 3-D array (or PNG bytes, or 2-D nested lists) is one mask."""
        if isinstance(value, BYTE_TYPES):
            return True
        if isinstance(value, np.ndarray):
            return value.ndim in (2, 3)
        if isinstance(value, (list, tuple)):
            # a list of arrays is a batch; only plain nested lists of bools are one mask
            return _depth(value) == 2 and all(isinstance(v, (list, tuple)) for v in value)
        return super().is_single(value)

    def _mask(self, value: Any, column: str, row: int) -> np.ndarray:
        expected = "boolean (H, W) or (H, W, K) masks"
        array = as_ndarray(value, "bool", column=column, row=row, expected=expected)
        if self.sample_compression and array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        ndims = (2,) if self.sample_compression else (2, 3)
        if array.ndim not in ndims:
            if self.sample_compression:
                expected = "boolean (H, W) masks (PNG holds one mask)"
            raise TypeMismatchError(
                f"column '{column}' expects {expected}; got shape {array.shape} at row {row}"
            )
        return array

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check each mask's shape and dtype (PNG bytes: header only) and pack/encode them.

        Raises:
            TypeMismatchError: A mask that is not boolean or of the wrong dimensions.
            DecodeError: PNG bytes that are corrupt or not single-channel.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        items = to_items(values)
        if self.sample_compression:
            out: list[bytes | None] = []
            for i, v in enumerate(items):
                if v is None:
                    out.append(None)
                elif isinstance(v, BYTE_TYPES):
                    out.append(_png_mask_bytes(bytes(v), column, i))
                else:
                    mask = self._mask(v, column, i)
                    out.append(encode_image(mask.astype(np.uint8) * np.uint8(255), "png"))
            return as_extension(self, pa.array(out, type=pa.binary()))
        masks: list[np.ndarray | None] = []
        for i, v in enumerate(items):
            if isinstance(v, BYTE_TYPES):
                raise mismatch(column, i, "boolean masks (not bytes)", v)
            masks.append(None if v is None else self._mask(v, column, i))
        present = [m for m in masks if m is not None]
        shapes = (
            np.concatenate([np.asarray(m.shape, np.int32) for m in present])
            if present
            else (np.zeros(0, np.int32))
        )
        flat = np.concatenate([m.reshape(-1) for m in present]) if present else np.zeros(0, bool)
        shape_arr = pa.ListArray.from_arrays(
            _offsets(np.array([0 if m is None else m.ndim for m in masks], np.int64)),
            pa.array(shapes, type=pa.int32()),
        )
        values_arr = pa.ListArray.from_arrays(
            _offsets(np.array([0 if m is None else m.size for m in masks], np.int64)),
            pa.array(flat, type=pa.bool_()),
        )
        struct = pa.StructArray.from_arrays(
            [shape_arr, values_arr], fields=list(_BINARY_MASK_STORAGE), mask=validity(masks)
        )
        return as_extension(self, struct)

    def decode(self, array: pa.Array) -> list[np.ndarray | None]:
        """One boolean array per row, with its appended shape (``None`` for nulls)."""
        storage = storage_of(array)
        if self.sample_compression:
            decoded = decode_images(storage.to_pylist(), dtype="uint8")
            return [None if d is None else d[:, :, 0] != 0 for d in decoded]
        shape_child, values_child = storage.flatten()
        shapes = ragged_from_arrow(shape_child, 1)
        values = ragged_from_arrow(values_child, 1)
        return [
            None if s is None or v is None else v.reshape(tuple(int(d) for d in s))
            for s, v in zip(shapes, values, strict=True)
        ]

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """One mask, or ``None``."""
        return self.decode(storage_of(array).slice(index, 1))[0]
