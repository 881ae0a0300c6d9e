"""Finding manifests: the latest version of a branch, a version by number, the history chain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pydantic

from lakefmt.errors import (
    BranchNotFoundError,
    DatasetNotFoundError,
    FormatError,
    VersionNotFoundError,
)
from lakefmt.format import layout
from lakefmt.format.manifest import Manifest, VersionRef, check_format_version, parse_manifest
from lakefmt.storage import Storage


def read_format_file(storage: Storage) -> dict[str, object]:
    """Read and check ``_lakefmt.json``.

    Raises:
        DatasetNotFoundError: No dataset at this root.
        FormatError: The file is damaged or of a newer format version.
    """
    try:
        raw = storage.read(layout.FORMAT_FILE)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}'") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{storage.url}/{layout.FORMAT_FILE} is not valid JSON") from exc
    if not isinstance(data, dict) or data.get("format") != layout.FORMAT_NAME:
        raise FormatError(f"{storage.url}/{layout.FORMAT_FILE} is not a lakefmt format file")
    check_format_version(data.get("format_version"), location=f"{storage.url}/{layout.FORMAT_FILE}")
    return data


def read_manifest(storage: Storage, branch: str, version: int) -> Manifest:
    """Read one manifest.

    Raises:
        VersionNotFoundError: It does not exist (never written, or removed by cleanup).
        FormatError: It is damaged.
    """
    path = layout.manifest_path(branch, version)
    try:
        raw = storage.read(path)
    except FileNotFoundError:
        raise VersionNotFoundError(
            f"version {layout.version_id(branch, version)} does not exist in {storage.url}"
        ) from None
    location = f"{storage.url}/{path}"
    manifest = parse_manifest(raw, location=location)
    # a manifest copied over another name (an old head restored over the newest, say) is
    # intact but lies about where it is: serving it would revert the branch silently
    if manifest.version != version or manifest.branch != branch:
        raise FormatError(
            f"{location}: the manifest says it is version {manifest.version} of branch "
            f"'{manifest.branch}', its name says version {version} of '{branch}'; the file "
            "was copied or moved over another"
        )
    return manifest


def _highest_listed(storage: Storage, branch: str) -> int | None:
    numbers = [
        n
        for n in (layout.parse_manifest_name(p) for p in storage.list(layout.versions_dir(branch)))
        if n is not None
    ]
    return max(numbers) if numbers else None


def latest_version_number(
    storage: Storage, branch: str, *, at_least: int | None = None
) -> int | None:
    """The highest manifest number of ``branch`` (the truth), using the hint to start near it."""
    start = at_least
    if start is None:
        try:
            start = int(storage.read(layout.latest_hint_path(branch)).decode().strip())
        except (FileNotFoundError, ValueError):
            start = None
        if start is not None and not storage.exists(layout.manifest_path(branch, start)):
            start = None  # stale hint (e.g. cleanup removed that manifest): list instead
    if start is None:
        start = _highest_listed(storage, branch)
        if start is None:
            return None
    while storage.exists(layout.manifest_path(branch, start + 1)):
        start += 1
    return start


def branch_info(storage: Storage, branch: str) -> dict[str, object]:
    """Read a branch's ref file.

    Raises:
        BranchNotFoundError: No such branch.
    """
    try:
        raw = storage.read(layout.branch_path(branch))
    except FileNotFoundError:
        raise BranchNotFoundError(f"no branch '{branch}' in {storage.url}") from None
    location = f"{storage.url}/{layout.branch_path(branch)}"
    try:
        data = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError too
        raise FormatError(f"{location}: branch file is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("parent"), dict):
        raise FormatError(f"{location}: branch file has no parent version")
    return data


def read_latest(storage: Storage, branch: str, *, at_least: int | None = None) -> Manifest:
    """Read the newest manifest of ``branch``.

    A branch with no manifest of its own yet reads as its parent version.

    Raises:
        DatasetNotFoundError: The main branch has no manifest.
        BranchNotFoundError: ``branch`` does not exist.
    """
    number = latest_version_number(storage, branch, at_least=at_least)
    if number is not None:
        return read_manifest(storage, branch, number)
    if branch == layout.MAIN_BRANCH:
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}' (no manifest)")
    parent = branch_parent(storage, branch)
    # The parent may itself be a branch without manifests of its own: resolve recursively.
    return resolve_ref(storage, parent).model_copy(update={"branch": branch})


def branch_parent(storage: Storage, branch: str) -> VersionRef:
    """The version a branch was forked from, from its ref file.

    Raises:
        BranchNotFoundError: No such branch.
        FormatError: The ref file is damaged.
    """
    info = branch_info(storage, branch)
    try:
        return VersionRef.model_validate(info["parent"])
    except pydantic.ValidationError as exc:
        raise FormatError(
            f"{storage.url}/{layout.branch_path(branch)}: branch file has an invalid parent: "
            f"{exc.errors()[0]['msg']}"
        ) from exc


def resolve_ref(storage: Storage, ref: VersionRef) -> Manifest:
    """Read the manifest a (branch, version) points to, following a fresh branch to its parent."""
    try:
        return read_manifest(storage, ref.branch, ref.version)
    except VersionNotFoundError:
        if ref.branch == layout.MAIN_BRANCH:
            raise
        parent = branch_parent(storage, ref.branch)
        if parent.version != ref.version:
            raise
        return resolve_ref(storage, parent).model_copy(update={"branch": ref.branch})


def iter_commits(storage: Storage, head: Manifest) -> Iterator[Manifest]:
    """Yield the commits on ``head``'s ancestry, newest first (``head`` itself if a commit)."""
    current: Manifest | None = head if head.is_commit else None
    ref = head.previous_commit if current is None else None
    while True:
        if current is None:
            if ref is None:
                return
            try:
                current = resolve_ref(storage, ref)
            except VersionNotFoundError:
                return
        yield current
        ref = current.previous_commit
        current = None


def list_branches(storage: Storage) -> list[str]:
    """Names of every branch, ``main`` first."""
    names = sorted(
        p.rsplit("/", 1)[-1][: -len(".json")]
        for p in storage.list(layout.BRANCHES_DIR)
        if p.endswith(".json")
    )
    return [layout.MAIN_BRANCH, *names]
