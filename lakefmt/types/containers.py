"""Types holding other values: ``Sequence`` (a list of an inner type per row), ``Struct``
(named fields of their own types) and ``Dict`` (JSON objects).

Storage layouts (see ``spec/types.md``):

=====================================  ===================================================
type                                   Arrow storage
=====================================  ===================================================
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

from lakefmt.errors import (
    DecodeError,
    InvalidTypeError,
    LakefmtError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    NOT_A_ROW,
    _offsets,
    arrow_input,
    as_extension,
    storage_of,
    to_items,
    validity,
)
from lakefmt.types.base import Type, mismatch
from lakefmt.types.indexes import canonical_index_type
from lakefmt.types.registry import register_type, resolve_type, type_from_json
from lakefmt.types.scalars import utf8_array

__all__ = [
    "Dict",
    "Sequence",
    "Struct",
]


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
                isinstance(row, NOT_A_ROW)
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

    def __init__(self, index_type: Any = None) -> None:
        """``index_type``: a JSON lookup index to build: ``types.Inverted``,
        ``types.JsonIndex(path=...)``, ``"json"``, or ``None`` (no index). See
        :mod:`lakefmt.types.indexes`.

        Raises:
            InvalidTypeError: An index a Dict column does not take.
            InvalidArgumentError: A ``JsonIndex`` path that is not a JSON path.
        """
        #: The declared indexes in their canonical stored form, or ``None``.
        self.index_type = canonical_index_type(index_type, "json", "Dict")

    def params(self) -> dict[str, Any]:
        """``index_type`` when set."""
        return {"index_type": self.index_type} if self.index_type else {}

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
