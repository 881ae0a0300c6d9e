"""Adapters over the public API: importers, exporters and progress reporting.

Optional packages (pandas, polars, tqdm, Pillow) are imported inside the functions that
need them.
"""

from __future__ import annotations
