"""Two-phase writes: fragments written by any process, committed as one version by another.

A worker writes data files and describes each fragment in a :class:`FragmentInfo` (small,
JSON, sealed with a checksum); a driver checks the infos against the dataset
(:func:`check_infos`) and commits them with one :class:`CommitFragments` operation, which
rebases like an append and records the commit's transaction id in the manifest, so that
committing the same transaction again adds nothing (``spec/format.md``, 9.7).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict

from lakefmt._pool import shared_pool
from lakefmt.errors import InvalidArgumentError, SchemaError
from lakefmt.format.commit import Operation
from lakefmt.format.manifest import DataFile, Field, Fragment, Manifest, TransactionRecord
from lakefmt.format.versions import iter_commits
from lakefmt.storage import Storage

FRAGMENT_INFO_KIND = "lakefmt.fragment"
#: The version of the info document this library writes and reads.
FRAGMENT_INFO_VERSION = 1
#: Transactions every manifest remembers (the newest, carried forward): a commit looks no
#: further unless more than this many were committed since its infos were written.
TRANSACTION_MEMORY = 1000
TRANSACTION_ID_MAX = 200
#: The writer feature a manifest holding transaction records names.
TRANSACTIONS_FEATURE = "transactions"

_DATA_PATH = re.compile(r"data/[0-9a-f]{32}\.parquet")
_TRANSACTION_ID = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


class InfoField(BaseModel):
    """A column as the fragment's files were written against it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    name: str
    type: dict[str, Any]


class FragmentInfo(BaseModel):
    """One fragment written by :func:`lakefmt.write_fragments`, not committed yet.

    Plain JSON (:meth:`to_json`, :meth:`from_json`), so it travels between processes and
    machines; ``checksum`` seals every other member, so an edited info is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["lakefmt.fragment"] = "lakefmt.fragment"
    info_version: int = FRAGMENT_INFO_VERSION
    dataset_id: str
    """The dataset the files were written into (its format file's ``dataset_id``)."""
    branch: str
    branch_id: str | None = None
    base_version: int
    """The version number of the branch head the files were written against."""
    fields: list[InfoField]
    """The schema of that version: what the files' field ids mean."""
    rows: int
    files: list[DataFile]
    """The fragment's column groups, as a manifest lists them."""
    written_at: int
    """Milliseconds since the epoch (informative; cleanup counts from the files' age)."""
    checksum: str = ""
    """``sha256:<hex>`` of the canonical JSON of every other member."""

    def to_json(self) -> str:
        """The info as compact JSON text (what :meth:`from_json` reads)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> FragmentInfo:
        """Read an info written by :meth:`to_json`, checking its checksum.

        Raises:
            InvalidArgumentError: Not an info, of a newer info version, or edited since it
                was written.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"a fragment info must be JSON text: {exc}") from exc
        return parse_info(data)

    def sealed(self) -> FragmentInfo:
        """This info with its checksum set."""
        return self.model_copy(update={"checksum": _digest(self)})

    @property
    def paths(self) -> list[str]:
        """The data files' paths."""
        return [f.path for f in self.files]


def _digest(info: FragmentInfo) -> str:
    body = json.dumps(
        info.model_dump(mode="json", exclude={"checksum"}), sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def parse_info(value: Any) -> FragmentInfo:
    """An info given to ``commit_fragments``: a :class:`FragmentInfo`, its JSON text, or the
    dict ``json.loads`` gives, checked for form and checksum.

    Raises:
        InvalidArgumentError: Not an info, of a newer info version, or edited since written.
    """
    if isinstance(value, (str, bytes)):
        return FragmentInfo.from_json(value)
    if isinstance(value, FragmentInfo):
        info = value
    elif isinstance(value, Mapping):
        version = value.get("info_version")
        if isinstance(version, int) and version > FRAGMENT_INFO_VERSION:
            raise InvalidArgumentError(
                f"a fragment info of version {version} was written by a newer lakefmt (this "
                f"one reads version {FRAGMENT_INFO_VERSION}); upgrade the committing process"
            )
        try:
            info = FragmentInfo.model_validate(dict(value))
        except pydantic.ValidationError as exc:
            raise InvalidArgumentError(f"not a lakefmt fragment info: {exc}") from exc
    else:
        raise InvalidArgumentError(
            "commit_fragments takes what write_fragments returned (FragmentInfo objects, "
            f"their JSON or dicts), not {type(value).__name__}"
        )
    if info.checksum != _digest(info):
        raise InvalidArgumentError(
            f"fragment info of files {info.paths} was changed after it was written (its "
            "checksum does not match); write the fragments again"
        )
    return info


def check_transaction_id(transaction_id: Any) -> None:
    """Refuse a transaction id that is not 1-200 printable ASCII characters (no leading or
    trailing space).

    Raises:
        InvalidArgumentError: Naming the value.
    """
    if transaction_id is None:
        return
    if (
        not isinstance(transaction_id, str)
        or len(transaction_id) > TRANSACTION_ID_MAX
        or not _TRANSACTION_ID.fullmatch(transaction_id)
    ):
        raise InvalidArgumentError(
            f"transaction_id must be a string of 1-{TRANSACTION_ID_MAX} printable ASCII "
            f"characters, not {transaction_id!r}"
        )


def check_infos(storage: Storage, manifest: Manifest, infos: Sequence[FragmentInfo]) -> None:
    """Check that ``infos`` describe files written into this dataset and branch, intact and
    consistent (the schema is checked on each commit attempt, by :class:`CommitFragments`).

    Raises:
        InvalidArgumentError: An info of another dataset or branch, a path outside
            ``data/``, a file listed twice, row counts that do not add up, a field id the
            info's schema lacks, or a file that is missing or of another size than written.
    """
    seen: set[str] = set()
    for info in infos:
        if info.dataset_id != manifest.dataset_id:
            raise InvalidArgumentError(
                f"fragment files {info.paths} were written for dataset {info.dataset_id}, not "
                f"for {storage.url} (dataset {manifest.dataset_id})"
            )
        if (info.branch, info.branch_id) != (manifest.branch, manifest.branch_id):
            raise InvalidArgumentError(
                f"fragment files {info.paths} were written against branch '{info.branch}', "
                f"not '{manifest.branch}' (this handle's branch); commit them on their branch"
            )
        ids = {f.id for f in info.fields}
        if len(ids) != len(info.fields) or not info.files or info.rows < 0:
            raise InvalidArgumentError(f"fragment info of files {info.paths} is malformed")
        for data_file in info.files:
            if not _DATA_PATH.fullmatch(data_file.path):
                raise InvalidArgumentError(
                    f"fragment file path {data_file.path!r} is not a data file name "
                    "(data/<32 hex digits>.parquet)"
                )
            if data_file.path in seen:
                raise InvalidArgumentError(
                    f"fragment file {data_file.path} is listed twice in the infos given"
                )
            seen.add(data_file.path)
            if sum(data_file.row_groups) != info.rows:
                raise InvalidArgumentError(
                    f"fragment file {data_file.path}: its row groups hold "
                    f"{sum(data_file.row_groups)} rows, the info says {info.rows}"
                )
            unknown = set(data_file.field_ids) - ids
            if unknown:
                raise InvalidArgumentError(
                    f"fragment file {data_file.path} holds field ids {sorted(unknown)} that "
                    "its info's schema lacks"
                )
    _check_sizes(storage, [d for info in infos for d in info.files])


def _check_sizes(storage: Storage, data_files: list[DataFile]) -> None:
    """Every file exists with the size it was written with (one stat per file, in
    parallel: on an object store each is a request)."""

    def size(data_file: DataFile) -> int | None:
        try:
            return storage.size(data_file.path)
        except FileNotFoundError:
            return None

    if len(data_files) > 1 and not storage.capabilities.cheap_probes:
        sizes = list(shared_pool("io").map(size, data_files))
    else:
        sizes = [size(d) for d in data_files]
    for data_file, found in zip(data_files, sizes, strict=True):
        if found is None:
            raise InvalidArgumentError(
                f"fragment file {data_file.path} does not exist in {storage.url}: it was "
                "written elsewhere, or cleanup removed it (a write older than the cleanup "
                "grace period); write the fragments again"
            )
        if found != data_file.size:
            raise InvalidArgumentError(
                f"fragment file {data_file.path} in {storage.url} has {found} bytes, but was "
                f"written with {data_file.size}: it was changed; write the fragments again"
            )


def find_transaction(
    storage: Storage, head: Manifest, transaction_id: str, since: int
) -> int | None:
    """The version number that committed ``transaction_id`` on ``head``'s ancestry, looking
    back at least to version ``since`` (exclusive); None if it is not there.

    ``head``'s records answer when they reach back to ``since`` (fewer than
    :data:`TRANSACTION_MEMORY`, or the oldest at or before it); otherwise every commit
    since ``since`` is read (each transaction is a commit, which cleanup keeps).
    """
    for record in reversed(head.transactions):
        if record.id == transaction_id:
            return record.version
    records = head.transactions
    if len(records) < TRANSACTION_MEMORY or records[0].version <= since:
        return None
    for commit in iter_commits(storage, head):
        if commit.version <= since:
            break
        for record in commit.transactions:
            if record.id == transaction_id and record.version > since:
                return record.version
    return None


class TransactionCommitted(Exception):
    """Raised by :class:`CommitFragments` when its transaction already landed; caught by
    the committing function, never seen by users."""

    def __init__(self, version: int) -> None:
        super().__init__(f"transaction already committed as version {version}")
        self.version = version


def plain_type(type_json: Mapping[str, Any]) -> dict[str, Any]:
    """A field's type without the indexes it declares (which do not change its cells)."""
    params = dict(type_json.get("params") or {})
    params.pop("index_type", None)
    return {**type_json, "params": params}


def check_schema(manifest: Manifest, info: FragmentInfo) -> None:
    """Whether the info's files still read right under ``manifest``'s schema.

    Files address columns by field id, so a rename follows; a column dropped since reads as
    dropped (as for rows appended before the drop) and one added reads its default. Refused:
    a column whose type changed, and one dropped and added again under the same name (the
    values would not reach the column of that name).

    Raises:
        SchemaError: Naming the column and what changed.
    """
    by_id = {f.id: f for f in manifest.fields}
    by_name = {f.name: f for f in manifest.fields}
    written = {fid for d in info.files for fid in d.field_ids}
    for field in info.fields:
        if field.id not in written:
            continue
        now: Field | None = by_id.get(field.id)
        if now is None:
            again = by_name.get(field.name)
            if again is not None:
                raise SchemaError(
                    f"column '{field.name}' was dropped and added again since fragment files "
                    f"{info.paths} were written (at version {info.base_version}); their "
                    "values would not reach it: write the fragments again"
                )
            continue
        if plain_type(now.type) != plain_type(field.type):
            raise SchemaError(
                f"column '{now.name}' changed type from {field.type} to {now.type} since "
                f"fragment files {info.paths} were written (at version {info.base_version}); "
                "write the fragments again"
            )


@dataclasses.dataclass
class CommitFragments(Operation):
    """Add fragments written by other processes; rebases like an append.

    With a ``transaction_id``, first checks that the transaction did not land (raising
    :class:`TransactionCommitted`) and records it in the new manifest.
    """

    infos: list[FragmentInfo]
    transaction_id: str | None = None
    name: str = "append"

    def check_transaction(self, storage: Storage, manifest: Manifest) -> None:
        """Raise :class:`TransactionCommitted` if the transaction is on ``manifest``'s
        ancestry (looking back to the oldest base of the infos, see
        :func:`find_transaction`)."""
        if self.transaction_id is None:
            return
        since = min((i.base_version for i in self.infos), default=manifest.version)
        landed = find_transaction(storage, manifest, self.transaction_id, since)
        if landed is not None:
            raise TransactionCommitted(landed)

    def apply(self, storage: Storage, manifest: Manifest) -> Manifest:
        """Give the fragments the next ids (those whose files ``manifest`` lists already
        are left out, as for an append) and record the transaction.

        Raises:
            TransactionCommitted: The transaction is on ``manifest``'s ancestry.
            SchemaError: The schema changed in a way the files cannot follow.
        """
        version = manifest.version + 1
        update: dict[str, Any] = {}
        self.check_transaction(storage, manifest)
        if self.transaction_id is not None:
            record = TransactionRecord(id=self.transaction_id, version=version)
            update["transactions"] = [*manifest.transactions, record][-TRANSACTION_MEMORY:]
            if TRANSACTIONS_FEATURE not in manifest.writer_features:
                update["writer_features"] = sorted(
                    {*manifest.writer_features, TRANSACTIONS_FEATURE}
                )
        for info in self.infos:
            check_schema(manifest, info)
        listed = {d.path for f in manifest.fragments for d in f.files}
        next_id = manifest.next_fragment_id
        new = []
        for info in self.infos:
            if any(p in listed for p in info.paths):
                continue
            new.append(Fragment(id=next_id, rows=info.rows, files=info.files))
            next_id += 1
        update.update(fragments=[*manifest.fragments, *new], next_fragment_id=next_id)
        return manifest.model_copy(update=update)
