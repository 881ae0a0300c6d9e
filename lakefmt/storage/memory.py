"""``mem://name``: process-wide in-memory datasets, gone when the process exits.

fsspec's memory store checks then creates in ``"x"`` mode, which is not atomic across
threads; this backend keeps its own dict under a lock instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pyarrow as pa

from lakefmt.storage.base import Capabilities, Storage

# full key ("name/path") -> (bytes, time written); one store for the whole process
_FILES: dict[str, tuple[bytes | pa.Buffer, float]] = {}
_LOCK = threading.RLock()


class MemoryStorage(Storage):
    """A dataset root in this process's memory, named by the part after ``mem://``."""

    capabilities = Capabilities(atomic_create=True, cheap_probes=True)

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"mem://{name}"

    def _prefix(self) -> str:
        return self.name.rstrip("/") + "/" if self.name else ""

    def _key(self, path: str) -> str:
        return self._prefix() + path

    def _get(self, path: str) -> bytes | pa.Buffer:
        try:
            return _FILES[self._key(path)][0]
        except KeyError:
            raise FileNotFoundError(f"{self.url}/{path}") from None

    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``path`` (``[start, end)`` when given)."""
        data = self._get(path)
        if isinstance(data, pa.Buffer):
            data = data.to_pybytes()
        return data if start is None and end is None else data[start:end]

    def write(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Store ``data`` at ``path``."""
        with _LOCK:
            _FILES[self._key(path)] = (bytes(data), time.time())

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Store ``data`` at ``path`` unless it exists (atomic under the store's lock)."""
        with _LOCK:
            key = self._key(path)
            if key in _FILES:
                return False
            _FILES[key] = (bytes(data), time.time())
            return True

    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists."""
        return self._key(path) in _FILES

    def size(self, path: str) -> int:
        """Return the size of ``path`` in bytes."""
        return len(self._get(path))

    def modified(self, path: str) -> float:
        """Return when ``path`` was written."""
        try:
            return _FILES[self._key(path)][1]
        except KeyError:
            raise FileNotFoundError(f"{self.url}/{path}") from None

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every file below ``prefix``."""
        base = self._key(prefix.rstrip("/") + "/" if prefix else "")
        skip = len(self._prefix())
        with _LOCK:
            keys = [k for k in _FILES if k.startswith(base)]
        for k in keys:
            yield k[skip:]

    def delete(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        with _LOCK:
            _FILES.pop(self._key(path), None)

    def delete_all(self) -> None:
        """Remove every file of this root."""
        prefix = self._prefix()
        with _LOCK:
            for k in [k for k in _FILES if k.startswith(prefix)]:
                del _FILES[k]

    def open_input(self, path: str) -> pa.NativeFile:
        """Return a zero-copy reader over the stored bytes."""
        return pa.BufferReader(self._get(path))

    def write_stream(
        self,
        path: str,
        write: Callable[[pa.NativeFile], None],
        *,
        size_hint: int | None = None,
    ) -> int:
        """Collect what ``write`` writes and store it under ``path``.

        With a ``size_hint`` the bytes go into one buffer of that size, reserved up front: a
        growing stream would copy everything written so far each time it doubles. Output
        that outgrows the reservation is written again into a growing stream.
        """
        buffer = _write_reserved(write, size_hint) if size_hint else None
        if buffer is None:
            sink = pa.BufferOutputStream()
            write(sink)
            buffer = sink.getvalue()
        with _LOCK:
            _FILES[self._key(path)] = (buffer, time.time())
        return buffer.size


def _write_reserved(write: Callable[[pa.NativeFile], None], size: int) -> pa.Buffer | None:
    """Run ``write`` into a buffer of ``size`` bytes; ``None`` if it did not fit (or failed)."""
    reserved = pa.allocate_buffer(size)
    sink = pa.FixedSizeBufferWriter(reserved)
    try:
        write(sink)
    except OSError:
        # most likely "write out of bounds"; a real error happens again on the retry
        return None
    used = sink.tell()
    if used < size // 2:  # a poor estimate: do not keep the unused half alive
        return pa.py_buffer(reserved.slice(0, used).to_pybytes())
    return reserved.slice(0, used)
