"""The manifest: the one JSON document that defines a version (``spec/format.md``).

A manifest file is compact JSON whose last member is ``"checksum":"sha256:<hex>"``; the hex
digest covers every byte before the ``,"checksum"`` suffix, so a truncated or edited file is
detected. Readers refuse a newer ``format_version`` and unknown reader features.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from lakefmt.errors import FormatError

FORMAT_VERSION = 1
#: Features this implementation can read; a manifest naming another one is refused.
READER_FEATURES: frozenset[str] = frozenset({"deletion_files", "update_files", "column_groups"})
WRITER_FEATURES: frozenset[str] = READER_FEATURES

_CHECKSUM_KEY = b',"checksum":"sha256:'
_CHECKSUM_SUFFIX_LEN = len(_CHECKSUM_KEY) + 64 + 2  # hex digest, closing quote and brace


class _Model(BaseModel):
    # Unknown keys are ignored so older readers can read newer optional fields.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Field(_Model):
    """One column of the schema."""

    id: int
    """Stable field id; data files carry it as ``PARQUET:field_id``."""
    name: str
    type: dict[str, Any]
    """The lakefmt type: ``{"name": "int32"}`` or ``{"name": "lakefmt.image", "params": {...}}``."""
    arrow_type: str = ""
    """The Arrow storage type as text, for readers without lakefmt (informative)."""
    default: Any = None
    """JSON default for rows written before the column existed and for appends without it."""
    has_default: bool = False
    metadata: dict[str, Any] = {}


class DataFile(_Model):
    """A Parquet file holding some columns (a column group) of a fragment."""

    path: str
    field_ids: list[int]
    """Field id of each top-level Parquet column, in file order."""
    size: int
    row_groups: list[int]
    """Row count of each row group, so a read of a few rows opens only their groups."""


class DeletionFile(_Model):
    """Sorted positions (within the fragment) of deleted rows."""

    path: str
    count: int
    size: int | None = None
    """Bytes of the file, checked on read (absent in manifests written before it was
    recorded)."""


class UpdateFile(_Model):
    """New values for some cells of one column of a fragment: ``position``, ``value``."""

    field_id: int
    path: str
    count: int
    size: int | None = None
    """Bytes of the file, checked on read (absent where not recorded)."""


class Fragment(_Model):
    """A run of rows: column groups, plus optional deletions and cell updates."""

    id: int
    rows: int
    """Physical rows, including deleted ones."""
    files: list[DataFile]
    deletion: DeletionFile | None = None
    updates: list[UpdateFile] = []

    @property
    def live_rows(self) -> int:
        """Rows not deleted."""
        return self.rows - (self.deletion.count if self.deletion else 0)


class VersionRef(_Model):
    """A version of a branch."""

    branch: str
    version: int


class MergeRecord(_Model):
    """Where the last merge of a branch into this one left off, for the next merge."""

    source_version: int
    """The source branch's commit that was merged."""
    target_version: int
    """The version the merge created on this branch."""
    fragments: dict[int, int] = {}
    """Source fragment id -> fragment id here, for fragments the merge appended."""
    fields: dict[int, int] = {}
    """Source field id -> field id here, for columns the merge added."""


class Manifest(_Model):
    """The complete description of one version of a dataset branch."""

    format_version: int = FORMAT_VERSION
    reader_features: list[str] = sorted(READER_FEATURES)
    writer_features: list[str] = sorted(WRITER_FEATURES)
    dataset_id: str
    branch: str
    version: int
    parent: VersionRef | None = None
    timestamp: int
    """Milliseconds since the epoch; never less than the parent's."""
    is_commit: bool = False
    message: str | None = None
    previous_commit: VersionRef | None = None
    """The closest earlier commit on this version's ancestry, for walking history."""
    operation: str = ""
    """What produced this version (``append``, ``delete``, ``commit``...), informative."""
    fields: list[Field] = []
    next_field_id: int = 0
    fragments: list[Fragment] = []
    next_fragment_id: int = 0
    metadata: dict[str, Any] = {}
    merges: dict[str, MergeRecord] = {}
    """Per source branch, the last merge into this branch."""

    @property
    def ref(self) -> VersionRef:
        """This manifest's (branch, version)."""
        return VersionRef(branch=self.branch, version=self.version)

    @property
    def num_rows(self) -> int:
        """Live rows of the version."""
        return sum(f.live_rows for f in self.fragments)

    def field_by_name(self, name: str) -> Field | None:
        """The field called ``name``, or None."""
        return next((f for f in self.fields if f.name == name), None)


def now_ms() -> int:
    """The current time in milliseconds."""
    return int(time.time() * 1000)


def dump_manifest(manifest: Manifest) -> bytes:
    """Serialise a manifest with its trailing checksum."""
    body = json.dumps(
        manifest.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False
    ).encode()
    digest = hashlib.sha256(body[:-1]).hexdigest()
    return body[:-1] + _CHECKSUM_KEY + digest.encode() + b'"}'


def parse_manifest(raw: bytes, *, location: str) -> Manifest:
    """Parse and verify a manifest file.

    Raises:
        FormatError: The file is truncated, damaged, not a manifest, of a newer format
            version, or needs a reader feature this version of lakefmt lacks.
    """
    if len(raw) < _CHECKSUM_SUFFIX_LEN or raw[-_CHECKSUM_SUFFIX_LEN:-66] != _CHECKSUM_KEY:
        raise FormatError(f"{location}: manifest is truncated or damaged (no checksum at its end)")
    body, digest = raw[:-_CHECKSUM_SUFFIX_LEN], raw[-66:-2]
    if hashlib.sha256(body).hexdigest().encode() != digest or raw[-2:] != b'"}':
        raise FormatError(f"{location}: manifest checksum mismatch; the file is damaged")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{location}: manifest is not valid JSON: {exc}") from exc
    check_format_version(data.get("format_version"), location=location)
    unknown = set(data.get("reader_features") or ()) - READER_FEATURES
    if unknown:
        raise FormatError(
            f"{location}: needs reader features {sorted(unknown)} that this lakefmt lacks; upgrade"
        )
    try:
        return Manifest.model_validate(data)
    except pydantic.ValidationError as exc:
        raise FormatError(f"{location}: not a valid lakefmt manifest: {exc}") from exc


def check_format_version(version: Any, *, location: str) -> None:
    """Refuse files written in a format version this library cannot read.

    Raises:
        FormatError: ``version`` is missing or newer than :data:`FORMAT_VERSION`.
    """
    if not isinstance(version, int) or version < 1:
        raise FormatError(f"{location}: missing or invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{location}: written in lakefmt format version {version}, newer than the "
            f"{FORMAT_VERSION} this library reads; upgrade lakefmt"
        )
