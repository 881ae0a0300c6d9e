"""Local disk backend: plain paths, ``file://`` and ``tmp://``.

Commits rely on ``os.link``, which fails if the target exists, so two processes racing for
the same manifest name cannot both win (``os.replace`` would silently overwrite).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator

import pyarrow as pa

from lakefmt.storage.base import Capabilities, Storage

_TMP_DIR = "_tmp"


class LocalStorage(Storage):
    """A dataset root on the local file system.

    Args:
        root: Absolute directory of the dataset (created on first write).
        url: The URL the user gave, kept for messages and re-opening.
        sync: ``fsync`` files before they become visible, so a power loss cannot leave a
            manifest that points to data the disk never received.
    """

    capabilities = Capabilities(atomic_create=True, local=True)

    def __init__(self, root: str, *, url: str | None = None, sync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.url = url or self.root
        self.sync = sync

    def _full(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/")) if path else self.root

    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``path`` (``[start, end)`` when given)."""
        with open(self._full(path), "rb") as f:
            if start is None and end is None:
                return f.read()
            f.seek(start or 0)
            return f.read(-1 if end is None else end - (start or 0))

    def _write_temp(self, data: bytes, durable: bool = True) -> str:
        tmp_dir = self._full(_TMP_DIR)
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
        with open(tmp, "wb") as f:
            f.write(data)
            if self.sync and durable:
                f.flush()
                os.fsync(f.fileno())
        return tmp

    def write(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Write ``data`` to ``path`` via a temp file and rename, so readers never see half."""
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tmp = self._write_temp(data, durable)
        os.replace(tmp, full)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` atomically with ``data``; ``False`` if it already existed."""
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tmp = self._write_temp(data)
        try:
            os.link(tmp, full)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        if self.sync:
            _fsync_dir(os.path.dirname(full))
        return True

    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists."""
        return os.path.exists(self._full(path))

    def size(self, path: str) -> int:
        """Return the size of ``path`` in bytes."""
        return os.path.getsize(self._full(path))

    def modified(self, path: str) -> float:
        """Return the modification time of ``path``."""
        return os.path.getmtime(self._full(path))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every file below ``prefix``, as root-relative paths."""
        base = self._full(prefix)
        if not os.path.isdir(base):
            return
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                yield name if rel == "." else f"{rel}/{name}"

    def delete(self, path: str) -> None:
        """Remove ``path`` if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._full(path))

    def delete_all(self) -> None:
        """Remove the dataset directory."""
        shutil.rmtree(self.root, ignore_errors=True)

    def open_input(self, path: str) -> pa.NativeFile:
        """Memory-map ``path``: ranged reads cost page faults, not copies."""
        return pa.memory_map(self._full(path), "r")

    def write_stream(self, path: str, write: Callable[[pa.NativeFile], None]) -> int:
        """Stream straight into ``path`` (a fresh name, so no temp file is needed)."""
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with pa.OSFile(full, "wb") as out:
            write(out)
            size = out.tell()
        if self.sync:
            fd = os.open(full, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            # The directory entry too: a manifest must never outlive (in a power loss)
            # the name of a file it lists.
            _fsync_dir(os.path.dirname(full))
        return int(size)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
