"""lakefmt column types.

Scalars may also be given as strings (``"int32"``, ``"float64"``, ``"text"``, ``"bytes"``,
``"bool"``) or Python types (``int``, ``float``, ``str``, ``bytes``, ``bool``).
"""

from __future__ import annotations

from lakefmt.types.base import Type
from lakefmt.types.registry import register_type, resolve_type, type_from_json
from lakefmt.types.scalars import (
    Bool,
    Bytes,
    Float16,
    Float32,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    Numeric,
    Text,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
)

__all__ = [
    "Bool",
    "Bytes",
    "Float16",
    "Float32",
    "Float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Numeric",
    "Text",
    "Type",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "register_type",
    "resolve_type",
    "type_from_json",
]
