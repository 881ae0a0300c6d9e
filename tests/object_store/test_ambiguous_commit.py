"""S3 (moto): a commit whose manifest PUT landed but whose answer was lost (issue 14, defect 10).

The first conditional PUT of the manifest reaches the store, but its answer is lost (a 500 or
a dropped connection); every later PUT gets a 503. Before the fix ``commit()`` raised
``StorageError ... failed after 5 attempts`` although the version existed, and calling it
again appended the same rows a second time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

import lakefmt
from lakefmt.errors import StorageError
from lakefmt.storage import open_storage
from tests.object_store.servers import S3Server

MANIFEST = re.compile(r"/_versions/\d{20}\.json$")


class HttpError(OSError):
    """What a client library raises for an HTTP error status (classified by its status)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status


class LostAnswer:
    """Wraps ``ObjectStoreStorage._ops``: the first manifest PUT lands and then raises
    ``first()``; the next ``later_failures`` manifest PUTs raise ``HttpError(503)`` without
    reaching the store. With ``gets_fail``, manifest GETs fail too (the network is down)."""

    def __init__(
        self, ops: Any, first: Callable[[], BaseException], *, later_failures: int = 100
    ) -> None:
        self._ops = ops
        self.first: Callable[[], BaseException] | None = first
        self.later_failures = later_failures
        self.gets_fail = False
        self.landed = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def put(self, full: str, data: bytes, *, create: bool) -> None:
        """PUT, failing as configured for manifests."""
        if not MANIFEST.search(full):
            return self._ops.put(full, data, create=create)
        with self._lock:
            first, self.first = self.first, None
            fail_later = first is None and self.later_failures > 0
            if fail_later:
                self.later_failures -= 1
        if first is not None:
            self._ops.put(full, data, create=create)
            self.landed += 1
            raise first()
        if fail_later:
            raise HttpError(503)
        return self._ops.put(full, data, create=create)

    def get(self, full: str, start: int | None = None, end: int | None = None) -> bytes:
        """GET, failing for manifests while ``gets_fail``."""
        if self.gets_fail and MANIFEST.search(full):
            raise HttpError(503)
        return self._ops.get(full, start, end)


def _versions(url: str, creds: dict[str, Any]) -> list[str]:
    return sorted(p for p in open_storage(url, creds).list("_versions") if p.endswith(".json"))


LOST = {
    "500": lambda: HttpError(500),
    "dropped-connection": lambda: ConnectionError("connection reset by peer"),
}


@pytest.mark.parametrize("lost", list(LOST))
def test_commit_whose_answer_was_lost_succeeds_once(
    s3_server: S3Server, fast_retries: None, lost: str
) -> None:
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    before = _versions(url, creds)
    ops = LostAnswer(ds._storage._ops, LOST[lost])  # type: ignore[attr-defined]
    ds._storage._ops = ops  # type: ignore[attr-defined]
    ds.append({"id": [1, 2, 3]})
    version = ds.commit("lands although the answer is lost")
    assert ops.landed == 1
    assert len(_versions(url, creds)) == len(before) + 1  # exactly one new manifest
    reader = lakefmt.open_read_only(url, creds=creds)
    assert reader.version == version
    assert reader["id"][:].tolist() == [1, 2, 3]
    # the handle goes on from the version that landed
    ds._storage._ops = ops._ops  # type: ignore[attr-defined]
    ds.append({"id": [4]})
    ds.commit("next")
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1, 2, 3, 4]


def test_put_if_absent_reads_back_after_every_retry_failed(
    s3_server: S3Server, fast_retries: None
) -> None:
    storage = open_storage(s3_server.url(), s3_server.creds)
    storage._ops = LostAnswer(storage._ops, LOST["500"])  # type: ignore[attr-defined]
    path = "_versions/00000000000000000001.json"
    assert storage.put_if_absent(path, b"mine") is True
    assert storage.put_if_absent(path, b"theirs") is False


def test_unknown_outcome_then_retry_appends_the_rows_once(
    s3_server: S3Server, fast_retries: None
) -> None:
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    ops = LostAnswer(ds._storage._ops, LOST["dropped-connection"])  # type: ignore[attr-defined]
    ops.gets_fail = True  # the network stays down: the read-back cannot tell either
    ds._storage._ops = ops  # type: ignore[attr-defined]
    ds.append({"id": [1, 2, 3]})
    with pytest.raises(StorageError, match="unknown"):
        ds.commit("outcome unknown")
    assert ops.landed == 1  # it did land
    ops.gets_fail, ops.later_failures = False, 0  # the network is back
    ds.commit("the user retries")
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1, 2, 3]


def test_commit_that_never_landed_fails_and_a_retry_lands_once(
    s3_server: S3Server, fast_retries: None
) -> None:
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    before = _versions(url, creds)
    ops = LostAnswer(ds._storage._ops, LOST["500"])  # type: ignore[attr-defined]
    ops.first = None  # no PUT reaches the store: all get 503
    ds._storage._ops = ops  # type: ignore[attr-defined]
    ds.append({"id": [7]})
    with pytest.raises(StorageError, match="after 5 attempts"):
        ds.commit("fails cleanly")
    assert _versions(url, creds) == before
    ops.later_failures = 0
    ds.commit("retry")
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [7]
