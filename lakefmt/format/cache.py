"""Bounded caches for immutable files (footers, deletion and update files).

Data files never change once written (their names are unique), so caching what was parsed
from them is always safe; only memory needs bounding. Budget: ``MAX_ENTRIES`` per cache.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 1024


class LRUCache(Generic[V]):
    """A thread-safe least-recently-used cache with a fixed number of entries."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """Return the cached value of ``key``, loading (outside the lock) on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = load()
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()


#: Budget of the decoded row-group cache (bytes); ``LAKEFMT_CACHE_BYTES`` overrides it.
ROW_GROUP_CACHE_BYTES = int(os.environ.get("LAKEFMT_CACHE_BYTES", 256 << 20))


class ByteBudgetCache(Generic[V]):
    """A thread-safe LRU cache bounded by the total size of its values.

    Args:
        max_bytes: The budget; ``0`` caches nothing. Public, so it can be changed live.
        max_entry_share: The largest share of the budget one value may take.
    """

    def __init__(self, max_bytes: int, *, max_entry_share: float = 0.25) -> None:
        self._data: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.max_bytes = max_bytes
        self._share = max_entry_share
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        """Whether ``key`` is cached (without counting as a use)."""
        with self._lock:
            return key in self._data

    def get(self, key: Hashable) -> V | None:
        """The cached value, or None."""
        with self._lock:
            found = self._data.get(key)
            if found is None:
                return None
            self._data.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value: V, nbytes: int) -> None:
        """Cache ``value`` unless it is larger than its share of the budget."""
        if nbytes <= 0 or nbytes > self.max_bytes * self._share:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._data:
                _, (_, size) = self._data.popitem(last=False)
                self._bytes -= size

    def get_or_load(self, key: Hashable, load: Callable[[], V], size: Callable[[V], int]) -> V:
        """The cached value of ``key``, loading (outside the lock) and caching it on a miss."""
        found = self.get(key)
        if found is not None:
            return found
        value = load()
        self.put(key, value, size(value))
        return value

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
