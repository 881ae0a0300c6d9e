"""``merge_insert``: which rows an upsert updates, inserts and deletes.

The plan is computed on one version: rows of ``data`` whose key equals a row's key update
that row's cells (every row with that key, as SQL's ``MERGE`` does), the other rows of
``data`` are appended, and with ``when_not_matched_by_source="delete"`` the version's rows
whose key is in no row of ``data`` are deleted. Null keys never match (SQL semantics): a
row of ``data`` with a null key is inserted, and a row of the version with a null key is
"not matched by source". The handle commits the whole plan as one version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakefmt.errors import ColumnNotFoundError, InvalidArgumentError
from lakefmt.format.snapshot import Snapshot

__all__ = ["MergeInsertResult", "UpsertPlan", "given_columns", "plan_upsert"]

#: What ``when_not_matched_by_source`` accepts.
NOT_MATCHED_BY_SOURCE = (None, "keep", "delete")


@dataclasses.dataclass(frozen=True)
class MergeInsertResult:
    """What a ``merge_insert`` changed, and the commit that holds it."""

    version: str
    """Id of the commit holding the changes (the current one if nothing changed)."""
    updated: int
    """Rows of the dataset whose cells were set from ``data``."""
    inserted: int
    """Rows of ``data`` appended."""
    deleted: int
    """Rows deleted because no row of ``data`` had their key."""


@dataclasses.dataclass(frozen=True)
class UpsertPlan:
    """Row indices of the version and of the (converted) input table."""

    matched_rows: np.ndarray
    """Row indices of the version that a row of ``data`` updates."""
    matched_sources: np.ndarray
    """For each of them, the row of ``data`` that updates it."""
    inserts: np.ndarray
    """Rows of ``data`` to append."""
    deletes: np.ndarray
    """Row indices of the version to delete."""
    update_columns: list[str]
    """Columns of ``data`` whose values the matched rows take (the key excepted)."""


def given_columns(data: Any) -> list[str] | None:
    """The column names the caller passed in ``data`` (before defaults fill the others), or
    None when the input does not say (then every column counts as given)."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return list(data.schema.names)
    if isinstance(data, Mapping):
        return [str(k) for k in data]
    columns = getattr(data, "columns", None)
    if (
        columns is not None
        and not callable(columns)
        and type(data).__module__.startswith(("pandas", "polars"))
    ):
        return [str(c) for c in columns]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        names: dict[str, None] = {}
        for row in data:
            if isinstance(row, Mapping):
                names.update(dict.fromkeys(str(k) for k in row))
        return list(names) or None  # no rows: nothing to tell
    return None


def plan_upsert(
    snap: Snapshot,
    table: pa.Table,
    on: str,
    given: list[str] | None,
    when_not_matched_by_source: str | None,
) -> UpsertPlan:
    """Match ``table`` (rows converted to the schema) with the version on column ``on``.

    Raises:
        ColumnNotFoundError: ``on`` is not a column.
        InvalidArgumentError: ``on`` is not a column a key can be (vectors, media), two
            rows of ``table`` share a key, or ``when_not_matched_by_source`` is unknown.
    """
    if when_not_matched_by_source not in NOT_MATCHED_BY_SOURCE:
        raise InvalidArgumentError(
            f"when_not_matched_by_source must be None, 'keep' or 'delete', not "
            f"{when_not_matched_by_source!r}"
        )
    if not isinstance(on, str):
        raise InvalidArgumentError(f"on must be a column name, not {type(on).__name__}")
    if on not in table.column_names or (given is not None and on not in given):
        raise ColumnNotFoundError(f"no column {on!r} in the data and the dataset to match rows on")
    field = snap.field(on)
    storage = snap.type_of(field).storage_type
    if not (
        pa.types.is_integer(storage)
        or pa.types.is_string(storage)
        or pa.types.is_large_string(storage)
        or pa.types.is_binary(storage)
        or pa.types.is_temporal(storage)
        or pa.types.is_boolean(storage)
    ):
        raise InvalidArgumentError(
            f"column {on!r} ({storage}) cannot be a key: use a number, text, bytes or date column"
        )
    incoming = _plain(table.column(on))
    counts = pc.value_counts(incoming.drop_null())
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise InvalidArgumentError(
            f"data has {len(repeated)} key(s) in column {on!r} more than once (e.g. "
            f"{repeated[0].as_py()!r}): each row of data must match at most one key"
        )
    current = _plain(snap.read_range([field], 0, snap.num_rows)[field.id])
    left = pa.table({"k": current, "r": pa.array(np.arange(len(current), dtype=np.int64))})
    right = pa.table({"k": incoming, "s": pa.array(np.arange(len(incoming), dtype=np.int64))})
    matched = left.join(right, "k", join_type="inner")  # null keys never match
    rows = matched.column("r").to_numpy()
    sources = matched.column("s").to_numpy()
    order = np.argsort(rows, kind="stable")
    rows, sources = rows[order], sources[order]
    inserts = np.setdiff1d(np.arange(len(incoming), dtype=np.int64), sources)
    deletes = (
        np.setdiff1d(np.arange(len(current), dtype=np.int64), rows)
        if when_not_matched_by_source == "delete"
        else np.zeros(0, dtype=np.int64)
    )
    names = table.column_names if given is None else [n for n in given if n in table.column_names]
    return UpsertPlan(
        matched_rows=rows,
        matched_sources=sources,
        inserts=inserts,
        deletes=deletes,
        update_columns=[n for n in names if n != on],
    )


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.ExtensionArray):
        column = column.storage
    return column
