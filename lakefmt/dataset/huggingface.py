"""Rows as a Hugging Face ``datasets.Dataset``: lakefmt types as ``datasets`` features.

``ds.to_huggingface()`` and ``lakefmt export --format huggingface`` both go through
:func:`hf_features` (the features of a schema) and :func:`hf_batch` (one Arrow batch of
lakefmt storage as the Arrow layout ``datasets`` expects for those features); the rows are
moved as Arrow arrays, never through Python objects.

Mapping (the inverse of ``lakefmt.from_huggingface``):

=============================================  ==============================================
lakefmt type                                   ``datasets`` feature
=============================================  ==============================================
numeric types, ``Text``, ``Bytes``             ``Value(dtype)``, ``Value("string")``,
                                               ``Value("binary")``
``Image``                                      ``Image()`` (the stored bytes, ``path`` null)
``ClassLabel`` with class names                ``ClassLabel(names=...)`` (int64)
multi-label ``ClassLabel``                     ``List(ClassLabel(names=...))``
``Array(shape=(n,))``, ``Embedding(n)``        ``List(Value(dtype), length=n)``
``Array(shape=(a, b[, c...]))``                ``Array2D`` ... ``Array5D``
``Array(dimensions=d)``                        ``d`` nested ``List(...)``
``Sequence(inner)``, ``Struct``                ``List(inner's feature)``, a dict of features
``Bytes`` imported from an ``Audio`` (etc.)    the original feature (kept in the column's
                                               ``huggingface`` metadata), bytes in ``bytes``
other types                                    the feature of their Arrow storage
=============================================  ==============================================
"""

from __future__ import annotations

import importlib
import math
import uuid
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakefmt.errors import MissingDependencyError, SchemaError
from lakefmt.types import (
    Array,
    Bytes,
    ClassLabel,
    Embedding,
    Image,
    Numeric,
    Sequence,
    Struct,
    Text,
    Type,
)

__all__ = [
    "HF_METADATA_KEY",
    "datasets_module",
    "hf_batch",
    "hf_features",
    "to_huggingface",
]

#: Column metadata key holding the ``datasets`` feature (``Features.to_dict()`` form) a
#: column was imported from, where its lakefmt type does not say it (``Audio``, ``Video``,
#: ``Pdf``... stored as ``Bytes``; ``Array2D`` with a dynamic first axis).
HF_METADATA_KEY = "huggingface"

_ARRAY_FEATURES = {2: "Array2D", 3: "Array3D", 4: "Array4D", 5: "Array5D"}


def datasets_module(caller: str) -> ModuleType:
    """Import Hugging Face ``datasets``, or raise a ``MissingDependencyError`` naming the extra."""
    try:
        return importlib.import_module("datasets")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{caller} needs Hugging Face datasets: pip install 'lakefmt[huggingface]'"
        ) from exc


def _is_media_feature(feature: Any) -> bool:
    """A feature stored as ``struct<bytes: binary, path: string>`` (Image, Audio, Video...)."""
    pa_type = getattr(feature, "pa_type", None)
    return (
        isinstance(pa_type, pa.StructType)
        and pa_type.num_fields == 2
        and pa_type.field(0).name == "bytes"
        and pa_type.field(1).name == "path"
    )


def _stored_feature(hf: ModuleType, column_type: Type, meta: Mapping[str, Any]) -> Any | None:
    """The feature recorded at import in the column's metadata, when it still fits the type."""
    stored = meta.get(HF_METADATA_KEY)
    if not isinstance(stored, Mapping) or "feature" not in stored:
        return None
    try:
        feature = hf.Features.from_dict({"f": stored["feature"]})["f"]
    except Exception:  # metadata edited by hand: fall back to the type's own feature
        return None
    if isinstance(column_type, Bytes) and _is_media_feature(feature):
        return feature
    if (
        isinstance(column_type, Array)
        and column_type.shape is None
        and type(feature).__name__ in _ARRAY_FEATURES.values()
        and len(feature.shape) == column_type.ndim
        and feature.dtype == column_type.dtype
    ):
        return feature
    return None


def _value_dtype(dtype: str) -> str:
    return "bool" if dtype == "bool" else dtype


def _feature_of_arrow(hf: ModuleType, arrow_type: pa.DataType, column: str) -> Any:
    """The feature of a plain Arrow type (the storage of types ``datasets`` has no name for)."""
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
    if pa.types.is_fixed_size_list(arrow_type):
        inner = _feature_of_arrow(hf, arrow_type.value_type, column)
        return hf.List(inner, length=arrow_type.list_size)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return hf.List(_feature_of_arrow(hf, arrow_type.value_type, column))
    if pa.types.is_struct(arrow_type):
        return {
            arrow_type.field(i).name: _feature_of_arrow(hf, arrow_type.field(i).type, column)
            for i in range(arrow_type.num_fields)
        }
    try:
        return hf.Value(str(arrow_type))
    except Exception as exc:  # datasets raises ValueError for types it has no Value for
        raise SchemaError(
            f"column '{column}' has Arrow type {arrow_type} that Hugging Face datasets has no "
            "feature for; export the other columns (columns=[...])"
        ) from exc


def hf_feature(hf: ModuleType, column_type: Type, meta: Mapping[str, Any], column: str) -> Any:
    """The ``datasets`` feature of one lakefmt column (see the module's table)."""
    stored = _stored_feature(hf, column_type, meta)
    if stored is not None:
        return stored
    if isinstance(column_type, Image):
        return hf.Image()
    if isinstance(column_type, ClassLabel):
        if column_type.class_names is None:  # datasets needs the names or their number
            inner = hf.Value("int64")
        else:
            inner = hf.ClassLabel(names=list(column_type.class_names))
        return hf.List(inner) if column_type.multi_label else inner
    if isinstance(column_type, Numeric):
        return hf.Value(_value_dtype(column_type.dtype))
    if isinstance(column_type, Text):
        return hf.Value("string")
    if isinstance(column_type, Bytes):
        return hf.Value("binary")
    if isinstance(column_type, Embedding):
        return hf.List(hf.Value(column_type.dtype), length=column_type.size)
    if isinstance(column_type, Array):
        if column_type.shape is not None:
            if len(column_type.shape) == 1:
                return hf.List(hf.Value(column_type.dtype), length=column_type.shape[0])
            if len(column_type.shape) in _ARRAY_FEATURES:
                feature_class = getattr(hf, _ARRAY_FEATURES[len(column_type.shape)])
                return feature_class(shape=column_type.shape, dtype=column_type.dtype)
        feature: Any = hf.Value(column_type.dtype)
        for _ in range(column_type.ndim):
            feature = hf.List(feature)
        return feature
    if isinstance(column_type, Sequence):
        return hf.List(hf_feature(hf, column_type.inner, {}, column))
    if isinstance(column_type, Struct):
        fields = column_type.fields
        return {name: hf_feature(hf, inner, {}, column) for name, inner in fields.items()}
    return _feature_of_arrow(hf, column_type.storage_type, column)


def hf_features(
    hf: ModuleType, schema: Mapping[str, Type], metadata: Mapping[str, Mapping[str, Any]]
) -> Any:
    """The ``datasets.Features`` of columns ``{name: type}`` with their column metadata."""
    return hf.Features(
        {name: hf_feature(hf, t, metadata.get(name, {}), name) for name, t in schema.items()}
    )


def _storage(array: pa.Array) -> pa.Array:
    return array.storage if isinstance(array.type, pa.ExtensionType) else array


def _media_struct(array: pa.Array) -> pa.Array:
    """``binary`` bytes as ``struct<bytes, path>`` with null paths (nulls stay null)."""
    data = _storage(array).cast(pa.binary())
    paths = pa.nulls(len(data), pa.string())
    return pa.StructArray.from_arrays(
        [data, paths], names=["bytes", "path"], mask=data.is_null() if data.null_count else None
    )


def _fixed_values(array: pa.Array, width: int) -> pa.Array:
    """All ``width`` values of every row of a fixed-size list array (null rows included)."""
    return array.values.slice(array.offset * width, len(array) * width)


def _nested_lists(array: pa.Array, shape: tuple[int, ...]) -> pa.Array:
    """A ``fixed_size_list[prod(shape)]`` array as ``len(shape)`` levels of ``list``."""
    values = _fixed_values(array, math.prod(shape))
    for size in reversed(shape[1:]):
        offsets = pa.array(np.arange(0, len(values) + 1, size, dtype=np.int32))
        values = pa.ListArray.from_arrays(offsets, values)
    offsets = pa.array(np.arange(0, len(values) + 1, shape[0], dtype=np.int32))
    mask = array.is_null() if array.null_count else None
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _to_feature_storage(array: pa.Array, feature: Any, target: pa.DataType) -> pa.Array:
    """One column of lakefmt storage as the Arrow array of ``feature`` (type ``target``)."""
    if isinstance(feature, dict):
        storage = _storage(array)
        children = [
            _to_feature_storage(storage.field(name), feature[name], target.field(name).type)
            for name in feature
        ]
        mask = storage.is_null() if storage.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if _is_media_feature(feature):
        return _media_struct(array)
    if isinstance(target, pa.ExtensionType):  # Array2D..5D: nested lists of the shape
        storage = _storage(array)
        if pa.types.is_fixed_size_list(storage.type):
            nested = _nested_lists(storage, tuple(feature.shape))
        else:
            nested = storage.cast(target.storage_type)
        return pa.ExtensionArray.from_storage(target, nested.cast(target.storage_type))
    storage = _storage(array)
    if (pa.types.is_list(target) or pa.types.is_large_list(target)) and type(feature).__name__ in (
        "List",
        "LargeList",
    ):
        inner_target = target.value_type
        if pa.types.is_fixed_size_list(storage.type):
            storage = storage.cast(pa.list_(storage.type.value_type))
        if isinstance(storage.type, (pa.ListType, pa.LargeListType)) and (
            _is_media_feature(feature.feature)
            or isinstance(feature.feature, dict)
            or isinstance(inner_target, pa.ExtensionType)
        ):
            # lists of media or structs: convert the values, keep the offsets
            values = _to_feature_storage(storage.flatten(), feature.feature, inner_target)
            offsets = storage.offsets
            if storage.offset:
                offsets = pc.subtract(offsets, offsets[0])
            mask = storage.is_null() if storage.null_count else None
            return type(storage).from_arrays(offsets, values, mask=mask).cast(target)
    return storage.cast(target)


def hf_batch(batch: pa.RecordBatch | pa.Table, features: Any) -> pa.Table:
    """One batch of lakefmt rows as an Arrow table with ``features``' schema."""
    schema = features.arrow_schema
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    columns = []
    for field in schema:
        column = table.column(field.name)
        chunks = [_to_feature_storage(c, features[field.name], field.type) for c in column.chunks]
        columns.append(pa.chunked_array(chunks, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def column_types(view: Any, columns: Any) -> tuple[dict[str, Type], dict[str, dict[str, Any]]]:
    """``{name: type}`` and ``{name: metadata}`` of a view's chosen columns."""
    schema = view.schema
    names = list(schema) if columns is None else list(columns)
    types = {name: schema[name] for name in names}
    metadata = {name: view[name].metadata.to_dict() for name in names}
    return types, metadata


def to_huggingface(view: Any, columns: Any = None) -> Any:
    """A ``datasets.Dataset`` (in memory) of a view's rows (``DatasetView.to_huggingface``)."""
    hf = datasets_module("to_huggingface()")
    types, metadata = column_types(view, columns)
    features = hf_features(hf, types, metadata)
    reader = view.to_batches(list(types))
    tables = [hf_batch(batch, features) for batch in reader]
    table = pa.concat_tables(tables) if tables else features.arrow_schema.empty_table()
    # a fingerprint of our own: datasets would otherwise hash every byte of the table (2 s for
    # 240 MB of images); a new one per call never matches a stale cache entry
    return hf.Dataset(table, info=hf.DatasetInfo(features=features), fingerprint=uuid.uuid4().hex)
