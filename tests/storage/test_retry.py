"""lakefmt.storage.retry: which failures are retried, and what the loop raises."""

from __future__ import annotations

import errno

import pytest

from lakefmt.errors import StorageError
from lakefmt.storage import retry


class _Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class ServerDisconnectedError(Exception):  # named like aiohttp's
    pass


@pytest.mark.parametrize(
    "exc,transient",
    [
        (ConnectionError("reset"), True),
        (TimeoutError("slow"), True),
        (OSError("dropped"), True),  # no errno: what a wrapped network failure becomes
        (ServerDisconnectedError(), True),
        (_Status(503), True),
        (_Status(429), True),
        (_Status(404), False),
        (_Status(412), False),
        (FileNotFoundError("x"), False),
        (FileExistsError("x"), False),
        (PermissionError("x"), False),
        (OSError(errno.EACCES, "denied"), False),
        (OSError("Forbidden: no access"), False),  # gcsfs's 403
        (StorageError("already ours"), False),
        (ValueError("bad request"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert retry.is_transient(exc) is transient


def test_transient_failures_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 0.0001)
    calls: list[int] = []

    def flaky(fail: int) -> str:
        calls.append(1)
        if len(calls) <= fail:
            raise ConnectionError("reset")
        return "ok"

    assert retry.with_retries("s3://b/ds", "read", "x", flaky, retry.RETRIES - 1) == "ok"
    assert len(calls) == retry.RETRIES
    calls.clear()
    with pytest.raises(StorageError, match=r"s3://b/ds: read 'x' failed after 5 attempts") as info:
        retry.with_retries("s3://b/ds", "read", "x", flaky, 100)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(calls) == retry.RETRIES


def test_permanent_failures_are_not_retried() -> None:
    calls: list[int] = []

    def fail(exc: BaseException) -> None:
        calls.append(1)
        raise exc

    with pytest.raises(StorageError, match="access denied to write 'p'"):
        retry.with_retries("gs://b", "write", "p", fail, PermissionError("403"))
    with pytest.raises(StorageError, match="write 'p' failed: ValueError"):
        retry.with_retries("gs://b", "write", "p", fail, ValueError("bad"))
    for passthrough in (FileNotFoundError("gone"), FileExistsError("taken")):
        with pytest.raises(type(passthrough)):
            retry.with_retries("gs://b", "write", "p", fail, passthrough)
    assert len(calls) == 4
