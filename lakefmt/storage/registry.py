"""URL -> storage backend, with install hints for missing optional packages."""

from __future__ import annotations

import atexit
import importlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from lakefmt.errors import MissingDependencyError, StorageError
from lakefmt.storage.base import Storage
from lakefmt.storage.credentials import SINGLE_WRITER, provider_of, storage_options
from lakefmt.storage.local import LocalStorage
from lakefmt.storage.memory import MemoryStorage

SCHEMES = ("mem", "tmp", "file", "s3", "gs", "gcs", "az", "azure", "abfs")

# scheme -> (fsspec module, class, extra to install)
_OBJECT_STORES = {
    "s3": ("s3fs", "S3FileSystem", "s3"),
    "gs": ("gcsfs", "GCSFileSystem", "gcs"),
    "az": ("adlfs", "AzureBlobFileSystem", "azure"),
}

# Environment variables that change what a provider's default credential chain finds: part
# of the file system cache key, so a changed environment gets a fresh client.
_ENV_PREFIXES = {
    "s3": ("AWS_",),
    "gs": ("GOOGLE_", "GCE_", "GCLOUD_", "CLOUDSDK_", "STORAGE_EMULATOR_HOST"),
    "az": ("AZURE_",),
}

# (scheme, pid, kwargs digest) -> file system; fsspec's own instance cache ignores the
# environment, and a client must not cross a fork.
_FILESYSTEMS: dict[tuple[str, int, str], Any] = {}
_FS_LOCK = threading.Lock()

_TMP_BASE: str | None = None
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


def parse_url(url: str | os.PathLike[str]) -> tuple[str, str]:
    """Split a dataset URL into ``(scheme, rest)``; plain paths give ``("file", path)``.

    Raises:
        StorageError: The scheme is not one lakefmt serves.
    """
    text = os.fspath(url)
    match = _URL_RE.match(text)
    if not match:
        return "file", text
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in SCHEMES:
        raise StorageError(
            f"unknown storage scheme '{scheme}://' in '{text}'; lakefmt serves mem://, tmp://, "
            "file:// (or a plain path), s3://, gs:// and az://"
        )
    return provider_of(scheme) or scheme, rest


def _tmp_base() -> str:
    global _TMP_BASE
    if _TMP_BASE is None:
        _TMP_BASE = tempfile.mkdtemp(prefix="lakefmt-tmp-")
    return _TMP_BASE


@atexit.register
def _remove_tmp_base() -> None:
    # Registered at import, before the dataset layer's exit flush: atexit runs handlers in
    # reverse order, so buffered rows of tmp:// datasets are flushed first, then removed.
    if _TMP_BASE is not None:
        shutil.rmtree(_TMP_BASE, ignore_errors=True)


def open_storage(url: str | os.PathLike[str], creds: dict[str, Any] | None = None) -> Storage:
    """Return the storage for a dataset root URL.

    ``tmp://`` gives a fresh directory removed at interpreter exit (``tmp://name`` the same
    directory for the same name within this process); ``mem://name`` a process-wide memory
    root.

    Raises:
        StorageError: Unknown scheme or bad credentials.
        MissingDependencyError: The backend's package is not installed (says what to install).
    """
    if not isinstance(url, (str, os.PathLike)):
        raise StorageError(f"a dataset URL is a string or a path, not {type(url).__name__} {url!r}")
    if creds is not None and (
        not isinstance(creds, Mapping) or not all(isinstance(k, str) for k in creds)
    ):
        raise StorageError(
            f"creds must be a dict of credential names to values, not {type(creds).__name__} "
            f"{creds!r}"
        )
    text = os.fspath(url)
    scheme, rest = parse_url(text)
    if scheme == "mem":
        memory = MemoryStorage(rest.strip("/"))
        memory.creds = creds  # kept for Link columns that point to cloud objects
        return memory
    if scheme == "tmp":
        name = rest.strip("/") or uuid.uuid4().hex
        root = os.path.join(_tmp_base(), name)
        # scratch space, removed at exit: not worth waiting for the disk
        storage = LocalStorage(root, url=root, sync=False)
        storage.creds = creds  # kept for Link columns that point to cloud objects
        return storage
    if scheme == "file":
        path = rest
        if text.startswith("file://"):
            parsed = urlparse(text)
            local = parsed.netloc in ("", "localhost")
            path = parsed.path if local else parsed.netloc + parsed.path
        if not path:
            raise StorageError(f"empty path in dataset URL '{text}'")
        storage = LocalStorage(os.path.expanduser(path), url=text)
        storage.creds = creds
        return storage
    return _open_object_store(scheme, rest, text, creds)


def _open_object_store(scheme: str, rest: str, url: str, creds: dict[str, Any] | None) -> Storage:
    from lakefmt.storage.object_store import ObjectStoreStorage, store_id

    module_name, class_name, extra = _OBJECT_STORES[scheme]
    if not rest.strip("/"):
        raise StorageError(f"'{url}' names no bucket or container")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{scheme}:// datasets need the '{module_name}' package: pip install 'lakefmt[{extra}]'"
        ) from exc
    options = dict(creds or {})
    single_writer = bool(options.pop(SINGLE_WRITER, False))
    kwargs = storage_options(scheme, options)
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES[scheme]))
    ident = store_id(scheme, kwargs, env)
    key = (scheme, os.getpid(), ident)
    with _FS_LOCK:
        fs = _FILESYSTEMS.get(key)
        if fs is None:
            cls = getattr(module, class_name)
            emulated = "endpoint_url" in kwargs or "STORAGE_EMULATOR_HOST" in os.environ
            if scheme == "gs" and emulated:
                # gcsfs's default class asks the gRPC control plane for each bucket's type
                # (zonal buckets); an emulator or private endpoint has none.
                cls = importlib.import_module("gcsfs.core").GCSFileSystem
            try:
                # lakefmt caches clients itself (see _FILESYSTEMS) and must never see a
                # cached listing: it would hide manifests other writers created.
                fs = cls(**kwargs, skip_instance_cache=True, use_listings_cache=False)
            except (TypeError, ValueError) as exc:
                raise StorageError(f"cannot connect to {url}: {exc}") from exc
            _FILESYSTEMS[key] = fs
    return ObjectStoreStorage(
        fs, rest, url=url, creds=creds, scheme=scheme, single_writer=single_writer, store_id=ident
    )
