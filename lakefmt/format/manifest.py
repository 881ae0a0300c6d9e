"""The JSON documents of the format: the manifest, which defines a version, and the small
format, tag and branch files (``spec/format.md``).

A manifest file is compact JSON whose last member is ``"checksum":"sha256:<hex>"``; the hex
digest covers every byte before the ``,"checksum"`` suffix, so a truncated or edited file is
detected. Readers refuse a newer ``format_version`` and unknown reader features.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, model_validator

from lakefmt.errors import FormatError
from lakefmt.format import layout

FORMAT_VERSION = 2
#: Features this implementation can read; a manifest naming another one is refused.
READER_FEATURES: frozenset[str] = frozenset({"deletion_files", "update_files", "column_groups"})
#: Features a writer must implement to write a manifest naming them: a writer that does not
#: know ``transactions`` would drop the transaction records (``spec/format.md``, 10.4).
WRITER_FEATURES: frozenset[str] = READER_FEATURES | {"transactions"}
#: The writer features of a new dataset (``transactions`` is added by the first
#: transaction, so datasets that never use one stay writable by older writers).
BASE_WRITER_FEATURES: frozenset[str] = READER_FEATURES

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
    """JSON default for rows written before the column existed and for appends without it,
    in the encoding ``default_encoding`` names (:mod:`lakefmt.format.defaults`)."""
    has_default: bool = False
    default_encoding: Literal[1, 2] = 2
    """How ``default`` is encoded: 2, the stored cell directed by the column's type; 1, the
    user's value as format version 1 wrote it (absent in format-1 manifests: 1)."""
    metadata: dict[str, Any] = {}


class ColumnStats(_Model):
    """Bounds of one column of one data file, from the Parquet footer written with it.

    ``min``/``max`` bound every value of the column in the file that is neither null nor
    NaN (``min <= v <= max``; either may be a looser bound than the smallest or largest
    value, e.g. a string prefix); absent means no bound is known. Readers may skip a data
    file that no value can match, but only for the values the file holds: update files of
    the field and rows that read a default are not covered (``spec/format.md``, 5.3).
    """

    min: bool | int | float | str | None = None
    max: bool | int | float | str | None = None
    null_count: int | None = None
    """Null values in the file (absent: unknown)."""
    nan_count: int | None = None
    """NaN values of a floating-point column (absent: unknown, so possibly some)."""


class DataFile(_Model):
    """A Parquet file holding some columns (a column group) of a fragment."""

    path: str
    field_ids: list[int]
    """Field id of each top-level Parquet column, in file order."""
    size: int
    row_groups: list[int]
    """Row count of each row group, so a read of a few rows opens only their groups."""
    stats: list[ColumnStats | None] | None = None
    """Per top-level column, aligned with ``field_ids`` (so a merge that renumbers field ids
    keeps them right): its :class:`ColumnStats`, or null where none were recorded. Absent
    in manifests of writers that record none."""


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


class IndexFile(_Model):
    """A file of an index segment (under ``_indexes/``)."""

    path: str
    size: int
    """Bytes; a reader refuses a file of another size."""
    sha256: str
    """Hex digest of the whole file, checked when the file is first loaded."""
    role: str
    """What the file holds, as its index kind defines (``graph``, ``postings``...)."""


class IndexedFragment(_Model):
    """The rows of one fragment as an index segment read them when it was built."""

    data_file: str
    """Path of the data file the indexed field was read from. Data file names are never
    reused, so this names the fragment's rows, whatever its id becomes (merges)."""
    rows: int
    """The fragment's physical rows; segment keys ``key_start`` .. ``key_start + rows - 1``."""
    key_start: int
    update_files: list[str] = []
    """Paths of the field's update files applied at build, in the fragment's order."""


class IndexSegment(_Model):
    """Immutable files indexing a set of fragments' rows under keys ``0 .. rows - 1``."""

    id: int
    """Unique within the index, never reused; of two segments covering a fragment, the
    higher id wins."""
    fragments: list[IndexedFragment]
    files: list[IndexFile]
    rows: int
    built_at: int = 0
    """Milliseconds since the epoch (informative)."""


class Index(_Model):
    """An index over one column, as a list of segments (``spec/format.md``, "Indexes")."""

    id: int
    """Unique in the manifest, from ``next_index_id``; never reused."""
    field_id: int
    kind: str
    """``clustered``, ``clustered_quantized``, ``pooled_quantized`` (vectors), ``bm25``,
    ``inverted``, ``exact`` (text). Readers ignore kinds they do not know."""
    engine: str
    """Whose file format the segments use: ``faiss``, ``lakefmt.inverted``."""
    engine_version: str
    """Version of that file format (``faiss``: the faiss release that wrote it)."""
    params: dict[str, Any] = {}
    """Build parameters (metric, graph degree, ...)."""
    segments: list[IndexSegment] = []


class VersionRef(_Model):
    """A version of a branch."""

    branch: str
    version: int
    branch_id: str | None = None
    """The branch's id (format 2): which incarnation of a branch name, so a ref never
    resolves into a later branch of the same name. Absent for ``main`` and format 1."""


class MergeRecord(_Model):
    """Where the last merge of a branch into this one left off, for the next merge."""

    source_version: int
    """The source branch's commit that was merged."""
    target_version: int
    """The version the merge created on this branch."""
    fragments: dict[int, int] = {}
    """Source fragment id -> fragment id here, for fragments the merge appended."""
    fields: dict[int, int] = {}
    """Source field id -> field id here, for columns the merges of this source added."""
    complete_maps: bool = False
    """True (format 2): ``fields`` names every column the merges added, same id or not.
    False (format 1): fields added under the same id are left out of ``fields``."""
    branch_id: str | None = None
    """The source branch's ``id`` when merged (format 2; None for ``main`` and format-1
    branches). A record whose id is not the source's current one is of a deleted branch
    of the same name, and is ignored."""


class TransactionRecord(_Model):
    """A transaction of a two-phase write committed on this branch (``spec/format.md``,
    9.7): committing the same id again adds nothing."""

    id: str
    version: int
    """The version number of the manifest that committed it."""


class Manifest(_Model):
    """The complete description of one version of a dataset branch."""

    format_version: int = FORMAT_VERSION
    reader_features: list[str] = sorted(READER_FEATURES)
    writer_features: list[str] = sorted(BASE_WRITER_FEATURES)
    dataset_id: str
    branch: str
    version: int
    id: str | None = None
    """The version id users open it by (format 2; derived from the checksum in format 1)."""
    branch_id: str | None = None
    """Id of the branch file this manifest's folder belongs to (format 2, not on ``main``)."""
    branch_deleted: bool = False
    """A tombstone: written above the head when the branch is deleted, so that writers
    still holding it fail instead of committing versions nothing can open."""
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
    indexes: list[Index] = []
    """Indexes this version may use (optional: ignoring them reads the same rows)."""
    next_index_id: int = 0
    transactions: list[TransactionRecord] = []
    """The newest transactions committed on this version's ancestry, oldest first, at most
    1,000 (writer feature ``transactions``, ``spec/format.md`` 9.7)."""

    @model_validator(mode="before")
    @classmethod
    def _v1_defaults(cls, data: Any) -> Any:
        """Fields of a format-1 manifest hold their defaults in encoding 1."""
        if isinstance(data, dict) and data.get("format_version") == 1:
            fields = data.get("fields")
            if isinstance(fields, list):
                data = {
                    **data,
                    "fields": [
                        {"default_encoding": 1, **f} if isinstance(f, dict) else f for f in fields
                    ],
                }
        return data

    @property
    def ref(self) -> VersionRef:
        """This manifest's (branch, version)."""
        return VersionRef(branch=self.branch, version=self.version, branch_id=self.branch_id)

    @property
    def version_id(self) -> str:
        """The id users open this version by (see :mod:`lakefmt.format.layout`)."""
        assert self.id is not None, "parse_manifest or commit gives every manifest an id"
        return self.id

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


#: Members added by format 2 that are written only when set (absent reads as null/false).
_OPTIONAL_MEMBERS = (
    "id",
    "branch_id",
    "branch_deleted",
    "indexes",
    "next_index_id",
    "transactions",
)


def _without_unset(data: dict[str, Any], *, format_version: int) -> dict[str, Any]:
    for key in _OPTIONAL_MEMBERS:
        if key in data and (not data[key] or (key == "id" and format_version < 2)):
            del data[key]  # format 1 has no id member: its ids are derived (section 8.3)
    for fragment in data.get("fragments") or ():
        for data_file in fragment.get("files") or ():
            stats = data_file.get("stats")
            if stats is None:
                data_file.pop("stats", None)  # written only when recorded
            else:
                data_file["stats"] = [
                    None if s is None else {k: v for k, v in s.items() if v is not None}
                    for s in stats
                ]
    for key in ("parent", "previous_commit"):
        ref = data.get(key)
        if isinstance(ref, dict) and ref.get("branch_id") is None:
            ref.pop("branch_id", None)
    return data


def dump_manifest(manifest: Manifest) -> bytes:
    """Serialise a manifest with its trailing checksum."""
    data = _without_unset(manifest.model_dump(mode="json"), format_version=manifest.format_version)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
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
        manifest = Manifest.model_validate(data)
    except pydantic.ValidationError as exc:
        raise FormatError(f"{location}: not a valid lakefmt manifest: {exc}") from exc
    if manifest.id is None:
        # Format 1 stored no id: derive a stable one from the manifest's own checksum.
        manifest = manifest.model_copy(
            update={"id": layout.make_version_id(manifest.version, digest[:8].decode())}
        )
    elif layout.parse_version_id(manifest.id) != manifest.version:
        raise FormatError(f"{location}: manifest id {manifest.id!r} does not name its version")
    return manifest


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


# -- the small documents ---------------------------------------------------------------------


class FormatFile(_Model):
    """``_lakefmt.json``: marks a dataset root."""

    format: str
    format_version: int
    dataset_id: str
    created: int = 0


class TagFile(_Model):
    """``_refs/tags/<name>.json``: a name for one version."""

    name: str
    branch: str
    version: int
    branch_id: str | None = None
    """Id of the tagged manifest's branch folder (format 2)."""
    id: str | None = None
    """The tagged version's id (format 2; for format-1 tags it is read from the manifest)."""
    message: str | None = None
    timestamp: int = 0

    @property
    def ref(self) -> VersionRef:
        """The tagged (branch, version)."""
        return VersionRef(branch=self.branch, version=self.version, branch_id=self.branch_id)


class BranchFile(_Model):
    """``_refs/branches/<name>.json``: a branch's fork point and folder."""

    name: str
    parent: VersionRef
    id: str | None = None
    """Names the folder ``tree/<id>/`` of the branch's manifests (format 2); without it
    (format 1) the folder is ``tree/<name>/``."""
    timestamp: int = 0


_Doc = TypeVar("_Doc", FormatFile, TagFile, BranchFile)


def dump_document(document: FormatFile | TagFile | BranchFile) -> bytes:
    """Serialise a small document (members that are unset are left out)."""
    data = document.model_dump(mode="json", exclude_none=True)
    if isinstance(document, TagFile):
        data.setdefault("message", None)  # required by format 1 readers
    return json.dumps(data).encode()


def parse_document(model: type[_Doc], raw: bytes, *, location: str) -> _Doc:
    """Parse a format, tag or branch file.

    Raises:
        FormatError: Not JSON, or not a valid document of that kind (naming ``location``).
    """
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{location} is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        what = model.__name__.replace("File", "").lower()
        raise FormatError(f"{location} is not a valid lakefmt {what} file: {exc}") from exc
