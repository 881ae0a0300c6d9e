"""Storage layer: one :class:`Storage` object per dataset root.

A storage offers exactly what the format layer needs: whole and ranged reads, writes of
fresh uniquely named files, an atomic create-if-absent for commits, listing and deletion.
:func:`open_storage` resolves a URL (``mem://``, ``tmp://``, plain paths, ``file://``,
``s3://``, ``gs://``, ``az://``) to a backend.
"""

from __future__ import annotations

from lakefmt.storage.base import Capabilities, Storage
from lakefmt.storage.registry import open_storage, parse_url

__all__ = ["Capabilities", "Storage", "open_storage", "parse_url"]
