"""Column defaults in the manifest: one cell of the column, as JSON (``spec/format.md`` 6.2.3).

A field's ``default`` is written in one of two encodings, named by its ``default_encoding``:

* **2** (format version 2): the *stored cell*. The user's value is converted like an appended
  value, and the resulting cell of the column's Arrow storage type is written as JSON
  directed by that type (integers and booleans as themselves, floats as numbers or
  ``"NaN"``/``"Infinity"``/``"-Infinity"``, strings as strings, binary as base64 strings,
  lists as arrays, structs as objects keyed by field name). The type decides how the JSON is
  read, so no value is ambiguous and every cell the column can hold round-trips.
* **1** (format version 1): the user's value itself, bytes and non-finite floats at the top
  level as ``{"$base64": ...}`` / ``{"$float": ...}``, read by converting it again. Kept for
  manifests written in format version 1 (and for a default that could not be re-encoded).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import pyarrow as pa

from lakefmt.errors import FormatError, LakefmtError
from lakefmt.format.manifest import Field
from lakefmt.types import Type, type_from_json
from lakefmt.types.base import as_array

#: The encoding new defaults are written in.
DEFAULT_ENCODING = 2

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_default(value: Any, column_type: Type, *, column: str) -> Any:
    """The JSON of ``value`` as the default of a column of ``column_type`` (encoding 2).

    Raises:
        TypeMismatchError: ``value`` does not fit the column (as an appended value would not).
        DecodeError: ``value`` is corrupt media bytes.
    """
    cell = as_array(column_type.convert([value], column=column))
    return encode_cell(_storage(cell).to_pylist()[0], column_type.storage_type)


def encode_cell(value: Any, arrow_type: pa.DataType) -> Any:
    """JSON of one Python value (as pyarrow's ``to_pylist`` gives it) of ``arrow_type``."""
    if value is None:
        return None
    if pa.types.is_floating(arrow_type):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if _is_binary(arrow_type):
        return base64.b64encode(bytes(value)).decode("ascii")
    if _is_list(arrow_type):
        return [encode_cell(item, arrow_type.value_type) for item in value]
    if pa.types.is_struct(arrow_type):
        return {
            child.name: encode_cell(value[child.name], child.type)
            for child in (arrow_type.field(i) for i in range(arrow_type.num_fields))
        }
    return value  # bool, integers, strings: JSON holds them exactly


def decode_cell(data: Any, arrow_type: pa.DataType, *, where: str) -> Any:
    """Inverse of :func:`encode_cell`: the Python value for ``pa.array([value], arrow_type)``.

    Raises:
        FormatError: ``data`` is not a valid encoding of a value of ``arrow_type``.
    """
    if data is None:
        return None

    def bad(expected: str) -> FormatError:
        shown = repr(data) if len(repr(data)) <= 80 else repr(data)[:77] + "..."
        return FormatError(f"{where}: expected {expected} for Arrow type {arrow_type}, got {shown}")

    if pa.types.is_boolean(arrow_type):
        if not isinstance(data, bool):
            raise bad("true or false")
        return data
    if pa.types.is_integer(arrow_type):
        if not isinstance(data, int) or isinstance(data, bool):
            raise bad("an integer")
        return data
    if pa.types.is_floating(arrow_type):
        if isinstance(data, str) and data in _NON_FINITE:
            return _NON_FINITE[data]
        if not isinstance(data, (int, float)) or isinstance(data, bool):
            raise bad('a number, "NaN", "Infinity" or "-Infinity"')
        return float(data)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if not isinstance(data, str):
            raise bad("a string")
        return data
    if _is_binary(arrow_type):
        if not isinstance(data, str):
            raise bad("a base64 string")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise bad("a base64 string") from None
    if _is_list(arrow_type):
        size = getattr(arrow_type, "list_size", None)
        if not isinstance(data, list) or (size is not None and len(data) != size):
            raise bad("an array" if size is None else f"an array of {size} items")
        return [decode_cell(item, arrow_type.value_type, where=where) for item in data]
    if pa.types.is_struct(arrow_type):
        names = [arrow_type.field(i).name for i in range(arrow_type.num_fields)]
        if not isinstance(data, dict) or sorted(data) != sorted(names):
            raise bad(f"an object with exactly the members {names}")
        return {
            name: decode_cell(data[name], arrow_type.field(name).type, where=where)
            for name in names
        }
    raise FormatError(f"{where}: defaults of Arrow type {arrow_type} are not supported")


def decode_v1(data: Any) -> Any:
    """The user value of a format-version-1 default (only top-level sentinels are special)."""
    if isinstance(data, dict) and set(data) == {"$base64"}:
        return base64.b64decode(data["$base64"])
    if isinstance(data, dict) and set(data) == {"$float"}:
        return float(data["$float"])
    return data


def default_cell(field: Field, column_type: Type) -> pa.Array | None:
    """The field's default as a one-element array of ``column_type.arrow_type``, or ``None``
    when the field has no default.

    Raises:
        FormatError: The manifest's default is malformed (encoding 2).
        TypeMismatchError: A format-1 default the column's type does not accept (reads of
            such a column failed in format version 1 too).
    """
    if not field.has_default:
        return None
    if field.default_encoding == 1:
        value = decode_v1(field.default)
        if value is None:
            return pa.nulls(1, column_type.arrow_type)
        return as_array(column_type.convert([value], column=field.name))
    where = f"default of column '{field.name}'"
    value = decode_cell(field.default, column_type.storage_type, where=where)
    try:
        storage = pa.array([value], type=column_type.storage_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: {field.default!r} does not fit the column: {exc}") from exc
    return column_type.wrap(storage)


def upgraded(field: Field, column_type: Type) -> Field:
    """``field`` with a format-1 default re-encoded in encoding 2 (the same cell).

    A format-1 default that its column's type refuses (which no read could use) is kept as
    it is, still marked as encoding 1, so reads keep failing as they did rather than
    silently reading something else.
    """
    if field.default_encoding == DEFAULT_ENCODING:
        return field
    if not field.has_default:
        return field.model_copy(update={"default_encoding": DEFAULT_ENCODING})
    try:
        cell = default_cell(field, column_type)
    except LakefmtError:
        return field
    assert cell is not None
    encoded = encode_cell(_storage(cell).to_pylist()[0], column_type.storage_type)
    return field.model_copy(update={"default": encoded, "default_encoding": DEFAULT_ENCODING})


def upgraded_fields(fields: list[Field]) -> list[Field]:
    """``fields`` with every format-1 default re-encoded (see :func:`upgraded`), for a
    manifest written in the current format version."""
    if all(f.default_encoding == DEFAULT_ENCODING for f in fields):
        return fields
    out = []
    for field in fields:
        try:
            column_type = type_from_json(field.type)
        except LakefmtError:  # a type this lakefmt does not know: its default stays as is
            out.append(field)
            continue
        out.append(upgraded(field, column_type))
    return out


def _storage(array: pa.Array) -> pa.Array:
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def _is_binary(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
    )


def _is_list(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    )
