"""How distributed readers split a version: runs of whole fragments, as global row ranges.

An engine's read task then reads ``view[start:stop]`` of the same pinned version, so each
task opens only its own fragments' files, and deletions, updates and renames of that version
apply as in any read.
"""

from __future__ import annotations

from lakefmt.dataset.dataset import ReadOnlyDataset
from lakefmt.errors import InvalidArgumentError

#: Rows a read task aims at: a fragment holds at most this many (``writer.FRAGMENT_MAX_ROWS``).
PARTITION_ROWS = 1 << 20


def fragment_row_ranges(
    view: ReadOnlyDataset, target_rows: int = PARTITION_ROWS
) -> list[tuple[int, int]]:
    """Split the live rows of ``view``'s version into ``[start, stop)`` ranges of adjacent
    whole fragments, each at least ``target_rows`` rows where the fragments allow (the last
    may be smaller); fragments with every row deleted join a neighbour.

    Raises:
        InvalidArgumentError: ``target_rows`` is not a positive integer.
    """
    if isinstance(target_rows, bool) or not isinstance(target_rows, int) or target_rows < 1:
        raise InvalidArgumentError(f"target_rows must be a positive integer, not {target_rows!r}")
    ranges: list[tuple[int, int]] = []
    start = stop = 0
    for fragment in view._manifest.fragments:
        stop += fragment.live_rows
        if stop - start >= target_rows:
            ranges.append((start, stop))
            start = stop
    if stop > start:
        ranges.append((start, stop))
    return ranges
