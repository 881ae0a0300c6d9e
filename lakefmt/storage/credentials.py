"""lakefmt's credential keys and the one mapping from them to each provider's fsspec options.

Datasets on object stores (:func:`lakefmt.storage.registry.open_storage`) and ``Link``
columns (:mod:`lakefmt.types.link`) both map ``creds`` through :func:`storage_options`, so
a key means the same thing wherever it is given, and a key no provider takes is a
:class:`~lakefmt.errors.StorageError` everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakefmt.errors import StorageError

__all__ = [
    "CREDENTIAL_SCHEMES",
    "PROVIDERS",
    "SINGLE_WRITER",
    "credential_keys",
    "provider_credentials",
    "provider_of",
    "storage_options",
]

#: A `creds` key every object store accepts: the user promises a single writer process, so
#: commits work on stores without conditional creates (see ``lakefmt.storage.object_store``).
SINGLE_WRITER = "single_writer"

# Accepted `creds` keys per provider and the fsspec keyword each maps to (the README lists them).
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
        "endpoint_url": "endpoint_url",
        "anon": "anon",
    },
}

# URL scheme -> provider, for dataset roots (s3://, gs://, gcs://, az://, azure://, abfs://)
# and link targets (also s3a://, abfss://)
_PROVIDER_OF_SCHEME = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "az",
    "azure": "az",
    "abfs": "az",
    "abfss": "az",
}
#: Every URL scheme whose objects take credentials (aliases included).
CREDENTIAL_SCHEMES = frozenset(_PROVIDER_OF_SCHEME)

#: The object store providers credentials are given for.
PROVIDERS = tuple(_CREDS)


def provider_of(scheme: str) -> str | None:
    """The provider (``"s3"``, ``"gs"``, ``"az"``) of a URL scheme (``gcs``, ``abfss``...);
    ``None`` for schemes that take no credentials (local paths, ``http``...)."""
    return _PROVIDER_OF_SCHEME.get(scheme.lower())


def credential_keys(provider: str) -> frozenset[str]:
    """The ``creds`` keys provider ``provider`` takes (:data:`SINGLE_WRITER` aside)."""
    return frozenset(_CREDS[provider])


def storage_options(scheme: str, creds: Mapping[str, Any]) -> dict[str, Any]:
    """Map lakefmt's credential keys to the fsspec file system's keyword arguments.

    The one mapping of credentials: datasets on object stores and ``Link`` columns both use
    it. ``scheme`` is a provider (``"s3"``, ``"gs"``, ``"az"``, or an alias such as
    ``gcs``); ``creds`` holds that provider's keys (see the README): ``region`` becomes the
    S3 client's ``region_name``, and an Azure ``endpoint_url`` becomes a connection string
    with that ``BlobEndpoint`` (an emulator or private endpoint).

    Raises:
        StorageError: A key the provider does not take, or an Azure ``endpoint_url`` with a
            ``connection_string``.
    """
    if not creds:
        return {}
    provider = provider_of(scheme)
    if provider is None:
        raise StorageError(f"credentials are for s3://, gs:// and az://, not {scheme}://")
    scheme = provider
    allowed = _CREDS[scheme]
    unknown = sorted(set(creds) - set(allowed))
    if unknown:
        raise StorageError(
            f"unknown credential key(s) {unknown} for {scheme}://; expected some of "
            f"{sorted([*allowed, SINGLE_WRITER])}"
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
    if scheme == "az" and "endpoint_url" in kwargs:
        kwargs = _azure_endpoint_kwargs(kwargs)
    return kwargs


def _azure_endpoint_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn ``endpoint_url`` + account name/key (or SAS) into a connection string.

    adlfs builds ``https://<account_host>`` from ``account_name``; an emulator such as Azurite
    or a private endpoint (``http://127.0.0.1:10000/devstoreaccount1``) needs a connection
    string with ``BlobEndpoint`` instead.
    """
    endpoint = str(kwargs.pop("endpoint_url")).rstrip("/")
    if "connection_string" in kwargs:
        raise StorageError("give either connection_string or endpoint_url for az://, not both")
    protocol = "http" if endpoint.startswith("http://") else "https"
    parts = [f"DefaultEndpointsProtocol={protocol}"]
    if "account_name" in kwargs:
        parts.append(f"AccountName={kwargs.pop('account_name')}")
    if "account_key" in kwargs:
        parts.append(f"AccountKey={kwargs.pop('account_key')}")
    if "sas_token" in kwargs:
        parts.append(f"SharedAccessSignature={str(kwargs.pop('sas_token')).lstrip('?')}")
    parts.append(f"BlobEndpoint={endpoint}")
    kwargs["connection_string"] = ";".join(parts) + ";"
    return kwargs


def provider_credentials(creds: Mapping[str, Any], provider: str) -> dict[str, Any] | None:
    """The credentials ``creds`` gives for ``provider``; None if they are for others only.

    ``creds`` is one provider's keys (``{"aws_access_key_id": ...}``) or one entry per
    provider (``{"s3": {...}, "gs": {...}}``), as ``Link`` columns take them: a dataset on
    S3 may link to images on GCS. :data:`SINGLE_WRITER` is a promise about dataset writes,
    not a credential, and is left out.

    Raises:
        StorageError: A key no provider takes (a typo), keys of several providers in one
            flat dict, or a per-provider mapping mixed with credential keys.
    """
    keys = set(creds) - {SINGLE_WRITER}  # a promise about dataset writes, not a credential
    named = keys & set(PROVIDERS)
    if named:  # {"s3": {...}, "gs": {...}}
        if named != keys:
            raise StorageError(
                f"link credentials mix provider entries {sorted(named)} with credential keys "
                f"{sorted(keys - named)}; give either one provider's keys or "
                '{"s3": {...}, "gs": {...}, "az": {...}}'
            )
        entry = creds.get(provider)
        if entry is None:
            return None
        if not isinstance(entry, Mapping):
            raise StorageError(
                f"link credentials for '{provider}' must be a dict of its keys, got "
                f"{type(entry).__name__}"
            )
        return {k: v for k, v in entry.items() if k != SINGLE_WRITER}
    if keys <= credential_keys(provider):
        return {k: creds[k] for k in keys}
    known = set().union(*(credential_keys(p) for p in PROVIDERS))
    unknown = sorted(keys - known)
    if unknown:
        raise StorageError(
            f"unknown credential key(s) {unknown}; {provider}:// takes some of "
            f"{sorted(credential_keys(provider))}"
        )
    if any(keys <= credential_keys(p) for p in PROVIDERS):
        return None  # another provider's credentials (a dataset on S3 linking to GCS)
    raise StorageError(
        f"credential keys {sorted(keys)} belong to no single provider; give "
        '{"s3": {...}, "gs": {...}, "az": {...}} for links to several providers'
    )
