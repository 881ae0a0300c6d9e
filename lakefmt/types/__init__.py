"""lakefmt column types.

Scalars may also be given as strings (``"int32"``, ``"float64"``, ``"text"``, ``"bytes"``,
``"bool"``) or Python types (``int``, ``float``, ``str``, ``bytes``, ``bool``).

Multimodal and structured types (``Image``, ``Video``, ``Mesh``, ``Link``, ``Embedding``,
``Array``, ``ClassLabel``, ``BoundingBox``, ``SegmentMask``, ``BinaryMask``, ``Point``,
``Polygon``, ``Sequence``, ``Struct``, ``Dict``) are Arrow extension types named
``lakefmt.<type>``; importing this package registers them with pyarrow, so Parquet files
written by lakefmt read back typed. Their storage layouts are in ``spec/types.md``.

Index types (Deep Lake 4's names: ``EmbeddingIndex``, ``Clustered``, ``ClusteredQuantized``,
``PooledQuantized``, ``QuantizationType``, ``IndexType``, ``TextIndex``, ``BM25``,
``Inverted``, ``Exact``, ``NumericIndex``, ``JsonIndex``) are given as ``index_type`` to
``Embedding``, ``Text``, the numeric types and ``Dict``; see ``lakefmt.types.indexes``.
"""

from __future__ import annotations

from lakefmt.types.array import Array, Embedding
from lakefmt.types.base import Type, as_array
from lakefmt.types.containers import Dict, Sequence, Struct
from lakefmt.types.geometry import BoundingBox, Point, Polygon
from lakefmt.types.indexes import (
    BM25,
    Binary,
    Clustered,
    ClusteredQuantized,
    EmbeddingIndex,
    EmbeddingIndexEnumType,
    EmbeddingIndexType,
    Exact,
    IndexType,
    Inverted,
    JsonIndex,
    NumericIndex,
    NumericIndexEnumType,
    PooledQuantized,
    QuantizationType,
    TextIndex,
    TextIndexEnumType,
    TextIndexType,
)
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
    "BM25",
    "Binary",
    "BinaryMask",
    "Bool",
    "BoundingBox",
    "Bytes",
    "ClassLabel",
    "Clustered",
    "ClusteredQuantized",
    "Dict",
    "Embedding",
    "EmbeddingIndex",
    "EmbeddingIndexEnumType",
    "EmbeddingIndexType",
    "Exact",
    "Float16",
    "Float32",
    "Float64",
    "Image",
    "IndexType",
    "Inverted",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "JsonIndex",
    "Link",
    "Mesh",
    "Numeric",
    "NumericIndex",
    "NumericIndexEnumType",
    "Point",
    "Polygon",
    "PooledQuantized",
    "QuantizationType",
    "SegmentMask",
    "Sequence",
    "Struct",
    "Text",
    "TextIndex",
    "TextIndexEnumType",
    "TextIndexType",
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
