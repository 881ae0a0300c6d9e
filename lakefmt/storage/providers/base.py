"""The request primitives every provider adapter offers, and a generic fsspec version.

An adapter turns each storage operation into the one request it needs (a ``HEAD`` for a
size, one ``LIST`` page per 1000 keys, one ``GET`` per range) instead of fsspec's generic
paths, which add directory probes. Adapters call only public API: fsspec's synchronous
methods (each one the documented sync face of the ``_``-prefixed coroutine of the same
name, made by ``fsspec.asyn.mirror_sync_methods``), the clients' public wrappers
(``S3FileSystem.call_s3``, ``GCSFileSystem.call``) and the SDKs' own clients. What each
adapter needs from its library is listed in its ``LIBRARY_API``, which a test checks
against the installed versions.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def timestamp(value: Any) -> float:
    """POSIX seconds from what a store reports (datetime, ISO text, number; now if None)."""
    if value is None:
        return time.time()
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


class Ops:
    """The single-request primitives of one backend, over an fsspec file system.

    Every method is synchronous, does one request (or one request per page or part), and
    raises builtins: ``FileNotFoundError``, ``FileExistsError`` (a refused conditional
    create), ``PermissionError``, or whatever the transport raised (classified by
    :func:`lakefmt.storage.retry.is_transient`). This generic version uses fsspec's
    public API alone; the provider subclasses use each client's direct calls.
    """

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def head(self, full: str) -> tuple[int, float]:
        """Return ``(size, modified)`` of an object."""
        info = self.fs.info(full)
        if info.get("type") != "file":
            raise FileNotFoundError(errno.ENOENT, "not a file", full)
        for key in ("LastModified", "last_modified", "updated", "mtime"):
            if info.get(key) is not None:
                return int(info["size"]), timestamp(info[key])
        return int(info["size"]), time.time()

    def list(self, prefix: str) -> list[str]:
        """Return the full names of every object whose name starts with ``prefix``."""
        base = prefix.rstrip("/")
        return [p for p in self.fs.find(base) if p.startswith(prefix)]

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """Return the object's bytes (``[start, end)`` with a ranged GET when given)."""
        return bytes(self.fs.cat_file(full, start=start, end=end))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """PUT ``data``; with ``create`` only if no object exists (else FileExistsError)."""
        self.fs.pipe_file(full, data, mode="create" if create else "overwrite")

    def upload(self, local: str, full: str) -> None:
        """Upload a local file (in parallel parts where the client supports it)."""
        self.fs.put_file(local, full)

    def delete(self, full: str) -> None:
        """Remove one object (a missing one may or may not raise FileNotFoundError)."""
        self.fs.rm_file(full)

    def delete_many(self, fulls: Sequence[str]) -> None:
        """Remove many objects (missing ones are ignored)."""
        for full in fulls:
            with contextlib.suppress(FileNotFoundError):
                self.delete(full)
