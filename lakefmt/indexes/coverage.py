"""Which rows of a version an index segment may answer for (``spec/format.md``, "Indexes").

A segment records, for each fragment it indexed, the data file and update files the field
was read from. It answers for a fragment of a version only while that version still reads
the field from the same data file: positions named by update files written after the build
are *dirty* (searched exactly), and a fragment whose column was rewritten, or that no
segment recorded, is *uncovered* (searched exactly). Deletions are applied as allowed sets
by the searches. So an index never supplies a stale or deleted row, whatever operations
(merges, compactions, schema changes, writers that kept an unknown member) came between.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lakefmt.format import fragments as files
from lakefmt.format.manifest import Fragment, Index, IndexedFragment, IndexSegment
from lakefmt.format.snapshot import Snapshot


@dataclasses.dataclass(frozen=True)
class CoveredFragment:
    """A fragment of the version that a segment answers for.

    Attributes:
        fragment: Index of the fragment in the version's manifest.
        key_start: Segment key of the fragment's physical position 0.
        dirty: Sorted physical positions the segment must not answer for (cells updated
            after the build).
    """

    fragment: int
    key_start: int
    dirty: np.ndarray


@dataclasses.dataclass
class Coverage:
    """How an index covers one version.

    Attributes:
        index: The index.
        segments: Segments with at least one covered fragment, with those fragments.
        uncovered: Indices of the version's fragments (with live rows) no segment covers.
    """

    index: Index
    segments: list[tuple[IndexSegment, list[CoveredFragment]]]
    uncovered: list[int]

    def covered_rows(self, snapshot: Snapshot) -> int:
        """Live rows the segments answer for (dirty positions not counted)."""
        fragments = snapshot.manifest.fragments
        total = 0
        for _, parts in self.segments:
            for part in parts:
                fragment = fragments[part.fragment]
                total += fragment.live_rows - len(part.dirty)
        return total

    def uncovered_rows(self, snapshot: Snapshot) -> int:
        """Live rows searched exactly: uncovered fragments and dirty positions."""
        return snapshot.num_rows - self.covered_rows(snapshot)


def source_file(fragment: Fragment, field_id: int) -> str | None:
    """Path of the data file a fragment's field is read from (the last holding it)."""
    holder = None
    for data_file in fragment.files:
        if field_id in data_file.field_ids:
            holder = data_file.path
    return holder


def field_update_files(fragment: Fragment, field_id: int) -> list[str]:
    """Paths of a fragment's update files of one field, in order."""
    return [u.path for u in fragment.updates if u.field_id == field_id]


def coverage(snapshot: Snapshot, index: Index) -> Coverage:
    """Match an index's segments against a version's fragments (the reader rules)."""
    recorded: dict[str, tuple[IndexSegment, IndexedFragment]] = {}
    for segment in sorted(index.segments, key=lambda s: s.id):
        for entry in segment.fragments:
            recorded[entry.data_file] = (segment, entry)  # the higher segment id wins
    by_segment: dict[int, tuple[IndexSegment, list[CoveredFragment]]] = {}
    uncovered: list[int] = []
    for k, fragment in enumerate(snapshot.manifest.fragments):
        if fragment.live_rows == 0:
            continue
        part = _covered(snapshot, fragment, k, index.field_id, recorded)
        if part is None:
            uncovered.append(k)
            continue
        segment, covered = part
        by_segment.setdefault(segment.id, (segment, []))[1].append(covered)
    return Coverage(index, [by_segment[i] for i in sorted(by_segment)], uncovered)


def _covered(
    snapshot: Snapshot,
    fragment: Fragment,
    k: int,
    field_id: int,
    recorded: dict[str, tuple[IndexSegment, IndexedFragment]],
) -> tuple[IndexSegment, CoveredFragment] | None:
    path = source_file(fragment, field_id)
    if path is None or path not in recorded:
        return None
    segment, entry = recorded[path]
    if entry.rows != fragment.rows:
        return None
    now = field_update_files(fragment, field_id)
    if now == entry.update_files:
        dirty = np.zeros(0, dtype=np.int64)
    elif not entry.update_files:
        # cells updated after the build: every position an update file names is dirty
        dirty = _updated_positions(snapshot, fragment, field_id)
    else:
        # the build read update files the version no longer lists as such: their values
        # may have been merged or reverted, which only a re-read could tell
        return None
    return segment, CoveredFragment(k, entry.key_start, dirty)


def _updated_positions(snapshot: Snapshot, fragment: Fragment, field_id: int) -> np.ndarray:
    positions = [
        files.read_update_file(snapshot.storage, u.path, u.size)[0]
        for u in fragment.updates
        if u.field_id == field_id
    ]
    if not positions:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(positions).astype(np.int64))


def allowed_keys(
    snapshot: Snapshot,
    segment: IndexSegment,
    parts: list[CoveredFragment],
    allowed: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """The segment keys a search may return, as a bool mask of ``segment.rows``.

    A key is allowed when its fragment is covered, its row is not deleted or dirty, and,
    when ``allowed`` is given (fragment index -> bool mask over physical positions, for a
    WHERE), the row matches.
    """
    mask = np.zeros(segment.rows, dtype=bool)
    fragments = snapshot.manifest.fragments
    for part in parts:
        fragment = fragments[part.fragment]
        live = np.ones(fragment.rows, dtype=bool)
        live[snapshot.deleted(fragment)] = False
        live[part.dirty] = False
        if allowed is not None:
            live &= allowed.get(part.fragment, np.zeros(fragment.rows, dtype=bool))
        mask[part.key_start : part.key_start + fragment.rows] = live
    return mask


def keys_to_rows(parts: list[CoveredFragment], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fragment index, physical position)`` of segment keys of covered fragments."""
    keys = np.asarray(keys, dtype=np.int64)
    starts = np.array([p.key_start for p in parts], dtype=np.int64)
    order = np.argsort(starts)
    starts = starts[order]
    which = np.searchsorted(starts, keys, side="right") - 1
    frag = np.array([parts[i].fragment for i in order], dtype=np.int64)[which]
    return frag, keys - starts[which]
