"""A root in a bucket or container that does not exist, on every object store."""

from __future__ import annotations

import pytest

from lakefmt.errors import StorageError
from lakefmt.storage import open_storage
from tests.object_store.servers import Location


def test_missing_bucket_is_a_clear_error(object_store: Location) -> None:
    scheme = object_store.url.split("://")[0]
    storage = open_storage(f"{scheme}://no-such-bucket-lakefmt/ds", object_store.creds)
    assert not storage.exists("x")
    assert list(storage.list()) == []
    with pytest.raises(StorageError, match="no-such-bucket-lakefmt"):
        storage.write("x", b"1")
