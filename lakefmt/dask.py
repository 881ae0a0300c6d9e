"""Dask DataFrames over lakefmt datasets (``pip install 'lakefmt[dask]'``).

>>> import lakefmt.dask  # doctest: +SKIP
>>> ddf = lakefmt.dask.read("s3://bucket/ds", columns=["id", "caption"])  # doctest: +SKIP
>>> lakefmt.dask.write(ddf[ddf.id > 10], "s3://bucket/subset", mode="create")  # doctest: +SKIP

See :mod:`lakefmt.integrations.dask`; dask itself is imported on first use.
"""

from __future__ import annotations

from lakefmt.integrations.dask import read, write

__all__ = ["read", "write"]
