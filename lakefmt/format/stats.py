"""What one version holds on storage: fragments, bytes referenced and live, rows deleted."""

from __future__ import annotations

import dataclasses

from lakefmt.format.manifest import Manifest

__all__ = ["VersionStats", "version_stats"]


@dataclasses.dataclass(frozen=True)
class VersionStats:
    """Sizes of one version (read from its manifest; no file is opened)."""

    fragments: int
    """Fragments of the version."""
    data_bytes: int
    """Bytes of the data files the version references."""
    live_bytes: float
    """Estimated bytes of those files still read: each fragment's files in proportion to its
    rows not deleted, minus columns superseded by a later column group or removed from the
    schema (``optimize`` reclaims the rest)."""
    deleted_rows: int
    """Rows deleted but still in data files (until compaction rewrites them)."""


def version_stats(manifest: Manifest) -> VersionStats:
    """The :class:`VersionStats` of the version ``manifest`` describes."""
    live_bytes = 0.0
    live_ids = {field.id for field in manifest.fields}
    for fragment in manifest.fragments:
        seen: set[int] = set()
        for data_file in reversed(fragment.files):
            useful = [i for i in data_file.field_ids if i not in seen and i in live_ids]
            seen.update(data_file.field_ids)
            share = len(useful) / max(len(data_file.field_ids), 1)
            live_bytes += data_file.size * share * (fragment.live_rows / max(fragment.rows, 1))
    return VersionStats(
        fragments=len(manifest.fragments),
        data_bytes=sum(d.size for f in manifest.fragments for d in f.files),
        live_bytes=live_bytes,
        deleted_rows=sum(f.rows - f.live_rows for f in manifest.fragments),
    )
