"""Class labels: ``ClassLabel``, and the ``class_names`` column metadata Deep Lake keeps
class names under (checked against, and folded into, the column's type).

Storage layouts (see ``spec/types.md``):

==========================================  ===================================================
type                                        Arrow storage
==========================================  ===================================================
``ClassLabel(dtype)``                       ``dtype`` (an integer type)
``ClassLabel(Array(dtype, dimensions=1))``  ``list<dtype>`` (several labels per row)
==========================================  ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakefmt.errors import (
    InvalidTypeError,
    SchemaError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    ARROW_NUMERIC,
    INT_DTYPES,
    NOT_A_ROW,
    arrow_input,
    as_extension,
    cast_numeric,
    normalize_dtype,
    null_mask,
    ragged_from_arrow,
    ragged_to_arrow,
    storage_of,
    to_items,
)
from lakefmt.types.array import Array
from lakefmt.types.base import Type, mismatch
from lakefmt.types.registry import register_type

__all__ = [
    "ClassLabel",
    "check_column_metadata",
    "with_column_metadata",
    "CLASS_NAMES_KEY",
]


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
            array = pa.array(full.astype(self.dtype), mask=null_mask(items))
            return as_extension(self, array)
        rows: list[np.ndarray | None] = []
        for i, row in enumerate(items):
            if row is None:
                rows.append(None)
            elif (
                isinstance(row, NOT_A_ROW)
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
