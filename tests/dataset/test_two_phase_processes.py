"""Two-phase writes across real processes: workers write, one driver commits; workers
and drivers killed with SIGKILL at the worst moments leave exactly one copy of each row."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import lakefmt
from lakefmt.dataset import writer
from lakefmt.format import fragments

# fork: the children start in milliseconds (lakefmt's pools and locks are fork-safe)
FORK = multiprocessing.get_context("fork")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="fork and SIGKILL are POSIX")


def _batch(start: int, count: int) -> dict[str, list[Any]]:
    ids = list(range(start, start + count))
    return {"id": ids, "text": [f"t{i}" for i in ids]}


def _write(url: str, start: int, count: int) -> list[str]:
    return [info.to_json() for info in lakefmt.write_fragments(url, _batch(start, count))]


def _data_files(root: Path) -> set[str]:
    return set(os.listdir(root / "data")) if (root / "data").exists() else set()


@pytest.fixture
def url(tmp_path: Path) -> str:
    lakefmt.create(tmp_path / "ds", schema={"id": "int64", "text": "text"})
    return str(tmp_path / "ds")


def test_eight_worker_tasks_one_commit(url: str) -> None:
    ds = lakefmt.open(url)
    before = ds._manifest.version
    with ProcessPoolExecutor(2, mp_context=FORK) as pool:
        parts = list(pool.map(_write, [url] * 8, range(0, 800, 100), [100] * 8))
    assert lakefmt.open_read_only(url)["id"][:].tolist() == []
    ds.commit_fragments([info for part in parts for info in part], transaction_id="job")
    assert ds._manifest.version == before + 1
    view = lakefmt.open_read_only(url)
    assert view["id"][:].tolist() == list(range(800))
    assert view["text"][:] == [f"t{i}" for i in range(800)]


def _write_then_hang(url: str, ready: Any) -> None:
    """Write fragments of one row each; after the first data file, signal and hang (the
    parent kills this process there)."""
    real = fragments.write_data_file
    writer.FRAGMENT_MAX_ROWS = 1

    def write_one(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        ready.set()
        time.sleep(120)
        return out

    fragments.write_data_file = write_one  # in this child only
    lakefmt.write_fragments(url, _batch(0, 3))


def test_worker_killed_mid_write_then_retried(url: str, tmp_path: Path) -> None:
    ready = FORK.Event()
    child = FORK.Process(target=_write_then_hang, args=(url, ready))
    child.start()
    try:
        assert ready.wait(60), "the worker never wrote its first file"
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]  # started: has a pid
        child.join()
    assert child.exitcode == -signal.SIGKILL
    orphans = _data_files(tmp_path / "ds")
    assert len(orphans) == 1
    # the engine retries the task on another process
    with ProcessPoolExecutor(1, mp_context=FORK) as pool:
        infos = pool.submit(_write, url, 0, 3).result()
    ds = lakefmt.open(url)
    ds.commit_fragments(infos, transaction_id="job")
    assert lakefmt.open_read_only(url)["id"][:].tolist() == [0, 1, 2]
    ds.cleanup(older_than=0)
    assert not orphans & _data_files(tmp_path / "ds")
    assert lakefmt.open_read_only(url)["id"][:].tolist() == [0, 1, 2]


def _commit_then_die(url: str, infos: list[str], transaction: str) -> None:
    lakefmt.open(url).commit_fragments(infos, transaction_id=transaction)
    os.kill(os.getpid(), signal.SIGKILL)  # before telling anyone it committed


def test_driver_killed_after_commit_commits_again(url: str) -> None:
    infos = _write(url, 0, 5)
    child = FORK.Process(target=_commit_then_die, args=(url, infos, "job-7"))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL
    landed = lakefmt.open(url)
    assert landed["id"][:].tolist() == list(range(5))
    # the restarted driver does not know; it commits the same transaction again
    again = lakefmt.open(url).commit_fragments(infos, transaction_id="job-7")
    assert again == landed.version
    assert lakefmt.open_read_only(url)["id"][:].tolist() == list(range(5))


def _commit_at(url: str, infos: list[str], transaction: str, start: Any) -> str:
    start.wait()
    return lakefmt.open(url).commit_fragments(infos, transaction_id=transaction)


def test_two_drivers_committing_at_once_both_land(url: str) -> None:
    jobs = [_write(url, 100 * k, 50) for k in range(4)]
    manager = FORK.Manager()
    try:
        start = manager.Event()
        with ProcessPoolExecutor(4, mp_context=FORK) as pool:
            futures = [
                pool.submit(_commit_at, url, infos, f"driver-{k}", start)
                for k, infos in enumerate(jobs)
            ]
            start.set()
            versions = [f.result() for f in futures]
    finally:
        manager.shutdown()
    assert len(set(versions)) == 4
    ids = lakefmt.open_read_only(url)["id"][:].tolist()
    assert sorted(ids) == sorted(i for k in range(4) for i in range(100 * k, 100 * k + 50))
    head = lakefmt.open(url)._manifest
    assert sorted(r.id for r in head.transactions) == [f"driver-{k}" for k in range(4)]
