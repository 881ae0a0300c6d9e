"""Adapters over the public API: importers, exporters and progress reporting.

Optional packages (pandas, polars, tqdm, Pillow) are imported inside the functions that
need them.
"""

from __future__ import annotations

from lakefmt.integrations.exporters import to_csv, to_image_folder, to_parquet
from lakefmt.integrations.importers import (
    from_arrow,
    from_coco,
    from_csv,
    from_image_folder,
    from_pandas,
    from_parquet,
)
from lakefmt.integrations.polars_scan import scan_polars

__all__ = [
    "from_arrow",
    "from_coco",
    "from_csv",
    "from_image_folder",
    "from_pandas",
    "from_parquet",
    "scan_polars",
    "to_csv",
    "to_image_folder",
    "to_parquet",
]
