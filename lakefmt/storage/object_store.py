"""``s3://``, ``gs://`` and ``az://`` through fsspec (s3fs, gcsfs, adlfs).

Commits need a conditional create: S3 and Azure ``If-None-Match: *``, GCS
``ifGenerationMatch=0``. fsspec exposes it as ``pipe_file(..., mode="create")`` on the
backends that support it; :meth:`ObjectStoreStorage.put_if_absent` uses that and nothing
weaker. A backend that does not honour it is detected by :meth:`probe_atomic_create` and the
dataset then refuses concurrent writers.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from lakefmt.errors import StorageError
from lakefmt.storage.base import Capabilities, Storage

# Errors of the HTTP layer that are worth a retry: throttling, timeouts, 5xx.
_RETRIES = 5
_BACKOFF_SECONDS = 0.1


class ObjectStoreStorage(Storage):
    """A dataset root under a bucket or container prefix.

    Args:
        fs: The fsspec file system (already configured with credentials).
        root: ``bucket/prefix`` without the scheme.
        url: The URL as the user gave it.
        creds: The credentials dict, kept so handles can be re-opened elsewhere.
    """

    def __init__(self, fs: Any, root: str, *, url: str, creds: dict[str, Any] | None) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.creds = creds
        self.capabilities = Capabilities(atomic_create=True)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _retry(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        delay = _BACKOFF_SECONDS
        for attempt in range(_RETRIES):
            try:
                return fn(*args, **kwargs)
            except (FileNotFoundError, FileExistsError, PermissionError):
                raise
            except (OSError, TimeoutError) as exc:
                if attempt == _RETRIES - 1:
                    raise StorageError(f"{self.url}: {exc}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``path`` (a ranged GET when ``start``/``end`` are given)."""
        data: bytes = self._retry(self.fs.cat_file, self._full(path), start=start, end=end)
        return data

    def write(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """PUT ``data`` at ``path`` (overwrites; fresh names only)."""
        self._retry(self.fs.pipe_file, self._full(path), data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Conditional PUT: create ``path`` only if no object exists there."""
        try:
            self._retry(self.fs.pipe_file, self._full(path), data, mode="create")
        except FileExistsError:
            return False
        except (TypeError, NotImplementedError) as exc:
            raise StorageError(
                f"{self.url}: this fsspec backend has no conditional create; "
                "concurrent writers are not safe here (upgrade s3fs/gcsfs/adlfs)"
            ) from exc
        return True

    def probe_atomic_create(self) -> bool:
        """Check that a second conditional create of one object is refused."""
        probe = f"_tmp/probe-{uuid.uuid4().hex}"
        try:
            first = self.put_if_absent(probe, b"1")
            second = self.put_if_absent(probe, b"2")
        except StorageError:
            return False
        finally:
            self.delete(probe)
        return first and not second

    def exists(self, path: str) -> bool:
        """Return whether an object exists at ``path``."""
        return bool(self._retry(self.fs.exists, self._full(path)))

    def size(self, path: str) -> int:
        """Return the object's size."""
        return int(self._retry(self.fs.size, self._full(path)))

    def modified(self, path: str) -> float:
        """Return the object's last-modified time."""
        info = self._retry(self.fs.info, self._full(path))
        for key in ("LastModified", "last_modified", "updated", "mtime"):
            value = info.get(key)
            if value is None:
                continue
            if hasattr(value, "timestamp"):
                return float(value.timestamp())
            if isinstance(value, str):
                from datetime import datetime

                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            return float(value)
        return time.time()

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every object below ``prefix``."""
        base = self._full(prefix.rstrip("/")) if prefix else self.root
        try:
            found = self._retry(self.fs.find, base)
        except FileNotFoundError:
            return
        skip = len(self.root) + 1
        for name in found:
            yield name[skip:]

    def delete(self, path: str) -> None:
        """Remove the object at ``path`` if present."""
        with contextlib.suppress(FileNotFoundError):
            self._retry(self.fs.rm_file, self._full(path))

    def delete_all(self) -> None:
        """Remove every object of this root."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.root, recursive=True)

    def open_input(self, path: str) -> pa.NativeFile:
        """Open for ranged reads: pyarrow asks only for the byte ranges it needs."""
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return PyFileSystem(FSSpecHandler(self.fs)).open_input_file(self._full(path))

    def write_stream(self, path: str, write: Callable[[pa.NativeFile], None]) -> int:
        """Stream a (multipart) upload; the object appears only when complete."""
        with self.fs.open(self._full(path), "wb") as handle:
            out = pa.PythonFile(handle, mode="w")
            write(out)
            size = out.tell()
        return int(size)
