"""Bounded caches for immutable files (footers, deletion and update files).

Data files never change once written (their names are unique), so caching what was parsed
from them is always safe; only memory needs bounding. Budget: ``MAX_ENTRIES`` per cache.
"""

from __future__ import annotations

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
