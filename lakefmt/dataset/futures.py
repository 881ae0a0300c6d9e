"""Futures for the async API: ``concurrent.futures.Future`` objects that asyncio can await.

Work runs on one process-wide thread pool (recreated after ``fork``). pyarrow, DuckDB,
Pillow and PyAV release the GIL, so reads and decodes issued together overlap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from lakefmt._pool import shared_pool

T = TypeVar("T")


class Future(concurrent.futures.Future[Any]):
    """A future with ``.result()`` that is also awaitable in asyncio (``await future``)."""

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # lakefmt._pool's "async" pool: I/O-bound work, so more threads than cores
    return shared_pool("async")


def submit(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future:
    """Run ``fn(*args, **kwargs)`` on the async pool; exceptions surface from ``result()``."""
    future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    _executor().submit(run)
    return future
