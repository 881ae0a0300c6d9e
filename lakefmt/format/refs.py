"""Tags and branches: small JSON files under ``_refs/``, created if absent."""

from __future__ import annotations

from lakefmt.errors import (
    BranchExistsError,
    BranchInUseError,
    BranchNotFoundError,
    CommitConflictError,
    FormatError,
    InvalidNameError,
    TagExistsError,
    TagNotFoundError,
    VersionNotFoundError,
)
from lakefmt.format import layout
from lakefmt.format.commit import write_manifest_if_absent
from lakefmt.format.manifest import (
    FORMAT_VERSION,
    BranchFile,
    Manifest,
    TagFile,
    VersionRef,
    dump_document,
    now_ms,
    parse_document,
)
from lakefmt.format.versions import (
    branch_file,
    list_branches,
    list_tag_names,
    locate,
    read_head,
    resolve_ref,
)
from lakefmt.storage import Storage

#: How often deleting a branch retries writing its tombstone above a moving head.
_TOMBSTONE_ATTEMPTS = 200


def check_ref_name(name: object, kind: str) -> None:
    """Refuse names that cannot be tag or branch names (see :func:`layout.ref_name_problem`).

    Raises:
        InvalidNameError: ``name`` is not a valid name, saying why.
    """
    problem = layout.ref_name_problem(name)
    if problem is not None:
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: {problem}. A name is 1-{layout.REF_NAME_MAX} "
            "characters: '/'-separated parts of ASCII letters, digits, '_', '.', '-', '+' "
            "(like v1, v1.0, v2.0-rc1, release/2024)"
        )


def create_tag(
    storage: Storage, name: str, where: VersionRef, manifest: Manifest, message: str | None
) -> TagFile:
    """Create a tag naming the manifest stored at ``where`` (see ``versions.physical_ref``).

    Raises:
        InvalidNameError: The name is not valid.
        TagExistsError: The name is taken.
    """
    check_ref_name(name, "tag")
    info = TagFile(
        name=name,
        branch=where.branch,
        version=where.version,
        branch_id=where.branch_id,
        id=manifest.version_id,
        message=message,
        timestamp=now_ms(),
    )
    if not storage.put_if_absent(layout.tag_path(name), dump_document(info)):
        raise TagExistsError(f"tag '{name}' already exists in {storage.url}")
    return info


def read_tag(storage: Storage, name: str) -> TagFile:
    """Read a tag.

    Raises:
        TagNotFoundError: No such tag.
        FormatError: The tag file is damaged.
    """
    if layout.ref_name_problem(name) is not None and not _is_legacy_name(name):
        raise TagNotFoundError(f"no tag {name!r} in {storage.url}")
    path = layout.tag_path(name)
    try:
        raw = storage.read(path)
    except (FileNotFoundError, NotADirectoryError):
        raise TagNotFoundError(f"no tag '{name}' in {storage.url}") from None
    return parse_document(TagFile, raw, location=f"{storage.url}/{path}")


def _is_legacy_name(name: str) -> bool:
    # Format 1 allowed names that now look like version ids (16-24 hex digits).
    return isinstance(name, str) and layout.VERSION_ID_RE.match(name) is not None


def tag_exists(storage: Storage, name: str) -> bool:
    """Whether a tag called ``name`` exists."""
    if layout.ref_name_problem(name) is not None and not _is_legacy_name(name):
        return False
    return storage.exists(layout.tag_path(name))


def tag_version_id(storage: Storage, tag: TagFile) -> str:
    """The id of the version a tag names (format-1 tags store none: read the manifest).

    Raises:
        VersionNotFoundError: The tagged version is gone.
        FormatError: The tag file's ``id`` is not a version id (a damaged tag file).
    """
    if tag.id is not None and layout.parse_version_id(tag.id) is None:
        raise FormatError(
            f"{storage.url}/{layout.tag_path(tag.name)}: id {tag.id!r} is not a version id"
        )
    return tag.id if tag.id is not None else resolve_ref(storage, tag.ref).version_id


def list_tags(storage: Storage) -> list[str]:
    """Tag names, sorted."""
    return list_tag_names(storage)


def delete_tag(storage: Storage, name: str) -> None:
    """Remove a tag (the version it named stays until cleanup finds it unreferenced).

    Raises:
        TagNotFoundError: No such tag.
    """
    if not tag_exists(storage, name):
        raise TagNotFoundError(f"no tag '{name}' in {storage.url}")
    storage.delete(layout.tag_path(name))


def create_branch(storage: Storage, name: str, parent: VersionRef) -> BranchFile:
    """Create a branch starting at ``parent``; it shares every data file with it.

    Raises:
        InvalidNameError: The name is not valid.
        BranchExistsError: The name is taken (``main`` always is).
    """
    if name == layout.MAIN_BRANCH:
        raise BranchExistsError("branch 'main' already exists")
    check_ref_name(name, "branch")
    info = BranchFile(name=name, parent=parent, id=layout.new_branch_id(), timestamp=now_ms())
    if not storage.put_if_absent(layout.branch_path(name), dump_document(info)):
        raise BranchExistsError(f"branch '{name}' already exists in {storage.url}")
    return info


def _on_branch(storage: Storage, ref: VersionRef, name: str, branch_id: str | None) -> bool:
    """Whether ``ref`` names, or is stored on, the branch being deleted."""
    named = ref.branch == name and ref.branch_id in (None, branch_id)
    try:
        where, _ = locate(storage, ref)
    except (VersionNotFoundError, BranchNotFoundError, FormatError):
        return named  # unreadable already: only its name can tie it to this branch
    return named or (where.branch == name and where.branch_id == branch_id)


def branch_dependents(storage: Storage, name: str) -> tuple[list[str], list[str]]:
    """Tags and other branches that need versions of branch ``name``: (tags, branches).

    Raises:
        FormatError: A tag or branch file is damaged (whether it needs ``name`` is unknown).
    """
    info = branch_file(storage, name)
    tags = []
    for tag_name in list_tag_names(storage):
        try:
            tag = read_tag(storage, tag_name)
        except TagNotFoundError:
            continue  # deleted since the listing
        # a damaged tag or branch file (FormatError) is raised: it may name this branch,
        # and deleting the versions it needs would lose them (cleanup refuses alike)
        if _on_branch(storage, tag.ref, name, info.id):
            tags.append(tag_name)
    children = []
    for other in list_branches(storage)[1:]:
        if other == name:
            continue
        try:
            other_info = branch_file(storage, other)
        except BranchNotFoundError:
            continue  # deleted since the listing
        if _on_branch(storage, other_info.parent, name, info.id):
            children.append(other)
    return tags, children


def delete_branch(storage: Storage, name: str) -> None:
    """Delete a branch: refuse while tags or other branches need its versions, write a
    tombstone above its head (so handles still open on it fail on their next commit), then
    remove its file. Its manifests stay until cleanup; a new branch of the same name gets a
    new folder and shares nothing with this one.

    Raises:
        BranchNotFoundError: No such branch.
        BranchInUseError: Tags or branches need its versions (named in the message), or
            ``name`` is ``main``.
        CommitConflictError: Writers kept committing to it while it was being deleted.
        FormatError: A tag or branch file is damaged, so whether it needs this branch is
            unknown; nothing is deleted.
    """
    if name == layout.MAIN_BRANCH:
        raise BranchInUseError("the main branch cannot be deleted")
    info = branch_file(storage, name)
    tags, children = branch_dependents(storage, name)
    if tags or children:
        needs = []
        if tags:
            needs.append(f"tags {tags}")
        if children:
            needs.append(f"branches {children} (forked from it)")
        raise BranchInUseError(
            f"cannot delete branch '{name}': {' and '.join(needs)} still need its versions; "
            "delete or move them first (or merge the branch and keep it)",
            tags=tags,
            branches=children,
        )
    head = read_head(storage, name, info.id)
    for _attempt in range(_TOMBSTONE_ATTEMPTS):
        tombstone = Manifest(
            format_version=FORMAT_VERSION,
            dataset_id=head.dataset_id,
            branch=name,
            branch_id=info.id,
            version=head.version + 1,
            id=layout.make_version_id(head.version + 1),
            branch_deleted=True,
            parent=head.ref,
            timestamp=max(now_ms(), head.timestamp + 1),
            operation="delete-branch",
            next_field_id=head.next_field_id,
            next_fragment_id=head.next_fragment_id,
        )
        if write_manifest_if_absent(storage, tombstone):
            break
        head = read_head(storage, name, info.id, at_least=head.version + 1)
    else:
        raise CommitConflictError(
            f"could not delete branch '{name}' of {storage.url}: writers kept committing to it",
            read_version=head.version,
            latest_version=head.version,
        )
    storage.delete(layout.branch_path(name))
