"""``s3://``, ``gs://`` and ``az://`` through fsspec (s3fs, gcsfs, adlfs).

What a dataset needs from an object store, and how this module gets it:

* **Atomic commits.** A manifest is created with a conditional PUT: ``If-None-Match: *`` on S3
  and Azure (s3fs ``pipe_file(mode="create")``, adlfs ``upload_blob(overwrite=False)``),
  ``ifGenerationMatch=0`` on GCS (gcsfs ``pipe_file(mode="create")``). Of N writers racing for
  one name the store lets exactly one create it; the others get ``412``/``409`` and rebase.
  Nothing ever commits with a plain overwrite.
* **A probe, not a promise.** Some S3-compatible stores accept the header and ignore it. The
  first time a root is opened for writing (``capabilities.atomic_create``, read by
  :func:`lakefmt.format.commit.check_atomic`) or a conditional create is attempted, the store
  is probed: create ``_tmp/probe-<uuid>`` twice; the second create must be refused. The answer
  is cached per endpoint, credentials and bucket for the life of the process. Where the store
  fails the probe, writers are refused with a :class:`~lakefmt.errors.StorageError`, unless the
  user opened the dataset in **single-writer mode** (``creds={..., "single_writer": True}``):
  then a commit checks (``HEAD``) that the manifest does not exist yet and creates it
  (conditionally if the store takes the header, else with a plain ``PUT``); that protects a
  stale handle of the one writer, not two concurrent writers.
* **Few requests.** Every operation is the one request it needs (a ``HEAD`` for ``exists``,
  one ``LIST`` page per 1000 keys, one ``GET`` for a small file) instead of fsspec's generic
  paths, which add directory probes (an ``exists`` miss in s3fs costs ``HEAD`` + ``LIST``,
  listing an empty prefix three requests). fsspec's listing cache is off: a cached listing
  would hide other writers' manifests.
* **Ranged reads.** :meth:`ObjectStoreStorage.open_input` hands pyarrow a file whose every
  read is one ranged ``GET`` of exactly the bytes asked for (no read-ahead blocks), so reading
  one row of a large Parquet file fetches the footer and one row group's column chunks.
* **Parallel transfers.** A whole-file read (``lakefmt.copy``) asks for the first
  ``PART_BYTES`` and, for a larger object, fetches the other parts concurrently. Data files
  above ``SPOOL_BYTES`` are spooled to a local temporary file (memory stays bounded) and
  uploaded as a multipart upload of ``PART_BYTES`` parts, ``MAX_CONCURRENCY`` at a time, on
  S3; as concurrent blocks above the SDK's 64 MiB single-put limit on Azure; as a resumable
  upload (GCS takes chunks in order) on GCS.
* **Retries.** Transient failures (connection errors, timeouts, throttling, 5xx) are retried
  ``RETRIES`` times with exponential backoff and jitter, on top of the client libraries' own
  retries. A conditional create that is retried after an ambiguous failure and then finds the
  object reads it back: identical bytes mean the first attempt won. One whose every retry
  failed after an ambiguous attempt also reads the object back before it reports a failure.
* **Failed uploads.** Data files are uploaded completely before the commit begins; a failed
  upload raises and no manifest is written, so no version can point at a missing file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa

from lakefmt._pool import shared_pool
from lakefmt.errors import StorageError
from lakefmt.storage.base import Capabilities, Storage

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: Attempts per operation before a transient failure becomes a :class:`StorageError`.
RETRIES = 5
#: First backoff delay in seconds; doubled after each failed attempt (with jitter).
BACKOFF_SECONDS = 0.1
#: Cap on a single backoff delay.
MAX_BACKOFF_SECONDS = 5.0
#: Part size for parallel ranged downloads and multipart uploads.
PART_BYTES = 8 << 20
#: Concurrent requests of one parallel transfer.
MAX_CONCURRENCY = 8
#: S3 refuses multipart parts below 5 MiB (all but the last).
S3_MIN_PART_BYTES = 5 << 20
#: Data files up to this size are uploaded from memory in one PUT; larger ones are spooled
#: to a temporary file and uploaded in parallel parts.
SPOOL_BYTES = 2 * PART_BYTES

_PROBE_DIR = "_tmp"
# (store identity, bucket) -> whether conditional creates are honoured
_PROBED: dict[tuple[str, str], bool] = {}
_PROBE_LOCK = threading.Lock()
# (store identity, full path) -> size of files opened with open_input or written with
# write_stream: the format layer uses both only for immutable, uniquely named files
_SIZES: OrderedDict[tuple[str, str], int] = OrderedDict()
_SIZES_MAX = 1 << 16
_SIZES_LOCK = threading.Lock()

# errno values of OSErrors that retrying cannot fix
_PERMANENT_ERRNOS = frozenset(
    {
        errno.EINVAL,
        errno.ENOSYS,
        errno.EPERM,
        errno.EACCES,
        errno.ENOENT,
        errno.EEXIST,
        errno.EROFS,
        errno.ENAMETOOLONG,
        getattr(errno, "EREMCHG", -1),  # s3fs: 301/307, a bucket in another region
    }
)
# exception class names (anywhere in the MRO) of network-level failures worth a retry
_TRANSIENT_NAMES = frozenset(
    {
        "ServiceRequestError",  # azure-core: the request never got a response
        "ServiceResponseError",  # azure-core: the response was cut
        "IncompleteReadError",
        "ClientConnectionError",  # aiohttp
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "EndpointConnectionError",  # botocore
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ResponseStreamingError",
        "ProxyError",
        "ChunkedEncodingError",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def is_transient(exc: BaseException) -> bool:
    """Return whether retrying the operation that raised ``exc`` may succeed.

    Connection errors, timeouts, throttling (408, 429) and server errors (5xx) are
    transient; missing or existing objects, denied access and bad requests are not. A bare
    :class:`OSError` without an errno (what a dropped connection often becomes after the
    client library wrapped it) counts as transient.
    """
    if isinstance(
        exc,
        FileNotFoundError
        | FileExistsError
        | PermissionError
        | IsADirectoryError
        | NotADirectoryError
        | StorageError,
    ):
        return False
    status = _status_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if _TRANSIENT_NAMES & {cls.__name__ for cls in type(exc).__mro__}:
        return True
    if isinstance(exc, OSError):
        if str(exc).startswith("Forbidden"):  # gcsfs: 403 as a bare OSError
            return False
        return exc.errno not in _PERMANENT_ERRNOS
    return False


def _azure_error(exc: BaseException) -> BaseException:
    """Map azure-core exceptions to the builtins the rest of this module speaks."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "ResourceNotFoundError" in names:
        return FileNotFoundError(errno.ENOENT, first_line)
    if "ResourceExistsError" in names or "ResourceModifiedError" in names:
        return FileExistsError(errno.EEXIST, first_line)
    if "ClientAuthenticationError" in names:
        return PermissionError(errno.EACCES, first_line)
    return exc


def _timestamp(value: Any) -> float:
    if value is None:
        return time.time()
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


class _Ops:
    """The single-request primitives of one backend, over an fsspec file system.

    Every method is synchronous, does one request (or one request per page or part), and
    raises builtins: ``FileNotFoundError``, ``FileExistsError`` (a refused conditional
    create), ``PermissionError``, or whatever the transport raised (classified by
    :func:`is_transient`). This generic version uses fsspec's public API; the subclasses
    use each client's direct calls to avoid fsspec's extra directory probes.
    """

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def _sync(self, coro_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, coro_fn, *args, **kwargs)

    def head(self, full: str) -> tuple[int, float]:
        """Return ``(size, modified)`` of an object."""
        info = self.fs.info(full)
        if info.get("type") != "file":
            raise FileNotFoundError(errno.ENOENT, "not a file", full)
        for key in ("LastModified", "last_modified", "updated", "mtime"):
            if info.get(key) is not None:
                return int(info["size"]), _timestamp(info[key])
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


class _S3Ops(_Ops):
    """S3 through s3fs's botocore client: ``HEAD``, ``ListObjectsV2``, ``DeleteObjects``."""

    def head(self, full: str) -> tuple[int, float]:
        """One ``HeadObject``."""
        bucket, _, key = full.partition("/")
        out = self._sync(self.fs._call_s3, "head_object", Bucket=bucket, Key=key)
        return int(out["ContentLength"]), _timestamp(out.get("LastModified"))

    def list(self, prefix: str) -> list[str]:
        """``ListObjectsV2`` pages of 1000 keys."""
        bucket, _, key = prefix.partition("/")
        names: list[str] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._sync(
                self.fs._call_s3, "list_objects_v2", Bucket=bucket, Prefix=key, **extra
            )
            names.extend(f"{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return names

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """One ``GetObject`` (``max_concurrency=1``: s3fs would otherwise ``HEAD`` first)."""
        return bytes(self._sync(self.fs._cat_file, full, start=start, end=end, max_concurrency=1))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One ``PutObject``, with ``If-None-Match: *`` when ``create``."""
        try:
            self._sync(self.fs._pipe_file, full, data, mode="create" if create else "overwrite")
        except OSError as exc:
            cause = getattr(exc, "__cause__", None)
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            if create and code in ("PreconditionFailed", "412"):
                raise FileExistsError(errno.EEXIST, "conditional create refused", full) from exc
            raise

    def upload(self, local: str, full: str) -> None:
        """A multipart upload of ``PART_BYTES`` parts, ``MAX_CONCURRENCY`` at a time."""
        self._sync(
            self.fs._put_file,
            local,
            full,
            chunksize=max(PART_BYTES, S3_MIN_PART_BYTES),
            max_concurrency=MAX_CONCURRENCY,
        )

    def delete(self, full: str) -> None:
        """One ``DeleteObject``."""
        self._sync(self.fs._rm_file, full)

    def delete_many(self, fulls: Sequence[str]) -> None:
        """``DeleteObjects`` batches of 1000 keys."""
        for i in range(0, len(fulls), 1000):
            self._sync(self.fs._bulk_delete, list(fulls[i : i + 1000]))


class _GCSOps(_Ops):
    """GCS through gcsfs's JSON API calls."""

    def _sync(self, coro_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._sync(coro_fn, *args, **kwargs)
        except OSError as exc:
            if str(exc).startswith("Forbidden") and not isinstance(exc, PermissionError):
                raise PermissionError(errno.EACCES, str(exc).splitlines()[0]) from exc
            raise
        except Exception as exc:
            if _status_of(exc) == 401:
                raise PermissionError(errno.EACCES, str(exc).splitlines()[0]) from exc
            raise

    def head(self, full: str) -> tuple[int, float]:
        """One object metadata ``GET``."""
        info = self._sync(self.fs._get_object, full)
        return int(info["size"]), _timestamp(info.get("updated") or info.get("mtime"))

    def list(self, prefix: str) -> list[str]:
        """Object list pages of 1000 names."""
        bucket, _, key = prefix.partition("/")
        names: list[str] = []
        token: str | None = None
        while True:
            extra = {"pageToken": token} if token else {}
            page = self._sync(
                self.fs._call,
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
        return bytes(self._sync(self.fs._cat_file, full, start=start, end=end))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One upload, with ``ifGenerationMatch=0`` when ``create``."""
        self._sync(self.fs._pipe_file, full, data, mode="create" if create else "overwrite")

    def upload(self, local: str, full: str) -> None:
        """A resumable upload in ``PART_BYTES`` chunks (GCS takes them in order)."""
        self._sync(self.fs._put_file, local, full, chunksize=PART_BYTES)

    def delete(self, full: str) -> None:
        """One object ``DELETE``."""
        self._sync(self.fs._rm_file, full)


class _AzureOps(_Ops):
    """Azure Blob Storage through adlfs's azure-storage-blob async clients."""

    def _call(self, coro_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return self._sync(coro_fn, *args, **kwargs)
        except Exception as exc:
            mapped = _azure_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _split(self, full: str) -> tuple[str, str]:
        container, _, blob = full.partition("/")
        return container, blob

    def head(self, full: str) -> tuple[int, float]:
        """One ``Get Blob Properties``."""
        container, blob = self._split(full)

        async def head() -> tuple[int, float]:
            async with self.fs.service_client.get_blob_client(container, blob) as client:
                props = await client.get_blob_properties()
            return int(props.size), _timestamp(props.last_modified)

        result: tuple[int, float] = self._call(head)
        return result

    def list(self, prefix: str) -> list[str]:
        """``List Blobs`` pages."""
        container, key = self._split(prefix)

        async def listing() -> list[str]:
            async with self.fs.service_client.get_container_client(container) as client:
                return [
                    f"{container}/{blob.name}"
                    async for blob in client.list_blobs(name_starts_with=key)
                ]

        names: list[str] = self._call(listing)
        return names

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """One (ranged) ``Get Blob``."""
        return bytes(self._call(self.fs._cat_file, full, start=start, end=end))

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """One ``Put Blob``; ``overwrite=False`` sends ``If-None-Match: *`` when ``create``."""
        self._call(self.fs._pipe_file, full, data, overwrite=not create)

    def upload(self, local: str, full: str) -> None:
        """A block upload, ``MAX_CONCURRENCY`` blocks at a time."""
        self._call(self.fs._put_file, local, full, overwrite=True, max_concurrency=MAX_CONCURRENCY)

    def delete(self, full: str) -> None:
        """One ``Delete Blob``."""
        container, blob = self._split(full)

        async def delete() -> None:
            async with self.fs.service_client.get_blob_client(container, blob) as client:
                await client.delete_blob()

        self._call(delete)

    def delete_many(self, fulls: Sequence[str]) -> None:
        """Concurrent ``Delete Blob`` calls."""

        def one(full: str) -> None:
            with contextlib.suppress(FileNotFoundError):
                self.delete(full)

        list(shared_pool("io").map(one, fulls))


_OPS: dict[str, type[_Ops]] = {"s3": _S3Ops, "gs": _GCSOps, "az": _AzureOps}


class _ProbedCapabilities(Capabilities):
    """Capabilities whose ``atomic_create`` is found out by a probe on first use.

    ``local`` is known at once, so code that only asks whether a root is on local disk
    (the query layer) never triggers the probe (which writes, and a read-only user may
    not be allowed to).
    """

    __slots__ = ("_probe",)

    def __init__(self, probe: Callable[[], bool]) -> None:
        object.__setattr__(self, "local", False)
        object.__setattr__(self, "cheap_probes", False)
        object.__setattr__(self, "_probe", probe)

    @property  # type: ignore[misc]
    def atomic_create(self) -> bool:  # type: ignore[override]
        """Whether the store refused a second conditional create of one object."""
        return bool(self._probe())


class _RangedFile(io.RawIOBase):
    """A read-only, seekable file whose every read is one ranged GET of exactly that range.

    pyarrow reads Parquet footers and column chunks with positioned reads; fsspec's buffered
    files would round each up to a read-ahead block (5 MiB in s3fs), and download far more
    than a single-row read needs.
    """

    def __init__(self, storage: ObjectStoreStorage, path: str, size: int | None) -> None:
        super().__init__()
        self._storage = storage
        self._path = path
        self._size = size
        self._pos = 0

    def _get_size(self) -> int:
        if self._size is None:
            self._size = self._storage._immutable_size(self._path)
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


class _Spool(io.RawIOBase):
    """A write sink kept in memory up to ``limit`` bytes, then on a temporary file."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: Any = None
        self.size = 0

    def writable(self) -> bool:
        """Return True."""
        return True

    def write(self, data: Any) -> int:
        """Append ``data``."""
        view = memoryview(data).cast("B")
        if self._memory is not None and self.size + len(view) > self._limit:
            # closed by finish()/discard(), after the upload reads it by name
            self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115
                prefix="lakefmt-upload-", delete=False
            )
            self._file.write(self._memory.getbuffer())
            self._memory = None
        (self._memory if self._memory is not None else self._file).write(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        """Return the number of bytes written."""
        return self.size

    @property
    def spilled(self) -> str | None:
        """The temporary file's name once the data outgrew memory, else None."""
        return None if self._file is None else str(self._file.name)

    def getvalue(self) -> bytes:
        """Return the data kept in memory."""
        assert self._memory is not None
        return self._memory.getvalue()

    def finish(self) -> None:
        """Flush and close the temporary file (if any), keeping it on disk."""
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Remove the temporary file (if any)."""
        if self._file is not None:
            self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._file.name)


class ObjectStoreStorage(Storage):
    """A dataset root under a bucket or container prefix.

    Args:
        fs: The fsspec file system (already configured with credentials).
        root: ``bucket/prefix`` without the scheme.
        url: The URL as the user gave it.
        creds: The credentials dict, kept so handles can be re-opened elsewhere.
        scheme: ``"s3"``, ``"gs"`` or ``"az"`` (chooses the request primitives); another
            value uses fsspec's generic calls.
        single_writer: The user promises that one process at a time writes this dataset;
            skips the conditional-create probe and works on stores without one.
        store_id: Identifies endpoint and credentials, so the probe's answer is shared by
            every root of the same bucket (defaults to the URL's bucket alone).
    """

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        url: str,
        creds: dict[str, Any] | None,
        scheme: str = "",
        single_writer: bool = False,
        store_id: str = "",
    ) -> None:
        self.fs = fs
        self.root = root.strip("/")
        self.url = url
        self.creds = creds
        self.scheme = scheme
        self.single_writer = single_writer
        self.bucket = self.root.split("/", 1)[0]
        self._store_id = store_id
        self._ops: _Ops = _OPS.get(scheme, _Ops)(fs)
        self.capabilities = _ProbedCapabilities(self._atomic_create)

    # -- plumbing ------------------------------------------------------------------------------
    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _retry(self, what: str, path: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn``; retry transient failures with backoff; map the rest to our errors."""
        delay = BACKOFF_SECONDS
        for attempt in range(1, RETRIES + 1):
            try:
                return fn(*args, **kwargs)
            except (FileNotFoundError, FileExistsError):
                raise
            except PermissionError as exc:
                raise StorageError(f"{self.url}: access denied to {what} '{path}': {exc}") from exc
            except Exception as exc:
                if not is_transient(exc):
                    if isinstance(exc, StorageError):
                        raise
                    raise StorageError(f"{self.url}: {what} '{path}' failed: {exc!r}") from exc
                if attempt == RETRIES:
                    raise StorageError(
                        f"{self.url}: {what} '{path}' failed after {RETRIES} attempts: {exc!r}"
                    ) from exc
                time.sleep(min(delay, MAX_BACKOFF_SECONDS) * (0.5 + random.random()))
                delay *= 2
        raise AssertionError("unreachable")

    def _missing_bucket(self, exc: FileNotFoundError, path: str) -> StorageError:
        return StorageError(
            f"{self.url}: cannot write '{path}': the bucket or container '{self.bucket}' does "
            f"not exist (lakefmt does not create buckets): {exc}"
        )

    # -- reads ---------------------------------------------------------------------------------
    def read(self, path: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``path``: a ranged GET when ``start``/``end`` are given.

        A whole-file read asks for the first ``PART_BYTES`` with one ranged GET; a larger
        object's remaining parts are fetched concurrently.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            StorageError: The store failed (after retries).
        """
        full = self._full(path)
        if start is not None or end is not None:
            start = start or 0
            if end is not None and end <= start:
                return b""
            return self._retry("read", path, self._ops.get, full, start, end)
        try:
            first = self._retry("read", path, self._ops.get, full, 0, PART_BYTES)
        except StorageError as exc:
            cause = exc.__cause__
            if cause is None or is_transient(cause) or isinstance(cause, PermissionError):
                raise
            # some stores answer a range on an empty object with 416: ask without one
            return self._retry("read", path, self._ops.get, full)
        if len(first) < PART_BYTES:
            return first
        total = self.size(path)
        if total <= PART_BYTES:
            return first
        bounds = [(s, min(s + PART_BYTES, total)) for s in range(PART_BYTES, total, PART_BYTES)]
        parts = shared_pool("io").map(
            lambda b: self._retry("read", path, self._ops.get, full, b[0], b[1]), bounds
        )
        return b"".join([first, *parts])

    def _head(self, path: str) -> tuple[int, float]:
        return self._retry("stat", path, self._ops.head, self._full(path))

    def exists(self, path: str) -> bool:
        """Return whether an object exists at ``path`` (one HEAD)."""
        try:
            self._head(path)
        except FileNotFoundError:
            return False
        return True

    def size(self, path: str) -> int:
        """Return the object's size in bytes.

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """
        return self._head(path)[0]

    def modified(self, path: str) -> float:
        """Return the object's last-modified time as POSIX seconds.

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """
        return self._head(path)[1]

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every object below the directory ``prefix`` (one LIST per 1000 keys)."""
        base = self._full(prefix.strip("/")) + "/"
        try:
            found = self._retry("list", prefix or "/", self._ops.list, base)
        except FileNotFoundError:  # no bucket: nothing below
            return
        skip = len(self.root) + 1
        for name in sorted(found):
            yield name[skip:]

    def open_input(self, path: str, size: int | None = None) -> pa.NativeFile:
        """Open ``path`` for random access: each read is one ranged GET of just its bytes.

        The file must be immutable (the format layer opens only data, deletion and update
        files, which are never rewritten): its size is cached for the process, so reopening
        it costs no request at all.

        Args:
            path: The object, relative to the root.
            size: The object's size if known (saves the HEAD that learns it).
        """
        if size is not None:
            self._remember_size(path, size)
        return pa.PythonFile(_RangedFile(self, path, size), mode="r")

    def _size_key(self, path: str) -> tuple[str, str]:
        return (self._store_id or self.scheme, self._full(path))

    def _remember_size(self, path: str, size: int) -> None:
        with _SIZES_LOCK:
            _SIZES[self._size_key(path)] = size
            _SIZES.move_to_end(self._size_key(path))
            while len(_SIZES) > _SIZES_MAX:
                _SIZES.popitem(last=False)

    def _immutable_size(self, path: str) -> int:
        with _SIZES_LOCK:
            known = _SIZES.get(self._size_key(path))
        if known is None:
            known = self.size(path)
            self._remember_size(path, known)
        return known

    # -- writes --------------------------------------------------------------------------------
    def write(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """PUT ``data`` at ``path``, replacing any object there (fresh names and hints only).

        Raises:
            StorageError: The store failed (after retries), or the bucket does not exist.
        """
        with _SIZES_LOCK:
            _SIZES.pop(self._size_key(path), None)
        try:
            self._retry("write", path, self._ops.put, self._full(path), bytes(data), create=False)
        except FileNotFoundError as exc:
            raise self._missing_bucket(exc, path) from exc

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` with a conditional PUT unless an object exists there.

        Returns:
            True if this call created the object, False if one existed.

        Raises:
            StorageError: The store does not honour conditional creates (and the dataset is
                not in single-writer mode), or it failed after retries.
        """
        data = bytes(data)
        if self.single_writer:
            return self._put_single_writer(path, data)
        if not self._atomic_create():
            raise StorageError(self._not_atomic_message())
        return self._conditional_put(path, data)

    def _conditional_put(self, path: str, data: bytes) -> bool:
        full = self._full(path)
        ambiguous = False

        def attempt() -> None:
            nonlocal ambiguous
            try:
                self._ops.put(full, data, create=True)
            except Exception as exc:
                if is_transient(exc):
                    ambiguous = True  # the request may have landed before the failure
                raise

        try:
            self._retry("create", path, attempt)
        except FileExistsError:
            if ambiguous:
                with contextlib.suppress(FileNotFoundError):
                    return self.read(path) == data
            return False
        except FileNotFoundError as exc:
            raise self._missing_bucket(exc, path) from exc
        except StorageError as exc:
            if not ambiguous:
                raise
            # An attempt may have landed although its answer was lost (a 500, a dropped
            # connection) and the later ones failed: look before reporting a failure, or a
            # caller's retry would commit the same change twice (spec 9.2).
            try:
                return self.read(path) == data
            except FileNotFoundError:
                raise exc from exc.__cause__
            except StorageError as read_exc:
                raise StorageError(
                    f"{self.url}: create '{path}' failed ({exc.__cause__!r}) and reading it "
                    f"back failed too ({read_exc.__cause__!r}): whether it was created is "
                    "unknown"
                ) from exc
        return True

    def _put_single_writer(self, path: str, data: bytes) -> bool:
        if self.exists(path):
            return False
        try:
            return self._conditional_put(path, data)
        except StorageError as exc:
            cause = exc.__cause__
            if cause is None or is_transient(cause) or isinstance(cause, PermissionError):
                raise
            # the store rejects the conditional header itself: one writer, plain PUT
            self.write(path, data)
            return True

    def write_stream(
        self,
        path: str,
        write: Callable[[pa.NativeFile], None],
        *,
        size_hint: int | None = None,
    ) -> int:
        """Create ``path`` from what ``write`` writes; the object appears only when complete.

        Small outputs are uploaded from memory in one PUT; larger ones are spooled to a
        temporary file and uploaded in parallel parts. If ``write`` raises, nothing is
        uploaded; if the upload fails (after retries), :class:`StorageError` is raised and no
        object (or a complete one) is left at ``path``. ``size_hint`` is not used (the spool
        decides between memory and a file as the output grows).

        Returns:
            The number of bytes written.
        """
        spool = _Spool(SPOOL_BYTES)
        try:
            sink = pa.PythonFile(spool, mode="w")
            write(sink)
            sink.flush()
            spool.finish()
            full = self._full(path)
            try:
                if spool.spilled is None:
                    payload = spool.getvalue()
                    self._retry("upload", path, self._ops.put, full, payload, create=False)
                else:
                    self._retry("upload", path, self._ops.upload, spool.spilled, full)
            except FileNotFoundError as exc:
                raise self._missing_bucket(exc, path) from exc
            self._remember_size(path, spool.size)
            return spool.size
        finally:
            spool.discard()

    def delete(self, path: str) -> None:
        """Remove the object at ``path``; a missing one is not an error."""
        with _SIZES_LOCK:
            _SIZES.pop(self._size_key(path), None)
        with contextlib.suppress(FileNotFoundError):
            self._retry("delete", path, self._ops.delete, self._full(path))

    def delete_all(self) -> None:
        """Remove every object below this root (batched where the store allows)."""
        fulls = [self._full(p) for p in self.list()]
        if fulls:
            with contextlib.suppress(FileNotFoundError):
                self._retry("delete", "/", self._ops.delete_many, fulls)

    # -- the conditional-create probe ---------------------------------------------------------
    def _atomic_create(self) -> bool:
        if self.single_writer:
            return True
        key = (self._store_id or self.scheme, self.bucket)
        with _PROBE_LOCK:
            known = _PROBED.get(key)
        if known is None:
            known = self.probe_atomic_create()
            with _PROBE_LOCK:
                _PROBED[key] = known
            if not known:
                logger.warning("%s", self._not_atomic_message())
        return known

    def probe_atomic_create(self) -> bool:
        """Check (uncached) that the store refuses a second conditional create of one object.

        Creates ``_tmp/probe-<uuid>`` under the root twice and removes it: 3 requests.

        Returns:
            True if the second create was refused; False if it overwrote the first or the
            store rejected the conditional request itself.

        Raises:
            StorageError: The store could not be reached or denied the write (the answer is
                unknown, so it is not cached).
        """
        probe = f"{_PROBE_DIR}/probe-{uuid.uuid4().hex}"
        full = self._full(probe)
        try:
            self._retry("probe", probe, self._ops.put, full, b"1", create=True)
            try:
                self._retry("probe", probe, self._ops.put, full, b"2", create=True)
            except FileExistsError:
                return True
            return False
        except FileExistsError:
            return True  # only possible if the (random) name existed: it was refused anyway
        except FileNotFoundError as exc:
            raise self._missing_bucket(exc, probe) from exc
        except StorageError as exc:
            cause = exc.__cause__
            if (
                cause is not None
                and not is_transient(cause)
                and not isinstance(cause, PermissionError)
            ):
                return False  # e.g. 400/501: the store does not understand the condition
            raise
        finally:
            with contextlib.suppress(Exception):
                self._ops.delete(full)

    def _not_atomic_message(self) -> str:
        return (
            f"{self.url}: this store does not honour conditional creates (If-None-Match: * / "
            "ifGenerationMatch=0), so concurrent writers could overwrite each other's commits. "
            "If only one process ever writes this dataset, open it in single-writer mode: "
            "creds={..., 'single_writer': True}"
        )


def store_id(scheme: str, kwargs: dict[str, Any], env: Sequence[tuple[str, str]]) -> str:
    """A stable digest of what identifies an endpoint and account (secrets never kept)."""
    text = repr((scheme, sorted((k, repr(v)) for k, v in kwargs.items()), list(env)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]
