"""Numeric tensors: Embedding (fixed-size vectors) and Array (fixed shape or ragged).

Storage layouts (see ``spec/types.md``):

* ``Embedding(size, dtype)``: ``fixed_size_list<dtype>[size]``.
* ``Array(dtype, shape=s)``: ``fixed_size_list<dtype>[prod(s)]``, each row flattened in C
  (row-major) order, ``shape`` in the params. This is exactly the storage of Arrow's
  canonical ``arrow.fixed_shape_tensor`` extension (which lakefmt does not use as storage,
  because an extension type cannot be stored inside another).
* ``Array(dtype, dimensions=k)``: ``k`` levels of ``list<...<dtype>>``; every row is a
  rectangular ``k``-dimensional array, but rows may differ in shape.

Reads are numpy: fixed-shape columns give one ``(n, *shape)`` array that is a zero-copy view
of the Arrow buffer when there are no nulls (so it is read-only); ragged columns and columns
with nulls give a list of arrays (``None`` for nulls).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidTypeError, TypeMismatchError
from lakefmt.types._helpers import (
    ARROW_NUMERIC,
    arrow_input,
    as_extension,
    as_ndarray,
    fixed_from_arrow,
    fixed_one,
    fixed_to_arrow,
    normalize_dtype,
    ragged_from_arrow,
    ragged_to_arrow,
    storage_of,
    to_items,
)
from lakefmt.types.base import Type, _depth
from lakefmt.types.indexes import canonical_index_type
from lakefmt.types.registry import register_type

__all__ = ["Array", "Embedding"]

_EMBEDDING_DTYPES = ("float16", "float32", "float64", "int8", "uint8")


@register_type
class Embedding(Type):
    """Fixed-size vectors, e.g. model embeddings, for vector similarity in queries.

    Appended as an ``(n, size)`` array or a list of vectors (lists or 1-D arrays; ``None``
    for nulls); read as a 1-D array (one row) or an ``(n, size)`` array (several rows, a
    read-only, zero-copy view of the stored buffer when there are no nulls; a list with
    ``None`` for null rows otherwise).

    Args:
        size: Length of every vector (>= 1).
        dtype: ``"float32"`` (default), ``"float16"``, ``"float64"``, ``"int8"``, ``"uint8"``.
        index_type: The vector index to build: ``types.ClusteredQuantized`` (IVF lists of SQ8
            codes), ``types.Clustered`` (HNSW over float32), ``types.PooledQuantized``
            (IVF-PQ), an ``EmbeddingIndex(...)``, a ``QuantizationType``, a name
            (``"clustered_quantized"``...), a list of them, or ``None`` (no index). See
            :mod:`lakefmt.types.indexes`.

    Raises:
        InvalidTypeError: A bad size or dtype, or an index that is not an embedding index.
    """

    name: ClassVar[str] = "lakefmt.embedding"
    is_extension: ClassVar[bool] = True
    row_ndim = 1

    def __init__(self, size: int, dtype: str = "float32", index_type: Any = None) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise InvalidTypeError(f"Embedding size must be a positive integer, got {size!r}")
        self.size = int(size)
        self.dtype = normalize_dtype(dtype, _EMBEDDING_DTYPES)
        #: The declared indexes in their canonical stored form (see ``lakefmt.types.indexes``).
        self.index_type = canonical_index_type(index_type, "embedding", f"Embedding({size})")

    def params(self) -> dict[str, Any]:
        """``size``, ``dtype`` and ``index_type`` (when set)."""
        params: dict[str, Any] = {"size": self.size, "dtype": self.dtype}
        if self.index_type:
            params["index_type"] = self.index_type
        return params

    @property
    def storage_type(self) -> pa.DataType:
        """``fixed_size_list<dtype>[size]``."""
        return pa.list_(ARROW_NUMERIC[self.dtype], self.size)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check sizes and dtypes and pack the vectors (no per-row work for numpy input).

        Raises:
            TypeMismatchError: A vector of the wrong size, or non-numeric values.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            values = storage_of(values).to_pylist()
        expected = f"vectors of {self.size} {self.dtype} values"
        array = fixed_to_arrow(values, (self.size,), self.dtype, column=column, expected=expected)
        return as_extension(self, array)

    def decode(self, array: pa.Array) -> Any:
        """An ``(n, size)`` array (zero-copy without nulls), else a list with ``None``."""
        return fixed_from_arrow(array, (self.size,), self.dtype)

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """One vector (a zero-copy view), or ``None``."""
        return fixed_one(array, index, (self.size,))


@register_type
class Array(Type):
    """Numeric arrays: of one fixed ``shape``, or ragged with ``dimensions`` axes.

    Exactly one of ``shape`` and ``dimensions`` must be given. Each row is an array (or
    nested lists) with exactly that shape (fixed) or that number of dimensions (ragged);
    values are cast to ``dtype`` only when nothing is lost (integers in range, no float to
    int, only bools for bool).

    Args:
        dtype: Numeric dtype name (``"float32"``, ``"int64"``, ``"bool"``...).
        dimensions: Number of axes of each row, for rows of varying shape.
        shape: The shape of every row.
    """

    name: ClassVar[str] = "lakefmt.array"
    is_extension: ClassVar[bool] = True

    def __init__(
        self,
        dtype: str = "float32",
        dimensions: int | None = None,
        shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        if (dimensions is None) == (shape is None):
            raise InvalidTypeError(
                "Array takes exactly one of dimensions= (ragged) or shape= (fixed)"
            )
        self.dtype = normalize_dtype(dtype)
        self.shape: tuple[int, ...] | None = None
        self.dimensions: int | None = None
        if shape is not None:
            dims = tuple(shape) if not isinstance(shape, int) else (shape,)
            if not dims or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims
            ):
                # Arrow cannot write fixed_size_list[0] to Parquet; use dimensions= for
                # rows that may be empty
                raise InvalidTypeError(
                    f"Array shape must be a tuple of positive ints, got {shape!r}"
                )
            self.shape = tuple(int(d) for d in dims)
        else:
            if (
                isinstance(dimensions, bool)
                or not isinstance(dimensions, (int, np.integer))
                or (dimensions < 1)
            ):
                raise InvalidTypeError(
                    f"Array dimensions must be a positive integer, got {dimensions!r}"
                )
            self.dimensions = int(dimensions)

    @property
    def ndim(self) -> int:
        """Number of axes of each row."""
        return len(self.shape) if self.shape is not None else int(self.dimensions or 0)

    def params(self) -> dict[str, Any]:
        """``dtype`` and ``shape`` (a list) or ``dimensions``."""
        if self.shape is not None:
            return {"dtype": self.dtype, "shape": list(self.shape)}
        return {"dtype": self.dtype, "dimensions": self.dimensions}

    @property
    def storage_type(self) -> pa.DataType:
        """``fixed_size_list<dtype>[prod(shape)]``, or ``dimensions`` levels of ``list``."""
        value_type = ARROW_NUMERIC[self.dtype]
        if self.shape is not None:
            return pa.list_(value_type, math.prod(self.shape))
        storage = value_type
        for _ in range(self.ndim):
            storage = pa.list_(storage)
        return storage

    def is_single(self, value: Any) -> bool:
        """An array (or nested lists) with the row's number of dimensions is one row."""
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            return False
        if isinstance(value, np.ndarray):
            return value.ndim == self.ndim
        if isinstance(value, (list, tuple)):
            return len(value) > 0 and _depth(value) == self.ndim
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return len(value.shape) == self.ndim
        return True

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check each row's shape (or dimensions) and dtype, and pack the rows.

        Raises:
            TypeMismatchError: A row of the wrong shape, dimensions or dtype.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            return as_extension(self, storage)
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            values = storage_of(values).to_pylist()
        if self.shape is not None:
            expected = f"{self.dtype} arrays of shape {self.shape}"
            return as_extension(
                self,
                fixed_to_arrow(values, self.shape, self.dtype, column=column, expected=expected),
            )
        expected = f"{self.ndim}-dimensional {self.dtype} arrays"
        rows: list[np.ndarray | None] = []
        for i, item in enumerate(to_items(values)):
            if item is None:
                rows.append(None)
                continue
            array = as_ndarray(item, self.dtype, column=column, row=i, expected=expected)
            if array.ndim != self.ndim:
                raise TypeMismatchError(
                    f"column '{column}' expects {expected}; got shape {array.shape} at row {i}"
                )
            rows.append(array)
        return as_extension(self, ragged_to_arrow(rows, self.ndim, self.dtype))

    def decode(self, array: pa.Array) -> Any:
        """Fixed: an ``(n, *shape)`` array (list with ``None`` if nulls); ragged: a list."""
        if self.shape is not None:
            return fixed_from_arrow(array, self.shape, self.dtype)
        return ragged_from_arrow(array, self.ndim)

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """One row's array, or ``None``."""
        if self.shape is not None:
            return fixed_one(array, index, self.shape)
        return ragged_from_arrow(storage_of(array).slice(index, 1), self.ndim)[0]
