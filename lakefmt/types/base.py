"""The lakefmt type model: what a column holds, how user input becomes Arrow, and back.

Each type has a stable on-disk ``name`` (``"int32"``, ``"text"``, ``"lakefmt.image"``) and
JSON ``params``; the manifest stores both (``to_json``), and
:func:`lakefmt.types.registry.type_from_json` rebuilds the type. Multimodal types are Arrow
extension types over a plain storage type, so a reader without lakefmt still sees ordinary
Parquet columns.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.errors import TypeMismatchError
from lakefmt.types.extension import extension_type_for


def as_array(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array; a chunked array of a single chunk gives that chunk without a
    copy (pyarrow's ``combine_chunks`` copies even then)."""
    if isinstance(array, pa.ChunkedArray):
        return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    return array


class Type(abc.ABC):
    """A column type.

    Subclasses set ``name`` and implement ``storage_type``, ``convert`` and ``decode``; they
    override ``params`` and ``from_params`` when they take parameters.
    """

    name: ClassVar[str]
    #: Extension types read back as their own arrays; scalars are plain Arrow.
    is_extension: ClassVar[bool] = False
    #: Media types hold large values: written without compression, row groups sized by bytes.
    #: (an instance attribute: a Sequence or Struct is media when its items are)
    is_media: bool = False

    def params(self) -> dict[str, Any]:
        """Return the JSON parameters that, with ``name``, rebuild this type."""
        return {}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Type:
        """Rebuild a type from its JSON parameters (the inverse of :meth:`params`)."""
        return cls(**params)

    @property
    @abc.abstractmethod
    def storage_type(self) -> pa.DataType:
        """The plain Arrow type stored in Parquet."""

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of arrays of this column (an extension type for multimodal types)."""
        if self.is_extension:
            return extension_type_for(self)
        return self.storage_type

    def to_json(self) -> dict[str, Any]:
        """Return ``{"name": ..., "params": {...}}`` for the manifest."""
        params = self.params()
        return {"name": self.name, "params": params} if params else {"name": self.name}

    @abc.abstractmethod
    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Turn user values for several rows into an array of ``arrow_type``.

        ``None`` becomes null. Raises ``TypeMismatchError`` (or ``DecodeError`` for bad media
        bytes) naming ``column`` and the row at fault.
        """

    @abc.abstractmethod
    def decode(self, array: pa.Array) -> Any:
        """Turn an array of this column into what users read (numpy array or list)."""

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """Return the user value of one element of ``array``."""
        decoded = self.decode(array.slice(index, 1))
        return decoded[0]

    #: Dimensions of one value as users give it (0: scalar, 1: vector, 3: HxWxC image...);
    #: lets ``append({"col": value})`` tell one row from a batch of rows.
    #: (an instance attribute: a multi-label ClassLabel's rows are 1-D)
    row_ndim: int = 0

    def is_single(self, value: Any) -> bool:
        """Whether ``value`` is one row's value rather than a batch of values."""
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            return False
        if isinstance(value, np.ndarray):
            return value.ndim == self.row_ndim
        if isinstance(value, (list, tuple)):
            # an empty list is zero rows; a None item is a null row, so a list holding one is
            # a batch
            return (
                self.row_ndim > 0
                and len(value) > 0
                and _depth(value) == self.row_ndim
                and not any(v is None for v in value)
            )
        if hasattr(value, "__array__") and hasattr(value, "dtype") and hasattr(value, "shape"):
            return len(value.shape) == self.row_ndim  # pandas Series, torch tensors
        return True

    def wrap(self, storage: pa.Array) -> pa.Array:
        """View a storage-typed array (e.g. from DuckDB) as this column's ``arrow_type``."""
        if isinstance(storage, pa.ChunkedArray):
            storage = as_array(storage)
        if self.is_extension:
            if isinstance(storage, pa.ExtensionArray):
                return storage
            if storage.type != self.storage_type:
                storage = storage.cast(self.storage_type)
            return pa.ExtensionArray.from_storage(self.arrow_type, storage)
        return storage if storage.type == self.storage_type else storage.cast(self.storage_type)

    def repeat(self, value: Any, count: int, *, column: str) -> pa.Array:
        """Return ``count`` copies of ``value`` (``None``: nulls), e.g. a default value."""
        if value is None:
            return pa.nulls(count, self.arrow_type)
        one = self.convert([value], column=column)
        if count == 0:
            return one.slice(0, 0)
        return (
            pa.concat_arrays([one] * count)
            if count < 16
            else one.take(pa.array(np.zeros(count, dtype=np.int64)))
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.name, repr(sorted(self.params().items()))))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def __str__(self) -> str:
        return repr(self)


def mismatch(column: str, row: int | None, expected: str, value: Any) -> TypeMismatchError:
    """Build the standard error for a value that does not fit its column."""
    where = f" at row {row}" if row is not None else ""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return TypeMismatchError(
        f"column '{column}' expects {expected}, got {type(value).__name__} {shown}{where}"
    )


def as_list(values: Any) -> list[Any]:
    """Return ``values`` as a Python list (numpy arrays, Arrow arrays, tuples, iterables)."""
    if isinstance(values, list):
        return values
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if isinstance(values, np.ndarray):
        return values.tolist() if values.ndim == 1 else list(values)
    return list(values)


def _depth(value: Any) -> int:
    """Nesting depth of lists/tuples/arrays (a list of numbers has depth 1)."""
    depth = 0
    while isinstance(value, (list, tuple, np.ndarray)):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            break  # a 0-d array is a scalar
        depth += 1
        if len(value) == 0:
            break
        value = value[0]
    return depth
