"""Finding manifests: the head of a branch, a version by ref or by id, the history chain."""

from __future__ import annotations

from collections.abc import Iterator

from lakefmt.errors import (
    BranchNotFoundError,
    DatasetNotFoundError,
    FormatError,
    VersionNotFoundError,
)
from lakefmt.format import layout
from lakefmt.format.manifest import (
    BranchFile,
    FormatFile,
    Manifest,
    VersionRef,
    check_format_version,
    parse_document,
    parse_manifest,
)
from lakefmt.storage import Storage


def read_format_file(storage: Storage) -> FormatFile:
    """Read and check ``_lakefmt.json``.

    Raises:
        DatasetNotFoundError: No dataset at this root.
        FormatError: The file is damaged or of a newer format version.
    """
    location = f"{storage.url}/{layout.FORMAT_FILE}"
    try:
        raw = storage.read(layout.FORMAT_FILE)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}'") from None
    document = parse_document(FormatFile, raw, location=location)
    if document.format != layout.FORMAT_NAME:
        raise FormatError(f"{location} is not a lakefmt format file")
    check_format_version(document.format_version, location=location)
    return document


def branch_file(storage: Storage, branch: str) -> BranchFile:
    """Read a branch's file.

    Raises:
        BranchNotFoundError: No such branch.
        FormatError: The file is damaged.
    """
    path = layout.branch_path(branch)
    try:
        raw = storage.read(path)
    except (FileNotFoundError, NotADirectoryError):
        raise BranchNotFoundError(f"no branch '{branch}' in {storage.url}") from None
    document = parse_document(BranchFile, raw, location=f"{storage.url}/{path}")
    if document.name != branch:
        raise FormatError(f"{storage.url}/{path} names branch {document.name!r}, not {branch!r}")
    return document


def branch_info(storage: Storage, branch: str) -> dict[str, object]:
    """A branch's file as a dict (``name``, ``parent``, ``id``, ``timestamp``).

    Raises:
        BranchNotFoundError: No such branch.
        FormatError: The file is damaged.
    """
    return branch_file(storage, branch).model_dump(mode="json")


def branch_id_of(storage: Storage, branch: str) -> str | None:
    """The id naming ``branch``'s folder: None for ``main`` and for format-1 branches.

    Raises:
        BranchNotFoundError: No such branch.
    """
    return None if branch == layout.MAIN_BRANCH else branch_file(storage, branch).id


def read_manifest(
    storage: Storage, branch: str, version: int, branch_id: str | None = None
) -> Manifest:
    """Read one manifest from the folder of (``branch``, ``branch_id``).

    Raises:
        VersionNotFoundError: It does not exist (never written, or removed by cleanup).
        FormatError: It is damaged.
    """
    path = layout.manifest_path(branch, version, branch_id)
    try:
        raw = storage.read(path)
    except (FileNotFoundError, NotADirectoryError):
        raise VersionNotFoundError(
            f"version {version} of branch '{branch}' does not exist in {storage.url}"
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


def _highest_listed(storage: Storage, branch: str, branch_id: str | None) -> int | None:
    numbers = [
        n
        for n in (
            layout.parse_manifest_name(p)
            for p in storage.list(layout.versions_dir(branch, branch_id))
        )
        if n is not None
    ]
    return max(numbers) if numbers else None


def latest_version_number(
    storage: Storage,
    branch: str,
    branch_id: str | None = None,
    *,
    at_least: int | None = None,
) -> int | None:
    """The highest manifest number in a branch folder (the truth), starting near the hint."""
    start = at_least
    if start is None:
        try:
            raw = storage.read(layout.latest_hint_path(branch, branch_id))
            start = int(raw.decode().strip())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            start = None
        if start is not None and not storage.exists(layout.manifest_path(branch, start, branch_id)):
            start = None  # stale hint (e.g. cleanup removed that manifest): list instead
    if start is None:
        start = _highest_listed(storage, branch, branch_id)
        if start is None:
            return None
    while storage.exists(layout.manifest_path(branch, start + 1, branch_id)):
        start += 1
    return start


def read_head(
    storage: Storage, branch: str, branch_id: str | None, *, at_least: int | None = None
) -> Manifest:
    """The newest manifest of one branch folder (the incarnation ``branch_id`` of ``branch``).

    A branch without a manifest of its own reads as its fork point. A handle passes the
    ``branch_id`` it was opened with, so it never moves into a later branch of the same name.

    Raises:
        DatasetNotFoundError: ``main`` has no manifest.
        BranchNotFoundError: The branch does not exist, or was deleted (its tombstone is the
            head, or its file now names another folder).
    """
    number = latest_version_number(storage, branch, branch_id, at_least=at_least)
    if number is not None:
        manifest = read_manifest(storage, branch, number, branch_id)
        if manifest.branch_deleted:
            raise BranchNotFoundError(
                f"branch '{branch}' of {storage.url} was deleted; nothing more can be "
                "committed to it (open the dataset again; a new branch of that name is "
                "another branch)"
            )
        return manifest
    if branch == layout.MAIN_BRANCH:
        raise DatasetNotFoundError(f"no lakefmt dataset at '{storage.url}' (no manifest)")
    info = branch_file(storage, branch)
    if info.id != branch_id:
        raise BranchNotFoundError(
            f"branch '{branch}' of {storage.url} was deleted (a branch of that name now is "
            "another branch); open the dataset again"
        )
    # The parent may itself be a branch without manifests of its own: resolve recursively.
    return resolve_ref(storage, info.parent).model_copy(
        update={"branch": branch, "branch_id": branch_id}
    )


def read_latest(storage: Storage, branch: str, *, at_least: int | None = None) -> Manifest:
    """Read the newest manifest of the branch called ``branch`` now.

    Raises:
        DatasetNotFoundError: The main branch has no manifest.
        BranchNotFoundError: ``branch`` does not exist.
    """
    return read_head(storage, branch, branch_id_of(storage, branch), at_least=at_least)


def locate(storage: Storage, ref: VersionRef) -> tuple[VersionRef, Manifest]:
    """Where the manifest a ref names is stored, and the manifest (read as ``ref`` names it).

    A ref to a branch without that manifest (a fresh branch's fork point) is followed to
    the branch's parent. A ref without ``branch_id`` (format 1, or built from a name) reads
    the branch called ``ref.branch`` now.

    Raises:
        VersionNotFoundError: No such version.
        BranchNotFoundError: A branch the ref passes through does not exist.
    """
    branch_id = ref.branch_id
    if branch_id is None and ref.branch != layout.MAIN_BRANCH:
        try:
            branch_id = branch_id_of(storage, ref.branch)
        except BranchNotFoundError:
            branch_id = None  # a format-1 ref to a deleted branch: its old folder, if any
    try:
        manifest = read_manifest(storage, ref.branch, ref.version, branch_id)
    except VersionNotFoundError:
        if ref.branch == layout.MAIN_BRANCH:
            raise
        try:
            info = branch_file(storage, ref.branch)
        except BranchNotFoundError:
            raise VersionNotFoundError(
                f"version {ref.version} of branch '{ref.branch}' does not exist in "
                f"{storage.url} (the branch was deleted)"
            ) from None
        if info.id != branch_id or info.parent.version != ref.version:
            raise
        where, manifest = locate(storage, info.parent)
        return where, manifest.model_copy(update={"branch": ref.branch, "branch_id": branch_id})
    where = VersionRef(branch=ref.branch, version=ref.version, branch_id=branch_id)
    return where, manifest


def resolve_ref(storage: Storage, ref: VersionRef) -> Manifest:
    """Read the manifest a (branch, version) points to, following a fresh branch to its parent.

    Raises:
        VersionNotFoundError: No such version.
    """
    return locate(storage, ref)[1]


def physical_ref(storage: Storage, manifest: Manifest) -> VersionRef:
    """The ref of the manifest file holding ``manifest`` (a fresh branch's head is stored
    on its parent), for tags and branches, which must not depend on the branch they were
    made on unless their version is stored there."""
    return locate(storage, manifest.ref)[0]


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
            except (VersionNotFoundError, BranchNotFoundError):
                return
        yield current
        ref = current.previous_commit
        current = None


def _names_below(storage: Storage, prefix: str) -> list[str]:
    start = len(prefix) + 1
    return sorted(p[start : -len(".json")] for p in storage.list(prefix) if p.endswith(".json"))


def list_branches(storage: Storage) -> list[str]:
    """Names of every branch, ``main`` first."""
    return [layout.MAIN_BRANCH, *_names_below(storage, layout.BRANCHES_DIR)]


def list_tag_names(storage: Storage) -> list[str]:
    """Names of every tag, sorted."""
    return _names_below(storage, layout.TAGS_DIR)


def find_version(
    storage: Storage, version_id: str, prefer: tuple[str, str | None] | None = None
) -> Manifest:
    """The manifest whose id is ``version_id``.

    The id gives the manifest number, so each branch costs one read: the preferred branch
    (a handle's own) first, then ``main``, then the others (one listing of branch files).

    Raises:
        VersionNotFoundError: No manifest has that id (never written, or removed by cleanup).
    """
    number = layout.parse_version_id(version_id)
    if number is None:
        raise VersionNotFoundError(f"{version_id!r} is not a version id")
    tried: set[tuple[str, str | None]] = set()

    def candidates() -> Iterator[tuple[str, str | None]]:
        if prefer is not None:
            yield prefer
        yield layout.MAIN_BRANCH, None
        for name in list_branches(storage)[1:]:
            try:
                yield name, branch_file(storage, name).id
            except (BranchNotFoundError, FormatError):
                continue  # deleted meanwhile, or damaged: it cannot hold the version

    for branch, branch_id in candidates():
        if (branch, branch_id) in tried:
            continue
        tried.add((branch, branch_id))
        try:
            manifest = read_manifest(storage, branch, number, branch_id)
        except VersionNotFoundError:
            continue
        if manifest.id == version_id and not manifest.branch_deleted:
            return manifest
    raise VersionNotFoundError(
        f"no version {version_id!r} in {storage.url} (never written, or a flushed version "
        "removed by cleanup)"
    )
