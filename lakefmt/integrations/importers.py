"""Bring data in: Parquet, CSV, Arrow, pandas, image folders and COCO, streaming.

Every importer streams its source in batches into ``ds.append`` (which flushes every
64 MiB), so a source larger than memory imports in bounded memory. Image files go in as
their original bytes. Column types are inferred from the Arrow schema and can be
overridden with ``schema={column: type}``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from lakefmt import types
from lakefmt._progress import Progress
from lakefmt.dataset import Dataset, create, delete
from lakefmt.errors import (
    DecodeError,
    FormatError,
    InvalidArgumentError,
    LakefmtError,
    SchemaError,
    SourceNotFoundError,
    StorageError,
)
from lakefmt.types.extension import LakefmtExtensionType

#: Rows per streamed batch.
IMPORT_BATCH_ROWS = 65_536
IMAGE_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}


def infer_type(arrow_type: pa.DataType, *, column: str = "?") -> types.Type:
    """The lakefmt type for an Arrow type.

    Scalars map to their type; ``fixed_size_list<float>`` to ``Embedding``; lists of numbers
    (nested ``d`` deep) to ``Array(dtype, dimensions=d)``, fixed-size lists of integers to
    ``Array(dtype, shape=(n,))``; other lists to ``Sequence``; structs to ``Struct``.
    Dictionary-encoded columns are read as their values.

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
    if pa.types.is_fixed_size_list(arrow_type):
        value = arrow_type.value_type
        if pa.types.is_floating(value):
            return types.Embedding(arrow_type.list_size, dtype=_numpy_name(value))
        if pa.types.is_integer(value):
            return types.Array(_numpy_name(value), shape=(arrow_type.list_size,))
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        depth, inner = 1, arrow_type.value_type
        while pa.types.is_list(inner) or pa.types.is_large_list(inner):
            depth, inner = depth + 1, inner.value_type
        if pa.types.is_integer(inner) or pa.types.is_floating(inner):
            return types.Array(_numpy_name(inner), dimensions=depth)
        return types.Sequence(infer_type(arrow_type.value_type, column=column))
    if pa.types.is_struct(arrow_type):
        return types.Struct(
            {
                arrow_type.field(i).name: infer_type(arrow_type.field(i).type, column=column)
                for i in range(arrow_type.num_fields)
            }
        )
    raise SchemaError(
        f"column '{column}' has Arrow type {arrow_type} that lakefmt does not infer; pass "
        "schema={column: type} to the importer"
    )


def _numpy_name(arrow_type: pa.DataType) -> str:
    return str(arrow_type.to_pandas_dtype().__name__)


@contextlib.contextmanager
def _reading(path: str, kind: str) -> Iterator[None]:
    """Report a missing or unreadable source file as a lakefmt error naming it."""
    try:
        yield
    except LakefmtError:
        raise
    except FileNotFoundError as exc:
        raise SourceNotFoundError(errno.ENOENT, f"no such {kind} file: '{path}'", path) from exc
    except OSError as exc:
        raise StorageError(f"cannot read {kind} file '{path}': {exc.strerror or exc}") from exc
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"'{path}' is not a readable {kind} file: {exc}") from exc


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")


def _dst(dst: str | None) -> str:
    return dst if dst is not None else f"mem://import-{uuid.uuid4().hex}"


@contextlib.contextmanager
def _importing(
    dst: str | None, schema: Mapping[str, Any], creds: dict[str, Any] | None
) -> Iterator[Dataset]:
    """Create the destination dataset; if the import fails, delete it again.

    An import is all or nothing: a bad value at row one million (or an interrupt) leaves no
    half-imported dataset at ``dst`` to be mistaken for a complete one.
    """
    ds = create(_dst(dst), schema=schema, creds=creds)
    try:
        yield ds
    except BaseException:
        ds.rollback()  # so dropping the handle does not flush the buffered rows
        try:
            delete(ds.url, creds=creds)
        except Exception:  # the original error matters more than a failed clean-up
            pass
        raise


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
    with _importing(dst, columns, creds) as ds, Progress(total_rows, "import", progress) as bar:
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

    # pre_buffer=False: with pre-buffering (pyarrow's default) iter_batches keeps every row
    # group it has read alive until the file is closed, so memory grows with the file size
    # (measured with pyarrow 26: ~1.4 GB after 200 batches of a 2 GB file, against 34 MB).
    path = os.fspath(src)
    with _reading(path, "Parquet"):
        parquet = pq.ParquetFile(path, pre_buffer=False)
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

    path = os.fspath(src)
    with _reading(path, "CSV"):
        reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=16 << 20))
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
            table.to_batches(IMPORT_BATCH_ROWS),
            table.schema,
            dst,
            creds=creds,
            types_override=schema,
            total_rows=table.num_rows,
            progress=progress,
        )
    if not isinstance(table, pa.RecordBatchReader) and not hasattr(table, "__arrow_c_stream__"):
        raise InvalidArgumentError(
            f"from_arrow takes an Arrow table or stream, not {type(table).__name__}"
        )
    reader = (
        table
        if isinstance(table, pa.RecordBatchReader)
        else pa.RecordBatchReader.from_stream(table)
    )
    return from_batches(
        reader, reader.schema, dst, creds=creds, types_override=schema, progress=progress
    )


def from_pandas(
    df: Any,
    dst: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Import a pandas DataFrame (the index is dropped)."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidArgumentError(f"from_pandas takes a pandas DataFrame, not {type(df).__name__}")
    return from_arrow(
        pa.Table.from_pandas(df, preserve_index=False),
        dst,
        creds=creds,
        schema=schema,
        progress=progress,
    )


def _image_type(compression: str) -> types.Type:
    return types.Image("uint8", compression)


def _class_label(names: list[str]) -> types.Type:
    return types.ClassLabel("int32", class_names=names)


def _sniff_format(path: str) -> str | None:
    """The image format of a file from its first bytes (``None``: not JPEG, PNG or TIFF)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _choose_compression(
    files: list[str], names: list[str], compression: str | None, root: str
) -> tuple[str, list[str]]:
    """The image column's compression and each file's format (sniffed from its bytes).

    Raises:
        DecodeError: A file is not a JPEG, PNG or TIFF image.
        SchemaError: Files of several formats and no ``compression`` chosen.
    """
    formats: list[str] = []
    for path, name in zip(files, names, strict=True):
        fmt = _sniff_format(path)
        if fmt is None:
            raise DecodeError(f"'{name}' under '{root}' is not a JPEG, PNG or TIFF image")
        formats.append(fmt)
    if compression is not None:
        wanted = str(compression).lower()
        return ("jpeg" if wanted == "jpg" else "tiff" if wanted == "tif" else wanted), formats
    counts = {fmt: formats.count(fmt) for fmt in sorted(set(formats))}
    if len(counts) > 1:
        minority = min(counts, key=lambda k: counts[k])
        example = names[formats.index(minority)]
        raise SchemaError(
            f"images under '{root}' mix formats ("
            + ", ".join(f"{n} {fmt}" for fmt, n in counts.items())
            + f", e.g. '{example}'); an image column holds one format: pass compression="
            "'jpeg', 'png' or 'tiff' to re-encode the other files (those lose their original bytes)"
        )
    return (formats[0] if formats else "jpeg"), formats


def _image_value(data: bytes, fmt: str, compression: str) -> Any:
    """The file's bytes when it is in the column's format, else a PIL image to re-encode."""
    if fmt == compression:
        return data
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def from_image_folder(
    path: str | os.PathLike[str],
    dst: str | None = None,
    *,
    labels_from_subfolders: bool = True,
    compression: str | None = None,
    creds: dict[str, Any] | None = None,
    progress: bool | None = None,
    batch_size: int = 512,
) -> Dataset:
    """Import a folder of images (JPEG, PNG, TIFF) with their original bytes.

    Columns: ``image``, ``filename`` (the path under ``path``, with ``/``) and, with
    ``labels_from_subfolders``, ``label``: each image's top-level subfolder (``cat/1.jpg``) as
    a ClassLabel whose class names are the sorted subfolder names (images directly in
    ``path`` get a null label).

    An image column holds one format, found from the files' bytes. A folder that mixes
    formats needs ``compression`` (``"jpeg"``, ``"png"`` or ``"tiff"``): files in that format
    keep their bytes, the others are decoded and re-encoded once.

    Raises:
        SchemaError: No images, or mixed formats without ``compression``.
        DecodeError: A file with an image extension is not an image.
    """
    _check_batch_size(batch_size)
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise SourceNotFoundError(errno.ENOENT, f"no such folder: '{root}'", root)
    files = sorted(
        os.path.join(d, f)
        for d, _, names in os.walk(root)
        for f in names
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise SchemaError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under '{root}'")
    names = [os.path.relpath(f, root).replace(os.sep, "/") for f in files]
    compression, formats = _choose_compression(files, names, compression, root)
    schema: dict[str, Any] = {"image": _image_type(compression), "filename": types.Text()}
    class_of: dict[str, int] = {}
    if labels_from_subfolders:
        classes = sorted({n.split("/")[0] for n in names if "/" in n})
        class_of = {c: i for i, c in enumerate(classes)}
        schema["label"] = _class_label(classes)
    with (
        _importing(dst, schema, creds) as ds,
        Progress(len(files), "import images", progress, unit="images") as bar,
    ):
        for start in range(0, len(files), batch_size):
            stop = start + batch_size
            batch: dict[str, list[Any]] = {
                "image": [
                    _image_value(_read(f), fmt, compression)
                    for f, fmt in zip(files[start:stop], formats[start:stop], strict=True)
                ],
                "filename": names[start:stop],
            }
            if labels_from_subfolders:
                batch["label"] = [
                    class_of[n.split("/")[0]] if "/" in n else None for n in names[start:stop]
                ]
            ds.append(batch)
            bar.update(len(batch["filename"]))
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
    compression: str | None = None,
    creds: dict[str, Any] | None = None,
    progress: bool | None = None,
    batch_size: int = 256,
) -> Dataset:
    """Import a COCO detection dataset: one row per image with its boxes and categories.

    Columns: ``image`` (the file's original bytes), ``filename``, ``image_id``, ``boxes``
    (``BoundingBox``, N x 4 float32 in COCO's pixel left-top-width-height), ``categories``
    (a multi-label ``ClassLabel``: N indices into the COCO category names, sorted by
    category id) and ``iscrowd`` (N booleans), the N annotations of each image in file
    order. Images without annotations get N = 0. ``compression`` as in
    :func:`from_image_folder`.

    Raises:
        SchemaError: Not a COCO file, or an annotation names an unknown image or category.
    """
    import numpy as np

    _check_batch_size(batch_size)
    where = "the annotations" if isinstance(annotations, Mapping) else os.fspath(annotations)
    if isinstance(annotations, Mapping):
        coco = dict(annotations)
    else:
        with _reading(where, "COCO annotation"), open(where, encoding="utf-8") as f:
            try:
                coco = json.load(f)
            except ValueError as exc:  # also bytes that are not UTF-8
                raise SchemaError(f"'{where}' is not JSON: {exc}") from exc
    if not isinstance(coco, dict):
        raise SchemaError(f"'{where}' is not a COCO annotation file: not a JSON object")
    try:
        images = sorted(coco["images"], key=lambda im: im["id"])
        categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
        anns = coco.get("annotations", [])
        cat_index = {c["id"]: i for i, c in enumerate(categories)}
        image_ids = {im["id"] for im in images}
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for ann in anns:
            if ann["image_id"] not in image_ids:
                raise SchemaError(
                    f"annotation {ann.get('id')} names unknown image {ann['image_id']}"
                )
            if ann["category_id"] not in cat_index:
                raise SchemaError(
                    f"annotation {ann.get('id')} names unknown category {ann['category_id']}"
                )
            by_image.setdefault(ann["image_id"], []).append(ann)
    except KeyError as exc:
        raise SchemaError(f"'{where}' is not a COCO annotation file: missing {exc}") from exc
    except (TypeError, AttributeError) as exc:
        raise SchemaError(
            f"'{where}' is not a COCO annotation file: a member of the wrong type ({exc})"
        ) from exc
    root = os.fspath(images_dir)
    bad = next((im for im in images if not isinstance(im.get("file_name"), str)), None)
    if bad is not None:
        raise SchemaError(
            f"'{where}' is not a COCO annotation file: image {bad.get('id')!r} has file_name "
            f"{bad.get('file_name')!r}, not a string"
        )
    files = [os.path.join(root, im["file_name"]) for im in images]
    names = [im["file_name"] for im in images]
    compression, formats = _choose_compression(files, names, compression, root)
    schema: dict[str, Any] = {
        "image": _image_type(compression),
        "filename": types.Text(),
        "image_id": types.Int64(),
        "boxes": types.BoundingBox("float32", "ltwh", "pixel"),
        "categories": types.ClassLabel(
            types.Array("int32", dimensions=1), class_names=[c["name"] for c in categories]
        ),
        "iscrowd": types.Sequence(types.Bool()),
    }
    with (
        _importing(dst, schema, creds) as ds,
        Progress(len(images), "import COCO", progress, unit="images") as bar,
    ):
        for start in range(0, len(images), batch_size):
            stop = start + batch_size
            rows: dict[str, list[Any]] = {k: [] for k in schema}
            for im, path, fmt in zip(
                images[start:stop], files[start:stop], formats[start:stop], strict=True
            ):
                found = by_image.get(im["id"], [])
                rows["image"].append(_image_value(_read(path), fmt, compression))
                rows["filename"].append(im["file_name"])
                rows["image_id"].append(im["id"])
                rows["boxes"].append(
                    np.array([a["bbox"] for a in found], dtype=np.float32).reshape(-1, 4)
                )
                rows["categories"].append(
                    np.array([cat_index[a["category_id"]] for a in found], dtype=np.int32)
                )
                rows["iscrowd"].append([bool(a.get("iscrowd", 0)) for a in found])
            ds.append(rows)
            bar.update(len(rows["filename"]))
        ds.commit("import COCO")
    return ds
