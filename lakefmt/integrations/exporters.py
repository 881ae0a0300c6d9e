"""Take data out: Parquet (extension types kept), CSV, and image folders with original bytes."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from lakefmt._progress import Progress
from lakefmt.dataset import DatasetView
from lakefmt.errors import ColumnNotFoundError, InvalidArgumentError, SchemaError, StorageError
from lakefmt.types import ClassLabel

EXPORT_BATCH_ROWS = 65_536


def _check_view(view: Any) -> None:
    if not isinstance(view, DatasetView):
        raise InvalidArgumentError(
            f"exporters take a dataset or view, not {type(view).__name__} {view!r}"
        )


def _parquet_writer(name: str, schema: pa.Schema) -> pq.ParquetWriter:
    try:
        return pq.ParquetWriter(name, schema, store_schema=True)
    except OSError as exc:
        raise StorageError(f"cannot write '{name}': {exc}") from exc


def to_parquet(
    view: DatasetView,
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    max_rows_per_file: int | None = None,
    progress: bool | None = None,
) -> list[str]:
    """Write rows to Parquet with the Arrow schema stored (extension types survive).

    One file at ``path``, or with ``max_rows_per_file`` a directory ``path`` of numbered
    files. Returns the files written.
    """
    _check_view(view)
    check_max_rows_per_file(max_rows_per_file)
    reader = view.to_batches(columns, batch_size=EXPORT_BATCH_ROWS)
    with Progress(len(view), "export parquet", progress) as bar:
        return write_parquet(reader, reader.schema, path, max_rows_per_file, bar.update)


def check_max_rows_per_file(max_rows_per_file: Any) -> None:
    """Refuse a ``max_rows_per_file`` that is not a positive integer or ``None``."""
    if max_rows_per_file is not None and (
        isinstance(max_rows_per_file, bool)
        or not isinstance(max_rows_per_file, int)
        or max_rows_per_file < 1
    ):
        raise InvalidArgumentError(
            f"max_rows_per_file must be a positive integer or None, got {max_rows_per_file!r}"
        )


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    path: str | os.PathLike[str],
    max_rows_per_file: int | None,
    done: Callable[[int], Any],
) -> list[str]:
    """Write batches of ``schema`` to one file ``path`` or, with ``max_rows_per_file``, a
    directory ``path`` of numbered files; ``done(rows)`` after each batch. Returns the files."""
    target = os.fspath(path)
    written: list[str] = []
    writer: pq.ParquetWriter | None = None
    rows_in_file = 0
    try:
        for batch in batches:
            offset = 0
            while offset < batch.num_rows or (writer is None and not written):
                if writer is None or (max_rows_per_file and rows_in_file >= max_rows_per_file):
                    if writer is not None:
                        writer.close()
                    if max_rows_per_file:
                        os.makedirs(target, exist_ok=True)
                        name = os.path.join(target, f"part-{len(written):05d}.parquet")
                    else:
                        name = target
                    writer = _parquet_writer(name, schema)
                    written.append(name)
                    rows_in_file = 0
                room = batch.num_rows - offset
                if max_rows_per_file:
                    room = min(room, max_rows_per_file - rows_in_file)
                if room <= 0:
                    break
                writer.write_batch(batch.slice(offset, room))
                offset += room
                rows_in_file += room
            done(batch.num_rows)
        if writer is None:  # no rows: still write an empty file with the schema
            writer = _parquet_writer(target, schema)
            written.append(target)
    finally:
        if writer is not None:
            writer.close()
    return written


def _csv_safe(column: pa.ChunkedArray) -> pa.Array | list[Any]:
    array = column.combine_chunks()
    if isinstance(array.type, pa.ExtensionType):
        array = array.storage
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return [None if v is None else base64.b64encode(v).decode() for v in array.to_pylist()]
    if pa.types.is_nested(array.type):
        return [None if v is None else json.dumps(v) for v in array.to_pylist()]
    return array


def to_csv(
    view: DatasetView,
    path: str | os.PathLike[str] | BinaryIO,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
) -> None:
    """Write rows to CSV; binary values as base64, lists and structs as JSON text.

    ``path`` is a file path or an open binary file (which is left open).
    """
    from pyarrow import csv

    _check_view(view)
    if not hasattr(path, "write") and not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"to_csv writes to a path or an open binary file, not {type(path).__name__} {path!r}"
        )
    sink: Any = (
        path
        if hasattr(path, "write") or not isinstance(path, str | os.PathLike)
        else os.fspath(path)
    )
    writer: csv.CSVWriter | None = None
    with Progress(len(view), "export csv", progress) as bar:
        try:
            for batch in view.to_batches(columns, batch_size=EXPORT_BATCH_ROWS):
                table = pa.Table.from_batches([batch])
                plain = pa.table(
                    {name: _csv_safe(table.column(name)) for name in table.column_names}
                )
                if writer is None:
                    writer = csv.CSVWriter(sink, plain.schema)
                writer.write_table(plain)
                bar.update(batch.num_rows)
            if writer is None:
                names = list(columns) if columns is not None else list(view.schema)
                header = (",".join(f'"{n}"' for n in names) + "\n").encode()
                if isinstance(sink, str):
                    with open(sink, "wb") as f:
                        f.write(header)
                else:
                    sink.write(header)
        finally:
            if writer is not None:
                writer.close()


def _safe_relative(name: str) -> list[str]:
    """The parts of a stored relative file name, without '', '.', '..' or drive prefixes."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return [p.replace(":", "_") for p in parts]


def to_image_folder(
    view: DatasetView,
    path: str | os.PathLike[str],
    *,
    column: str = "image",
    label_column: str | None = None,
    filename_column: str | None = "filename",
    progress: bool | None = None,
) -> list[str]:
    """Write each row's stored image bytes (identical to what was imported) to a file.

    File names come from ``filename_column`` when the dataset has it (as
    :func:`~lakefmt.from_image_folder` stores them: ``cat/1.jpg``), so an imported folder
    comes back with the same subfolders and names; rows without a name are numbered. With
    ``label_column``, each file goes instead in a subfolder named by its row's class name
    (the file keeps its base name). Null images are skipped. Returns the files written.

    Raises:
        ColumnNotFoundError: No such image or label column.
        SchemaError: Two rows would write the same file (export into an empty folder).
    """
    _check_view(view)
    schema = view.schema
    if column not in schema:
        raise ColumnNotFoundError(f"no image column '{column}'; columns are {list(schema)}")
    if not schema[column].is_media or not pa.types.is_binary(schema[column].storage_type):
        raise SchemaError(f"column '{column}' is {schema[column]!r}, not an image column")
    # the default filename column may be absent; a name given explicitly must exist
    if filename_column not in (None, "filename") and filename_column not in schema:
        raise ColumnNotFoundError(f"no filename column '{filename_column}'")
    params = schema[column].params()
    ext = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "tiff": "tiff"}.get(
        str(params.get("sample_compression", "bin")), "bin"
    )
    names_col = filename_column if filename_column in schema else None
    class_names: list[str] = []
    if label_column is not None:
        if label_column not in schema:
            raise ColumnNotFoundError(f"no label column '{label_column}'")
        if not isinstance(schema[label_column], ClassLabel):
            raise SchemaError(
                f"column '{label_column}' is {schema[label_column]!r}, not a ClassLabel column"
            )
        class_names = list(schema[label_column].params().get("class_names") or [])
    root = os.fspath(path)
    os.makedirs(root, exist_ok=True)
    written: list[str] = []
    with Progress(len(view), "export images", progress, unit="images") as bar:
        for start in range(0, len(view), 256):
            rows = view[start : start + 256]
            data = rows[column].get_bytes(slice(None))
            names = rows[names_col][:] if names_col else None
            labels = rows[label_column][:] if label_column else None
            for k, blob in enumerate(data):
                if blob is None:
                    continue
                parts = _safe_relative(names[k]) if names is not None and names[k] else []
                if not parts:
                    parts = [f"{start + k:08d}.{ext}"]
                if label_column is not None:
                    parts = parts[-1:]
                    if labels is not None and labels[k] is not None:
                        label = int(labels[k])
                        folder = class_names[label] if label < len(class_names) else str(label)
                        parts = [*_safe_relative(folder), *parts]
                target = os.path.join(root, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    with open(target, "xb") as f:
                        f.write(blob)
                except FileExistsError:
                    raise SchemaError(
                        f"two rows (or an earlier export) write '{target}'; export to an empty "
                        "folder"
                    ) from None
                written.append(target)
            bar.update(len(data))
    return written
