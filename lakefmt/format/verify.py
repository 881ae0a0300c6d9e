"""Checking that a version's files are all there and agree with its manifest."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from lakefmt.errors import LakefmtError
from lakefmt.format import fragments as files
from lakefmt.format import layout, refs, versions
from lakefmt.format.index_files import index_file_problem
from lakefmt.format.manifest import DataFile, Fragment, Manifest, UpdateFile
from lakefmt.format.snapshot import Snapshot
from lakefmt.storage import Storage

#: Rows of a media column decoded per step by a deep check.
DEEP_BATCH_ROWS = 256


def _problem(exc: BaseException) -> str:
    """A damaged file's error as one line (lakefmt errors already name the file)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, LakefmtError) else f"{type(exc).__name__}: {text}"


def verify_manifest(
    storage: Storage,
    manifest: Manifest,
    *,
    on_file: Callable[[int], object] | None = None,
    deep: bool = False,
) -> list[str]:
    """Return every problem found (an empty list means the version is intact).

    Checks that each data, deletion and update file the manifest references exists, has
    the recorded size, opens as Parquet, passes the CRC32 checksum of every page, and
    holds the recorded rows, row groups and columns (with their field ids); that deletion
    positions are sorted, unique and inside their fragment; that each index file exists
    with its recorded size and SHA-256. The manifest's own checksum was
    verified when it was read. Never raises for a damaged file: each is listed.

    Args:
        storage: The dataset root.
        manifest: The version to check.
        on_file: Called with 1 after each data file is checked (progress bars).
        deep: Also decode every image, video and mesh of the version (slow) and list each
            row that does not decode, by its row index in the version.
    """
    problems: list[str] = []
    for fragment in manifest.fragments:
        where = f"fragment {fragment.id}"
        for data_file in fragment.files:
            if on_file is not None:
                on_file(1)
            problems.extend(f"{where}: {p}" for p in _check_data_file(storage, fragment, data_file))
        if fragment.deletion is not None:
            try:
                Snapshot(storage, manifest).deleted(fragment)
            except Exception as exc:  # listed, never raised: verify reports every problem
                problems.append(f"{where}: deletion file: {_problem(exc)}")
        for update in fragment.updates:
            problems.extend(f"{where}: {p}" for p in _check_update_file(storage, fragment, update))
    for index in manifest.indexes:
        for segment in index.segments:
            for index_file in segment.files:
                problem = index_file_problem(storage, index_file)
                if problem is not None:
                    problems.append(f"index {index.id} ({index.kind}): {problem}")
    if deep and not problems:  # decoding reads through the files checked above
        problems.extend(_decode_media(storage, manifest))
    return problems


def _check_data_file(storage: Storage, fragment: Fragment, data_file: DataFile) -> list[str]:
    path = data_file.path
    try:
        size = storage.size(path)
    except FileNotFoundError:
        return [f"data file {path} is missing"]
    except OSError as exc:
        return [f"data file {path} cannot be read: {_problem(exc)}"]
    out = []
    if size != data_file.size:
        out.append(f"{path} has {size} bytes, the manifest says {data_file.size}")
    try:
        with files.damaged_file_errors(storage, path):
            reader = files.open_parquet(storage, path)
            meta = reader.metadata
            files.column_names(storage, reader, data_file, data_file.field_ids)
            # Reading every page checks each page's CRC32 and decompresses it.
            for g in range(meta.num_row_groups):
                reader.read_row_group(g)
    except Exception as exc:  # any reader error means the file is damaged
        return [*out, _problem(exc)]
    if meta.num_rows != fragment.rows or sum(data_file.row_groups) != fragment.rows:
        out.append(f"{path} holds {meta.num_rows} rows, the fragment has {fragment.rows}")
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    if groups != list(data_file.row_groups):
        out.append(f"{path} row groups differ from the manifest")
    return out


def _check_update_file(storage: Storage, fragment: Fragment, update: UpdateFile) -> list[str]:
    path = update.path
    try:
        positions, values = files.read_update_file(storage, path, update.size)
    except Exception as exc:  # listed, never raised
        return [f"update file: {_problem(exc)}"]
    out = []
    if len(positions) != update.count or len(values) != len(positions):
        out.append(f"update file {path} count differs from the manifest")
    if len(positions) and positions[-1] >= fragment.rows:
        out.append(f"update file {path} has positions outside the fragment")
    return out


def _decode_media(storage: Storage, manifest: Manifest) -> list[str]:
    """Decode every media value of the version; one line per row that fails."""
    snapshot = Snapshot(storage, manifest)
    media = [f for f in manifest.fields if snapshot.type_of(f).is_media]
    problems: list[str] = []
    for field in media:
        kind = snapshot.type_of(field)
        row = 0
        try:
            for batch in snapshot.iter_batches([field], DEEP_BATCH_ROWS):
                array = batch[field.id]
                storage_array = array.storage if isinstance(array, pa.ExtensionArray) else array
                for i, data in enumerate(storage_array.to_pylist()):
                    if data is not None:
                        try:
                            _decode_fully(kind.name, data, kind)
                        except Exception as exc:  # listed, never raised
                            problems.append(
                                f"column '{field.name}' row {row + i} does not decode: "
                                f"{_problem(exc)}"
                            )
                row += len(array)
        except Exception as exc:  # a file failing mid-scan: listed, the check goes on
            problems.append(
                f"column '{field.name}' could not be read past row {row}: {_problem(exc)}"
            )
    return problems


def _decode_fully(name: str, data: bytes, kind: object) -> None:
    """Decode one media value completely (every frame of a video)."""
    # codecs imported here: only a full verify decodes media, and each codec is heavy
    if name == "lakefmt.image":
        from lakefmt.codecs.image import decode_image

        decode_image(data, dtype=getattr(kind, "dtype", "uint8"))
    elif name == "lakefmt.video":
        from lakefmt.codecs.video import decode_frames

        decode_frames(data)
    elif name == "lakefmt.mesh":
        from lakefmt.codecs.mesh import decode_mesh

        decode_mesh(data)


def verify_refs(storage: Storage) -> list[str]:
    """Problems with the dataset's own files: the format file, tags and branches.

    Each tag and branch file must parse and point at a version that can be read.
    """
    problems: list[str] = []
    try:
        versions.read_format_file(storage)
    except Exception as exc:  # listed, never raised
        problems.append(_problem(exc))
    for name in versions.list_tag_names(storage):
        try:
            versions.resolve_ref(storage, refs.read_tag(storage, name).ref)
        except Exception as exc:  # listed, never raised
            where = f"{storage.url}/{layout.tag_path(name)}"
            problems.append(f"tag '{name}' ({where}): {_problem(exc)}")
    for name in versions.list_branches(storage)[1:]:  # main has no branch file
        try:
            versions.branch_file(storage, name)  # read even where the branch has manifests
            versions.read_latest(storage, name)
        except Exception as exc:  # listed, never raised
            problems.append(
                f"branch '{name}' ({storage.url}/{layout.branch_path(name)}): {_problem(exc)}"
            )
    return problems
