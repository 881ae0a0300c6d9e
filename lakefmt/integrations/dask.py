"""Dask DataFrames over lakefmt datasets: a partition per run of fragments, one commit per
write (needs ``lakefmt[dask]``: ``dask[dataframe]`` and ``distributed``).

A read pins the version on the client, so every task reads the same rows whatever commits
land meanwhile; a write runs :func:`lakefmt.write_fragments` in each partition's task and
commits what they return once, on the client, under one transaction id
(``spec/format.md``, 9.7).
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakefmt.dataset import (
    Dataset,
    FragmentInfo,
    create,
    open,
    open_read_only,
    write_fragments,
)
from lakefmt.dataset.partitions import PARTITION_ROWS, fragment_row_ranges
from lakefmt.errors import InvalidArgumentError, MissingDependencyError
from lakefmt.integrations.importers import infer_type

if TYPE_CHECKING:
    import dask.dataframe
    import pandas

URL = str | os.PathLike[str]
MODES = ("append", "create")


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"lakefmt's Dask integration needs {module.split('.')[0]!r}; install it with: "
            "pip install 'lakefmt[dask]'"
        ) from exc


def _read_partition(
    bounds: tuple[int, int],
    url: str,
    creds: dict[str, Any] | None,
    version: str,
    columns: list[str] | None,
    filter: str | None,
) -> pandas.DataFrame:
    """One partition: rows ``[start, stop)`` of the pinned version (media as bytes)."""
    start, stop = bounds
    view = open_read_only(url, creds, version=version)
    rows = view[start:stop]
    if filter is None:
        frame = rows.to_pandas(columns)
        frame.index = _range_index(start, stop)
        return frame
    return rows.query(f"SELECT * WHERE {filter}").to_pandas(columns)


def _range_index(start: int, stop: int) -> Any:
    pd = _require("pandas")
    return pd.RangeIndex(start, stop, name="row")


def read(
    url: URL,
    version: str | None = None,
    columns: Sequence[str] | None = None,
    filter: str | None = None,
    *,
    creds: dict[str, Any] | None = None,
    branch: str | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dask.dataframe.DataFrame:
    """A Dask DataFrame of a version of a dataset: one partition per run of whole
    fragments (about ``partition_rows`` rows), read by the workers.

    The version is pinned here (the branch head now, unless ``version`` names one), so
    every partition reads the rows of the same version, with its deletions, updates and
    column names. Media columns hold their stored bytes.

    Without ``filter`` the index is the row number in the version (``row``), with known
    divisions; with ``filter`` each task filters its own rows and the index is the task's
    (divisions unknown).

    Args:
        url: The dataset.
        version: A version id or tag (default: the branch head now).
        columns: The columns to read (default: all).
        filter: A TQL condition, as after ``WHERE`` (``"label = 'cat' AND score > 0.5"``).
        creds: Cloud credentials, as for :func:`lakefmt.open` (sent to the workers).
        branch: The branch whose head is read (default ``main``).
        partition_rows: Rows a partition aims at; partitions hold whole fragments.

    Raises:
        MissingDependencyError: dask is not installed.
        DatasetNotFoundError, VersionNotFoundError, BranchNotFoundError: As ``open`` raises.
        ColumnNotFoundError: A column in ``columns`` does not exist.
        QueryError: ``filter`` is not a valid TQL condition over the dataset.
    """
    dd = _require("dask.dataframe")
    dask = _require("dask")
    view = open_read_only(url, creds, version=version, branch=branch)
    wanted = None if columns is None else list(columns)
    if filter is not None and not isinstance(filter, str):
        raise InvalidArgumentError(f"filter must be a TQL condition string, not {filter!r}")
    pinned = view.version
    ranges = fragment_row_ranges(view, partition_rows) or [(0, 0)]
    # the empty first rows, read here: checks columns and filter, and gives the dtypes
    meta = _read_partition((0, 0), view.url, creds, pinned, wanted, filter)
    # Dask would convert object columns to strings: media bytes and vectors are not text
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_map(
            _read_partition,
            ranges,
            url=view.url,
            creds=creds,
            version=pinned,
            columns=wanted,
            filter=filter,
            meta=meta,
            divisions=None if filter is not None else _divisions(ranges),
            label="lakefmt-read",
            enforce_metadata=False,
        )
    return frame


def _divisions(ranges: list[tuple[int, int]]) -> tuple[int, ...]:
    """Dask divisions of row-number partitions: each partition's first index, then the
    last partition's last (an empty dataset: one empty partition, ``(0, 0)``)."""
    if ranges == [(0, 0)]:
        return (0, 0)
    return (*(start for start, _ in ranges), ranges[-1][1] - 1)


def _write_partition(
    frame: pandas.DataFrame,
    url: str,
    schema: Mapping[str, Any] | None,
    creds: dict[str, Any] | None,
) -> list[str]:
    """One task of a write: the partition's rows as data files, described as JSON."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return [info.to_json() for info in write_fragments(url, table, schema, creds)]


def write(
    ddf: dask.dataframe.DataFrame,
    url: URL,
    schema: Mapping[str, Any] | None = None,
    mode: str = "append",
    *,
    creds: dict[str, Any] | None = None,
    message: str | None = None,
    transaction_id: str | None = None,
) -> str:
    """Write a Dask DataFrame to a dataset as one commit: each partition's task writes
    its rows as data files (:func:`lakefmt.write_fragments`), this process commits them all
    at once. The index is not stored.

    Args:
        ddf: The rows; columns as the dataset's (every column without a default).
        url: The dataset.
        schema: ``{column: type}``: with ``mode="create"`` the new dataset's columns
            (default: inferred from the DataFrame's columns, as ``from_pandas`` does);
            with ``"append"``, the columns and types the dataset must have.
        mode: ``"append"`` to an existing dataset, ``"create"`` a new one.
        creds: Cloud credentials, as for :func:`lakefmt.open` (sent to the workers).
        message: The commit message.
        transaction_id: Names this write (default: a fresh one): running it again with the
            same id, after a commit that landed, commits nothing.

    Returns:
        The id of the commit holding the rows.

    Raises:
        MissingDependencyError: dask is not installed.
        InvalidArgumentError: ``mode`` is not one of ``"append"``, ``"create"``.
        DatasetExistsError: ``mode="create"`` and a dataset exists at ``url``.
        DatasetNotFoundError: ``mode="append"`` and there is no dataset at ``url``.
        SchemaError, ColumnNotFoundError, ColumnMissingValueError, TypeMismatchError: As
            :func:`lakefmt.write_fragments` raises them (from the first failing task).
    """
    dd = _require("dask.dataframe")
    dask = _require("dask")
    if not isinstance(ddf, dd.DataFrame):
        raise InvalidArgumentError(
            f"lakefmt.dask.write takes a dask DataFrame, not {type(ddf).__name__}"
        )
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {list(MODES)}, not {mode!r}")
    target: Dataset
    if mode == "create":
        columns = dict(schema) if schema is not None else _inferred_schema(ddf)
        target = create(url, columns, creds)
        expected = None
    else:
        target = open(url, creds)
        expected = schema  # each task checks it before it writes (SchemaError)
    parts = [
        dask.delayed(_write_partition)(part, target.url, expected, creds)
        for part in ddf.to_delayed()
    ]
    written: list[list[str]] = list(dask.compute(*parts))
    infos = [FragmentInfo.from_json(info) for part in written for info in part]
    return target.commit_fragments(
        infos, message=message, transaction_id=transaction_id or f"dask-{uuid.uuid4().hex}"
    )


def _inferred_schema(ddf: dask.dataframe.DataFrame) -> dict[str, Any]:
    """Column types from the DataFrame's dtypes, as :func:`lakefmt.from_pandas` infers them."""
    arrow = pa.Schema.from_pandas(ddf._meta, preserve_index=False)
    return {field.name: infer_type(field.type, column=field.name) for field in arrow}


__all__ = ["read", "write"]
