"""Tags and branches: small JSON files under ``_refs/``, created if absent."""

from __future__ import annotations

import json
from typing import Any

from lakefmt.errors import (
    BranchExistsError,
    BranchNotFoundError,
    TagExistsError,
    TagNotFoundError,
)
from lakefmt.format import layout
from lakefmt.format.manifest import VersionRef, now_ms
from lakefmt.storage import Storage


def check_ref_name(name: str, kind: str) -> None:
    """Refuse names that cannot be file names or parts of version ids.

    Raises:
        ValueError: ``name`` is empty, too long, or has characters other than letters,
            digits, ``_``, ``.`` and ``-`` (or starts with ``.``/``-``).
    """
    if (
        not isinstance(name, str)
        or not layout.REF_NAME_RE.match(name)
        or (name.startswith("v") and name[1:].isdigit())
    ):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-', and not of the form v<number>)"
        )


def create_tag(storage: Storage, name: str, ref: VersionRef, message: str | None) -> dict[str, Any]:
    """Create a tag pointing at a version.

    Raises:
        TagExistsError: The name is taken.
    """
    check_ref_name(name, "tag")
    info = {
        "name": name,
        "branch": ref.branch,
        "version": ref.version,
        "message": message,
        "timestamp": now_ms(),
    }
    if not storage.put_if_absent(layout.tag_path(name), json.dumps(info).encode()):
        raise TagExistsError(f"tag '{name}' already exists in {storage.url}")
    return info


def read_tag(storage: Storage, name: str) -> dict[str, Any]:
    """Read a tag.

    Raises:
        TagNotFoundError: No such tag.
    """
    try:
        data: dict[str, Any] = json.loads(storage.read(layout.tag_path(name)))
    except FileNotFoundError:
        raise TagNotFoundError(f"no tag '{name}' in {storage.url}") from None
    return data


def list_tags(storage: Storage) -> list[str]:
    """Tag names, sorted."""
    return sorted(
        p.rsplit("/", 1)[-1][: -len(".json")]
        for p in storage.list(layout.TAGS_DIR)
        if p.endswith(".json")
    )


def delete_tag(storage: Storage, name: str) -> None:
    """Remove a tag (the version it named stays until cleanup finds it unreferenced).

    Raises:
        TagNotFoundError: No such tag.
    """
    if not storage.exists(layout.tag_path(name)):
        raise TagNotFoundError(f"no tag '{name}' in {storage.url}")
    storage.delete(layout.tag_path(name))


def create_branch(storage: Storage, name: str, parent: VersionRef) -> dict[str, Any]:
    """Create a branch starting at ``parent``; it shares every data file with it.

    Raises:
        BranchExistsError: The name is taken (``main`` always is).
    """
    check_ref_name(name, "branch")
    if name == layout.MAIN_BRANCH:
        raise BranchExistsError("branch 'main' already exists")
    info = {"name": name, "parent": parent.model_dump(), "timestamp": now_ms()}
    if not storage.put_if_absent(layout.branch_path(name), json.dumps(info).encode()):
        raise BranchExistsError(f"branch '{name}' already exists in {storage.url}")
    return info


def delete_branch(storage: Storage, name: str) -> None:
    """Remove a branch's ref and manifests (shared data files stay until cleanup).

    Raises:
        BranchNotFoundError: No such branch.
        ValueError: ``name`` is ``main``.
    """
    if name == layout.MAIN_BRANCH:
        raise ValueError("the main branch cannot be deleted")
    if not storage.exists(layout.branch_path(name)):
        raise BranchNotFoundError(f"no branch '{name}' in {storage.url}")
    # Manifests first, the ref last: a crash half-way leaves the branch existing (delete it
    # again), never a new branch of the same name that inherits old manifests.
    for path in sorted(storage.list(f"tree/{name}"), reverse=True):
        storage.delete(path)
    storage.delete(layout.branch_path(name))
