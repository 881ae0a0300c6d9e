"""Every on-disk name of the format, and the form of version ids (see ``spec/format.md``)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

FORMAT_NAME = "lakefmt"
FORMAT_FILE = "_lakefmt.json"
DATA_DIR = "data"
DELETIONS_DIR = "_deletions"
UPDATES_DIR = "_updates"
TAGS_DIR = "_refs/tags"
BRANCHES_DIR = "_refs/branches"
TMP_DIR = "_tmp"
INDEXES_DIR = "_indexes"
MAIN_BRANCH = "main"
LATEST_HINT = "_latest"

TREE_DIR = "tree"

_MANIFEST_RE = re.compile(r"^(\d{20})\.json$")
#: Tag and branch names: ``/``-separated components of ASCII letters, digits, ``_ . - +``
#: (see :func:`ref_name_problem`). They become file names and appear in TQL "url@name".
REF_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$")
REF_NAME_MAX = 200
#: A version id: 8 hex digits ``r`` then the masked manifest number (section 8.3).
VERSION_ID_RE = re.compile(r"^[0-9a-f]{16,24}$")
#: Format-1 version ids (``v12``, ``dev/v12``): still accepted for format-1 manifests.
LEGACY_VERSION_ID_RE = re.compile(r"^(?:(.+)/)?v(\d+)$")
#: A branch file's ``id``: names the folder of the branch's manifests (format 2).
BRANCH_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def versions_dir(branch: str, branch_id: str | None = None) -> str:
    """Directory holding a branch's manifests.

    ``main`` uses ``_versions``; another branch ``tree/<branch id>/_versions`` (format 2),
    or ``tree/<name>/_versions`` for a branch file without an id (written by format 1).
    """
    if branch == MAIN_BRANCH:
        return "_versions"
    return f"{TREE_DIR}/{branch_id or branch}/_versions"


def manifest_path(branch: str, version: int, branch_id: str | None = None) -> str:
    """Path of manifest ``version`` of ``branch``: zero padding keeps lexical = numeric order."""
    return f"{versions_dir(branch, branch_id)}/{version:020d}.json"


def latest_hint_path(branch: str, branch_id: str | None = None) -> str:
    """Path of the hint naming a recent version of ``branch`` (never trusted alone)."""
    return f"{versions_dir(branch, branch_id)}/{LATEST_HINT}"


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


def index_segment_dir() -> str:
    """A fresh folder for the files of one index segment."""
    return f"{INDEXES_DIR}/{_unique()}"


def tag_path(name: str) -> str:
    """Path of a tag's JSON file."""
    return f"{TAGS_DIR}/{name}.json"


def branch_path(name: str) -> str:
    """Path of a branch's JSON file."""
    return f"{BRANCHES_DIR}/{name}.json"


def new_branch_id() -> str:
    """A fresh branch id: 16 random lowercase hex digits."""
    return secrets.token_hex(8)


def _mask(prefix: str) -> int:
    return int(hashlib.sha256(prefix.encode()).hexdigest()[:8], 16)


def make_version_id(number: int, prefix: str | None = None) -> str:
    """The id of manifest ``number``: ``prefix`` (8 hex digits; random if None), then
    ``number`` XOR a mask derived from the prefix, in at least 8 hex digits.

    The number is recoverable (so an id is found with one read per branch), but ids of
    consecutive versions look unrelated, and nobody can name a version without its prefix.
    """
    prefix = secrets.token_hex(4) if prefix is None else prefix
    return f"{prefix}{number ^ _mask(prefix):08x}"


def parse_version_id(text: str) -> int | None:
    """The manifest number a version id names, or None if ``text`` is not a version id."""
    if not isinstance(text, str) or not VERSION_ID_RE.match(text):
        return None
    return int(text[8:], 16) ^ _mask(text[:8])


def parse_legacy_version_id(text: str) -> tuple[str, int] | None:
    """Split a format-1 version id (``v12``, ``dev/v12``) into ``(branch, number)``."""
    match = LEGACY_VERSION_ID_RE.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return (match.group(1) or MAIN_BRANCH), int(match.group(2))


def ref_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a tag or branch name, or None if it can.

    A name is 1-200 characters: components separated by single ``/``, each of ASCII
    letters, digits, ``_``, ``.``, ``-``, ``+``, not starting with ``.`` or ``-``, not
    ending with ``.`` or ``.lock``, without ``..``; and it does not look like a version id.
    """
    if not isinstance(name, str) or not name:
        return "it must be a non-empty string"
    if len(name) > REF_NAME_MAX:
        return f"it is longer than {REF_NAME_MAX} characters"
    for part in name.split("/"):
        if not part:
            return "it has an empty component (a leading, trailing or doubled '/')"
        if not REF_COMPONENT_RE.match(part):
            return (
                f"component {part!r} has a character other than ASCII letters, digits, "
                "'_', '.', '-', '+' or starts with '.' or '-'"
            )
        if ".." in part or part.endswith((".", ".lock")):
            return f"component {part!r} contains '..' or ends with '.' or '.lock'"
    if VERSION_ID_RE.match(name):
        return "it looks like a version id (16-24 lowercase hex digits)"
    return None
