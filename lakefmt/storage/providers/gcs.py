"""GCS through gcsfs's JSON API calls: object metadata ``GET``, list pages, uploads.

Public API only (checked against gcsfs 2026.10.1): ``call`` is gcsfs's sync wrapper of its
authenticated JSON API request; ``cat_file``, ``pipe_file``, ``put_file`` and ``rm_file``
are fsspec's sync faces of gcsfs's coroutines (``mode="create"`` sends
``ifGenerationMatch=0``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from lakefmt.storage import transfer
from lakefmt.storage.providers.base import Ops, timestamp
from lakefmt.storage.retry import status_of

#: What this adapter uses of ``gcsfs.GCSFileSystem``: method -> keywords it passes.
LIBRARY_API: dict[str, tuple[str, ...]] = {
    "call": ("json_out",),
    "cat_file": ("start", "end"),
    "pipe_file": ("mode",),
    "put_file": ("chunksize",),
    "rm_file": (),
}


class GCSOps(Ops):
    """GCS through gcsfs's JSON API calls."""

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a gcsfs call; its 401 and bare "Forbidden" OSErrors become PermissionError."""
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            if str(exc).startswith("Forbidden") and not isinstance(exc, PermissionError):
                raise PermissionError(errno.EACCES, str(exc).splitlines()[0]) from exc
            raise
        except Exception as exc:
            if status_of(exc) == 401:
                raise PermissionError(errno.EACCES, str(exc).splitlines()[0]) from exc
            raise

    def _metadata(self, full: str) -> dict[str, Any]:
        """The object's JSON resource: one ``GET``, or (where only listing is allowed) a
        one-item list, as gcsfs's own ``info`` does."""
        bucket, _, key = full.partition("/")
        if not key:
            raise FileNotFoundError(errno.ENOENT, "not an object", full)
        try:
            found: dict[str, Any] = self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
            return found
        except OSError as exc:
            if not str(exc).startswith("Forbidden"):
                raise
            page = self.fs.call("GET", "b/{}/o", bucket, json_out=True, prefix=key, maxResults=1)
            for item in page.get("items", []):
                if item["name"] == key:
                    return dict(item)
            raise FileNotFoundError(errno.ENOENT, "no such object", full) from None

    def head(self, full: str) -> tuple[int, float]:
        """One object metadata ``GET``."""
        info = self._call(self._metadata, full)
        return int(info.get("size", 0)), timestamp(info.get("updated"))

    def list(self, prefix: str) -> list[str]:
        """Object list pages of 1000 names."""
        bucket, _, key = prefix.partition("/")
        names: list[str] = []
        token: str | None = None
        while True:
            extra = {"pageToken": token} if token else {}
            page = self._call(
                self.fs.call,
                "GET",
                "b/{}/o",
                bucket,
                json_out=True,
                prefix=key,
                maxResults=1000,
                **extra,
            )
            names.extend(f"{bucket}/{item['name']}" for item in page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return names

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """One (ranged) media ``GET``."""
        return bytes(self._call(self.fs.cat_file, full, start=start, end=end))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One upload, with ``ifGenerationMatch=0`` when ``create``."""
        self._call(self.fs.pipe_file, full, data, mode="create" if create else "overwrite")

    def upload(self, local: str, full: str) -> None:
        """A resumable upload in ``PART_BYTES`` chunks (GCS takes them in order)."""
        self._call(self.fs.put_file, local, full, chunksize=transfer.PART_BYTES)

    def delete(self, full: str) -> None:
        """One object ``DELETE``."""
        self._call(self.fs.rm_file, full)
