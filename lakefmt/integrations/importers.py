"""Bring data in: Parquet, CSV, Arrow, pandas, image folders and COCO, streaming.

Every importer streams its source in batches into ``ds.append`` (which flushes every
64 MiB), so a source larger than memory imports in bounded memory. Image files go in as
their original bytes. Column types are inferred from the Arrow schema and can be
overridden with ``schema={column: type}``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from lakefmt import types
from lakefmt.dataset import Dataset, create
from lakefmt.errors import SchemaError
from lakefmt.integrations.progress import Progress
from lakefmt.types.extension import LakefmtExtensionType

#: Rows per streamed batch.
IMPORT_BATCH_ROWS = 65_536
IMAGE_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}


def infer_type(arrow_type: pa.DataType, *, column: str = "?") -> types.Type:
    """The lakefmt type for an Arrow type.

    Raises:
        SchemaError: No lakefmt type holds this Arrow type; pass ``schema=`` to choose one.
    """
    if isinstance(arrow_type, LakefmtExtensionType):
        return arrow_type.lakefmt_type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    for name in types.scalars.NUMERIC_DTYPES:
        if arrow_type == types.Numeric(name).storage_type:
            return types.Numeric(name)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return types.Text()
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return types.Bytes()
    embedding = getattr(types, "Embedding", None)
    if (
        embedding is not None
        and pa.types.is_fixed_size_list(arrow_type)
        and pa.types.is_floating(arrow_type.value_type)
    ):
        return embedding(arrow_type.list_size, dtype=str(arrow_type.value_type.to_pandas_dtype().__name__))  # type: ignore[no-any-return]
    raise SchemaError(
        f"column '{column}' has Arrow type {arrow_type} that lakefmt does not infer; pass "
        "schema={column: type} to the importer"
    )


def _dst(dst: str | None) -> str:
    return dst if dst is not None else f"mem://import-{uuid.uuid4().hex}"


def from_batches(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    types_override: Mapping[str, Any] | None = None,
    total_rows: int | None = None,
    progress: bool | None = None,
    message: str | None = "import",
) -> Dataset:
    """Create a dataset at ``dst`` from a stream of record batches (the common importer)."""
    overrides = dict(types_override or {})
    unknown = set(overrides) - set(schema.names)
    if unknown:
        raise SchemaError(f"schema overrides name column(s) {sorted(unknown)} the source lacks")
    columns = {
        name: overrides.get(name) or infer_type(schema.field(name).type, column=name)
        for name in schema.names
    }
    ds = create(_dst(dst), schema=columns, creds=creds)
    with Progress(total_rows, "import", progress) as bar:
        for batch in batches:
            if batch.num_rows:
                ds.append(batch)
                bar.update(batch.num_rows)
    ds.commit(message)
    return ds


def from_parquet(
    src: str | os.PathLike[str],
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Import a Parquet file (streamed by row groups) into a new dataset at ``dst``.

    ``dst`` defaults to a fresh ``mem://`` dataset. ``schema`` overrides inferred types.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(os.fspath(src))
    return from_batches(
        parquet.iter_batches(batch_size=IMPORT_BATCH_ROWS),
        parquet.schema_arrow,
        dst,
        creds=creds,
        types_override=schema,
        total_rows=parquet.metadata.num_rows,
        progress=progress,
    )


def from_csv(
    src: str | os.PathLike[str],
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Import a CSV file (streamed) into a new dataset at ``dst``."""
    from pyarrow import csv

    reader = csv.open_csv(os.fspath(src), read_options=csv.ReadOptions(block_size=16 << 20))
    return from_batches(
        reader, reader.schema, dst, creds=creds, types_override=schema, progress=progress
    )


def from_arrow(
    table: pa.Table | pa.RecordBatchReader,
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Import an Arrow table or stream (anything with ``__arrow_c_stream__`` too)."""
    if isinstance(table, pa.Table):
        return from_batches(
            table.to_batches(IMPORT_BATCH_ROWS), table.schema, dst, creds=creds,
            types_override=schema, total_rows=table.num_rows, progress=progress,
        )
    reader = table if isinstance(table, pa.RecordBatchReader) else pa.RecordBatchReader.from_stream(table)
    return from_batches(reader, reader.schema, dst, creds=creds, types_override=schema, progress=progress)


def from_pandas(
    df: Any,
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Import a pandas DataFrame (the index is dropped)."""
    return from_arrow(
        pa.Table.from_pandas(df, preserve_index=False), dst, creds=creds, schema=schema,
        progress=progress,
    )


def _image_type(compression: str) -> types.Type:
    image = getattr(types, "Image", None)
    if image is None:
        raise SchemaError("image import needs lakefmt's Image type")
    return image("uint8", compression)  # type: ignore[no-any-return]


def _class_label(names: list[str]) -> types.Type:
    label = getattr(types, "ClassLabel", None)
    return label("int32", class_names=names) if label is not None else types.Int32()


def from_image_folder(
    path: str | os.PathLike[str],
    dst: str | None = None,
    *,
    labels_from_subfolders: bool = True,
    creds: dict[str, Any] | None = None,
    progress: bool | None = None,
    batch_size: int = 512,
) -> Dataset:
    """Import a folder of images (JPEG, PNG, TIFF) with their original bytes.

    With ``labels_from_subfolders``, each image's label is its subfolder (``cat/1.jpg``), as
    a ClassLabel column whose class names are the sorted subfolder names. The image column
    takes the compression of most files; files keep their bytes either way.
    """
    root = os.fspath(path)
    files = sorted(
        os.path.join(d, f)
        for d, _, names in os.walk(root)
        for f in names
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise SchemaError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under '{root}'")
    formats = [IMAGE_EXTENSIONS[os.path.splitext(f)[1].lower()] for f in files]
    compression = max(set(formats), key=formats.count)
    schema: dict[str, Any] = {"image": _image_type(compression), "filename": types.Text()}
    classes: list[str] = []
    if labels_from_subfolders:
        classes = sorted({os.path.relpath(os.path.dirname(f), root).split(os.sep)[0] for f in files} - {"."})
        schema["label"] = _class_label(classes)
    ds = create(_dst(dst), schema=schema, creds=creds)
    with Progress(len(files), "import images", progress, unit="images") as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            batch: dict[str, list[Any]] = {
                "image": [_read(f) for f in chunk],
                "filename": [os.path.relpath(f, root).replace(os.sep, "/") for f in chunk],
            }
            if labels_from_subfolders:
                batch["label"] = [
                    classes.index(os.path.relpath(os.path.dirname(f), root).split(os.sep)[0])
                    if os.path.dirname(f) != root
                    else None
                    for f in chunk
                ]
            ds.append(batch)
            bar.update(len(chunk))
    ds.commit("import image folder")
    return ds


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def from_coco(
    images_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str] | Mapping[str, Any],
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    progress: bool | None = None,
    batch_size: int = 256,
) -> Dataset:
    """Import a COCO detection dataset: one row per image with its boxes and categories.

    Columns: ``image`` (original bytes), ``filename``, ``image_id``, ``boxes`` (N x 4
    float32, COCO's left-top-width-height), ``categories`` (N class indices into the
    column's class names), ``iscrowd``.
    """
    if isinstance(annotations, Mapping):
        coco = dict(annotations)
    else:
        with open(os.fspath(annotations), encoding="utf-8") as f:
            coco = json.load(f)
    try:
        images = sorted(coco["images"], key=lambda im: im["id"])
        categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
        anns = coco.get("annotations", [])
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"not a COCO annotation file: missing {exc}") from exc
    cat_index = {c["id"]: i for i, c in enumerate(categories)}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in anns:
        by_image.setdefault(ann["image_id"], []).append(ann)
    formats = [
        IMAGE_EXTENSIONS.get(os.path.splitext(im["file_name"])[1].lower(), "jpeg") for im in images
    ]
    compression = max(set(formats), key=formats.count) if formats else "jpeg"
    box_type = getattr(types, "BoundingBox", None)
    seq = getattr(types, "Sequence", None)
    schema: dict[str, Any] = {
        "image": _image_type(compression),
        "filename": types.Text(),
        "image_id": types.Int64(),
        "boxes": box_type("float32", "ltwh") if box_type else types.Bytes(),
        "categories": seq(_class_label([c["name"] for c in categories])) if seq else types.Bytes(),
        "iscrowd": seq(types.Bool()) if seq else types.Bytes(),
    }
    ds = create(_dst(dst), schema=schema, creds=creds)
    import numpy as np

    root = os.fspath(images_dir)
    with Progress(len(images), "import COCO", progress, unit="images") as bar:
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            rows: dict[str, list[Any]] = {k: [] for k in schema}
            for im in chunk:
                found = by_image.get(im["id"], [])
                rows["image"].append(_read(os.path.join(root, im["file_name"])))
                rows["filename"].append(im["file_name"])
                rows["image_id"].append(im["id"])
                rows["boxes"].append(np.array([a["bbox"] for a in found], dtype=np.float32).reshape(-1, 4))
                rows["categories"].append([cat_index[a["category_id"]] for a in found])
                rows["iscrowd"].append([bool(a.get("iscrowd", 0)) for a in found])
            ds.append(rows)
            bar.update(len(chunk))
    ds.commit("import COCO")
    return ds

