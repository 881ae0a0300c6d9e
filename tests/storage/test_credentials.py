"""lakefmt.storage.credentials: the one mapping of ``creds`` keys to provider options."""

from __future__ import annotations

from typing import Any

import pytest

from lakefmt.errors import StorageError
from lakefmt.storage import credentials
from lakefmt.storage.credentials import (
    PROVIDERS,
    SINGLE_WRITER,
    credential_keys,
    provider_credentials,
    provider_of,
    storage_options,
)
from lakefmt.types.link import link_storage_options

# provider -> (every key it takes, with a value) -> the fsspec keywords they become
MAPPED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "s3": (
        {
            "aws_access_key_id": "k",
            "aws_secret_access_key": "s",
            "aws_session_token": "t",
            "endpoint_url": "http://127.0.0.1:9000",
            "region": "eu-west-1",
            "profile": "dev",
            "anon": False,
        },
        {
            "key": "k",
            "secret": "s",
            "token": "t",
            "endpoint_url": "http://127.0.0.1:9000",
            "client_kwargs": {"region_name": "eu-west-1"},
            "profile": "dev",
            "anon": False,
        },
    ),
    "gs": (
        {"token": "anon", "project": "p", "endpoint_url": "http://127.0.0.1:4443", "anon": True},
        {"token": "anon", "project": "p", "endpoint_url": "http://127.0.0.1:4443", "anon": True},
    ),
    "az": (
        {"account_name": "acct", "account_key": "key", "sas_token": "?sv=1", "anon": False},
        {"account_name": "acct", "account_key": "key", "sas_token": "?sv=1", "anon": False},
    ),
}


def test_every_provider_has_a_case() -> None:
    assert set(MAPPED) == set(PROVIDERS) == {"s3", "gs", "az"}
    for provider, (given, _) in MAPPED.items():
        # every key but the ones tested on their own below
        assert set(given) | {"endpoint_url", "connection_string"} >= credential_keys(provider)


@pytest.mark.parametrize("provider", sorted(MAPPED))
def test_each_provider_maps_its_keys(provider: str) -> None:
    given, expected = MAPPED[provider]
    assert storage_options(provider, given) == expected
    assert storage_options(provider, {}) == {}


@pytest.mark.parametrize("provider", sorted(MAPPED))
def test_links_and_datasets_map_alike(provider: str) -> None:
    given, expected = MAPPED[provider]
    assert link_storage_options(f"{provider}://bucket/a.png", given) == expected


def test_azure_endpoint_becomes_a_connection_string() -> None:
    options = storage_options(
        "az",
        {
            "account_name": "devstoreaccount1",
            "account_key": "a2V5",
            "endpoint_url": "http://127.0.0.1:10000/devstoreaccount1/",
        },
    )
    assert options == {
        "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    }
    with pytest.raises(StorageError, match="not both"):
        storage_options("az", {"connection_string": "x", "endpoint_url": "http://h"})


@pytest.mark.parametrize("provider", sorted(MAPPED))
def test_unknown_keys_are_refused(provider: str) -> None:
    with pytest.raises(StorageError, match=r"unknown credential key\(s\) \['password'\]"):
        storage_options(provider, {"password": "hunter2"})


def test_credentials_for_a_scheme_without_any() -> None:
    with pytest.raises(StorageError, match="credentials are for"):
        storage_options("http", {"token": "t"})


@pytest.mark.parametrize(
    "scheme,provider",
    [
        ("s3", "s3"),
        ("S3A", "s3"),
        ("gs", "gs"),
        ("gcs", "gs"),
        ("az", "az"),
        ("azure", "az"),
        ("abfs", "az"),
        ("abfss", "az"),
        ("file", None),
        ("https", None),
        ("mem", None),
    ],
)
def test_one_table_of_schemes(scheme: str, provider: str | None) -> None:
    assert provider_of(scheme) == provider
    assert (scheme.lower() in credentials.CREDENTIAL_SCHEMES) == (provider is not None)


def test_provider_credentials_of_either_form() -> None:
    flat = {"aws_access_key_id": "k", SINGLE_WRITER: True}
    assert provider_credentials(flat, "s3") == {"aws_access_key_id": "k"}
    assert provider_credentials(flat, "gs") is None  # another provider's keys
    per_provider = {"s3": {"aws_access_key_id": "k", SINGLE_WRITER: True}, "gs": {"token": "t"}}
    assert provider_credentials(per_provider, "s3") == {"aws_access_key_id": "k"}
    assert provider_credentials(per_provider, "gs") == {"token": "t"}
    assert provider_credentials(per_provider, "az") is None
    with pytest.raises(StorageError, match="unknown credential key"):
        provider_credentials({"aws_acces_key_id": "k"}, "s3")
    with pytest.raises(StorageError, match="no single provider"):
        provider_credentials({"aws_access_key_id": "k", "account_name": "a"}, "s3")
