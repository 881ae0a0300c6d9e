"""Two-phase writes: ``write_fragments`` on any process, ``commit_fragments`` on one.

Workers convert and write rows exactly as ``append`` does, but commit nothing: each
fragment comes back as a :class:`~lakefmt.format.transactions.FragmentInfo`. The driver
commits every info as one version, checked and rebased by
:mod:`lakefmt.format.transactions` (``spec/format.md``, 9.7).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from lakefmt.dataset.writer import FLUSH_BYTES, column_specs
from lakefmt.dataset.writer import write_fragments as write_drafts
from lakefmt.errors import InvalidArgumentError, SchemaError, VersionNotFoundError
from lakefmt.format import commit as commits
from lakefmt.format import protocol
from lakefmt.format.manifest import Manifest, now_ms
from lakefmt.format.snapshot import Snapshot
from lakefmt.format.transactions import (
    CommitFragments,
    FragmentInfo,
    InfoField,
    TransactionCommitted,
    check_infos,
    check_transaction_id,
    parse_info,
    plain_type,
)
from lakefmt.format.versions import iter_commits, read_head, read_manifest
from lakefmt.storage import Storage, open_storage
from lakefmt.types import resolve_type
from lakefmt.types.convert import to_table

URL = str | os.PathLike[str]


def write_fragments(
    url: URL,
    data: Any,
    schema: Mapping[str, Any] | None = None,
    creds: dict[str, Any] | None = None,
    *,
    branch: str | None = None,
) -> list[FragmentInfo]:
    """Write rows as data files of the dataset at ``url`` without committing them.

    The first phase of a distributed write: run it on any process or machine, send the
    infos it returns (JSON-serialisable, see :class:`FragmentInfo`) to one process, which
    commits them all as one version with :meth:`Dataset.commit_fragments`. Files of infos
    never committed are removed by ``cleanup`` once older than its grace period, which must
    exceed the time from this call to the commit.

    Args:
        url: The dataset (it must exist).
        data: What :meth:`Dataset.append` takes, or Arrow record batches or tables (a list,
            an iterator or a ``pyarrow.RecordBatchReader``: written as they come, about
            64 MiB at a time).
        schema: ``{column: type}`` the caller expects; a column that is missing or of
            another type raises ``SchemaError`` before anything is written.
        creds: Cloud credentials, as for :func:`lakefmt.open`.
        branch: Write against this branch's head (default ``main``); the infos must be
            committed on the same branch.

    Returns:
        One info per fragment written (none for no rows), in row order.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
        SchemaError: ``schema`` does not match the dataset.
        ColumnNotFoundError, ColumnMissingValueError, UnevenColumnsError, TypeMismatchError:
            As :meth:`Dataset.append` raises them.
    """
    storage = open_storage(url, creds)
    manifest = protocol.open_head(storage, branch)
    commits.check_writer_features(manifest, storage.url)
    snap = Snapshot(storage, manifest)
    if schema is not None:
        _check_expected_schema(snap, schema)
    specs = column_specs(snap)
    drafts = []
    for chunk in _chunks(data):
        table = to_table(chunk, specs)
        if table.num_rows:
            drafts.extend(write_drafts(storage, snap, table))
    storage.settle_writes()  # durable before another process can commit them
    fields = [InfoField(id=f.id, name=f.name, type=f.type) for f in manifest.fields]
    written_at = now_ms()
    return [
        FragmentInfo(
            dataset_id=manifest.dataset_id,
            branch=manifest.branch,
            branch_id=manifest.branch_id,
            base_version=manifest.version,
            fields=fields,
            rows=rows,
            files=files,
            written_at=written_at,
        ).sealed()
        for rows, files in drafts
    ]


def _check_expected_schema(snap: Snapshot, schema: Mapping[str, Any]) -> None:
    if not isinstance(schema, Mapping):
        raise SchemaError(
            f"schema must be a {{column: type}} dict, not {type(schema).__name__} {schema!r}"
        )
    for name, spec in schema.items():
        expected = resolve_type(spec, column=str(name))
        field = snap.manifest.field_by_name(name) if isinstance(name, str) else None
        if field is None:
            raise SchemaError(
                f"the dataset has no column '{name}' (columns: {[f.name for f in snap.fields]})"
            )
        if plain_type(expected.to_json()) != plain_type(field.type):
            raise SchemaError(
                f"column '{name}' is {snap.type_of(field)!r} in the dataset, not {expected!r}"
            )


def _is_arrow_part(value: Any) -> bool:
    return isinstance(value, (pa.RecordBatch, pa.Table))


def _chunks(data: Any) -> Iterator[Any]:
    """``data`` in parts of about ``FLUSH_BYTES`` when it is a sequence or stream of Arrow
    batches or tables; otherwise whole."""
    arrow_parts = isinstance(data, Sequence) and data and all(_is_arrow_part(p) for p in data)
    if isinstance(data, (pa.RecordBatchReader, Iterator)) or arrow_parts:
        parts: Iterable[Any] = data
    else:
        yield data
        return
    pending: list[pa.Table] = []
    size = 0
    for part in parts:
        if not _is_arrow_part(part):
            raise InvalidArgumentError(
                "write_fragments takes a stream of pyarrow RecordBatches or Tables, but one "
                f"part is a {type(part).__name__}"
            )
        table = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
        pending.append(table)
        size += table.nbytes
        if size >= FLUSH_BYTES:
            yield _concat(pending)
            pending, size = [], 0
    if pending:
        yield _concat(pending)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="none")


def _commit_id(storage: Storage, head: Manifest, version: int) -> str:
    """The id of the commit numbered ``version`` on ``head``'s ancestry (version numbers
    only grow along an ancestry, across fork points too)."""
    try:
        return read_manifest(storage, head.branch, version, head.branch_id).version_id
    except VersionNotFoundError:  # before the branch's fork point: in a parent's folder
        for commit in iter_commits(storage, head):
            if commit.version == version:
                return commit.version_id
        raise


def commit_infos(
    storage: Storage,
    manifest: Manifest,
    infos: Sequence[Any],
    *,
    message: str | None,
    transaction_id: str | None,
) -> tuple[Manifest, str]:
    """Commit ``infos`` on the branch of ``manifest`` as one commit.

    Returns:
        The newest manifest the handle should hold, and the id of the commit holding the
        fragments (an earlier one when ``transaction_id`` had landed already).

    Raises:
        InvalidArgumentError: See :func:`lakefmt.format.transactions.check_infos`.
        SchemaError: The schema changed in a way the fragments cannot follow.
    """
    check_transaction_id(transaction_id)
    if isinstance(infos, (str, bytes, Mapping, FragmentInfo)) or not isinstance(infos, Sequence):
        raise InvalidArgumentError(
            "commit_fragments takes a list of infos (what write_fragments returned), not "
            f"{type(infos).__name__}"
        )
    parsed = [parse_info(info) for info in infos]
    # the newest head: a stale handle's first attempt would check the schema needlessly
    head = read_head(storage, manifest.branch, manifest.branch_id)
    if not parsed and transaction_id is None:
        return head, head.version_id  # nothing to commit, nothing to record: no version
    op = CommitFragments(parsed, transaction_id)
    try:
        # a landed transaction first: its files may since be compacted and cleaned up
        op.check_transaction(storage, head)
        check_infos(storage, head, parsed)
        landed = commits.commit(storage, head, [op], is_commit=True, message=message)
    except TransactionCommitted as done:
        current = read_head(storage, manifest.branch, manifest.branch_id)
        return current, _commit_id(storage, current, done.version)
    return landed, landed.version_id
