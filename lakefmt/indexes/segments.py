"""Loading index segments for searches, with a cache of loaded segments.

Segment files are immutable and uniquely named, so a loaded segment is never stale.
A segment that cannot be loaded (a missing or damaged file, an engine that is not
installed) makes its index unusable for that query: the caller searches exactly and says
why (:class:`Unusable`), never returning rows from a damaged index.
"""

from __future__ import annotations

import logging
from typing import Any

from lakefmt.errors import FormatError, MissingDependencyError
from lakefmt.format.cache import LRUCache
from lakefmt.format.index_files import read_index_file
from lakefmt.format.manifest import Index, IndexSegment
from lakefmt.indexes.kinds import KINDS, load_keys
from lakefmt.indexes.scalar import SortedKeys
from lakefmt.storage import Storage

_LOG = logging.getLogger("lakefmt.indexes")

#: Loaded segments (engine objects), by dataset and file paths.
LOADED: LRUCache[Any] = LRUCache(64)
#: Problems already logged, so each is logged once per process.
_LOGGED: set[tuple[str, str]] = set()


class Unusable(Exception):
    """An index that cannot answer this query; the message says why (for ``explain``)."""


def load_segment(storage: Storage, index: Index, segment: IndexSegment) -> Any:
    """The searchable form of a segment.

    Raises:
        Unusable: The kind is unknown, its engine is not installed, or a file is missing
            or damaged (logged once).
    """
    kind = KINDS.get(index.kind)
    if kind is None:
        raise Unusable(f"index kind {index.kind!r} is unknown to this lakefmt")

    def load() -> Any:
        files = {f.role: read_index_file(storage, f) for f in segment.files}
        return kind.load(files)

    key = (storage.url, tuple(f.path for f in segment.files))
    return _cached(storage, index, key, load)


def load_sorted_keys(storage: Storage, index: Index, segment: IndexSegment) -> SortedKeys:
    """A segment's ``keys`` file (lookups of ``=``, ``IN`` and ranges), read alone: a text
    segment's postings are not loaded for a lookup.

    Raises:
        Unusable: The kind is unknown, the segment has no ``keys`` file, the file is
            missing or damaged, or its keys are outside the segment (logged once).
    """
    if index.kind not in KINDS:
        raise Unusable(f"index kind {index.kind!r} is unknown to this lakefmt")
    files = [f for f in segment.files if f.role == "keys"]

    def load() -> SortedKeys:
        loaded = load_keys({f.role: read_index_file(storage, f) for f in files})
        if loaded.max_key() >= segment.rows:
            raise FormatError(f"index segment {segment.id}: keys beyond its {segment.rows} rows")
        return loaded

    found = _cached(storage, index, (storage.url, tuple(f.path for f in files), "keys"), load)
    assert isinstance(found, SortedKeys)
    return found


def _cached(storage: Storage, index: Index, key: tuple[Any, ...], load: Any) -> Any:
    try:
        return LOADED.get_or_load(key, load)
    except (FormatError, MissingDependencyError) as exc:
        problem = (storage.url, str(exc))
        if problem not in _LOGGED:
            _LOGGED.add(problem)
            _LOG.warning("index %s on field %s not used: %s", index.id, index.field_id, exc)
        raise Unusable(str(exc)) from exc
