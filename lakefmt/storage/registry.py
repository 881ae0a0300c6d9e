"""URL -> storage backend, with install hints for missing optional packages."""

from __future__ import annotations

import atexit
import importlib
import os
import re
import shutil
import tempfile
import uuid
from typing import Any
from urllib.parse import urlparse

from lakefmt.errors import MissingDependencyError, StorageError
from lakefmt.storage.base import Storage
from lakefmt.storage.local import LocalStorage
from lakefmt.storage.memory import MemoryStorage

SCHEMES = ("mem", "tmp", "file", "s3", "gs", "gcs", "az", "azure", "abfs")

# scheme -> (fsspec module, class, extra to install)
_OBJECT_STORES = {
    "s3": ("s3fs", "S3FileSystem", "s3"),
    "gs": ("gcsfs", "GCSFileSystem", "gcs"),
    "az": ("adlfs", "AzureBlobFileSystem", "azure"),
}
_SCHEME_ALIASES = {"gcs": "gs", "azure": "az", "abfs": "az"}

# Accepted `creds` keys per provider and the fsspec keyword each maps to.
_CREDS = {
    "s3": {
        "aws_access_key_id": "key",
        "aws_secret_access_key": "secret",
        "aws_session_token": "token",
        "endpoint_url": "endpoint_url",
        "region": "region",
        "profile": "profile",
        "anon": "anon",
    },
    "gs": {"token": "token", "project": "project", "endpoint_url": "endpoint_url", "anon": "anon"},
    "az": {
        "account_name": "account_name",
        "account_key": "account_key",
        "sas_token": "sas_token",
        "connection_string": "connection_string",
        "anon": "anon",
    },
}

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
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if scheme not in SCHEMES:
        raise StorageError(
            f"unknown storage scheme '{scheme}://' in '{text}'; lakefmt serves mem://, tmp://, "
            "file:// (or a plain path), s3://, gs:// and az://"
        )
    return scheme, rest


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
    text = os.fspath(url)
    scheme, rest = parse_url(text)
    if scheme == "mem":
        if creds:
            raise StorageError("mem:// takes no credentials")
        return MemoryStorage(rest.strip("/"))
    if scheme == "tmp":
        name = rest.strip("/") or uuid.uuid4().hex
        root = os.path.join(_tmp_base(), name)
        return LocalStorage(root, url=root)
    if scheme == "file":
        path = rest
        if text.startswith("file://"):
            parsed = urlparse(text)
            path = parsed.path if parsed.netloc in ("", "localhost") else parsed.netloc + parsed.path
        if not path:
            raise StorageError(f"empty path in dataset URL '{text}'")
        return LocalStorage(os.path.expanduser(path), url=text)
    return _open_object_store(scheme, rest, text, creds)


def _open_object_store(
    scheme: str, rest: str, url: str, creds: dict[str, Any] | None
) -> Storage:
    from lakefmt.storage.object_store import ObjectStoreStorage

    module_name, class_name, extra = _OBJECT_STORES[scheme]
    if not rest.strip("/"):
        raise StorageError(f"'{url}' names no bucket or container")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{scheme}:// datasets need the '{module_name}' package: "
            f"pip install 'lakefmt[{extra}]'"
        ) from exc
    kwargs = _fs_kwargs(scheme, creds)
    try:
        fs = getattr(module, class_name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"cannot connect to {url}: {exc}") from exc
    return ObjectStoreStorage(fs, rest, url=url, creds=creds)


def _fs_kwargs(scheme: str, creds: dict[str, Any] | None) -> dict[str, Any]:
    if not creds:
        return {}
    allowed = _CREDS[scheme]
    unknown = sorted(set(creds) - set(allowed))
    if unknown:
        raise StorageError(
            f"unknown credential key(s) {unknown} for {scheme}://; expected some of "
            f"{sorted(allowed)}"
        )
    kwargs: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    for key, value in creds.items():
        target = allowed[key]
        if scheme == "s3" and target == "region":
            client_kwargs["region_name"] = value
        else:
            kwargs[target] = value
    if client_kwargs:
        kwargs["client_kwargs"] = client_kwargs
    return kwargs
