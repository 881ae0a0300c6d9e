"""az:// against Azurite and gs:// against fake-gcs-server: credentials and conditional creates."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

import lakefmt
from lakefmt.errors import StorageError
from lakefmt.storage import open_storage
from tests.object_store.servers import AZURITE_ACCOUNT, AZURITE_KEY, AzureServer, GCSServer


def _round_trip(url: str, creds: dict[str, Any] | None) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    ds.append({"id": [1, 2]})
    ds.commit("hello")
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1, 2]


# -- Azure -------------------------------------------------------------------------------------


def test_azure_account_key_and_endpoint(azurite_server: AzureServer) -> None:
    creds = {
        "account_name": AZURITE_ACCOUNT,
        "account_key": AZURITE_KEY,
        "endpoint_url": azurite_server.endpoint,
    }
    url = azurite_server.url()
    _round_trip(url, creds)
    # the same dataset through the connection-string form
    assert len(lakefmt.open_read_only(url, creds=azurite_server.creds)) == 2


def test_azure_default_chain_from_environment(
    azurite_server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """creds=None: adlfs reads AZURE_STORAGE_CONNECTION_STRING."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.connection_string)
    _round_trip(azurite_server.url(), None)


def test_azure_conditional_create_is_refused_by_the_server(azurite_server: AzureServer) -> None:
    storage = open_storage(azurite_server.url(), azurite_server.creds)
    fs = storage.fs  # type: ignore[attr-defined]
    full = storage._full("_versions/raw.json")  # type: ignore[attr-defined]
    fs.pipe_file(full, b"1", mode="create")  # adlfs: upload_blob(overwrite=False)
    with pytest.raises(FileExistsError):  # Azurite answers 409 BlobAlreadyExists
        fs.pipe_file(full, b"2", mode="create")
    assert storage.read("_versions/raw.json") == b"1"


def test_azure_bad_credentials_are_a_storage_error(azurite_server: AzureServer) -> None:
    creds = {
        "account_name": AZURITE_ACCOUNT,
        "account_key": "d3Jvbmcga2V5" * 7,
        "endpoint_url": azurite_server.endpoint,
    }
    with pytest.raises(StorageError):
        lakefmt.create(azurite_server.url(), schema={"id": "int64"}, creds=creds)


def test_azure_commit_race(azurite_server: AzureServer) -> None:
    url, creds = azurite_server.url(), azurite_server.creds
    lakefmt.create(url, schema={"w": "int32"}, creds=creds).commit("init")
    handles = [lakefmt.open(url, creds=creds) for _ in range(4)]
    for i, ds in enumerate(handles):
        ds.append({"w": [i]})
    start = threading.Barrier(len(handles), timeout=60)

    def commit(i: int) -> None:
        start.wait()
        handles[i].commit(f"writer {i}")

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ds = lakefmt.open_read_only(url, creds=creds)
    assert sorted(ds["w"][:].tolist()) == [0, 1, 2, 3]
    versions = [h.id for h in ds.history]
    assert len(versions) == len(set(versions)) == 5  # create, 4 writers ("init" changed nothing)


# -- GCS ---------------------------------------------------------------------------------------


def test_gcs_conditional_create_is_refused_by_the_server(gcs_server: GCSServer) -> None:
    storage = open_storage(gcs_server.url(), gcs_server.creds)
    fs = storage.fs  # type: ignore[attr-defined]
    full = storage._full("_versions/raw.json")  # type: ignore[attr-defined]
    fs.pipe_file(full, b"1", mode="create")  # gcsfs: ifGenerationMatch=0
    with pytest.raises(FileExistsError):  # fake-gcs-server answers 412
        fs.pipe_file(full, b"2", mode="create")
    assert storage.read("_versions/raw.json") == b"1"


def test_gcs_default_chain_from_environment(
    gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """creds=None: gcsfs talks to STORAGE_EMULATOR_HOST."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    _round_trip(gcs_server.url(), {"token": "anon"})
    _round_trip(gcs_server.url(), None)


# -- across stores -----------------------------------------------------------------------------


def test_copy_across_object_stores(
    s3_server: Any, azurite_server: AzureServer, gcs_server: GCSServer
) -> None:
    """s3:// -> az:// -> gs:// -> s3://, each hop with its own creds; history intact."""
    hops = [
        (s3_server.url(), s3_server.creds),
        (azurite_server.url(), azurite_server.creds),
        (gcs_server.url(), gcs_server.creds),
        (s3_server.url(), s3_server.creds),
    ]
    url, creds = hops[0]
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    ds.append({"id": [1, 2, 3]})
    v1 = ds.commit("one")
    ds.tag("t1")
    ds.delete(0)
    ds.commit("two")
    for (src, src_creds), (dst, dst_creds) in itertools.pairwise(hops):
        lakefmt.copy(src, dst, src_creds=src_creds, dst_creds=dst_creds)
    last, last_creds = hops[-1]
    copied = lakefmt.open_read_only(last, creds=last_creds)
    assert copied["id"][:].tolist() == [2, 3]
    assert [h.message for h in copied.history] == [h.message for h in ds.history]
    assert lakefmt.open_read_only(last, creds=last_creds, version="t1").version == v1
