"""``s3://``, ``gs://`` and ``az://`` through fsspec (s3fs, gcsfs, adlfs).

:class:`ObjectStoreStorage` is the :class:`~lakefmt.storage.base.Storage` of a bucket
prefix; the requests it makes are each provider's adapter (:mod:`lakefmt.storage.providers`),
retried by :mod:`lakefmt.storage.retry`, split and staged by :mod:`lakefmt.storage.transfer`;
pyarrow reads through :class:`lakefmt.storage.ranged.RangedFile`. This module keeps the
commit protocol: conditional creates, single-writer mode and the probe.

What a dataset needs from an object store, and how it gets it:

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
import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from lakefmt._pool import shared_pool
from lakefmt.errors import StorageError
from lakefmt.storage import transfer
from lakefmt.storage.base import Capabilities, Storage
from lakefmt.storage.providers import Ops, ops_for
from lakefmt.storage.ranged import RangedFile
from lakefmt.storage.retry import is_transient, with_retries

T = TypeVar("T")
logger = logging.getLogger(__name__)

_PROBE_DIR = "_tmp"
# (store identity, bucket) -> whether conditional creates are honoured
_PROBED: dict[tuple[str, str], bool] = {}
_PROBE_LOCK = threading.Lock()
# (store identity, full path) -> size of files opened with open_input or written with
# write_stream: the format layer uses both only for immutable, uniquely named files
_SIZES: OrderedDict[tuple[str, str], int] = OrderedDict()
_SIZES_MAX = 1 << 16
_SIZES_LOCK = threading.Lock()


class ProbedCapabilities(Capabilities):
    """Capabilities whose ``atomic_create`` is found out by a probe on first use.

    ``local`` is known at once, so code that only asks whether a root is on local disk
    (the query layer) never triggers the probe (which writes, and a read-only user may
    not be allowed to).
    """

    __slots__ = ("_probe",)
    _probe: Callable[[], bool]

    def __init__(self, probe: Callable[[], bool]) -> None:
        object.__setattr__(self, "local", False)
        object.__setattr__(self, "cheap_probes", False)
        object.__setattr__(self, "_probe", probe)

    # a property in place of the frozen dataclass field: probed lazily, on first use
    @property
    def atomic_create(self) -> bool:
        """Whether the store refused a second conditional create of one object."""
        return bool(self._probe())


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
        self._ops: Ops = ops_for(scheme, fs)
        self.capabilities = ProbedCapabilities(self._atomic_create)

    # -- plumbing ------------------------------------------------------------------------------
    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _retry(self, what: str, path: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` with :func:`~lakefmt.storage.retry.with_retries` (messages name our URL)."""
        return with_retries(self.url, what, path, fn, *args, **kwargs)

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
            first = self._retry("read", path, self._ops.get, full, 0, transfer.PART_BYTES)
        except StorageError as exc:
            cause = exc.__cause__
            if cause is None or is_transient(cause) or isinstance(cause, PermissionError):
                raise
            # some stores answer a range on an empty object with 416: ask without one
            return self._retry("read", path, self._ops.get, full)
        if len(first) < transfer.PART_BYTES:
            return first
        total = self.size(path)
        if total <= transfer.PART_BYTES:
            return first
        part = transfer.PART_BYTES
        bounds = [(s, min(s + part, total)) for s in range(part, total, part)]
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
        return pa.PythonFile(RangedFile(self, path, size), mode="r")

    def _size_key(self, path: str) -> tuple[str, str]:
        return (self._store_id or self.scheme, self._full(path))

    def _remember_size(self, path: str, size: int) -> None:
        with _SIZES_LOCK:
            _SIZES[self._size_key(path)] = size
            _SIZES.move_to_end(self._size_key(path))
            while len(_SIZES) > _SIZES_MAX:
                _SIZES.popitem(last=False)

    def immutable_size(self, path: str) -> int:
        """Return the size of ``path``, an object never rewritten (cached for the process)."""
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
        spool = transfer.Spool(transfer.SPOOL_BYTES)
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
