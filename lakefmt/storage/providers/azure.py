"""Azure Blob Storage through adlfs and azure-storage-blob's async clients.

Reads and writes use fsspec's sync faces of adlfs's coroutines (``cat_file``,
``pipe_file``, ``put_file``; checked against adlfs 2026.8.0). ``HEAD``, listing and
``DELETE`` have no single-request public adlfs call (its ``info``, ``find`` and ``rm_file``
add directory probes), so they use the SDK's public ``BlobServiceClient`` directly. adlfs
keeps that client in the attribute ``service_client`` and runs it on the event loop
``loop`` (fsspec's public loop of an async file system): :func:`_run_on_client` is the one
place that touches either, and ``tests/object_store/test_provider_api.py`` fails loudly
if adlfs stops setting them.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from fsspec.asyn import sync

from lakefmt._pool import shared_pool
from lakefmt.storage import transfer
from lakefmt.storage.providers.base import Ops, timestamp

T = TypeVar("T")

#: What this adapter uses of ``adlfs.AzureBlobFileSystem``: method -> keywords it passes.
LIBRARY_API: dict[str, tuple[str, ...]] = {
    "cat_file": ("start", "end"),
    "pipe_file": ("overwrite",),
    "put_file": ("overwrite", "max_concurrency"),
}
#: Instance attributes of ``adlfs.AzureBlobFileSystem`` this adapter relies on.
LIBRARY_ATTRIBUTES = ("service_client", "loop")


def azure_error(exc: BaseException) -> BaseException:
    """Map azure-core exceptions to the builtins the storage layer speaks."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "ResourceNotFoundError" in names:
        return FileNotFoundError(errno.ENOENT, first_line)
    if "ResourceExistsError" in names or "ResourceModifiedError" in names:
        return FileExistsError(errno.EEXIST, first_line)
    if "ClientAuthenticationError" in names:
        return PermissionError(errno.EACCES, first_line)
    return exc


def _run_on_client(fs: Any, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(service_client)`` on adlfs's event loop and wait for its result."""

    async def run() -> T:
        return await work(fs.service_client)

    result: T = sync(fs.loop, run)
    return result


class AzureOps(Ops):
    """Azure Blob Storage through adlfs's azure-storage-blob async clients."""

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn``; azure-core's exceptions become builtins."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            mapped = azure_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    @staticmethod
    def _split(full: str) -> tuple[str, str]:
        container, _, blob = full.partition("/")
        return container, blob

    def head(self, full: str) -> tuple[int, float]:
        """One ``Get Blob Properties``."""
        container, blob = self._split(full)

        async def head(service: Any) -> tuple[int, float]:
            async with service.get_blob_client(container, blob) as client:
                props = await client.get_blob_properties()
            return int(props.size), timestamp(props.last_modified)

        return self._call(_run_on_client, self.fs, head)

    def list(self, prefix: str) -> list[str]:
        """``List Blobs`` pages."""
        container, key = self._split(prefix)

        async def listing(service: Any) -> list[str]:
            async with service.get_container_client(container) as client:
                return [
                    f"{container}/{blob.name}"
                    async for blob in client.list_blobs(name_starts_with=key)
                ]

        return self._call(_run_on_client, self.fs, listing)

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """One (ranged) ``Get Blob``."""
        return bytes(self._call(self.fs.cat_file, full, start=start, end=end))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One ``Put Blob``; ``overwrite=False`` sends ``If-None-Match: *`` when ``create``."""
        self._call(self.fs.pipe_file, full, data, overwrite=not create)

    def upload(self, local: str, full: str) -> None:
        """A block upload, ``MAX_CONCURRENCY`` blocks at a time."""
        self._call(
            self.fs.put_file,
            local,
            full,
            overwrite=True,
            max_concurrency=transfer.MAX_CONCURRENCY,
        )

    def delete(self, full: str) -> None:
        """One ``Delete Blob``."""
        container, blob = self._split(full)

        async def delete(service: Any) -> None:
            async with service.get_blob_client(container, blob) as client:
                await client.delete_blob()

        self._call(_run_on_client, self.fs, delete)

    def delete_many(self, fulls: Sequence[str]) -> None:
        """Concurrent ``Delete Blob`` calls (on the ``io`` pool)."""

        def one(full: str) -> None:
            with contextlib.suppress(FileNotFoundError):
                self.delete(full)

        list(shared_pool("io").map(one, fulls))
