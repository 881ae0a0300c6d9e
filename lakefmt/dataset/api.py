"""Top-level functions: create, open, open_read_only, exists, delete, copy, like, query.

The on-disk steps (the first manifest and the format file, a branch head, the order of a
copy) are :mod:`lakefmt.format.protocol`'s; this module adds URLs, types and handles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, overload

from lakefmt._pool import new_pool
from lakefmt._progress import Progress
from lakefmt.dataset import schema_changes
from lakefmt.dataset.dataset import (
    Dataset,
    ReadOnlyDataset,
    open_query_source,
    open_reader,
    open_writer,
)
from lakefmt.dataset.futures import Future, submit
from lakefmt.dataset.query_view import QueryView, run_query
from lakefmt.dataset.query_view import explain_query as explain_tql
from lakefmt.errors import DatasetExistsError, SchemaError
from lakefmt.format import protocol
from lakefmt.format.commit import AddColumn, Operation, SetMetadata
from lakefmt.format.versions import read_format_file
from lakefmt.storage import open_storage
from lakefmt.types import Type, resolve_type

URL = str | os.PathLike[str]


def create(
    url: URL, schema: Mapping[str, Any] | None = None, creds: dict[str, Any] | None = None
) -> Dataset:
    """Create a new, empty dataset.

    Args:
        url: Where: ``mem://name``, ``tmp://``, a path or ``file://path``, ``s3://``,
            ``gs://``, ``az://``.
        schema: ``{column: type}``; types as ``lakefmt.types`` objects or names
            (``"int32"``, ``"text"``...).
        creds: Cloud credentials (see the README); ``None`` uses the provider's default chain.

    Raises:
        DatasetExistsError: A dataset already exists at ``url``.
        SchemaError: A type in ``schema`` is not a lakefmt type.
    """
    if schema is not None and not isinstance(schema, Mapping):
        raise SchemaError(
            f"schema must be a {{column: type}} dict, not {type(schema).__name__} {schema!r}"
        )
    storage = open_storage(url, creds)
    columns: list[tuple[str, Type]] = []
    for name, spec in (schema or {}).items():
        if not isinstance(name, str) or not name:
            raise SchemaError(f"column names must be non-empty strings, got {name!r}")
        column_type = resolve_type(spec, column=name)
        schema_changes.check_declared_indexes(column_type)
        columns.append((name, column_type))
    return Dataset(storage, protocol.create_dataset(storage, columns))


@overload
def open(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: None = None,
    branch: str | None = None,
) -> Dataset: ...


@overload
def open(
    url: URL,
    creds: dict[str, Any] | None,
    version: str,
    branch: str | None = None,
) -> ReadOnlyDataset: ...


@overload
def open(
    url: URL,
    creds: dict[str, Any] | None = None,
    *,
    version: str,
    branch: str | None = None,
) -> ReadOnlyDataset: ...


def open(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> ReadOnlyDataset:
    """Open a dataset for reading and writing (a :class:`Dataset`).

    With ``version`` (a version id, as ``ds.version``, ``commit()`` and ``history`` give
    it, or a tag name) the handle is a :class:`ReadOnlyDataset` at that version (the
    overloads say which, for type checkers).

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
        FormatError: The dataset is damaged or was written by a newer lakefmt.
    """
    storage = open_storage(url, creds)
    if version is not None:
        return open_reader(storage, version, branch)
    return open_writer(storage, branch)


def open_read_only(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> ReadOnlyDataset:
    """Open a dataset for reading only; writes raise ``ReadOnlyError``.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
        BranchNotFoundError: ``branch`` does not exist.
        VersionNotFoundError: ``version`` names no version or tag.
    """
    return open_reader(open_storage(url, creds), version, branch)


def exists(url: URL, creds: dict[str, Any] | None = None) -> bool:
    """Return whether a lakefmt dataset exists at ``url``."""
    return protocol.dataset_exists(open_storage(url, creds))


def delete(url: URL, creds: dict[str, Any] | None = None) -> None:
    """Delete a dataset and all its versions.

    Raises:
        DatasetNotFoundError: No dataset at ``url``.
    """
    protocol.delete_dataset(open_storage(url, creds))


def copy(
    src: URL,
    dst: URL,
    src_creds: dict[str, Any] | None = None,
    dst_creds: dict[str, Any] | None = None,
    *,
    progress: bool | None = None,
) -> None:
    """Copy a dataset with its whole history, tags and branches, across storages.

    A progress bar counts the files on a terminal (``progress`` forces it on or off).

    Raises:
        DatasetNotFoundError: No dataset at ``src``.
        DatasetExistsError: A dataset already exists at ``dst``.
    """
    source = open_storage(src, src_creds)
    read_format_file(source)
    target = open_storage(dst, dst_creds)
    if protocol.dataset_exists(target):
        raise DatasetExistsError(f"a dataset already exists at '{target.url}'")
    order = protocol.copy_order(source.list())

    # In parallel within a group (object stores are latency-bound), groups in order.
    def copy_one(path: str) -> None:
        target.write(path, source.read(path))
        bar.update(1)

    with (
        new_pool("copy") as pool,
        Progress(order.num_files, "copy", progress, "files") as bar,
    ):
        for group in order.groups:
            list(pool.map(copy_one, group))
    target.write(order.last, source.read(order.last))


def like(src: URL | ReadOnlyDataset, dst: URL, creds: dict[str, Any] | None = None) -> Dataset:
    """Create an empty dataset with the schema (types, defaults, metadata) of another.

    Raises:
        DatasetExistsError: A dataset already exists at ``dst``.
    """
    source = src if isinstance(src, ReadOnlyDataset) else open_read_only(src, creds=creds)
    target = create(dst, creds=creds)
    ops: list[Operation] = [
        AddColumn(f.model_dump(exclude={"id"})) for f in source._manifest.fields
    ]
    if source._manifest.metadata:
        ops.append(SetMetadata(dict(source._manifest.metadata)))
    if ops:
        target._commit_ops(ops, is_commit=True)
    return target


def create_async(
    url: URL, schema: Mapping[str, Any] | None = None, creds: dict[str, Any] | None = None
) -> Future:
    """:func:`create` on the async pool; the awaitable ``Future`` gives the ``Dataset``."""
    return submit(create, url, schema, creds)


def open_async(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> Future:
    """:func:`open` on the async pool; the awaitable ``Future`` gives the ``Dataset``."""
    return submit(open, url, creds, version, branch)


def open_read_only_async(
    url: URL,
    creds: dict[str, Any] | None = None,
    version: str | None = None,
    branch: str | None = None,
) -> Future:
    """:func:`open_read_only` on the async pool; the ``Future`` gives the ``ReadOnlyDataset``."""
    return submit(open_read_only, url, creds, version, branch)


def query(query: str, creds: dict[str, Any] | None = None) -> QueryView:
    """Run a TQL query over the datasets it names.

    Args:
        query: TQL naming its sources in ``FROM "url"`` (``"url@tag"``, ``"url@branch"``,
            ``"url@<version id>"``); joins across datasets are allowed.
        creds: Credentials for the datasets' storage (see ``lakefmt.open``).

    Returns:
        A read-only view: row references into the source for filters, sorts and samples,
        or the computed rows for aggregates and joins.

    Raises:
        QueryError: A syntax error, an unknown column, function or dataset, or a forbidden
            statement, with the position and reason.
    """
    return run_query(query, None, open_query_source, creds)


def query_async(query: str, creds: dict[str, Any] | None = None) -> Future:
    """:func:`query` on the async pool; the awaitable ``Future`` gives the view."""
    return submit(globals()["query"], query, creds)


def explain_query(query: str, creds: dict[str, Any] | None = None) -> str:
    """The DuckDB SQL a TQL query translates to and DuckDB's plan for it (nothing runs).

    Raises:
        QueryError: As for :func:`query`.
    """
    return explain_tql(query, None, open_query_source, creds)
