"""Top-level functions: create, open, open_read_only, exists, delete, copy, like."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

from lakefmt._pool import new_pool
from lakefmt._progress import Progress
from lakefmt.dataset.dataset import Dataset, ReadOnlyDataset, resolve_version
from lakefmt.dataset.futures import Future, submit
from lakefmt.errors import DatasetExistsError, DatasetNotFoundError, SchemaError
from lakefmt.format import layout
from lakefmt.format.commit import (
    AddColumn,
    Operation,
    SetMetadata,
    commit,
    write_manifest_if_absent,
)
from lakefmt.format.manifest import FORMAT_VERSION, FormatFile, Manifest, dump_document, now_ms
from lakefmt.format.versions import branch_id_of, read_format_file, read_head
from lakefmt.storage import Storage, open_storage
from lakefmt.types import resolve_type

URL = str | os.PathLike[str]


def _format_file(dataset_id: str) -> bytes:
    return dump_document(
        FormatFile(
            format=layout.FORMAT_NAME,
            format_version=FORMAT_VERSION,
            dataset_id=dataset_id,
            created=now_ms(),
        )
    )


def create(
    url: URL, schema: Mapping[str, Any] | None = None, creds: dict[str, Any] | None = None
) -> Dataset:
    """Create a new, empty dataset.

    Args:
        url: Where: ``mem://name``, ``tmp://``, a path or ``file://path``, ``s3://``,
            ``gs://``, ``az://``.
        schema: ``{column: type}``; types as ``lakefmt.types`` objects or names
            (``"int32"``, ``"text"``...).
        creds: Cloud credentials (see the README); ``None`` uses the provider's default chain.

    Raises:
        DatasetExistsError: A dataset already exists at ``url``.
        SchemaError: A type in ``schema`` is not a lakefmt type.
    """
    if schema is not None and not isinstance(schema, Mapping):
        raise SchemaError(
            f"schema must be a {{column: type}} dict, not {type(schema).__name__} {schema!r}"
        )
    storage = open_storage(url, creds)
    fields = []
    for i, (name, spec) in enumerate((schema or {}).items()):
        if not isinstance(name, str) or not name:
            raise SchemaError(f"column names must be non-empty strings, got {name!r}")
        dtype = resolve_type(spec, column=name)
        fields.append(
            {"id": i, "name": name, "type": dtype.to_json(), "arrow_type": str(dtype.storage_type)}
        )
    if storage.exists(layout.FORMAT_FILE):
        raise DatasetExistsError(f"a dataset already exists at '{storage.url}'")
    dataset_id = uuid.uuid4().hex
    manifest = Manifest.model_validate(
        {
            "dataset_id": dataset_id,
            "branch": layout.MAIN_BRANCH,
            "version": 0,
            "id": layout.make_version_id(0),
            "timestamp": now_ms(),
            "is_commit": True,
            "message": None,
            "operation": "create",
            "fields": fields,
            "next_field_id": len(fields),
        }
    )
    if not write_manifest_if_absent(storage, manifest):
        raise DatasetExistsError(
            f"a dataset is being created at '{storage.url}', or an earlier create was "
            "interrupted (lakefmt.delete(url) clears it)"
        )
    # Written last: a dataset "exists" only once its first version is complete.
    storage.write(layout.FORMAT_FILE, _format_file(dataset_id))
    return Dataset(storage, manifest)


def _open_manifest(
    storage: Storage, version: str | None, branch: str | None
) -> tuple[Manifest, bool]:
    read_format_file(storage)
    branch = branch or layout.MAIN_BRANCH
    branch_id = branch_id_of(storage, branch)  # raises BranchNotFoundError
    if version is None:
        return read_head(storage, branch, branch_id), False
    return resolve_version(storage, version, (branch, branch_id)), True


def open(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> Dataset:
    """Open a dataset for reading and writing.

    With ``version`` (a version id, as ``ds.version``, ``commit()`` and ``history`` give
    it, or a tag name) the handle is read-only at that version.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    storage = open_storage(url, creds)
    manifest, pinned = _open_manifest(storage, version, branch)
    if pinned:
        return ReadOnlyDataset(storage, manifest, pinned=True)  # type: ignore[return-value]
    return Dataset(storage, manifest)


def open_read_only(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> ReadOnlyDataset:
    """Open a dataset for reading only; writes raise ``ReadOnlyError``.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
    """
    storage = open_storage(url, creds)
    manifest, pinned = _open_manifest(storage, version, branch)
    return ReadOnlyDataset(storage, manifest, pinned=pinned)


def exists(url: URL, creds: dict[str, Any] | None = None) -> bool:
    """Return whether a lakefmt dataset exists at ``url``."""
    return open_storage(url, creds).exists(layout.FORMAT_FILE)


def delete(url: URL, creds: dict[str, Any] | None = None) -> None:
    """Delete a dataset and all its versions.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
    """
    storage = open_storage(url, creds)
    if not storage.exists(layout.FORMAT_FILE) and not any(
        True for _ in storage.list(layout.versions_dir(layout.MAIN_BRANCH))
    ):
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}'")
    # The format file goes first, so a crash mid-way leaves no half dataset that "exists";
    # a location with manifests but no format file (an interrupted create) is cleared too.
    storage.delete(layout.FORMAT_FILE)
    storage.delete_all()


def copy(
    src: URL,
    dst: URL,
    src_creds: dict[str, Any] | None = None,
    dst_creds: dict[str, Any] | None = None,
    *,
    progress: bool | None = None,
) -> None:
    """Copy a dataset with its whole history, tags and branches, across storages.

    A progress bar counts the files on a terminal (``progress`` forces it on or off).

    Raises:
        DatasetNotFoundError: No dataset at ``src``.
        DatasetExistsError: A dataset already exists at ``dst``.
    """
    source = open_storage(src, src_creds)
    read_format_file(source)
    target = open_storage(dst, dst_creds)
    if target.exists(layout.FORMAT_FILE):
        raise DatasetExistsError(f"a dataset already exists at '{target.url}'")
    paths = [
        p
        for p in source.list()
        if p != layout.FORMAT_FILE and not p.startswith(layout.TMP_DIR + "/")
    ]
    # Data first, then manifests, then refs, the format file last: an interrupted copy is
    # not a dataset, and no ref points at a manifest that is not there yet.
    paths.sort(key=lambda p: (p.startswith("_refs"), p.startswith(("_versions", "tree/")), p))
    groups: dict[int, list[str]] = {}
    for path in paths:
        key = 2 * path.startswith("_refs") + path.startswith(("_versions", "tree/"))
        groups.setdefault(key, []).append(path)

    # In parallel within a group (object stores are latency-bound), groups in order.
    def copy_one(path: str) -> None:
        target.write(path, source.read(path))
        bar.update(1)

    with new_pool("copy") as pool, Progress(len(paths), "copy", progress, "files") as bar:
        for _, group in sorted(groups.items()):
            list(pool.map(copy_one, group))
    target.write(layout.FORMAT_FILE, source.read(layout.FORMAT_FILE))


def like(src: URL | ReadOnlyDataset, dst: URL, creds: dict[str, Any] | None = None) -> Dataset:
    """Create an empty dataset with the schema (types, defaults, metadata) of another.

    Raises:
        DatasetExistsError: A dataset already exists at ``dst``.
    """
    source = src if isinstance(src, ReadOnlyDataset) else open_read_only(src, creds=creds)
    target = create(dst, creds=creds)
    ops: list[Operation] = [
        AddColumn(f.model_dump(exclude={"id"})) for f in source._manifest.fields
    ]
    if source._manifest.metadata:
        ops.append(SetMetadata(dict(source._manifest.metadata)))
    if ops:
        target._set_manifest(commit(target._storage, target._manifest, ops, is_commit=True))
    return target


def create_async(
    url: URL, schema: Mapping[str, Any] | None = None, creds: dict[str, Any] | None = None
) -> Future:
    """:func:`create` on the async pool; the awaitable ``Future`` gives the ``Dataset``."""
    return submit(create, url, schema, creds)


def open_async(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> Future:
    """:func:`open` on the async pool; the awaitable ``Future`` gives the ``Dataset``."""
    return submit(open, url, creds, version, branch)


def open_read_only_async(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> Future:
    """:func:`open_read_only` on the async pool; the ``Future`` gives the ``ReadOnlyDataset``."""
    return submit(open_read_only, url, creds, version, branch)
