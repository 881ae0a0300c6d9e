"""When and what a handle compacts: the automatic compaction that rides along with a commit
of new rows, and the full compaction of ``optimize`` (the rewriting itself is
:mod:`lakefmt.format.maintenance`'s); and how long ``cleanup`` keeps unreferenced files."""

from __future__ import annotations

import datetime
import functools
from typing import Any

import numpy as np

from lakefmt._progress import Progress
from lakefmt.dataset.writer import FRAGMENT_MAX_BYTES, FRAGMENT_MAX_ROWS, write_fragments
from lakefmt.errors import InvalidArgumentError, LakefmtError
from lakefmt.format import commit as commits
from lakefmt.format import maintenance
from lakefmt.format.manifest import Fragment
from lakefmt.format.merge import shared_fragments
from lakefmt.format.snapshot import Snapshot
from lakefmt.storage import Storage

#: Cleanup keeps unreferenced files younger than this, for writers still committing.
DEFAULT_CLEANUP_AGE = datetime.timedelta(days=7)


def compaction(storage: Storage, snap: Snapshot, run: list[Fragment]) -> commits.ReplaceFragments:
    """Rewrite a run of adjacent fragments of ``snap``; the operation that swaps them in."""
    drafts = maintenance.rewrite_run(
        storage,
        snap.manifest,
        run,
        functools.partial(write_fragments, storage, snap),
        max_rows=FRAGMENT_MAX_ROWS,
        max_bytes=FRAGMENT_MAX_BYTES,
    )
    return commits.ReplaceFragments(snap.manifest, [f.id for f in run], drafts)


def auto_compaction(storage: Storage, snap: Snapshot) -> commits.ReplaceFragments | None:
    """The compaction due on ``snap``'s version, if any: it rides along with the next commit
    of new rows (one manifest, one round of syncs, instead of a commit of its own).

    Fragments another branch shares are left alone: a merge could not follow (spec 11.1).
    """
    manifest = snap.manifest
    if maintenance.plan_auto_compaction(manifest) is None:
        return None  # the common case: no branch lookups needed
    try:
        keep = shared_fragments(storage, manifest)
    except LakefmtError:
        return None  # a damaged or vanished ref: what is shared is unknown, so wait
    run = maintenance.plan_auto_compaction(manifest, keep=keep)
    return None if run is None else compaction(storage, snap, run)


def full_compaction(
    storage: Storage, snap: Snapshot, *, progress: bool | None
) -> list[commits.Operation]:
    """The operations of ``optimize``: every run of adjacent fragments that
    :func:`~lakefmt.format.maintenance.plan_compaction` finds worth rewriting, rewritten (a
    progress bar counts the fragments)."""
    runs = maintenance.plan_compaction(snap.manifest)
    ops: list[commits.Operation] = []
    with Progress(sum(len(r) for r in runs), "optimize", progress, "fragments") as bar:
        for run in runs:
            ops.append(compaction(storage, snap, run))
            bar.update(len(run))
    return ops


def cleanup_seconds(older_than: Any) -> float:
    """The grace period of ``cleanup`` in seconds, from a ``timedelta`` or a number.

    Raises:
        InvalidArgumentError: Neither, or negative.
    """
    if isinstance(older_than, datetime.timedelta):
        seconds = older_than.total_seconds()
    elif isinstance(older_than, (int, float, np.integer, np.floating)) and not isinstance(
        older_than, bool
    ):
        seconds = float(older_than)
    else:
        raise InvalidArgumentError(
            f"older_than must be a timedelta or a number of seconds, got {older_than!r}"
        )
    if seconds < 0:
        raise InvalidArgumentError(f"older_than must not be negative, got {older_than!r}")
    return seconds
