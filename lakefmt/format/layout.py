"""Every on-disk name of format version 1, and nothing else (see ``spec/format.md``)."""

from __future__ import annotations

import re
import uuid

FORMAT_NAME = "lakefmt"
FORMAT_FILE = "_lakefmt.json"
DATA_DIR = "data"
DELETIONS_DIR = "_deletions"
UPDATES_DIR = "_updates"
TAGS_DIR = "_refs/tags"
BRANCHES_DIR = "_refs/branches"
TMP_DIR = "_tmp"
MAIN_BRANCH = "main"
LATEST_HINT = "_latest"

_MANIFEST_RE = re.compile(r"^(\d{20})\.json$")
# Names become file names and appear in version ids and TQL "url@name": keep them plain.
REF_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def versions_dir(branch: str) -> str:
    """Directory holding a branch's manifests."""
    return "_versions" if branch == MAIN_BRANCH else f"tree/{branch}/_versions"


def manifest_path(branch: str, version: int) -> str:
    """Path of manifest ``version`` of ``branch``: zero padding keeps lexical = numeric order."""
    return f"{versions_dir(branch)}/{version:020d}.json"


def latest_hint_path(branch: str) -> str:
    """Path of the hint naming a recent version of ``branch`` (never trusted alone)."""
    return f"{versions_dir(branch)}/{LATEST_HINT}"


def parse_manifest_name(name: str) -> int | None:
    """Return the version number of a manifest file name, or None for other files."""
    match = _MANIFEST_RE.match(name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def _unique() -> str:
    return uuid.uuid4().hex


def data_file_path() -> str:
    """A fresh data file name; names are never reused, so files are immutable."""
    return f"{DATA_DIR}/{_unique()}.parquet"


def deletion_file_path(fragment_id: int) -> str:
    """A fresh deletion file name for a fragment."""
    return f"{DELETIONS_DIR}/{fragment_id}-{_unique()}.parquet"


def update_file_path(fragment_id: int, field_id: int) -> str:
    """A fresh cell-update file name for one column of a fragment."""
    return f"{UPDATES_DIR}/{fragment_id}-{field_id}-{_unique()}.parquet"


def tag_path(name: str) -> str:
    """Path of a tag's JSON file."""
    return f"{TAGS_DIR}/{name}.json"


def branch_path(name: str) -> str:
    """Path of a branch's JSON file."""
    return f"{BRANCHES_DIR}/{name}.json"


def version_id(branch: str, version: int) -> str:
    """The user-facing id of a version: ``v12`` on main, ``dev/v12`` on branch ``dev``."""
    return f"v{version}" if branch == MAIN_BRANCH else f"{branch}/v{version}"


def parse_version_id(text: str) -> tuple[str, int] | None:
    """Split a version id into ``(branch, number)``; None if ``text`` is not a version id."""
    branch, _, tail = text.rpartition("/")
    if not tail.startswith("v") or not tail[1:].isdigit():
        return None
    return (branch or MAIN_BRANCH), int(tail[1:])
