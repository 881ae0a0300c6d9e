"""How a column group is laid out in Parquet: row-group sizes, and the encoding and
compression of each column, chosen from the data being written (no state; the files are
written by :mod:`lakefmt.format.fragments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lakefmt.errors import InvalidTypeError
from lakefmt.format.manifest import Field
from lakefmt.types.indexes import declared_index_types

#: Scalar row groups hold at most this many rows: large enough for DuckDB's parallel scans,
#: small enough that a random read decodes little (decoded groups are cached).
MAX_ROW_GROUP_ROWS = 131_072
#: Media row groups hold at most this many rows (they are sized by bytes first).
MAX_MEDIA_ROW_GROUP_ROWS = 32_768
#: Target uncompressed bytes per row group of scalar column groups.
SCALAR_ROW_GROUP_BYTES = 16 << 20
#: Target bytes per row group of media column groups (one image read reads one group).
#: pyarrow writes a group of fewer than 1024 values as one Parquet page, and pages under
#: 1 MiB about twice as slowly per byte (an extra copy, whatever the allocator); 1.5 MiB
#: keeps nearly every group above that while a single-image read stays cheap.
MEDIA_ROW_GROUP_BYTES = 3 << 19

#: Writes of fewer rows skip the encoding heuristics below: their files are small (and
#: automatic compaction rewrites them with the heuristics once they add up).
SMALL_WRITE_ROWS = 4096


def rows_per_group(table: pa.Table, target_bytes: int, max_rows: int) -> int:
    """Rows per row group so that a group holds about ``target_bytes`` (at most ``max_rows``)."""
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return int(max(1, min(max_rows, target_bytes // per_row)))


def dictionary_columns(table: pa.Table, sample: int = 10_000) -> list[str]:
    """Columns worth dictionary encoding: few distinct values in a sample of the rows.

    Trying a dictionary on high-cardinality columns (ids, measurements, embeddings) costs
    more CPU than the rest of the write and falls back to plain encoding anyway.
    """
    import pyarrow.compute as pc

    chosen = []
    head = table.slice(0, sample)
    for name, column in zip(head.column_names, head.columns, strict=True):
        if isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
        kind = column.type
        if not (
            pa.types.is_primitive(kind) or pa.types.is_string(kind) or pa.types.is_binary(kind)
        ):
            continue
        if len(column) == 0:
            continue
        if pc.count_distinct(column).as_py() <= len(column) // 4:
            chosen.append(name)
    return chosen


def _stored_as_integers(kind: pa.DataType) -> bool:
    """Whether Parquet stores ``kind`` as INT32/INT64, the physical types delta encoding
    takes (Arrow's intervals count as temporal too, but are not among them)."""
    return (
        pa.types.is_integer(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_duration(kind)
    )


def delta_columns(table: pa.Table, dictionary: Sequence[str]) -> dict[str, str]:
    """Integer and temporal columns outside the dictionary: ``DELTA_BINARY_PACKED``.

    Delta encoding shrinks ids, counters and timestamps to a few bits per value (random
    integers to their significant bits) and decodes ~5-10x faster than snappy: a scan of an
    int64 column of 131k rows takes ~0.2 ms per row group instead of ~1.8 ms. Every Parquet
    reader (DuckDB, Spark, polars, pyarrow) decodes it.
    """
    out = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if isinstance(kind, pa.ExtensionType):
            kind = kind.storage_type
        if name not in dictionary and _stored_as_integers(kind):
            out[name] = "DELTA_BINARY_PACKED"
    return out


#: A column whose sample snappy cannot shrink below this share is stored uncompressed.
INCOMPRESSIBLE = 0.9


def column_compression(
    table: pa.Table, dictionary: Sequence[str], sample_bytes: int = 1 << 18
) -> dict[str, str]:
    """Snappy for each column, except where a sample of its values does not compress
    (random floats, embeddings): there snappy costs CPU on every write and read for nothing.
    """
    out = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        out[name] = "snappy"
        if name in dictionary or table.num_rows == 0:
            continue
        array = column.chunk(0) if column.num_chunks else None
        if isinstance(array, pa.ExtensionArray):
            array = array.storage
        while array is not None and pa.types.is_fixed_size_list(array.type):
            size = array.type.list_size
            array = array.values.slice(array.offset * size, len(array) * size)
        if array is None or not (
            pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
        ):
            continue
        width = array.type.bit_width // 8
        head = array.slice(0, max(1, sample_bytes // width))
        raw = head.buffers()[1]
        if raw is None:
            continue
        start = head.offset * width
        data = raw.slice(start, len(head) * width)
        if data.size and pa.compress(data, "snappy").size > INCOMPRESSIBLE * data.size:
            out[name] = "none"
    return out


def plain_file_size(table: pa.Table, rows_per_group: int) -> int:
    """A generous bound on the size of ``table`` written uncompressed, without dictionaries.

    Plain-encoded values take what Arrow holds (a 4-byte length per binary value, like an
    offset); on top come definition levels (at most a bit per value), page and column chunk
    headers, the page index and the footer with the Arrow schema.
    """
    groups = -(-max(table.num_rows, 1) // rows_per_group)
    pages = groups + table.num_rows // 1024  # pages break at most every 1024 values
    per_column = table.num_rows // 8 + 256 * (groups + pages)
    return (
        table.nbytes
        + table.num_columns * per_column
        + 8 * table.schema.serialize().size
        + (64 << 10)
    )


#: Declared index types (``Field.type["params"]["index_type"]``) that Parquet bloom filters
#: serve: point lookups (``=``, ``IN``) on text columns whose index has no sorted keys.
#: ``numeric``, ``inverted`` and ``exact`` indexes answer lookups with their sorted ``keys``
#: files, which find rows without reading the data files: a bloom filter there only costs
#: bytes (60 MB over 291 MB of data in ``benchmarks/index_lookup.py`` at 10M rows).
BLOOM_FILTER_INDEX_TYPES = frozenset({"bm25"})
#: False-positive rate asked of each bloom filter (one per column chunk, sized for the
#: rows of its row group); pyarrow rounds the filter up to a power of two bytes, so the
#: real rate is lower.
BLOOM_FILTER_FPP = 0.02


#: Declared index types whose sorted ``keys`` answer point lookups.
LOOKUP_INDEX_TYPES = frozenset({"numeric", "inverted", "exact"})
#: Rows per row group (at most) of data files holding a column with a lookup index: a lookup
#: decodes the whole row group of each row it returns (for the first time, then it is in
#: the decoded-group cache), about 6 ms for 131,072 rows of four columns against 0.8 ms for
#: 16,384; scans lose little (footers a few kilobytes larger, DELTA/snappy blocks shorter).
LOOKUP_ROW_GROUP_ROWS = 16_384


def _declares(field: Field, kinds: frozenset[str]) -> bool:
    try:
        declared = declared_index_types(field.type.get("params") or {})
    except InvalidTypeError:  # written by a newer lakefmt: plain files rather than no write
        return False
    return not kinds.isdisjoint(d.name for d in declared)


def wants_bloom_filter(field: Field) -> bool:
    """Whether data files give this field's column a Parquet bloom filter: its type declares
    a text index without sorted keys (``bm25``), so point lookups on it read data files."""
    return _declares(field, BLOOM_FILTER_INDEX_TYPES)


def wants_lookup_row_groups(field: Field) -> bool:
    """Whether data files holding this field's column get row groups of at most
    :data:`LOOKUP_ROW_GROUP_ROWS` rows: its type declares an index with sorted keys."""
    return _declares(field, LOOKUP_INDEX_TYPES)


def bloom_filter_options(
    table: pa.Table, columns: Sequence[str], rows_per_group: int
) -> dict[str, dict[str, Any]]:
    """pyarrow's ``bloom_filter_options`` for ``columns`` of ``table`` (those Parquet can
    filter: one leaf of a primitive or string type), sized for a row group's rows."""
    out: dict[str, dict[str, Any]] = {}
    for name in columns:
        kind = table.schema.field(name).type
        if isinstance(kind, pa.ExtensionType):
            kind = kind.storage_type
        if pa.types.is_nested(kind) or pa.types.is_null(kind):
            continue
        ndv = max(1, min(rows_per_group, table.num_rows))
        out[name] = {"ndv": ndv, "fpp": BLOOM_FILTER_FPP}
    return out
