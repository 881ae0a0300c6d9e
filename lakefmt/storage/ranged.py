"""A read-only file over an object store whose every read is one ranged GET."""

from __future__ import annotations

import io
from typing import Any, Protocol


class RangeSource(Protocol):
    """What :class:`RangedFile` reads from (an ``ObjectStoreStorage``)."""

    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes ``[start, end)`` of ``path``."""
        ...

    def immutable_size(self, path: str) -> int:
        """Return the size of ``path``, an object that is never rewritten (cached)."""
        ...


class RangedFile(io.RawIOBase):
    """A read-only, seekable file whose every read is one ranged GET of exactly that range.

    pyarrow reads Parquet footers and column chunks with positioned reads; fsspec's buffered
    files would round each up to a read-ahead block (5 MiB in s3fs), and download far more
    than a single-row read needs.
    """

    def __init__(self, storage: RangeSource, path: str, size: int | None) -> None:
        super().__init__()
        self._storage = storage
        self._path = path
        self._size = size
        self._pos = 0

    def _get_size(self) -> int:
        if self._size is None:
            self._size = self._storage.immutable_size(self._path)
        return self._size

    def size(self) -> int:
        """Return the object's size (one HEAD the first time)."""
        return self._get_size()

    def readable(self) -> bool:
        """Return True."""
        return True

    def seekable(self) -> bool:
        """Return True."""
        return True

    def tell(self) -> int:
        """Return the current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (no request)."""
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._get_size() + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if self._pos < 0:
            raise ValueError("negative seek position")
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes from the position with one ranged GET (all if -1)."""
        total = self._get_size()
        end = total if size is None or size < 0 else min(total, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._storage.read(self._path, start=self._pos, end=end)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        """Read from the position to the end."""
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; returns the number of bytes read."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
