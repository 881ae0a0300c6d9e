"""What the provider adapters need from s3fs, gcsfs and adlfs exists in the installed versions.

Each adapter lists the library methods it calls and the keywords it passes
(``LIBRARY_API``). A keyword the library stopped taking would land in ``**kwargs`` and be
ignored or sent to the server, so the test checks the parameters of the coroutine behind
each public sync method by name: an upgrade that drops one fails here, not in production.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lakefmt.storage.providers import azure, gcs, s3


def _check(cls: type, api: dict[str, tuple[str, ...]]) -> None:
    for method, keywords in api.items():
        public = getattr(cls, method, None)
        coroutine = getattr(cls, f"_{method}", None)
        # the public name exists as a method, or fsspec makes it for each instance from the
        # coroutine (fsspec.asyn.mirror_sync_methods)
        assert public is not None, f"{cls.__name__}.{method} is gone"
        assert inspect.iscoroutinefunction(coroutine), f"{cls.__name__}._{method} is gone"
        params = inspect.signature(coroutine).parameters
        for keyword in keywords:
            assert keyword in params, f"{cls.__name__}._{method} no longer takes {keyword}="


def test_s3fs_api() -> None:
    s3fs = pytest.importorskip("s3fs")
    _check(s3fs.S3FileSystem, s3.LIBRARY_API)


def test_gcsfs_api() -> None:
    gcsfs_core = pytest.importorskip("gcsfs.core")
    _check(gcsfs_core.GCSFileSystem, gcs.LIBRARY_API)


def test_adlfs_api_and_the_client_attributes() -> None:
    adlfs = pytest.importorskip("adlfs")
    _check(adlfs.AzureBlobFileSystem, azure.LIBRARY_API)
    fs: Any = adlfs.AzureBlobFileSystem(
        connection_string=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        ),
        skip_instance_cache=True,
    )
    for attribute in azure.LIBRARY_ATTRIBUTES:
        assert getattr(fs, attribute, None) is not None, f"adlfs no longer sets {attribute}"
    client = fs.service_client
    assert callable(client.get_blob_client) and callable(client.get_container_client)


def test_fsspec_makes_the_sync_methods_from_the_coroutines() -> None:
    """The adapters call ``fs.cat_file`` and friends: on each instance these are fsspec's
    sync wrappers of the library's coroutines (or the library's own sync wrappers), never
    ``AbstractFileSystem``'s generic versions."""
    from fsspec import AbstractFileSystem

    s3fs = pytest.importorskip("s3fs")
    gcsfs_core = pytest.importorskip("gcsfs.core")
    instances = [
        s3fs.S3FileSystem(anon=True, skip_instance_cache=True),
        gcsfs_core.GCSFileSystem(token="anon", skip_instance_cache=True),
    ]
    for fs in instances:
        for method in ("cat_file", "pipe_file", "put_file", "rm_file"):
            generic = getattr(AbstractFileSystem, method)
            assert getattr(fs, method) is not generic
            assert getattr(getattr(fs, method), "__func__", None) is not generic, method
