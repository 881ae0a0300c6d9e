"""The small-commit path: automatic compaction riding along, the latest hint's interval,
write-back started early for large files."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt.format import commit as commits
from lakefmt.format import layout
from lakefmt.format.maintenance import AUTO_COMPACT_RUN
from lakefmt.storage import local


def _versions(path: str) -> list[int]:
    names = (Path(path) / "_versions").glob("*.json")
    return sorted(int(p.stem) for p in names)


def _one_row_commits(path: str) -> lakefmt.Dataset:
    """A dataset with a compaction due: AUTO_COMPACT_RUN commits of one row each."""
    ds = lakefmt.create(path, schema={"id": "int64"})
    for i in range(AUTO_COMPACT_RUN):
        ds.append({"id": [i]})
        ds.commit()
    return ds


def test_compaction_rides_along_with_the_commit_of_new_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = _one_row_commits(path)
    assert len(ds._manifest.fragments) == AUTO_COMPACT_RUN  # due, not yet done
    before, number = ds.version, ds._manifest.version
    ds.append({"id": [AUTO_COMPACT_RUN]})
    ds.commit("ninth")
    # one new version holds both the new row and the compacted layout
    assert _versions(path)[-1] == number + 1
    assert len(ds._manifest.fragments) == 2
    assert ds._manifest.operation == "append+optimize"
    assert ds["id"][:].tolist() == list(range(AUTO_COMPACT_RUN + 1))
    again = lakefmt.open_read_only(path)
    assert again["id"][:].tolist() == list(range(AUTO_COMPACT_RUN + 1))
    assert lakefmt.open_read_only(path, version=before)["id"][:].tolist() == list(
        range(AUTO_COMPACT_RUN)
    )


def test_a_conflicting_compaction_does_not_cost_the_users_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = _one_row_commits(path)
    other = lakefmt.open(path)
    other.delete(3)  # changes a fragment the first handle's compaction would rewrite
    ds.append({"id": [100]})
    ds.commit()  # the compaction conflicts and waits; the append lands
    expected = [i for i in range(AUTO_COMPACT_RUN) if i != 3] + [100]
    assert ds["id"][:].tolist() == expected
    assert lakefmt.open_read_only(path)["id"][:].tolist() == expected
    ds.append({"id": [101]})
    ds.commit()  # the next commit compacts on the new base
    assert lakefmt.open_read_only(path)["id"][:].tolist() == [*expected, 101]
    assert len(ds._manifest.fragments) < AUTO_COMPACT_RUN


def test_the_hint_is_refreshed_every_interval_on_local_disk(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"id": "int64"})
    hint = Path(path) / layout.latest_hint_path(layout.MAIN_BRANCH)
    for i in range(commits.HINT_INTERVAL + 3):
        ds.append({"id": [i]})
        ds.commit()
        version = ds._manifest.version
        assert int(hint.read_text()) == version - version % commits.HINT_INTERVAL
        # a lagging hint is only where readers start: they probe up to the head
        assert len(lakefmt.open_read_only(path)) == i + 1


def test_the_hint_follows_every_version_where_probes_cost_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakefmt.storage.base import Capabilities
    from lakefmt.storage.memory import MemoryStorage

    monkeypatch.setattr(MemoryStorage, "capabilities", Capabilities(atomic_create=True))
    url = "mem://hint-every-version"
    ds = lakefmt.create(url, schema={"id": "int64"})
    for i in range(3):
        ds.append({"id": [i]})
        ds.commit()
        raw = ds._storage.read(layout.latest_hint_path(layout.MAIN_BRANCH))
        assert int(raw) == ds._manifest.version


class _NoPump:
    @contextlib.contextmanager
    def watching(self, fd: int) -> Iterator[None]:
        yield


def test_write_back_starts_for_large_synced_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    monkeypatch.setattr(local, "start_writeback", started.append)
    monkeypatch.setattr(local, "WRITEBACK_PUMP", _NoPump())  # only the start at close
    synced = local.LocalStorage(str(tmp_path / "synced"))
    big = b"x" * local.WRITEBACK_MIN_BYTES
    synced.write_stream("data/big.parquet", lambda out: out.write(big))
    assert len(started) == 1
    synced.write_stream("data/small.parquet", lambda out: out.write(b"x"))
    assert len(started) == 1
    scratch = local.LocalStorage(str(tmp_path / "scratch"), sync=False)
    scratch.write_stream("data/big.parquet", lambda out: out.write(big))
    assert len(started) == 1
    assert synced.read("data/big.parquet") == big
    local.OWED_SYNCS.settle()


@pytest.mark.skipif(local.start_writeback is None, reason="needs Linux sync_file_range")
def test_starting_write_back_keeps_the_bytes(tmp_path: Path) -> None:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"x": lakefmt.types.Embedding(256)})
    rows = np.random.default_rng(0).normal(size=(4096, 256)).astype(np.float32)
    ds.append({"x": rows})  # a data file above WRITEBACK_MIN_BYTES
    ds.commit()
    assert np.array_equal(np.stack(lakefmt.open_read_only(path)["x"][:]), rows)


def _recording_pump(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], threading.Lock]:
    """A fresh pump (its own thread, a short interval) whose starts are recorded."""
    started: list[int] = []
    lock = threading.Lock()

    def record(fd: int) -> None:
        with lock:
            started.append(fd)

    monkeypatch.setattr(local, "start_writeback", record)
    monkeypatch.setattr(local, "WRITEBACK_INTERVAL_S", 0.001)
    monkeypatch.setattr(local, "WRITEBACK_PUMP", local._WritebackPump())
    return started, lock


def test_write_back_is_pumped_while_a_synced_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, lock = _recording_pump(monkeypatch)
    chunk = b"y" * 4096
    seen_during: list[int] = []

    def slow_write(out: object) -> None:
        for _ in range(50):
            out.write(chunk)  # type: ignore[attr-defined]
            time.sleep(0.002)
        with lock:
            seen_during.extend(started)
        seen_during.append(out.fileno())  # type: ignore[attr-defined]

    storage = local.LocalStorage(str(tmp_path / "ds"))
    size = storage.write_stream("data/slow.parquet", slow_write)
    fd = seen_during.pop()
    assert seen_during and set(seen_during) == {fd}  # started while writing, on that file only
    with lock:
        after = len(started)
    time.sleep(0.02)
    with lock:
        assert len(started) == after  # nothing touches the descriptor once the file is closed
    assert size == 50 * len(chunk)
    assert storage.read("data/slow.parquet") == chunk * 50
    local.OWED_SYNCS.settle()


def test_unsynced_storage_pumps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, _lock = _recording_pump(monkeypatch)

    def slow_write(out: object) -> None:
        for _ in range(10):
            out.write(b"z" * 1024)  # type: ignore[attr-defined]
            time.sleep(0.002)

    scratch = local.LocalStorage(str(tmp_path / "scratch"), sync=False)
    scratch.write_stream("data/f.parquet", slow_write)
    assert started == []
    assert scratch.read("data/f.parquet") == b"z" * 10240


def test_a_failing_writer_leaves_the_pump_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, lock = _recording_pump(monkeypatch)

    def failing(out: object) -> None:
        out.write(b"a" * 10)  # type: ignore[attr-defined]
        raise ValueError("encoder failed")

    storage = local.LocalStorage(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match="encoder failed"):
        storage.write_stream("data/bad.parquet", failing)
    assert local.WRITEBACK_PUMP._fds == {}
    with lock:
        after = len(started)
    time.sleep(0.01)
    with lock:
        assert len(started) == after
