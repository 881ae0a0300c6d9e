"""Concurrent writers: every row lands exactly once and every commit is in history."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import ColumnExistsError, CommitConflictError

WRITER = textwrap.dedent(
    """
    import sys, lakefmt
    url, writer, commits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ds = lakefmt.open(url)
    for c in range(commits):
        ds.append({"writer": [writer] * 3, "seq": [c * 3, c * 3 + 1, c * 3 + 2]})
        ds.commit(f"writer {writer} commit {c}")
    """
)


def _check_all_rows(url: str, writers: int, commits: int) -> None:
    ds = lakefmt.open_read_only(url)
    pairs = sorted(zip(ds["writer"][:].tolist(), ds["seq"][:].tolist(), strict=True))
    expected = sorted((w, s) for w in range(writers) for s in range(commits * 3))
    assert pairs == expected  # each row exactly once
    messages = [v.message for v in ds.history]
    for w in range(writers):
        for c in range(commits):
            assert f"writer {w} commit {c}" in messages
    numbers = [v.number for v in ds.history]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # linear


@pytest.mark.slow
def test_processes_append_and_commit_concurrently(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    lakefmt.create(url, schema={"writer": "int32", "seq": "int32"}).commit("init")
    writers, commits = 4, 25
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(w), str(commits)])
        for w in range(writers)
    ]
    for p in procs:
        assert p.wait(timeout=240) == 0
    _check_all_rows(url, writers, commits)


@pytest.mark.parametrize("backend", ["file", "mem"])
def test_threads_append_and_commit_concurrently(tmp_path: Path, backend: str) -> None:
    url = str(tmp_path / "ds") if backend == "file" else f"mem://threads-{tmp_path.name}"
    lakefmt.create(url, schema={"writer": "int32", "seq": "int32"}).commit("init")
    writers, commits = 4, 25
    start = threading.Barrier(writers, timeout=30)

    def write(w: int) -> None:
        ds = lakefmt.open(url)
        start.wait()  # all writers race for the same next version
        for c in range(commits):
            ds.append({"writer": [w] * 3, "seq": [c * 3, c * 3 + 1, c * 3 + 2]})
            ds.commit(f"writer {w} commit {c}")

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))  # list() re-raises a writer's exception
    _check_all_rows(url, writers, commits)


def test_one_handle_shared_by_threads(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"x": "int64"})

    def write(w: int) -> None:
        for i in range(50):
            ds.append({"x": [w * 1000 + i]})
            if i % 10 == 0:
                ds.flush()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    ds.commit("done")
    got = sorted(lakefmt.open_read_only(url)["x"][:].tolist())
    assert got == sorted(w * 1000 + i for w in range(4) for i in range(50))


def test_schema_change_racing_appends(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    lakefmt.create(url, schema={"x": "int64"}).commit("init")
    errors: list[BaseException] = []

    def append_loop() -> None:
        ds = lakefmt.open(url)
        for i in range(30):
            ds.append({"x": [i]})
            ds.commit(f"append {i}")

    unexpected: list[BaseException] = []

    def schema_change() -> None:
        try:
            ds = lakefmt.open(url)
            ds.add_column("y", "int32", default_value=5)
        except (CommitConflictError, ColumnExistsError) as exc:  # the only acceptable failures
            errors.append(exc)
        except BaseException as exc:  # surfaced below instead of dying with the thread
            unexpected.append(exc)

    threads = [threading.Thread(target=append_loop) for _ in range(2)]
    threads += [threading.Thread(target=schema_change) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not unexpected, unexpected
    ds = lakefmt.open_read_only(url)
    assert sorted(ds["x"][:].tolist()) == sorted(list(range(30)) * 2)  # appends survive
    assert "y" in ds.schema  # one schema change landed
    # One schema change lands; the other raises ColumnExistsError, unless both writers
    # produced the byte-identical manifest in the same millisecond: then the change is the
    # same one and both are told it landed (spec, "Committing": identical bytes are ours).
    assert len(errors) <= 1 and all(isinstance(e, ColumnExistsError) for e in errors)
    assert [f.name for f in ds._manifest.fields].count("y") == 1
    assert set(ds["y"][:].tolist()) <= {5}


def test_concurrent_deletes_in_one_fragment_rebase(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"x": "int64"})
    ds.append({"x": np.arange(10)})
    ds.commit("rows")
    a, b = lakefmt.open(url), lakefmt.open(url)
    a.delete(1)  # row x=1
    b.delete(8)  # row x=8, decided on the old version: rebased on a's deletion
    assert lakefmt.open_read_only(url)["x"][:].tolist() == [0, 2, 3, 4, 5, 6, 7, 9]


def test_disjoint_updates_rebase_and_same_cell_conflicts(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"x": "int64"})
    ds.append({"x": np.arange(100)})
    ds.commit("rows")
    a, b, c = lakefmt.open(url), lakefmt.open(url), lakefmt.open(url)
    a["x"][1] = -1
    a.commit("a")
    b["x"][2] = -2  # another cell of the same column and fragment: rebases
    b.commit("b")
    c["x"][1] = -3  # the cell a changed: conflict, nothing written
    with pytest.raises(CommitConflictError, match="positions \\[1\\]"):
        c.commit("c")
    got = lakefmt.open_read_only(url)["x"][:]
    assert got[1] == -1 and got[2] == -2 and got[3] == 3
