"""The dataset as a whole on storage: create it, open a branch head or a named version,
order its files for a copy, delete it (``spec/format.md`` sections 3, 8 and 12).

The dataset layer calls these with a :class:`~lakefmt.storage.Storage`; every on-disk name
and every ordering rule they follow lives here and in :mod:`lakefmt.format.layout`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence

from lakefmt.errors import (
    BranchNotFoundError,
    DatasetExistsError,
    DatasetNotFoundError,
    VersionNotFoundError,
)
from lakefmt.format import layout, refs
from lakefmt.format.commit import write_manifest_if_absent
from lakefmt.format.manifest import (
    FORMAT_VERSION,
    Field,
    FormatFile,
    Manifest,
    VersionRef,
    dump_document,
    now_ms,
)
from lakefmt.format.versions import (
    branch_id_of,
    find_version,
    read_format_file,
    read_head,
    resolve_ref,
)
from lakefmt.storage import Storage
from lakefmt.types import Type

__all__ = [
    "CopyOrder",
    "copy_order",
    "create_dataset",
    "dataset_exists",
    "delete_dataset",
    "open_head",
    "open_version",
    "resolve_version",
]


def dataset_exists(storage: Storage) -> bool:
    """Whether a dataset exists in ``storage``: its format file is there (written last by
    :func:`create_dataset`, so an interrupted create is not a dataset)."""
    return storage.exists(layout.FORMAT_FILE)


def create_dataset(storage: Storage, columns: Sequence[tuple[str, Type]]) -> Manifest:
    """Create a dataset: version 0 of ``main`` with these columns, then the format file.

    Returns:
        The first manifest.

    Raises:
        DatasetExistsError: A dataset exists in ``storage``, or one is being created there
            (or an earlier create was interrupted).
    """
    fields = [
        Field(id=i, name=name, type=dtype.to_json(), arrow_type=str(dtype.storage_type))
        for i, (name, dtype) in enumerate(columns)
    ]
    if dataset_exists(storage):
        raise DatasetExistsError(f"a dataset already exists at '{storage.url}'")
    dataset_id = uuid.uuid4().hex
    manifest = Manifest(
        dataset_id=dataset_id,
        branch=layout.MAIN_BRANCH,
        version=0,
        id=layout.make_version_id(0),
        timestamp=now_ms(),
        is_commit=True,
        message=None,
        operation="create",
        fields=fields,
        next_field_id=len(fields),
    )
    if not write_manifest_if_absent(storage, manifest):
        raise DatasetExistsError(
            f"a dataset is being created at '{storage.url}', or an earlier create was "
            "interrupted (lakefmt.delete(url) clears it)"
        )
    # Written last: a dataset "exists" only once its first version is complete.
    format_file = FormatFile(
        format=layout.FORMAT_NAME,
        format_version=FORMAT_VERSION,
        dataset_id=dataset_id,
        created=now_ms(),
    )
    storage.write(layout.FORMAT_FILE, dump_document(format_file))
    return manifest


def _branch(storage: Storage, branch: str | None) -> tuple[str, str | None]:
    read_format_file(storage)
    name = branch or layout.MAIN_BRANCH
    return name, branch_id_of(storage, name)  # raises BranchNotFoundError


def open_head(storage: Storage, branch: str | None = None) -> Manifest:
    """The newest manifest of ``branch`` (default ``main``), the format file checked first.

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    name, branch_id = _branch(storage, branch)
    return read_head(storage, name, branch_id)


def open_version(storage: Storage, version: str, branch: str | None = None) -> Manifest:
    """The manifest ``version`` names (see :func:`resolve_version`), looked up on ``branch``
    (default ``main``) first; the format file is checked first.

    Raises:
        DatasetNotFoundError: No dataset in ``storage``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    name, branch_id = _branch(storage, branch)
    return resolve_version(storage, version, (name, branch_id))


def resolve_version(
    storage: Storage, version: str, prefer: tuple[str, str | None] | None = None
) -> Manifest:
    """Find the manifest named by a version id or a tag name.

    A version id (16 hex digits, from ``ds.version``, ``commit()`` or ``history``) is looked
    up on the ``prefer`` branch (name, branch id) first, then on the others. Any other text
    is a tag name; failing that, ``v12`` or ``dev/v12`` names a version written in format 1
    (ids of datasets written before format 2 keep working).

    Raises:
        VersionNotFoundError: Neither a version of this dataset nor a tag.
    """
    if not isinstance(version, str):
        raise VersionNotFoundError(
            f"a version is a version id or a tag name (a string), not {version!r}"
        )
    if layout.parse_version_id(version) is not None:
        try:
            return find_version(storage, version, prefer)
        except VersionNotFoundError:
            if not refs.tag_exists(storage, version):  # a format-1 tag named like an id
                raise
    if refs.tag_exists(storage, version):
        tag = refs.read_tag(storage, version)
        try:
            return resolve_ref(storage, tag.ref)
        except (VersionNotFoundError, BranchNotFoundError) as exc:
            raise VersionNotFoundError(
                f"tag '{version}' names a version that is gone: {exc}"
            ) from None
    legacy = layout.parse_legacy_version_id(version)
    if legacy is not None:
        try:
            manifest = resolve_ref(storage, VersionRef(branch=legacy[0], version=legacy[1]))
        except (VersionNotFoundError, BranchNotFoundError):
            manifest = None
        if manifest is not None and manifest.format_version == 1:
            return manifest
        raise VersionNotFoundError(
            f"{version!r} is not a tag of {storage.url}, and ids like 'v12' name only "
            "versions written in format 1; version ids are 16 hex digits (see ds.history)"
        )
    raise VersionNotFoundError(
        f"{version!r} is neither a version id (16 hex digits, see ds.history) nor a tag of "
        f"{storage.url}"
    )


@dataclasses.dataclass(frozen=True)
class CopyOrder:
    """The files of a dataset in the order a copy writes them.

    Data files first, then manifests, then tag and branch files, and the format file
    ``last``: an interrupted copy is not a dataset, and no ref points at a manifest that is
    not there yet. The files of one group may be written in any order (in parallel).
    """

    groups: list[list[str]]
    """Written one group after the other."""
    last: str = layout.FORMAT_FILE
    """Written after every group: from then on the copy is a dataset."""

    @property
    def num_files(self) -> int:
        """Files in the groups (``last`` not counted)."""
        return sum(len(group) for group in self.groups)


#: Tag and branch files live below this folder.
_REFS_DIR = layout.TAGS_DIR.rsplit("/", 1)[0]


def _copy_stage(path: str) -> int:
    """0 for data (and any other file), 1 for manifests and hints, 2 for refs."""
    if path.startswith(_REFS_DIR):
        return 2
    if path.startswith((layout.versions_dir(layout.MAIN_BRANCH), layout.TREE_DIR + "/")):
        return 1
    return 0


def copy_order(paths: Iterable[str]) -> CopyOrder:
    """Order the listed files of a dataset for a copy (see :class:`CopyOrder`); temporary
    files and the format file itself are left out of the groups."""
    kept = sorted(
        p for p in paths if p != layout.FORMAT_FILE and not p.startswith(layout.TMP_DIR + "/")
    )
    groups: dict[int, list[str]] = {}
    for path in kept:
        groups.setdefault(_copy_stage(path), []).append(path)
    return CopyOrder([group for _, group in sorted(groups.items())])


def delete_dataset(storage: Storage) -> None:
    """Delete a dataset and all its versions: the format file first, so a crash midway
    leaves no half dataset that "exists"; a location with manifests but no format file (an
    interrupted create) is cleared too.

    Raises:
        DatasetNotFoundError: Neither a format file nor a manifest of ``main`` is there.
    """
    if not dataset_exists(storage) and not any(
        True for _ in storage.list(layout.versions_dir(layout.MAIN_BRANCH))
    ):
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}'")
    storage.delete(layout.FORMAT_FILE)
    storage.delete_all()
