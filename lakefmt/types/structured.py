"""Label and structured types: ClassLabel, BoundingBox, Point, Polygon, SegmentMask,
BinaryMask, Sequence, Struct and Dict.

Storage layouts (see ``spec/types.md``):

=====================================  ===================================================
type                                   Arrow storage
=====================================  ===================================================
``ClassLabel(dtype)``                  ``dtype`` (an integer type)
``ClassLabel(Array(dtype, dimensions=1))``  ``list<dtype>`` (several labels per row)
``BoundingBox(dtype, format, ...)``    ``list<fixed_size_list<dtype>[4]>``: boxes of a row
``Point(dtype, dimensions=d)``         ``list<fixed_size_list<dtype>[d]>``: points of a row
``Polygon(dtype, dimensions=d)``       ``list<list<fixed_size_list<dtype>[d]>>``
``SegmentMask(dtype)``                 ``list<list<dtype>>`` (rows of pixels)
``SegmentMask(dtype, "png")``          ``binary`` (a grayscale PNG)
``BinaryMask()``                       ``struct<shape: list<int32>, values: list<bool>>``
``BinaryMask("png")``                  ``binary`` (an 8-bit grayscale PNG, 0 or 255)
``Sequence(inner)``                    ``list<inner storage>``
``Struct({name: type})``               ``struct<name: type storage, ...>``
``Dict()``                             ``string``: JSON text
=====================================  ===================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakefmt.codecs.image import decode_image, decode_images, encode_image, sniff_image
from lakefmt.errors import (
    DecodeError,
    InvalidTypeError,
    LakefmtError,
    SchemaError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    ARROW_NUMERIC,
    INT_DTYPES,
    _offsets,
    arrow_input,
    as_extension,
    as_ndarray,
    at_row,
    cast_numeric,
    normalize_dtype,
    ragged_from_arrow,
    ragged_to_arrow,
    storage_of,
    to_items,
    validity,
)
from lakefmt.types.array import Array
from lakefmt.types.base import Type, _depth, mismatch
from lakefmt.types.registry import register_type, resolve_type, type_from_json
from lakefmt.types.scalars import utf8_array

__all__ = [
    "BinaryMask",
    "BoundingBox",
    "ClassLabel",
    "Dict",
    "Point",
    "Polygon",
    "SegmentMask",
    "Sequence",
    "Struct",
]

_BYTES = (bytes, bytearray, memoryview)
_NOT_A_ROW = (str, bytes, bytearray, memoryview, dict)


# -- ClassLabel ------------------------------------------------------------------------------------


@register_type
class ClassLabel(Type):
    """Class labels: integers, appended as integers or as class names.

    With ``class_names``, names map to their index in the list; an unknown name raises
    ``TypeMismatchError`` (the list is part of the column type and never grows silently),
    and so does a label outside ``0 .. len(class_names) - 1``. Without class names any
    integer of ``dtype`` is a label. ``None`` is a null label. Reads give integers;
    :meth:`class_name` maps them back, and queries compare a label with a string by name.

    Class names may also be set Deep Lake's way, ``ds["label"].metadata["class_names"] =
    [...]``, on a column whose type has none: the column then reads, validates and queries
    exactly as if they were in the type (:func:`with_column_metadata`).

    Args:
        dtype: An integer dtype (``"int32"``...), or ``Array(int_dtype, dimensions=1)`` for
            several labels per row (multi-label: rows are lists, read as 1-D arrays).
        class_names: The class names, index ``i`` naming label ``i``.
    """

    name: ClassVar[str] = "lakefmt.class_label"
    is_extension: ClassVar[bool] = True

    def __init__(self, dtype: Any = "int32", class_names: list[str] | None = None) -> None:
        self.multi_label = False
        if isinstance(dtype, Array):
            if dtype.dimensions != 1:
                raise InvalidTypeError("a multi-label ClassLabel takes Array(dtype, dimensions=1)")
            self.multi_label = True
            dtype = dtype.dtype
        self.row_ndim = 1 if self.multi_label else 0  # a multi-label row is a list of labels
        self.dtype = normalize_dtype(dtype, INT_DTYPES)
        if class_names is not None:
            names = list(class_names)
            if not all(isinstance(n, str) for n in names):
                raise InvalidTypeError("ClassLabel class_names must be strings")
            if len(set(names)) != len(names):
                raise InvalidTypeError("ClassLabel class_names must be unique")
            class_names = names
        self.class_names = class_names
        self._index = {n: i for i, n in enumerate(class_names or [])}

    def params(self) -> dict[str, Any]:
        """``dtype``, ``multi_label`` (when true) and ``class_names`` (when given)."""
        params: dict[str, Any] = {"dtype": self.dtype}
        if self.multi_label:
            params["multi_label"] = True
        if self.class_names is not None:
            params["class_names"] = list(self.class_names)
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ClassLabel:
        """Rebuild from ``{"dtype", "multi_label"?, "class_names"?}``."""
        dtype: Any = params.get("dtype", "int32")
        if params.get("multi_label"):
            dtype = Array(dtype, dimensions=1)
        return cls(dtype, params.get("class_names"))

    @property
    def storage_type(self) -> pa.DataType:
        """The integer type, or ``list<int>`` for multi-label columns."""
        value = ARROW_NUMERIC[self.dtype]
        return pa.list_(value) if self.multi_label else value

    def class_name(self, label: int) -> str | None:
        """The name of label ``label`` (``None`` without class names or out of range)."""
        names = self.class_names or []
        return names[label] if 0 <= label < len(names) else None

    def index_of(self, name: str) -> int:
        """The label of class ``name``.

        Raises:
            KeyError: No class of that name.
        """
        return self._index[name]

    def is_single(self, value: Any) -> bool:
        """A scalar (int or name) is one row; for multi-label a flat list is one row."""
        if self.multi_label:
            if value is None:
                return True
            if isinstance(value, np.ndarray):
                return value.ndim == 1
            if isinstance(value, (list, tuple)):
                return len(value) > 0 and all(
                    v is not None and not isinstance(v, (list, tuple, np.ndarray)) for v in value
                )
            return False
        return super().is_single(value)

    def _bounds(self) -> tuple[int, int]:
        """The smallest and largest valid label."""
        info = np.iinfo(np.dtype(self.dtype))
        if self.class_names is not None:
            return 0, min(len(self.class_names) - 1, int(info.max))
        return int(info.min), int(info.max)

    def _out_of_range(self, column: str, row: int, label: int) -> TypeMismatchError:
        low, high = self._bounds()
        if self.class_names is not None:
            what = (
                f"a label of one of its {len(self.class_names)} classes ({low}..{high})"
                if self.class_names
                else "no label (it has an empty class_names list)"
            )
        else:
            what = f"{self.dtype} labels ({low}..{high})"
        return TypeMismatchError(f"column '{column}' expects {what}, got {label} at row {row}")

    def _labels(self, items: list[Any], column: str, rows: list[int] | None = None) -> np.ndarray:
        """Map ints / names to an int64 array (rows: the row of each item, for errors)."""
        out = np.zeros(len(items), dtype=np.int64)
        low, high = self._bounds()
        for k, value in enumerate(items):
            row = rows[k] if rows is not None else k
            if isinstance(value, str):
                label = self._index.get(value)
                if label is None:
                    known = ", ".join(repr(n) for n in (self.class_names or [])[:10])
                    raise TypeMismatchError(
                        f"column '{column}' has no class named {value!r} (row {row}); "
                        + (f"known classes: {known}" if known else "it has no class_names")
                    )
                out[k] = label
            elif isinstance(value, (int, np.integer)) and not isinstance(
                value,
                (bool, np.bool_, np.timedelta64),  # timedelta64 is an np.integer
            ):
                label = int(value)  # a Python int: no overflow before the range check
                if not low <= label <= high:
                    raise self._out_of_range(column, row, label)
                out[k] = label
            else:
                raise mismatch(column, row, f"{self.dtype} labels or class names", value)
        return out

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Map class names to labels and check the integers fit ``dtype``.

        Raises:
            TypeMismatchError: An unknown class name, a non-integer, an out-of-range value.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            self._check_arrow(storage, column)
            return as_extension(self, storage)
        if not self.multi_label and isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            labels = cast_numeric(values.reshape(-1), self.dtype, column=column, row=None)
            self._check_range(labels, column)
            return as_extension(self, pa.array(labels, type=self.storage_type))
        items = to_items(values)
        if not self.multi_label:
            present = [i for i, v in enumerate(items) if v is not None]
            labels = self._labels([items[i] for i in present], column, present)
            full = np.zeros(len(items), dtype=np.int64)
            full[present] = labels  # in range: _labels checked them (nulls stay 0 here)
            array = pa.array(full.astype(self.dtype), mask=_mask(items))
            return as_extension(self, array)
        rows: list[np.ndarray | None] = []
        for i, row in enumerate(items):
            if row is None:
                rows.append(None)
            elif (
                isinstance(row, _NOT_A_ROW)
                or not hasattr(row, "__len__")
                or getattr(row, "ndim", 1) == 0  # a 0-d array has __len__ but no length
            ):
                raise mismatch(column, i, "a list of labels per row", row)
            else:
                row_items = list(row)
                rows.append(self._labels(row_items, column, [i] * len(row_items)))
        for i, r in enumerate(rows):
            if r is not None:
                self._check_range(r, column, i)
        return as_extension(self, ragged_to_arrow(rows, 1, self.dtype))

    def _check_range(self, labels: np.ndarray, column: str, row: int | None = None) -> None:
        """Refuse labels outside :meth:`_bounds` (``row``: the row of every label)."""
        low, high = self._bounds()
        bad = np.flatnonzero((labels < low) | (labels > high))
        if len(bad):
            where = row if row is not None else int(bad[0])
            raise self._out_of_range(column, where, int(labels[bad[0]]))

    def _check_arrow(self, storage: pa.Array, column: str) -> None:
        """Range check of Arrow input of the storage type (nulls pass)."""
        if self.class_names is None:
            return  # the Arrow type itself bounds the values
        if self.multi_label:
            lengths = pc.list_value_length(storage).fill_null(0).to_numpy()
            rows = np.repeat(np.arange(len(storage)), lengths)
            flat = storage.flatten()
        else:
            rows, flat = np.arange(len(storage)), storage
        valid = np.asarray(flat.is_valid())
        labels = flat.fill_null(0).to_numpy(zero_copy_only=False)
        low, high = self._bounds()
        bad = np.flatnonzero(valid & ((labels < low) | (labels > high)))
        if len(bad):
            raise self._out_of_range(column, int(rows[bad[0]]), int(labels[bad[0]]))

    def decode(self, array: pa.Array) -> Any:
        """Labels as a numpy array (object array with ``None`` for nulls); multi-label: a list."""
        storage = storage_of(array)
        if self.multi_label:
            return ragged_from_arrow(storage, 1)
        if storage.null_count:
            return np.array(storage.to_pylist(), dtype=object)
        return storage.to_numpy(zero_copy_only=False)

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """One label (a numpy integer), a 1-D array for multi-label, or ``None``."""
        storage = storage_of(array)
        if self.multi_label:
            return ragged_from_arrow(storage.slice(index, 1), 1)[0]
        value = storage[index].as_py()
        return None if value is None else np.dtype(self.dtype).type(value)


#: The column metadata key Deep Lake keeps class names under.
CLASS_NAMES_KEY = "class_names"


def check_column_metadata(dtype: Type, metadata: Mapping[str, Any], *, column: str) -> None:
    """Refuse column metadata that contradicts the column's type.

    ``class_names`` of a ``ClassLabel`` column must be a list of unique strings, and may not
    differ from class names the type already has (those are the column's contract).

    Raises:
        SchemaError: Such a ``class_names`` value.
    """
    if not isinstance(dtype, ClassLabel) or CLASS_NAMES_KEY not in metadata:
        return
    names = metadata[CLASS_NAMES_KEY]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SchemaError(
            f"metadata 'class_names' of ClassLabel column '{column}' must be a list of strings, "
            f"got {names!r}"
        )
    if len(set(names)) != len(names):
        raise SchemaError(
            f"metadata 'class_names' of ClassLabel column '{column}' must be unique: {names!r}"
        )
    if dtype.class_names is not None and names != dtype.class_names:
        raise SchemaError(
            f"ClassLabel column '{column}' has class names in its type ({dtype.class_names!r}); "
            f"metadata 'class_names' may not differ from them (got {names!r})"
        )


def with_column_metadata(dtype: Type, metadata: Mapping[str, Any]) -> Type:
    """The type a column reads, validates and queries as, given its column metadata.

    A ``ClassLabel`` without class names in its type takes them from the metadata key
    ``class_names`` (Deep Lake's place for them). Class names in the type win over the
    metadata (the two can only differ in datasets written before lakefmt refused that, see
    :func:`check_column_metadata`); a metadata value that is not a list of unique strings
    names no classes. Every other type is returned as is.
    """
    if not isinstance(dtype, ClassLabel) or dtype.class_names is not None:
        return dtype
    names = metadata.get(CLASS_NAMES_KEY)
    if (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        return dtype
    inner: Any = Array(dtype.dtype, dimensions=1) if dtype.multi_label else dtype.dtype
    return ClassLabel(inner, list(names))


def _mask(items: list[Any]) -> np.ndarray | None:
    nulls = np.array([v is None for v in items], dtype=bool)
    return nulls if nulls.any() else None


# -- sets of points: BoundingBox, Point, Polygon ----------------------------------------------


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
                isinstance(row, _NOT_A_ROW)
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


# -- masks -----------------------------------------------------------------------------------------


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
        if isinstance(value, _BYTES):
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
                if isinstance(v, _BYTES):
                    raise mismatch(column, i, f"(H, W) {self.dtype} masks (not bytes)", v)
                rows.append(None if v is None else self._mask(v, column, i))
            return as_extension(self, ragged_to_arrow(rows, 2, self.dtype))
        out: list[bytes | None] = []
        for i, v in enumerate(items):
            if v is None:
                out.append(None)
            elif isinstance(v, _BYTES):
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
        if isinstance(value, _BYTES):
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
                elif isinstance(v, _BYTES):
                    out.append(_png_mask_bytes(bytes(v), column, i))
                else:
                    mask = self._mask(v, column, i)
                    out.append(encode_image(mask.astype(np.uint8) * np.uint8(255), "png"))
            return as_extension(self, pa.array(out, type=pa.binary()))
        masks: list[np.ndarray | None] = []
        for i, v in enumerate(items):
            if isinstance(v, _BYTES):
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


# -- containers ---------------------------------------------------------------------------------


def _relabel(exc: LakefmtError, column: str) -> LakefmtError:
    cls = DecodeError if isinstance(exc, DecodeError) else TypeMismatchError
    return cls(str(exc)) if str(exc).startswith("column") else cls(f"column '{column}': {exc}")


@register_type
class Sequence(Type):
    """A list of values of ``inner`` type per row (e.g. the frames or captions of a clip).

    Rows are lists (or arrays, split along their first axis); ``None`` is a null row and a
    ``None`` item is a null item. Reads give, per row, the slice of what ``inner`` decodes
    to: a list for list-decoding types (text, images), an array for numeric ones.

    Args:
        inner: The item type (a lakefmt type or a type name such as ``"int32"``).
    """

    name: ClassVar[str] = "lakefmt.sequence"
    is_extension: ClassVar[bool] = True

    def __init__(self, inner: Any) -> None:
        self.inner = resolve_type(inner, column="<sequence item>")
        # media items make the sequence a media column (its own column group)
        self.is_media = self.inner.is_media

    def params(self) -> dict[str, Any]:
        """``inner``: the item type's JSON."""
        return {"inner": self.inner.to_json()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Sequence:
        """Rebuild from ``{"inner": {...}}``."""
        return cls(type_from_json(params["inner"]))

    def __repr__(self) -> str:
        return f"Sequence({self.inner!r})"

    @property
    def storage_type(self) -> pa.DataType:
        """``list<inner storage>``."""
        return pa.list_(self.inner.storage_type)

    def is_single(self, value: Any) -> bool:
        """A list of ``inner`` values (not all ``None``) is one row; a list of lists a batch."""
        if value is None:
            return True
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            return False
        if isinstance(value, np.ndarray):
            return value.ndim >= 1 and all(self.inner.is_single(v) for v in value[:1])
        if isinstance(value, (list, tuple)):
            present = [v for v in value if v is not None]  # all None: a batch of null rows
            return len(present) > 0 and all(self.inner.is_single(v) for v in present)
        return False

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Convert every item with ``inner`` and pack them per row.

        Raises:
            TypeMismatchError / DecodeError: A row that is not a list, or a bad item; the
                message names the row as ``column[row]`` and the item's position.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        items = to_items(values)
        flat: list[Any] = []
        lengths = np.zeros(len(items), dtype=np.int64)
        for i, row in enumerate(items):
            if row is None:
                continue
            if (
                isinstance(row, _NOT_A_ROW)
                or not hasattr(row, "__len__")
                or getattr(row, "ndim", 1) == 0  # a 0-d array has __len__ but no length
            ):
                raise mismatch(column, i, f"a list of {self.inner!r} values per row", row)
            row_items = list(row)
            flat.extend(row_items)
            lengths[i] = len(row_items)
        try:
            child = storage_of(self.inner.convert(flat, column=column))
        except (TypeMismatchError, DecodeError) as exc:
            self._locate(items, column)  # raises naming the row and item
            raise _relabel(exc, column) from exc
        array = pa.ListArray.from_arrays(_offsets(lengths), child, mask=validity(items))
        return as_extension(self, array)

    def _locate(self, items: list[Any], column: str) -> None:
        for i, row in enumerate(items):
            if row is not None:
                self.inner.convert(list(row), column=f"{column}[{i}]")

    def decode(self, array: pa.Array) -> list[Any]:
        """Per row, the decoded items (a list, or an array for numeric items)."""
        storage = storage_of(array)
        offsets = storage.offsets.to_numpy()
        base = int(offsets[0]) if len(offsets) else 0
        child = storage.values.slice(base, int(offsets[-1]) - base if len(offsets) else 0)
        decoded = self.inner.decode(self.inner.wrap(child))
        valid = storage.is_valid().to_numpy(zero_copy_only=False)
        return [
            decoded[offsets[i] - base : offsets[i + 1] - base] if valid[i] else None
            for i in range(len(storage))
        ]

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """One row's decoded items, or ``None``."""
        return self.decode(storage_of(array).slice(index, 1))[0]


@register_type
class Struct(Type):
    """Records with named fields of given types; appended and read as dicts.

    Missing keys are nulls; unknown keys raise ``TypeMismatchError``.

    Args:
        fields: ``{name: type}``, in order (lakefmt types or type names).
    """

    name: ClassVar[str] = "lakefmt.struct"
    is_extension: ClassVar[bool] = True

    def __init__(self, fields: Mapping[str, Any]) -> None:
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidTypeError("Struct takes a non-empty {name: type} mapping")
        self.fields: dict[str, Type] = {}
        for key, spec in fields.items():
            if not isinstance(key, str) or not key:
                raise InvalidTypeError(f"Struct field names must be non-empty strings, got {key!r}")
            self.fields[key] = resolve_type(spec, column=key)
        self.is_media = any(t.is_media for t in self.fields.values())

    def params(self) -> dict[str, Any]:
        """``fields``: a list of ``[name, type JSON]`` pairs (a list keeps the order)."""
        return {"fields": [[k, t.to_json()] for k, t in self.fields.items()]}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Struct:
        """Rebuild from ``{"fields": [[name, type JSON], ...]}``."""
        return cls({k: type_from_json(t) for k, t in params["fields"]})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {t!r}" for k, t in self.fields.items())
        return f"Struct({{{inner}}})"

    @property
    def storage_type(self) -> pa.DataType:
        """``struct<name: field storage, ...>``."""
        return pa.struct([(k, t.storage_type) for k, t in self.fields.items()])

    def is_single(self, value: Any) -> bool:
        """A dict (or ``None``) is one row."""
        return value is None or isinstance(value, Mapping)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Convert each field's values with its type and pack the records.

        Raises:
            TypeMismatchError: A row that is not a dict, an unknown key, a bad field value
                (named as ``column.field``).
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        items = to_items(values)
        columns: dict[str, list[Any]] = {k: [None] * len(items) for k in self.fields}
        for i, row in enumerate(items):
            if row is None:
                continue
            if not isinstance(row, Mapping):
                raise mismatch(column, i, f"dicts with keys {list(self.fields)}", row)
            for key, value in row.items():
                if key not in columns:
                    raise TypeMismatchError(
                        f"column '{column}' has no field {key!r} (row {i}); fields are "
                        f"{list(self.fields)}"
                    )
                columns[key][i] = value
        children = [
            storage_of(t.convert(columns[k], column=f"{column}.{k}"))
            for k, t in self.fields.items()
        ]
        struct = pa.StructArray.from_arrays(
            children,
            fields=[pa.field(k, t.storage_type) for k, t in self.fields.items()],
            mask=validity(items),
        )
        return as_extension(self, struct)

    def decode(self, array: pa.Array) -> list[dict[str, Any] | None]:
        """One dict per row (fields decoded by their types), ``None`` for nulls."""
        storage = storage_of(array)
        children = storage.flatten()
        decoded = {
            k: t.decode(t.wrap(child))
            for (k, t), child in zip(self.fields.items(), children, strict=True)
        }
        valid = storage.is_valid().to_numpy(zero_copy_only=False)
        return [
            {k: decoded[k][i] for k in self.fields} if valid[i] else None
            for i in range(len(storage))
        ]

    def decode_one(self, array: pa.Array, index: int) -> dict[str, Any] | None:
        """One record, or ``None``."""
        return self.decode(storage_of(array).slice(index, 1))[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, np.generic):  # longdouble, clongdouble: no Python equivalent
            raise TypeError(f"{type(value).__name__} has no JSON form")
        return item
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_NO_KEY = object()


def _non_string_key(value: Any) -> Any:
    """The first dict key inside ``value`` that is not a string, else ``_NO_KEY``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return key
            found = _non_string_key(item)
            if found is not _NO_KEY:
                return found
    elif isinstance(value, (list, tuple)):
        for item in value:
            found = _non_string_key(item)
            if found is not _NO_KEY:
                return found
    return _NO_KEY


@register_type
class Dict(Type):
    """Any JSON value per row (usually a dict), stored as JSON text; read back as Python.

    Numpy scalars and arrays are stored as JSON numbers and lists. ``None`` is a null row;
    NaN and infinity are refused (JSON has no such numbers). An Arrow ``string`` array
    given as input is taken as JSON text (and checked).
    """

    name: ClassVar[str] = "lakefmt.dict"
    is_extension: ClassVar[bool] = True

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``string``: JSON text."""
        return pa.string()

    def is_single(self, value: Any) -> bool:
        """Anything but a list, tuple or array is one row's value."""
        return not isinstance(value, (list, tuple, np.ndarray, pa.Array, pa.ChunkedArray))

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Serialise each value as JSON.

        Raises:
            TypeMismatchError: A value JSON cannot hold (bytes, objects, NaN), or invalid
                JSON text in Arrow string input.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            for i, text in enumerate(storage.to_pylist()):
                if text is not None:
                    try:
                        json.loads(text)
                    except ValueError as exc:
                        raise TypeMismatchError(
                            f"column '{column}' expects JSON text, got invalid JSON at row {i}: "
                            f"{exc}"
                        ) from exc
            return as_extension(self, storage)
        out: list[str | None] = []
        for i, value in enumerate(to_items(values)):
            if value is None:
                out.append(None)
                continue
            key = _non_string_key(value)
            if key is not _NO_KEY:
                # JSON would turn 1 into "1": the row would read back as another dict
                raise TypeMismatchError(
                    f"column '{column}' expects dicts with string keys (JSON objects), got key "
                    f"{key!r} of type {type(key).__name__} at row {i}"
                )
            try:
                out.append(
                    json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)
                )
            except (TypeError, ValueError) as exc:
                raise TypeMismatchError(
                    f"column '{column}' expects JSON-serialisable values, got "
                    f"{type(value).__name__} at row {i}: {exc}"
                ) from exc
        return as_extension(self, utf8_array(out, column))  # a lone surrogate: a clear error

    def decode(self, array: pa.Array) -> list[Any]:
        """Parse each row's JSON (``None`` for nulls)."""
        return [None if s is None else json.loads(s) for s in storage_of(array).to_pylist()]

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """Parse one row's JSON."""
        text = storage_of(array)[index].as_py()
        return None if text is None else json.loads(text)
