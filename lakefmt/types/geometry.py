"""Sets of points per row: ``BoundingBox``, ``Point`` and ``Polygon``.

Storage layouts (see ``spec/types.md``):

=====================================  ===================================================
type                                   Arrow storage
=====================================  ===================================================
``BoundingBox(dtype, format, ...)``    ``list<fixed_size_list<dtype>[4]>``: boxes of a row
``Point(dtype, dimensions=d)``         ``list<fixed_size_list<dtype>[d]>``: points of a row
``Polygon(dtype, dimensions=d)``       ``list<list<fixed_size_list<dtype>[d]>>``
=====================================  ===================================================
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.errors import (
    InvalidTypeError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    ARROW_NUMERIC,
    NOT_A_ROW,
    _offsets,
    arrow_input,
    as_extension,
    as_ndarray,
    normalize_dtype,
    storage_of,
    to_items,
    validity,
)
from lakefmt.types.base import Type, _depth, mismatch
from lakefmt.types.registry import register_type

__all__ = [
    "BoundingBox",
    "Point",
    "Polygon",
]


class _PointSet(Type):
    """Rows of ``(N, width)`` arrays: N boxes or points per row."""

    row_ndim = 2
    _what: ClassVar[str] = "points"

    def __init__(self, dtype: str) -> None:
        self.dtype = normalize_dtype(dtype)

    @property
    def width(self) -> int:
        """Values per item (4 for boxes, the dimensions for points)."""
        raise NotImplementedError

    @property
    def storage_type(self) -> pa.DataType:
        """``list<fixed_size_list<dtype>[width]>``."""
        return pa.list_(pa.list_(ARROW_NUMERIC[self.dtype], self.width))

    def is_single(self, value: Any) -> bool:
        """An ``(N, width)`` array, or one ``width``-vector, is one row."""
        if isinstance(value, np.ndarray):
            return value.ndim in (1, 2) and value.dtype != object
        if isinstance(value, (list, tuple)):
            return len(value) > 0 and _depth(value) in (1, 2) and not any(v is None for v in value)
        return super().is_single(value)

    def _row(self, value: Any, column: str, row: int) -> np.ndarray:
        expected = f"(N, {self.width}) arrays of {self.dtype} {self._what}"
        if isinstance(value, (list, tuple)) and len(value) == 0:
            return np.zeros((0, self.width), self.dtype)
        array = as_ndarray(value, self.dtype, column=column, row=row, expected=expected)
        if array.ndim == 1 and array.shape[0] == self.width:
            array = array.reshape(1, self.width)
        elif array.size == 0:
            array = array.reshape(0, self.width)
        if array.ndim != 2 or array.shape[1] != self.width:
            raise TypeMismatchError(
                f"column '{column}' expects {expected}; got shape {array.shape} at row {row}"
            )
        return array

    def _pack(self, rows: list[np.ndarray | None]) -> pa.Array:
        present = [r for r in rows if r is not None]
        flat = np.concatenate([r.reshape(-1) for r in present]) if present else np.zeros(0)
        leaf = pa.FixedSizeListArray.from_arrays(
            pa.array(flat.astype(self.dtype, copy=False), type=ARROW_NUMERIC[self.dtype]),
            self.width,
        )
        lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int64)
        return pa.ListArray.from_arrays(_offsets(lengths), leaf, mask=validity(rows))

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check each row's shape and dtype and pack the rows.

        Raises:
            TypeMismatchError: A row that is not ``(N, width)`` numbers of a castable dtype.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        items = to_items(values)
        rows = [None if v is None else self._row(v, column, i) for i, v in enumerate(items)]
        return as_extension(self, self._pack(rows))

    def _unpack(self, storage: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
        offsets = storage.offsets.to_numpy()
        leaf = storage.values.flatten().to_numpy(zero_copy_only=False)
        return offsets, leaf.reshape(-1, self.width)

    def decode(self, array: pa.Array) -> list[np.ndarray | None]:
        """One ``(N, width)`` array per row (views of the stored buffer), ``None`` for nulls."""
        storage = storage_of(array)
        offsets, items = self._unpack(storage)
        valid = storage.is_valid().to_numpy(zero_copy_only=False)
        return [
            items[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(storage))
        ]

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """One row's ``(N, width)`` array, or ``None``."""
        return self.decode(storage_of(array).slice(index, 1))[0]


_BBOX_FORMATS = ("ltrb", "ltwh", "ccwh", "lrtb")
_BBOX_TYPES = ("pixel", "fractional")


@register_type
class BoundingBox(_PointSet):
    """Bounding boxes: each row is an ``(N, 4)`` array of N boxes (as in Deep Lake).

    A single box ``[a, b, c, d]`` appended as a row is stored as ``(1, 4)``.

    Args:
        dtype: Numeric dtype of the coordinates (default ``"float32"``).
        format: How the 4 numbers are read: ``"ltrb"`` (left, top, right, bottom),
            ``"ltwh"`` (left, top, width, height), ``"ccwh"`` (centre x, centre y, width,
            height), ``"lrtb"``; ``None`` if unspecified.
        bbox_type: ``"pixel"`` or ``"fractional"`` coordinates, or ``None``.
    """

    name: ClassVar[str] = "lakefmt.bounding_box"
    is_extension: ClassVar[bool] = True
    _what: ClassVar[str] = "boxes"

    def __init__(
        self, dtype: str = "float32", format: str | None = None, bbox_type: str | None = None
    ) -> None:
        super().__init__(dtype)
        if format is not None and str(format).lower() not in _BBOX_FORMATS:
            raise InvalidTypeError(
                f"BoundingBox format must be one of {_BBOX_FORMATS}, got {format!r}"
            )
        if bbox_type is not None and str(bbox_type).lower() not in _BBOX_TYPES:
            raise InvalidTypeError(
                f"BoundingBox bbox_type must be one of {_BBOX_TYPES}, got {bbox_type!r}"
            )
        self.format = None if format is None else str(format).lower()
        self.bbox_type = None if bbox_type is None else str(bbox_type).lower()

    @property
    def width(self) -> int:
        """4."""
        return 4

    def params(self) -> dict[str, Any]:
        """``dtype``, and ``format`` / ``bbox_type`` when set."""
        params: dict[str, Any] = {"dtype": self.dtype}
        if self.format:
            params["format"] = self.format
        if self.bbox_type:
            params["bbox_type"] = self.bbox_type
        return params


@register_type
class Point(_PointSet):
    """Points (e.g. keypoints): each row is an ``(N, dimensions)`` array of N points.

    Args:
        dtype: Numeric dtype of the coordinates (default ``"float32"``).
        dimensions: Coordinates per point (2 or 3 usually).
    """

    name: ClassVar[str] = "lakefmt.point"
    is_extension: ClassVar[bool] = True

    def __init__(self, dtype: str = "float32", dimensions: int = 2) -> None:
        super().__init__(dtype)
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidTypeError(
                f"Point dimensions must be a positive integer, got {dimensions!r}"
            )
        self.dimensions = dimensions

    @property
    def width(self) -> int:
        """``dimensions``."""
        return self.dimensions

    def params(self) -> dict[str, Any]:
        """``dtype`` and ``dimensions``."""
        return {"dtype": self.dtype, "dimensions": self.dimensions}


@register_type
class Polygon(Type):
    """Polygons: each row is a list of polygons, each an ``(P, dimensions)`` array.

    Args:
        dtype: Numeric dtype of the coordinates (default ``"float32"``).
        dimensions: Coordinates per vertex (default 2).
    """

    name: ClassVar[str] = "lakefmt.polygon"
    is_extension: ClassVar[bool] = True
    row_ndim = 3

    def __init__(self, dtype: str = "float32", dimensions: int = 2) -> None:
        self.dtype = normalize_dtype(dtype)
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidTypeError(
                f"Polygon dimensions must be a positive integer, got {dimensions!r}"
            )
        self.dimensions = dimensions

    def params(self) -> dict[str, Any]:
        """``dtype`` and ``dimensions``."""
        return {"dtype": self.dtype, "dimensions": self.dimensions}

    @property
    def storage_type(self) -> pa.DataType:
        """``list<list<fixed_size_list<dtype>[dimensions]>>``."""
        return pa.list_(pa.list_(pa.list_(ARROW_NUMERIC[self.dtype], self.dimensions)))

    def is_single(self, value: Any) -> bool:
        """A list of ``(P, dimensions)`` polygons (or a 3-D array) is one row."""
        if isinstance(value, np.ndarray):
            return value.ndim == 3
        if isinstance(value, (list, tuple)):
            return len(value) > 0 and all(v is not None and _depth(v) == 2 for v in value)
        return super().is_single(value)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check every polygon's shape and dtype and pack the rows.

        Raises:
            TypeMismatchError: A polygon that is not ``(P, dimensions)`` numbers.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        expected = f"lists of (P, {self.dimensions}) {self.dtype} polygons"
        items = to_items(values)
        polygons: list[np.ndarray] = []
        per_row: list[int] = []
        for i, row in enumerate(items):
            if row is None:
                per_row.append(0)
                continue
            if (
                isinstance(row, NOT_A_ROW)
                or not hasattr(row, "__len__")
                or getattr(row, "ndim", 1) == 0  # a 0-d array has __len__ but no length
            ):
                raise mismatch(column, i, expected, row)
            for poly in row:
                array = as_ndarray(poly, self.dtype, column=column, row=i, expected=expected)
                if array.size == 0:
                    array = array.reshape(0, self.dimensions)
                if array.ndim != 2 or array.shape[1] != self.dimensions:
                    raise TypeMismatchError(
                        f"column '{column}' expects {expected}; got a polygon of shape "
                        f"{array.shape} at row {i}"
                    )
                polygons.append(array)
            per_row.append(len(row))
        flat = (
            np.concatenate([p.reshape(-1) for p in polygons]) if polygons else np.zeros(0)
        ).astype(self.dtype, copy=False)
        leaf = pa.FixedSizeListArray.from_arrays(
            pa.array(flat, type=ARROW_NUMERIC[self.dtype]), self.dimensions
        )
        inner = pa.ListArray.from_arrays(
            _offsets(np.array([len(p) for p in polygons], dtype=np.int64)), leaf
        )
        outer = pa.ListArray.from_arrays(
            _offsets(np.array(per_row, dtype=np.int64)), inner, mask=validity(items)
        )
        return as_extension(self, outer)

    def decode(self, array: pa.Array) -> list[list[np.ndarray] | None]:
        """Per row, a list of ``(P, dimensions)`` arrays (``None`` for nulls)."""
        storage = storage_of(array)
        outer = storage.offsets.to_numpy()
        inner_list = storage.values
        inner = inner_list.offsets.to_numpy()
        points = (
            inner_list.values.flatten().to_numpy(zero_copy_only=False).reshape(-1, self.dimensions)
        )
        valid = storage.is_valid().to_numpy(zero_copy_only=False)
        out: list[list[np.ndarray] | None] = []
        for i in range(len(storage)):
            if not valid[i]:
                out.append(None)
                continue
            out.append([points[inner[k] : inner[k + 1]] for k in range(outer[i], outer[i + 1])])
        return out

    def decode_one(self, array: pa.Array, index: int) -> list[np.ndarray] | None:
        """One row's polygons, or ``None``."""
        return self.decode(storage_of(array).slice(index, 1))[0]
