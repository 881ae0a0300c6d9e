"""An in-memory cache of whole vector columns of data files, bounded by bytes.

Brute-force vector search reads every embedding of a version. Decoding them from Parquet
costs more than the similarity itself, so the engine keeps decoded vector columns (Arrow
fixed-size lists) of data files in RAM. Data files are immutable and uniquely named, so a
cached column can never be stale; only memory needs a bound: ``LAKEFMT_QUERY_CACHE_BYTES``
(default 1 GiB; ``0`` turns the cache off).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import pyarrow as pa

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


class VectorCache:
    """A thread-safe LRU of Arrow arrays, bounded by their total ``nbytes``.

    Args:
        max_bytes: The budget; ``None`` reads ``LAKEFMT_QUERY_CACHE_BYTES``.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = _budget() if max_bytes is None else max_bytes
        self._data: OrderedDict[Hashable, pa.Array] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def fits(self, nbytes: int) -> bool:
        """Whether an array of ``nbytes`` may be cached at all."""
        return 0 < nbytes <= self.max_bytes

    def get(self, key: Hashable) -> pa.Array | None:
        """The cached array of ``key``, or None."""
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def get_or_load(self, key: Hashable, load: Callable[[], pa.Array]) -> pa.Array:
        """Return the cached array of ``key``, loading it (outside the lock) on a miss."""
        found = self.get(key)
        if found is not None:
            return found
        value = load()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: pa.Array) -> None:
        """Cache ``value`` unless it alone exceeds the budget; evict least recently used."""
        size = value.nbytes
        if not self.fits(size):
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes and self._data:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= evicted.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
            self._bytes = 0


#: The process-wide vector cache.
VECTORS = VectorCache()
