"""Per-column statistics of data files, recorded in the manifest when the file is written.

The bounds come from the Parquet footer pyarrow returns after writing (no second read of
the file): each row group's ``min``/``max``/``null_count``, combined over the file. Only
scalar columns a reader can compare without knowing lakefmt types get them: integers,
``float64``, booleans and strings. NaN counts of every floating-point column are counted
from the values being written (Parquet statistics leave NaN out of ``min``/``max``);
``float16``/``float32`` columns get a :class:`ColumnStats` with only that count.

A floating-point column holding NaN is written without Parquet statistics at all: DuckDB
(2.0.1) trusts a row group's ``min``/``max`` to bound every value and drops a filter such
as ``x <= -2.5`` it judges always true, returning the NaN rows (NaN sorts above every
number in DuckDB, so they do not match). A recorded ``nan_count`` is therefore the mark of
a file whose Parquet statistics a reader may trust (:func:`parquet_stats_trusted`); files
of older writers lack it and are read with a guard (:mod:`lakefmt.tql.relations`).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakefmt.format.manifest import ColumnStats, DataFile

__all__ = [
    "MAX_STATS_COLUMNS",
    "MAX_STRING_BOUND",
    "column_stats",
    "has_stats",
    "nan_counts",
    "parquet_stats_trusted",
]

#: Longest string bound stored (characters): a longer ``min`` is cut to this prefix (still a
#: lower bound), a longer ``max`` is left out (no upper bound), so that long text values do
#: not bloat the manifest.
MAX_STRING_BOUND = 64

#: Columns of one file that get statistics, at most (the first ones in file order), so that a
#: very wide table does not grow every manifest by its width (Iceberg's default is also 100).
MAX_STATS_COLUMNS = 100

_PHYSICAL = {"INT32", "INT64", "DOUBLE", "BOOLEAN", "BYTE_ARRAY"}


def _storage(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type


def has_stats(arrow_type: pa.DataType) -> bool:
    """Whether columns of this (storage) type get :class:`ColumnStats`."""
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_float64(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
    )


def _leaves(arrow_type: pa.DataType) -> int:
    """Parquet leaf columns of an Arrow type (nested types have several)."""
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
    if pa.types.is_struct(arrow_type):
        return sum(_leaves(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    if pa.types.is_map(arrow_type):
        return _leaves(arrow_type.key_type) + _leaves(arrow_type.item_type)
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
        or pa.types.is_list_view(arrow_type)
        or pa.types.is_large_list_view(arrow_type)
    ):
        return _leaves(arrow_type.value_type)
    return 1


def _bound(value: Any, arrow_type: pa.DataType, *, upper: bool) -> Any:
    """A JSON-safe bound, or None where the value cannot bound (non-finite, too long)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):  # a BYTE_ARRAY read without its string logical type
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        if len(value) <= MAX_STRING_BOUND:
            return value
        return None if upper else value[:MAX_STRING_BOUND]
    if isinstance(value, bool):
        return value if pa.types.is_boolean(arrow_type) else None
    if isinstance(value, int):
        return value if pa.types.is_integer(arrow_type) else None
    return None


def nan_counts(table: pa.Table) -> dict[int, int]:
    """NaN values of each floating-point column of ``table`` (by column index)."""
    out = {}
    for i, column in enumerate(table.columns):
        kind = (
            column.type.storage_type if isinstance(column.type, pa.ExtensionType) else column.type
        )
        if pa.types.is_floating(kind):
            if isinstance(column.type, pa.ExtensionType):
                column = pa.chunked_array([c.storage for c in column.chunks], kind)
            out[i] = int(pc.sum(pc.is_nan(column)).as_py() or 0)
    return out


def _one_column(
    metadata: pq.FileMetaData, leaf: int, arrow_type: pa.DataType, nans: int | None
) -> ColumnStats | None:
    lows: list[Any] = []
    highs: list[Any] = []
    lo_known = hi_known = True
    nulls: int | None = 0
    for g in range(metadata.num_row_groups):
        column = metadata.row_group(g).column(leaf)
        if column.physical_type not in _PHYSICAL:
            return None
        stats = column.statistics
        rows = metadata.row_group(g).num_rows
        if stats is None:
            nulls = None
            if rows:
                lo_known = hi_known = False
            continue
        group_nulls = stats.null_count if stats.has_null_count else None
        nulls = None if nulls is None or group_nulls is None else nulls + group_nulls
        if stats.has_min_max:
            g_lo = _bound(stats.min, arrow_type, upper=False)
            g_hi = _bound(stats.max, arrow_type, upper=True)
            lo_known = lo_known and g_lo is not None
            hi_known = hi_known and g_hi is not None
            lows.append(g_lo)
            highs.append(g_hi)
        elif group_nulls != rows:
            # values without bounds: all NaN, or a writer that kept none
            lo_known = hi_known = False
    lo = min(lows) if lo_known and lows else None
    hi = max(highs) if hi_known and highs else None
    nan_count = nans if pa.types.is_float64(arrow_type) else None
    if lo is None and hi is None and nulls is None and nan_count is None:
        return None
    return ColumnStats(min=lo, max=hi, null_count=nulls, nan_count=nan_count)


def column_stats(
    metadata: pq.FileMetaData, schema: pa.Schema, nans: dict[int, int] | None = None
) -> list[ColumnStats | None]:
    """:class:`ColumnStats` of each top-level column of a written file (None where the
    column's type gets none); ``nans`` (:func:`nan_counts` of the values written) gives
    the NaN counts of floating-point columns."""
    out: list[ColumnStats | None] = []
    leaf = 0
    for i, field in enumerate(schema):
        storage = (
            field.type.storage_type if isinstance(field.type, pa.ExtensionType) else field.type
        )
        found = None
        recorded = sum(s is not None for s in out)
        if recorded >= MAX_STATS_COLUMNS:
            pass
        elif has_stats(storage) and metadata.num_columns > leaf:
            found = _one_column(metadata, leaf, storage, (nans or {}).get(i))
        elif pa.types.is_floating(storage) and nans is not None and i in nans:
            # no bounds (pruning compares float64 only), but the count marks the file's
            # Parquet statistics of the column as NaN-safe
            found = ColumnStats(nan_count=nans[i])
        out.append(found)
        leaf += _leaves(field.type)
    return out


def parquet_stats_trusted(data_file: DataFile, field_id: int, arrow_type: pa.DataType) -> bool:
    """Whether the Parquet statistics of column ``field_id`` of ``data_file`` may filter
    rows in a reader that orders NaN above every number (DuckDB).

    Always for non-floating columns. A floating column must have a recorded ``nan_count``:
    this library writes no Parquet statistics for a column holding NaN, but older writers
    did, with bounds that leave the NaN out.
    """
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
    if not pa.types.is_floating(arrow_type):
        return True
    if data_file.stats is None or field_id not in data_file.field_ids:
        return False
    index = data_file.field_ids.index(field_id)
    stats = data_file.stats[index] if index < len(data_file.stats) else None
    return stats is not None and stats.nan_count is not None
