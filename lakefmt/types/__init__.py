"""lakefmt column types.

Scalars may also be given as strings (``"int32"``, ``"float64"``, ``"text"``, ``"bytes"``,
``"bool"``) or Python types (``int``, ``float``, ``str``, ``bytes``, ``bool``).

Multimodal and structured types (``Image``, ``Video``, ``Mesh``, ``Link``, ``Embedding``,
``Array``, ``ClassLabel``, ``BoundingBox``, ``SegmentMask``, ``BinaryMask``, ``Point``,
``Polygon``, ``Sequence``, ``Struct``, ``Dict``) are Arrow extension types named
``lakefmt.<type>``; importing this package registers them with pyarrow, so Parquet files
written by lakefmt read back typed. Their storage layouts are in ``spec/types.md``.
"""

from __future__ import annotations

from lakefmt.types.array import Array, Embedding
from lakefmt.types.base import Type, as_array
from lakefmt.types.containers import Dict, Sequence, Struct
from lakefmt.types.geometry import BoundingBox, Point, Polygon
from lakefmt.types.labels import ClassLabel, check_column_metadata, with_column_metadata
from lakefmt.types.link import Link, link_credentials
from lakefmt.types.masks import BinaryMask, SegmentMask
from lakefmt.types.media import Image, Mesh, Video, VideoClip
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
    "as_array",
    "Array",
    "BinaryMask",
    "Bool",
    "BoundingBox",
    "Bytes",
    "ClassLabel",
    "Dict",
    "Embedding",
    "Float16",
    "Float32",
    "Float64",
    "Image",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Link",
    "Mesh",
    "Numeric",
    "Point",
    "Polygon",
    "SegmentMask",
    "Sequence",
    "Struct",
    "Text",
    "Type",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Video",
    "VideoClip",
    "link_credentials",
    "register_type",
    "resolve_type",
    "type_from_json",
    "check_column_metadata",
    "with_column_metadata",
]
