"""The storage contract the format layer is written against."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a backend guarantees.

    Attributes:
        atomic_create: ``put_if_absent`` is atomic: of N racing writers exactly one wins.
            Without it a dataset refuses concurrent writers.
        local: Paths are files of this machine (memory maps and ``os`` calls work).
        cheap_probes: ``exists`` costs microseconds, not a network round trip.
    """

    atomic_create: bool
    local: bool = False
    cheap_probes: bool = False


class Storage(abc.ABC):
    """A dataset root on some backend; every path is relative to the root, ``/``-separated.

    Implementations must make ``put_if_absent`` atomic where ``capabilities.atomic_create``
    says so, because commits rely on it (see ``spec/format.md``, "Committing").
    """

    url: str
    capabilities: Capabilities
    creds: dict[str, Any] | None = None

    @abc.abstractmethod
    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``path`` (``[start, end)`` when given).

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """

    @abc.abstractmethod
    def write(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Write ``data`` to ``path``, replacing it. Use only for fresh, unique names or hints.

        ``durable=False`` allows skipping the sync to disk and writing in place, so a reader
        may see the file empty or half written (only for hints that readers verify).
        """

    @abc.abstractmethod
    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` with ``data`` unless it exists; return ``False`` if it existed."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists."""

    @abc.abstractmethod
    def size(self, path: str) -> int:
        """Return the size of ``path`` in bytes."""

    @abc.abstractmethod
    def modified(self, path: str) -> float:
        """Return the modification time of ``path`` as POSIX seconds."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every file below the directory ``prefix`` (recursively), as root-relative paths."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove ``path``; a missing file is not an error."""

    @abc.abstractmethod
    def delete_all(self) -> None:
        """Remove the whole root and everything below it."""

    @abc.abstractmethod
    def open_input(self, path: str) -> pa.NativeFile:
        """Open ``path`` for random-access reading by pyarrow (ranged reads, no full download)."""

    @abc.abstractmethod
    def write_stream(
        self,
        path: str,
        write: Callable[[pa.NativeFile], None],
        *,
        size_hint: int | None = None,
    ) -> int:
        """Create ``path`` from what ``write`` writes into the stream it is given.

        Used for data files, which have fresh unique names: a crash may leave a partial file,
        but no manifest refers to it. Returns the number of bytes written.

        ``size_hint`` is the caller's estimate of the size; a backend that buffers in memory
        may reserve that much up front instead of growing its buffer. If the output outgrows
        the reservation, ``write`` is called again on a fresh stream, so it must start from
        scratch each time it is called.
        """

    def settle_writes(self) -> None:
        """Make every file this process created with a plain write durable now.

        A backend whose writes are durable once they return (object stores: a completed
        upload) owes nothing; local disk syncs the files it still owes (see
        :mod:`lakefmt.storage.local`). A process whose files another process commits
        (two-phase writes) calls this before it hands their names over.

        Raises:
            OSError: A sync failed; the files must not be committed.
        """
        return None  # this default: every write was durable when it returned

    def describe(self) -> str:
        """Return the root URL, for messages."""
        return self.url
