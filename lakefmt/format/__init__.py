"""The on-disk format, version 1: manifests, fragments, commits, refs and maintenance.

``spec/format.md`` is the normative description; this package implements it.
"""

from __future__ import annotations

from lakefmt.format.manifest import FORMAT_VERSION, Manifest

__all__ = ["FORMAT_VERSION", "Manifest"]
