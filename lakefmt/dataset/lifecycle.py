"""Flushing writers that nobody flushed: at interpreter exit, and when a handle is dropped.

A handle dropped with buffered rows (``lakefmt.open(u).append(rows)``) flushes them, as
Deep Lake does; errors are logged, since neither ``__del__`` nor an exit handler can raise.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import sys
import threading
import weakref
from typing import Protocol

# the name these messages had before this module existed: logging configurations keep working
logger = logging.getLogger("lakefmt.dataset.dataset")


class Writer(Protocol):
    """A handle that may hold rows not written yet."""

    @property
    def url(self) -> str:
        """The dataset's root URL (named in the log)."""
        ...

    def flush(self) -> None:
        """Write the pending rows."""
        ...


class _CyclicCollection:
    """Whether the cyclic garbage collector is running, from ``gc.callbacks``.

    A handle found only by the collector is finalized wherever the collection started:
    possibly in the middle of lakefmt's own code, holding a lock the flush needs. Such a
    handle's flush runs on a thread of its own instead (see :func:`flush_dropped`).
    """

    running = False

    @classmethod
    def callback(cls, phase: str, info: dict[str, int]) -> None:
        cls.running = phase == "start"


gc.callbacks.append(_CyclicCollection.callback)

_OPEN_WRITERS: weakref.WeakSet[Writer] = weakref.WeakSet()


def register_writer(writer: Writer) -> None:
    """Flush ``writer`` at interpreter exit if it is still alive then."""
    _OPEN_WRITERS.add(writer)


@atexit.register
def _flush_at_exit() -> None:
    for ds in list(_OPEN_WRITERS):
        try:
            ds.flush()
        except Exception:  # the interpreter is going away: report, never raise
            logger.exception("lakefmt: could not flush %s at exit", ds.url)


def flush_dropped(writer: Writer, rows: int) -> None:
    """Flush a handle being finalized (from its ``__del__``) that holds ``rows`` rows or
    updates not written yet."""
    if sys.is_finalizing():
        # The exit handler already tried to flush every writer (and logged why it
        # failed); this late, builtins such as open are gone, so trying again would
        # only log a NameError in place of the real reason.
        with contextlib.suppress(Exception):
            logger.error(
                "lakefmt: %s rows buffered in %s were not written (the flush at exit failed)",
                rows,
                writer.url,
            )
        return
    if _CyclicCollection.running:
        # Found by the collector, which may have interrupted lakefmt code holding a
        # lock the flush takes: flush on a thread of its own (not a daemon, so the
        # interpreter waits for it at exit) once that code has let go.
        threading.Thread(
            target=_flush_logged, args=(writer,), name="lakefmt-dropped-handle-flush"
        ).start()
        return
    _flush_logged(writer)


def _flush_logged(writer: Writer) -> None:
    try:
        writer.flush()
    except Exception:
        logger.exception("lakefmt: could not flush %s when the handle was dropped", writer.url)
