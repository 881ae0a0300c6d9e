"""A handle dropped with buffered rows flushes them, wherever the garbage collector finds it."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import lakefmt
from lakefmt.storage import local


def _wait_for_rows(url: str, rows: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(lakefmt.open_read_only(url))
        if n == rows:
            return n
        time.sleep(0.05)
    return len(lakefmt.open_read_only(url))


def test_handle_found_by_the_cyclic_collector_while_lakefmt_holds_a_lock(tmp_path: Path) -> None:
    # Found by the test suite: a handle in a reference cycle was finalized by a collection
    # that started inside OWED_SYNCS.settle (which holds its lock); its flush waited for that
    # lock forever.
    url = str(tmp_path / "ds")
    lakefmt.create(url, schema={"x": "int64"})
    ds = lakefmt.open(url)
    ds.append({"x": [1, 2, 3]})
    cycle: list[object] = [ds]
    cycle.append(cycle)
    del ds, cycle
    done = threading.Event()

    def collect_holding_the_lock() -> None:
        with local.OWED_SYNCS._lock:
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_holding_the_lock, daemon=True)
    worker.start()
    assert done.wait(20), "the collection deadlocked on lakefmt's own lock"
    assert _wait_for_rows(url, 3) == 3


def test_handle_dropped_by_reference_count_flushes_at_once(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    lakefmt.create(url, schema={"x": "int64"})
    lakefmt.open(url).append({"x": [1, 2]})
    assert len(lakefmt.open_read_only(url)) == 2  # no waiting: the flush ran in __del__
