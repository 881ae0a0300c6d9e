"""Link(inner): a column of URLs whose targets are fetched and decoded on read.

Appends store the URL strings as given and never fetch them (only their form is checked).
Reads fetch each target through fsspec, in parallel, and decode the bytes with the inner
type, so ``Link(Image())`` reads as decoded images and ``col.get_bytes(i)`` gives the URL.

Credentials for object stores come from :func:`link_credentials`, a context manager the
dataset layer enters around reads with the dataset's ``creds``; without it the provider's
default chain (environment, config files, instance metadata) applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pyarrow as pa

from lakefmt.errors import InvalidTypeError, StorageError, TypeMismatchError
from lakefmt.storage.credentials import (
    CREDENTIAL_SCHEMES,
    provider_credentials,
    provider_of,
    storage_options,
)
from lakefmt.types._helpers import arrow_input, as_extension, parallel_map, storage_of, to_items
from lakefmt.types.base import Type, mismatch
from lakefmt.types.registry import register_type, resolve_type, type_from_json
from lakefmt.types.scalars import check_unicode

__all__ = ["Link", "fetch_link", "link_credentials", "link_storage_options"]

_LINK_CREDS: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "lakefmt_link_creds", default=None
)

_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_FSSPEC_PROTOCOL = {"gcs": "gs", "azure": "az", "s3a": "s3"}
_SCHEMES = frozenset([*CREDENTIAL_SCHEMES, "file", "http", "https", "memory"])


@contextlib.contextmanager
def link_credentials(creds: Mapping[str, Any] | None) -> Iterator[None]:
    """Make credentials available to Link reads in this context (thread / task).

    ``creds`` is either a dataset's credentials dict, with lakefmt's keys for one provider
    (``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``,
    ``endpoint_url``, ``region``, ``profile``, ``anon`` for S3; ``token``, ``project``...
    for GCS; ``account_name``, ``account_key``, ``sas_token``... for Azure), or a mapping
    from provider (``"s3"``, ``"gs"``, ``"az"``) to such a dict. A flat dict is used for a
    link only if all its keys belong to the link's provider, so S3 keys never reach GCS.

    The value is a :mod:`contextvars` variable: it is seen by code running in this thread
    (and by tasks and ``contextvars.copy_context()`` copies made inside the block), not by
    threads started elsewhere. Link decoding captures it on the calling thread and hands it
    to its own fetch threads.

    Args:
        creds: The credentials, or ``None`` for the providers' default chains.
    """
    token = _LINK_CREDS.set(dict(creds) if creds else None)
    try:
        yield
    finally:
        _LINK_CREDS.reset(token)


def _scheme(url: str) -> str:
    match = _URL_RE.match(url)
    return match.group(1).lower() if match else "file"


def link_storage_options(url: str, creds: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fsspec storage options to fetch ``url`` with (credentials mapped to fsspec keys).

    Credentials are mapped by :func:`lakefmt.storage.credentials.storage_options`, the mapping
    datasets use, so a link reads an object with the options a dataset at that URL would
    have (an Azure ``endpoint_url`` becomes a connection string, ``region`` the S3 client's
    ``region_name``).

    Args:
        url: The link target.
        creds: Credentials as for :func:`link_credentials`; ``None`` reads the ones of the
            current context.

    Returns:
        Keyword arguments for ``fsspec.core.url_to_fs`` (empty for local paths and HTTP,
        or when the credentials are another provider's).

    Raises:
        StorageError: A key no provider takes (a typo), keys of several providers in one
            flat dict, or a per-provider mapping mixed with credential keys.
    """
    if creds is None:
        creds = _LINK_CREDS.get()
    provider = provider_of(_scheme(url))
    if not creds or provider is None:
        return {}
    chosen = provider_credentials(creds, provider)
    return storage_options(provider, chosen) if chosen else {}


def fetch_link(url: str, creds: Mapping[str, Any] | None = None) -> bytes:
    """Fetch a link target's bytes through fsspec.

    Args:
        url: ``file://`` URL, plain path, ``s3://``, ``gs://``, ``az://``, ``http(s)://``...
        creds: Credentials as for :func:`link_credentials` (``None``: the current context's).

    Returns:
        The whole object.

    Raises:
        StorageError: The target cannot be read (missing, no access, network error).
    """
    import fsspec

    options = link_storage_options(url, creds)
    scheme = _scheme(url)
    target = url
    if scheme in _FSSPEC_PROTOCOL:
        target = _FSSPEC_PROTOCOL[scheme] + url[len(scheme) :]
    try:
        fs, path = fsspec.core.url_to_fs(target, **options)
        data = fs.cat_file(path)
    except StorageError:
        raise
    except ImportError as exc:
        raise StorageError(
            f"cannot fetch link '{url}': {exc} (install the fsspec backend)"
        ) from exc
    except Exception as exc:  # fsspec backends raise OSError, botocore/aiohttp errors...
        raise StorageError(f"cannot fetch link '{url}': {type(exc).__name__}: {exc}") from exc
    return bytes(data)


def _check_url(value: Any, column: str, row: int) -> str:
    if not isinstance(value, str):
        raise mismatch(column, row, "a URL or path string", value)
    check_unicode(value, column, row)
    text = value.strip()
    if not text or text != value or any(c in value for c in "\n\r\t\x00"):
        raise TypeMismatchError(
            f"column '{column}' expects a URL or path, got {value!r} at row {row}"
        )
    match = _URL_RE.match(value)
    if match:
        scheme = match.group(1).lower()
        if scheme not in _SCHEMES and not _known_protocol(scheme):
            raise TypeMismatchError(
                f"column '{column}' expects a URL fsspec can read, got scheme '{scheme}://' in "
                f"{value!r} at row {row}"
            )
        if not value[match.end() :]:
            raise TypeMismatchError(f"column '{column}' got an empty URL {value!r} at row {row}")
    return value


def _known_protocol(scheme: str) -> bool:
    from fsspec.registry import known_implementations, registry

    return scheme in known_implementations or scheme in registry


@register_type
class Link(Type):
    """URLs to media or other objects, fetched through fsspec and decoded on read.

    Appended as strings: ``file://`` URLs, plain paths (relative to the working directory
    of the reader), ``s3://``, ``gs://``, ``az://``, ``http(s)://`` or any other fsspec
    protocol. Nothing is fetched on append. Reads fetch the targets (in parallel) and
    decode them with ``inner``; credentials come from :func:`link_credentials`.

    Args:
        inner: The type of the linked objects; its storage must be ``binary`` or
            ``string`` (``Image()``, ``Video()``, ``Mesh()``, ``"bytes"``, ``"text"``,
            ``Dict()``...).
    """

    name: ClassVar[str] = "lakefmt.link"
    is_extension: ClassVar[bool] = True

    def __init__(self, inner: Any) -> None:
        inner_type = resolve_type(inner, column="<link target>")
        storage = inner_type.storage_type
        if isinstance(inner_type, Link) or not (
            pa.types.is_binary(storage) or pa.types.is_string(storage)
        ):
            raise InvalidTypeError(
                f"Link needs an inner type stored as bytes or text (Image, Video, Mesh, "
                f"Bytes, Text, Dict), got {inner_type!r}"
            )
        self.inner = inner_type

    def params(self) -> dict[str, Any]:
        """``inner``: the inner type's JSON."""
        return {"inner": self.inner.to_json()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Link:
        """Rebuild from ``{"inner": {"name": ..., "params": ...}}``."""
        return cls(type_from_json(params["inner"]))

    def __repr__(self) -> str:
        return f"Link({self.inner!r})"

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``string``: the URL."""
        return pa.string()

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check that each value is a URL or path string (nothing is fetched).

        Raises:
            TypeMismatchError: A value that is not a non-empty string of a known scheme.
        """
        storage = arrow_input(values, self, column)
        items = storage.to_pylist() if storage is not None else to_items(values)
        urls = [None if v is None else _check_url(v, column, i) for i, v in enumerate(items)]
        return as_extension(self, pa.array(urls, type=pa.string()))

    def _fetched(self, urls: list[str | None]) -> pa.Array:
        creds = _LINK_CREDS.get()  # captured here: fetch threads do not see this context
        todo = [u for u in urls if u is not None]
        blobs = iter(parallel_map(lambda u: fetch_link(u, creds or {}), todo))
        datas = [None if u is None else next(blobs) for u in urls]
        if pa.types.is_string(self.inner.storage_type):
            return self.inner.wrap(
                pa.array([None if d is None else d.decode("utf-8") for d in datas], pa.string())
            )
        return self.inner.wrap(pa.array(datas, type=pa.binary()))

    def decode(self, array: pa.Array) -> Any:
        """Fetch every target (in parallel) and decode them with the inner type."""
        return self.inner.decode(self._fetched(storage_of(array).to_pylist()))

    def decode_one(self, array: pa.Array, index: int) -> Any:
        """Fetch and decode one target (``None`` for a null URL)."""
        url = storage_of(array)[index].as_py()
        if url is None:
            return None
        return self.inner.decode_one(self._fetched([url]), 0)
