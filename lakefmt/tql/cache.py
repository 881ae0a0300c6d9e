"""An in-memory cache of whole vector columns of data files, bounded by bytes.

Brute-force vector search reads every embedding of a version. Decoding them from Parquet
costs more than the similarity itself, so the engine keeps decoded vector columns (Arrow
fixed-size lists) of data files in RAM. Data files are immutable and uniquely named, so a
cached column can never be stale; only memory needs a bound: ``LAKEFMT_QUERY_CACHE_BYTES``
(default 1 GiB; ``0`` turns the cache off).
"""

from __future__ import annotations

import os

import pyarrow as pa

from lakefmt.format.cache import ByteBudgetCache

#: Default budget of the vector cache.
DEFAULT_MAX_BYTES = 1 << 30


def _budget() -> int:
    raw = os.environ.get("LAKEFMT_QUERY_CACHE_BYTES")
    if raw is None:
        return DEFAULT_MAX_BYTES
    try:
        return max(0, int(raw))
    except ValueError:
        return DEFAULT_MAX_BYTES


#: The process-wide vector cache (a vector column may take the whole budget).
VECTORS: ByteBudgetCache[pa.Array] = ByteBudgetCache(_budget(), max_entry_share=1.0)
