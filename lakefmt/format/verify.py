"""Checking that a version's files are all there and agree with its manifest."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow.parquet as pq

from lakefmt.format import fragments as files
from lakefmt.format.manifest import Manifest
from lakefmt.storage import Storage


def verify_manifest(
    storage: Storage, manifest: Manifest, *, on_file: Callable[[int], object] | None = None
) -> list[str]:
    """Return every problem found (an empty list means the version is intact).

    Checks that each data, deletion and update file the manifest references exists, has
    the recorded size, opens as Parquet, passes the CRC32 checksum of every page, and
    holds the recorded rows, row groups and columns; that deletion positions are inside
    their fragment. The manifest's own checksum was verified when it was read.
    """
    problems: list[str] = []
    for fragment in manifest.fragments:
        where = f"fragment {fragment.id}"
        for data_file in fragment.files:
            if on_file is not None:
                on_file(1)
            try:
                size = storage.size(data_file.path)
            except FileNotFoundError:
                problems.append(f"{where}: data file {data_file.path} is missing")
                continue
            if size != data_file.size:
                problems.append(
                    f"{where}: {data_file.path} has {size} bytes, "
                    f"the manifest says {data_file.size}"
                )
            try:
                reader = pq.ParquetFile(
                    storage.open_input(data_file.path), page_checksum_verification=True
                )
                meta = reader.metadata
                # Reading every page checks each page's CRC32 and decompresses it.
                for g in range(meta.num_row_groups):
                    reader.read_row_group(g)
            except Exception as exc:  # any reader error means the file is damaged
                problems.append(f"{where}: {data_file.path} is damaged: {exc}")
                continue
            if meta.num_rows != fragment.rows or sum(data_file.row_groups) != fragment.rows:
                problems.append(
                    f"{where}: {data_file.path} holds {meta.num_rows} rows, the fragment has "
                    f"{fragment.rows}"
                )
            groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            if groups != list(data_file.row_groups):
                problems.append(f"{where}: {data_file.path} row groups differ from the manifest")
            if meta.schema.to_arrow_schema().__len__() != len(data_file.field_ids):
                problems.append(f"{where}: {data_file.path} column count differs from field_ids")
        if fragment.deletion is not None:
            try:
                positions = files.read_positions(storage, fragment.deletion.path)
            except (FileNotFoundError, OSError) as exc:
                problems.append(f"{where}: deletion file {fragment.deletion.path}: {exc}")
            else:
                if len(positions) != fragment.deletion.count:
                    problems.append(f"{where}: deletion file count differs from the manifest")
                if len(positions) and (positions.min() < 0 or positions.max() >= fragment.rows):
                    problems.append(f"{where}: deletion positions outside the fragment")
        for update in fragment.updates:
            try:
                positions, _ = files.read_update_file(storage, update.path)
            except (FileNotFoundError, OSError) as exc:
                problems.append(f"{where}: update file {update.path}: {exc}")
                continue
            if len(positions) != update.count:
                problems.append(f"{where}: update file {update.path} count differs")
    return problems
