"""One adapter per object store provider: the requests each storage operation becomes.

:func:`ops_for` picks the adapter of a scheme (``"s3"``, ``"gs"``, ``"az"``); any other
fsspec file system gets the generic :class:`~lakefmt.storage.providers.base.Ops`, which
uses fsspec's public API alone.
"""

from __future__ import annotations

from typing import Any

from lakefmt.storage.providers.azure import AzureOps
from lakefmt.storage.providers.base import Ops
from lakefmt.storage.providers.gcs import GCSOps
from lakefmt.storage.providers.s3 import S3Ops

__all__ = ["AzureOps", "GCSOps", "Ops", "S3Ops", "ops_for"]

_OPS: dict[str, type[Ops]] = {"s3": S3Ops, "gs": GCSOps, "az": AzureOps}


def ops_for(scheme: str, fs: Any) -> Ops:
    """Return the request primitives for file system ``fs`` of provider ``scheme``."""
    return _OPS.get(scheme, Ops)(fs)
