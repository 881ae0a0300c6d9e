"""Hugging Face ``datasets`` in and out: ``from_huggingface`` and its Parquet export.

The import streams the source's Arrow batches (``with_format("arrow").iter``), so an
``IterableDataset`` is read one batch at a time and never held whole. Features map to
lakefmt types (the inverse of :mod:`lakefmt.dataset.huggingface`):

=================================================  ===========================================
``datasets`` feature                               lakefmt type
=================================================  ===========================================
``Value`` (numbers, bool, string, binary)          the scalar type
``Image``                                          ``Image`` of the files' format (sniffed from
                                                   the first batch), the bytes as they are;
                                                   images given as paths are read as bytes
``ClassLabel``                                     ``ClassLabel("int64", names)``; ``-1`` (no
                                                   label) becomes a null
``List(Value)`` (nested ``d`` deep)                ``Array(dtype, dimensions=d)``
``List(Value(float), length=n)``                   ``Embedding(n)``; of ints ``Array(shape=(n,))``
``List(ClassLabel)``                               multi-label ``ClassLabel``
``List(other)``, a dict of features                ``Sequence(...)``, ``Struct({...})``
``Array2D`` ... ``Array5D``                        ``Array(dtype, shape)`` (a dynamic first
                                                   axis: ``Array(dtype, dimensions=n)``)
``Audio``, ``Video``, ``Pdf`` and other file       ``Bytes``: the encoded file, the feature
features (``struct<bytes, path>``)                 (with e.g. ``sampling_rate``) in the
                                                   column's ``huggingface`` metadata
=================================================  ===========================================

Anything else (``Translation``, ``Json``, timestamps...) raises ``SchemaError``; pass
``schema={column: type}`` to choose a type, which then receives the column's Arrow storage
(file features as their bytes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakefmt import types
from lakefmt._progress import Progress
from lakefmt.dataset import Dataset, DatasetView
from lakefmt.dataset.huggingface import (
    HF_METADATA_KEY,
    column_types,
    datasets_module,
    hf_batch,
    hf_features,
)
from lakefmt.errors import DecodeError, InvalidArgumentError, SchemaError
from lakefmt.integrations.exporters import (
    EXPORT_BATCH_ROWS,
    check_max_rows_per_file,
    write_parquet,
)
from lakefmt.integrations.importers import _check_batch_size, _importing, _reading
from lakefmt.types import resolve_type

__all__ = ["from_huggingface", "to_huggingface_parquet"]

#: Rows per batch read from the source (images make rows large: 1,000 of 100 KB is 100 MB).
HF_IMPORT_BATCH_ROWS = 1_000
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_ARRAY_FEATURES = ("Array2D", "Array3D", "Array4D", "Array5D")


def _kind(feature: Any) -> str:
    return type(feature).__name__


def _is_file_feature(feature: Any) -> bool:
    pa_type = getattr(feature, "pa_type", None)
    return isinstance(pa_type, pa.StructType) and [
        pa_type.field(i).name for i in range(pa_type.num_fields)
    ] == ["bytes", "path"]


def _read_file(path: str) -> bytes:
    import fsspec

    with _reading(path, "media"), fsspec.open(path, "rb") as f:
        return bytes(f.read())


def _file_bytes(array: pa.Array) -> pa.Array:
    """``struct<bytes, path>`` values as ``binary``: the bytes, or the file at ``path``."""
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return array.cast(pa.binary())
    data = array.field("bytes")
    paths = array.field("path")
    if array.null_count:
        data = pc.if_else(array.is_null(), pa.scalar(None, data.type), data)
    need = pc.and_(pc.is_null(data), pc.is_valid(paths))
    need = pc.and_(need, array.is_valid())
    if pc.any(need).as_py():  # images given as paths: read each file once, as bytes
        values = data.to_pylist()
        for i in np.flatnonzero(need.to_numpy(zero_copy_only=False)):
            values[i] = _read_file(paths[int(i)].as_py())
        return pa.array(values, type=pa.binary())
    return data.cast(pa.binary())


def _image_format(data: bytes) -> str | None:
    return next((fmt for magic, fmt in _IMAGE_MAGIC if data.startswith(magic)), None)


def _image_type(sample: pa.Array | None, column: str) -> types.Type:
    """``Image`` in the format of the first image of the sample (PNG if it has none)."""
    if sample is not None:
        data = _file_bytes(sample)
        first = next((v for v in data.to_pylist() if v is not None), None)
        if first is not None:
            fmt = _image_format(first)
            if fmt is None:
                raise SchemaError(
                    f"column '{column}' holds images that are not JPEG, PNG or TIFF (first bytes "
                    f"{first[:8]!r}); pass schema={{'{column}': 'bytes'}} to keep them as bytes"
                )
            return types.Image("uint8", fmt)
    return types.Image("uint8", "png")


def _numeric_dtype(feature: Any) -> str | None:
    if _kind(feature) != "Value":
        return None
    dtype = str(feature.dtype)
    return dtype if dtype in types.scalars.NUMERIC_DTYPES else None


def _list_values(array: pa.Array | None) -> pa.Array | None:
    if array is None:
        return None
    storage = array.storage if isinstance(array.type, pa.ExtensionType) else array
    return (
        storage.flatten()
        if pa.types.is_list(storage.type)
        or pa.types.is_large_list(storage.type)
        or pa.types.is_fixed_size_list(storage.type)
        else None
    )


def lakefmt_type(feature: Any, sample: pa.Array | None, column: str) -> types.Type:
    """The lakefmt type of a ``datasets`` feature (see the module's table).

    ``sample``, the column's first Arrow batch, gives the format of image columns.

    Raises:
        SchemaError: A feature with no lakefmt type (pass ``schema=`` to choose one).
    """
    kind = _kind(feature)
    if isinstance(feature, dict):
        return types.Struct(
            {
                name: lakefmt_type(
                    inner, None if sample is None else _struct_field(sample, name), column
                )
                for name, inner in feature.items()
            }
        )
    if kind == "Value":
        dtype = str(feature.dtype)
        if dtype in types.scalars.NUMERIC_DTYPES:
            return types.Numeric(dtype)
        if dtype in ("string", "large_string"):
            return types.Text()
        if dtype in ("binary", "large_binary"):
            return types.Bytes()
    elif kind == "ClassLabel":
        return types.ClassLabel("int64", class_names=list(feature.names))
    elif kind == "Image":
        return _image_type(sample, column)
    elif _is_file_feature(feature):
        return types.Bytes()
    elif kind in _ARRAY_FEATURES:
        shape = tuple(feature.shape)
        if shape[0] is None:
            return types.Array(feature.dtype, dimensions=len(shape))
        return types.Array(feature.dtype, shape=shape)
    elif kind in ("List", "LargeList"):
        inner = feature.feature
        length = getattr(feature, "length", -1)
        length = -1 if length is None else length
        if _kind(inner) == "ClassLabel" and length == -1:
            return types.ClassLabel(
                types.Array("int64", dimensions=1), class_names=list(inner.names)
            )
        item_dtype = _numeric_dtype(inner)
        if item_dtype is not None and length > 0:
            if item_dtype.startswith("float"):
                return types.Embedding(length, dtype=item_dtype)
            return types.Array(item_dtype, shape=(length,))
        depth, deepest = 1, inner
        while _kind(deepest) in ("List", "LargeList") and getattr(deepest, "length", -1) in (
            -1,
            None,
        ):
            depth, deepest = depth + 1, deepest.feature
        deep_dtype = _numeric_dtype(deepest)
        if length == -1 and deep_dtype is not None:
            return types.Array(deep_dtype, dimensions=depth)
        return types.Sequence(lakefmt_type(inner, _list_values(sample), column))
    raise SchemaError(
        f"column '{column}' has the Hugging Face feature {feature!r}, which lakefmt has no "
        f"type for; cast it in datasets first (hf_dataset.cast_column) or pass "
        f"schema={{'{column}': type}}"
    )


def _struct_field(array: pa.Array, name: str) -> pa.Array:
    storage = array.storage if isinstance(array.type, pa.ExtensionType) else array
    return storage.field(name)


def _fill_null_rows(storage: pa.Array, shape: tuple[int, ...], dtype: pa.DataType) -> pa.Array:
    """Flat values of nested lists of a fixed shape, null rows as zeros (they stay masked)."""
    values = storage
    for _ in shape:
        values = values.flatten()
    if not storage.null_count:
        return values
    width = int(np.prod(shape))
    valid = storage.is_valid().to_numpy(zero_copy_only=False)
    out = np.zeros(len(storage) * width, dtype=dtype.to_pandas_dtype())
    where = np.repeat(valid, width)
    out[where] = values.to_numpy(zero_copy_only=False)
    return pa.array(out, type=dtype)


def to_lakefmt_storage(array: pa.Array, feature: Any, target: types.Type) -> pa.Array:
    """One column of a ``datasets`` Arrow batch as the storage of lakefmt type ``target``."""
    storage = array.storage if isinstance(array.type, pa.ExtensionType) else array
    if _is_file_feature(feature):
        return _file_bytes(storage)
    if isinstance(target, types.Struct) and isinstance(feature, dict):
        children = [
            to_lakefmt_storage(storage.field(name), feature[name], inner)
            for name, inner in target.fields.items()
        ]
        mask = storage.is_null() if storage.null_count else None
        return pa.StructArray.from_arrays(children, names=list(target.fields), mask=mask)
    if isinstance(target, types.ClassLabel) and not target.multi_label:
        labels = storage.cast(pa.int64())
        # datasets' "no label" (test splits): a null, as lakefmt labels are 0..n-1
        return pc.if_else(pc.equal(labels, -1), pa.scalar(None, pa.int64()), labels)
    if isinstance(target, types.Array) and target.shape is not None and len(target.shape) > 1:
        value_type = target.storage_type.value_type
        values = _fill_null_rows(storage, target.shape, value_type)
        mask = storage.is_null() if storage.null_count else None
        return pa.FixedSizeListArray.from_arrays(
            values.cast(value_type), int(np.prod(target.shape)), mask=mask
        )
    if isinstance(target, types.Sequence) and _kind(feature) in ("List", "LargeList"):
        values = to_lakefmt_storage(storage.flatten(), feature.feature, target.inner)
        offsets = storage.offsets
        if storage.offset:
            offsets = pc.subtract(offsets, offsets[0])
        mask = storage.is_null() if storage.null_count else None
        return pa.ListArray.from_arrays(offsets.cast(pa.int32()), values, mask=mask)
    return storage.cast(target.storage_type)


def _arrow_batches(hf_dataset: Any, batch_size: int) -> Iterator[pa.Table]:
    """The source's rows as Arrow tables of at most ``batch_size`` rows, nothing decoded."""
    for table in hf_dataset.with_format("arrow").iter(batch_size=batch_size):
        yield table if isinstance(table, pa.Table) else pa.table(table)


def _check_source(hf: Any, hf_dataset: Any) -> None:
    if isinstance(hf_dataset, (hf.DatasetDict, hf.IterableDatasetDict)):
        splits = list(hf_dataset)
        raise InvalidArgumentError(
            f"from_huggingface takes one split of a DatasetDict; this one has splits {splits}: "
            f"pass e.g. hf_dataset[{splits[0]!r}]"
            if splits
            else "from_huggingface takes one split of a DatasetDict; this one has no splits"
        )
    if not isinstance(hf_dataset, (hf.Dataset, hf.IterableDataset)):
        raise InvalidArgumentError(
            "from_huggingface takes a datasets.Dataset or IterableDataset, not "
            f"{type(hf_dataset).__name__}"
        )


def from_huggingface(
    hf_dataset: Any,
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    batch_size: int = HF_IMPORT_BATCH_ROWS,
    progress: bool | None = None,
) -> Dataset:
    """Import a Hugging Face ``datasets.Dataset`` or ``IterableDataset`` into ``dst``.

    Rows stream ``batch_size`` at a time as Arrow (nothing is decoded: image and audio
    bytes go in as they are, images given as paths are read as bytes), so a streaming
    ``IterableDataset`` imports in bounded memory. Features map as in this module's table;
    ``schema={column: type}`` overrides a column's type. Columns imported from ``Audio``,
    ``Video`` and other file features are ``Bytes`` that keep the feature (e.g. its
    ``sampling_rate``) in the column metadata ``huggingface``, so
    :meth:`~lakefmt.DatasetView.to_huggingface` gives the feature back.

    Raises:
        InvalidArgumentError: A ``DatasetDict`` (pass one split) or another object.
        SchemaError: A feature without a lakefmt type and no ``schema`` override for it.
        MissingDependencyError: ``datasets`` is not installed (``lakefmt[huggingface]``).
    """
    hf = datasets_module("from_huggingface()")
    _check_source(hf, hf_dataset)
    _check_batch_size(batch_size)
    overrides = dict(schema or {})
    batches = _arrow_batches(hf_dataset, batch_size)
    first = next(batches, None)
    features = hf_dataset.features
    if features is None:  # a streaming source of unknown features: those of its first batch
        if first is None:
            raise SchemaError("the IterableDataset has no features and no rows to infer them from")
        features = hf.Features.from_arrow_schema(first.schema)
    unknown = set(overrides) - set(features)
    if unknown:
        raise SchemaError(f"schema overrides name column(s) {sorted(unknown)} the source lacks")
    columns: dict[str, types.Type] = {}
    for name, feature in features.items():
        if name in overrides:
            columns[name] = resolve_type(overrides[name], column=name)
        else:
            sample = first.column(name).combine_chunks() if first is not None else None
            columns[name] = lakefmt_type(feature, sample, name)
    total = len(hf_dataset) if isinstance(hf_dataset, hf.Dataset) else None

    def converted() -> Iterator[pa.Table]:
        if first is not None:
            yield _to_lakefmt_table(first, features, columns)
        for table in batches:
            yield _to_lakefmt_table(table, features, columns)

    with (
        _importing(dst, columns, creds) as ds,
        Progress(total, "import huggingface", progress) as bar,
    ):
        for name, feature in features.items():
            if _type_loses_feature(feature, columns[name]):
                ds[name].metadata[HF_METADATA_KEY] = {"feature": _feature_dict(hf, feature)}
        done = 0
        for table in converted():
            if table.num_rows:
                try:
                    ds.append(table)
                except DecodeError as exc:  # its row numbers count from the batch's start
                    raise DecodeError(
                        f"in source rows {done}..{done + table.num_rows - 1}: {exc}; an Image "
                        "column holds one format (that of the first batch's images): pass "
                        "schema={column: 'bytes'} to keep images of mixed formats as bytes"
                    ) from exc
                done += table.num_rows
                bar.update(table.num_rows)
        ds.commit("import Hugging Face dataset")
    return ds


def _type_loses_feature(feature: Any, column_type: types.Type) -> bool:
    """Whether the lakefmt type does not say the feature: a file feature kept as bytes
    (``Audio``...), an ``ArrayND`` with a dynamic first axis (a ragged ``Array``)."""
    if _is_file_feature(feature):
        return not isinstance(column_type, types.Image)
    return _kind(feature) in _ARRAY_FEATURES and next(iter(feature.shape)) is None


def _feature_dict(hf: Any, feature: Any) -> Any:
    """A feature's JSON form (``Features.to_dict``: ``{"_type": "Audio", ...}``)."""
    return hf.Features({"f": feature}).to_dict()["f"]


def _to_lakefmt_table(
    table: pa.Table, features: Any, columns: Mapping[str, types.Type]
) -> pa.Table:
    arrays = {
        name: to_lakefmt_storage(table.column(name).combine_chunks(), features[name], target)
        for name, target in columns.items()
    }
    return pa.table(arrays)


def to_huggingface_parquet(
    view: DatasetView,
    path: str | os.PathLike[str],
    *,
    columns: list[str] | None = None,
    max_rows_per_file: int | None = None,
    progress: bool | None = None,
) -> list[str]:
    """Write rows as Parquet that ``datasets.load_dataset("parquet", data_files=...)`` loads
    with their features (``Image``, ``ClassLabel``... as ``to_huggingface()`` gives them).

    The features go in the Parquet schema metadata ``huggingface``, as ``datasets`` writes
    it (``Features.arrow_schema``). Rows stream batch by batch. Returns the files written.
    """
    if not isinstance(view, DatasetView):
        raise InvalidArgumentError(
            f"exporters take a dataset or view, not {type(view).__name__} {view!r}"
        )
    check_max_rows_per_file(max_rows_per_file)
    hf = datasets_module("export --format huggingface")
    column_map, metadata = column_types(view, columns)
    features = hf_features(hf, column_map, metadata)
    reader = view.to_batches(list(column_map), batch_size=EXPORT_BATCH_ROWS)
    batches = (out for batch in reader for out in hf_batch(batch, features).to_batches())
    with Progress(len(view), "export huggingface", progress) as bar:
        return write_parquet(batches, features.arrow_schema, path, max_rows_per_file, bar.update)
