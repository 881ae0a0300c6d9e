"""Retries of object-store requests: which failures are transient, and the backoff loop.

Transient failures (connection errors, timeouts, throttling, 5xx) are retried
:data:`RETRIES` times with exponential backoff and jitter, on top of the client libraries'
own retries; everything else becomes a :class:`~lakefmt.errors.StorageError` at once
(``FileNotFoundError`` and ``FileExistsError`` pass through: callers decide what they mean).
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lakefmt.errors import StorageError

T = TypeVar("T")

#: Attempts per operation before a transient failure becomes a :class:`StorageError`.
RETRIES = 5
#: First backoff delay in seconds; doubled after each failed attempt (with jitter).
BACKOFF_SECONDS = 0.1
#: Cap on a single backoff delay.
MAX_BACKOFF_SECONDS = 5.0

# errno values of OSErrors that retrying cannot fix
_PERMANENT_ERRNOS = frozenset(
    {
        errno.EINVAL,
        errno.ENOSYS,
        errno.EPERM,
        errno.EACCES,
        errno.ENOENT,
        errno.EEXIST,
        errno.EROFS,
        errno.ENAMETOOLONG,
        getattr(errno, "EREMCHG", -1),  # s3fs: 301/307, a bucket in another region
    }
)
# exception class names (anywhere in the MRO) of network-level failures worth a retry
_TRANSIENT_NAMES = frozenset(
    {
        "ServiceRequestError",  # azure-core: the request never got a response
        "ServiceResponseError",  # azure-core: the response was cut
        "IncompleteReadError",
        "ClientConnectionError",  # aiohttp
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "EndpointConnectionError",  # botocore
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ResponseStreamingError",
        "ProxyError",
        "ChunkedEncodingError",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def is_transient(exc: BaseException) -> bool:
    """Return whether retrying the operation that raised ``exc`` may succeed.

    Connection errors, timeouts, throttling (408, 429) and server errors (5xx) are
    transient; missing or existing objects, denied access and bad requests are not. A bare
    :class:`OSError` without an errno (what a dropped connection often becomes after the
    client library wrapped it) counts as transient.
    """
    if isinstance(
        exc,
        FileNotFoundError
        | FileExistsError
        | PermissionError
        | IsADirectoryError
        | NotADirectoryError
        | StorageError,
    ):
        return False
    status = status_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if _TRANSIENT_NAMES & {cls.__name__ for cls in type(exc).__mro__}:
        return True
    if isinstance(exc, OSError):
        if str(exc).startswith("Forbidden"):  # gcsfs: 403 as a bare OSError
            return False
        return exc.errno not in _PERMANENT_ERRNOS
    return False


def with_retries(
    url: str, what: str, path: str, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run ``fn(*args, **kwargs)``; retry transient failures with backoff; map the rest.

    Args:
        url: The dataset root, for messages.
        what: The operation (``"read"``, ``"create"``...), for messages.
        path: The object, relative to the root, for messages.

    Raises:
        FileNotFoundError: What ``fn`` raised (the object or bucket is missing).
        FileExistsError: What ``fn`` raised (a refused conditional create).
        StorageError: Access was denied, a permanent failure, or every attempt failed; the
            last failure is its ``__cause__``.
    """
    delay = BACKOFF_SECONDS
    for attempt in range(1, RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except (FileNotFoundError, FileExistsError):
            raise
        except PermissionError as exc:
            raise StorageError(f"{url}: access denied to {what} '{path}': {exc}") from exc
        except Exception as exc:
            if not is_transient(exc):
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"{url}: {what} '{path}' failed: {exc!r}") from exc
            if attempt == RETRIES:
                raise StorageError(
                    f"{url}: {what} '{path}' failed after {RETRIES} attempts: {exc!r}"
                ) from exc
            time.sleep(min(delay, MAX_BACKOFF_SECONDS) * (0.5 + random.random()))
            delay *= 2
    raise AssertionError("unreachable")
