"""Local disk durability: nothing is published before the files it names are on disk.

``write_stream`` leaves its ``fsync`` owed; ``put_if_absent`` settles every owed sync (in
parallel) before it links the new name. These tests record the order of ``fsync`` and
``link`` calls.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt.storage.local import OWED_SYNCS, LocalStorage


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Records ("fsync", path) and ("link", target) in the order they happen."""
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        real_fsync(fd)
        with lock:
            log.append(("fsync", path))

    def link(src: str, dst: str, *args: object, **kwargs: object) -> None:
        real_link(src, dst)
        with lock:
            log.append(("link", str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    OWED_SYNCS.settle()  # start from a clean slate
    log.clear()
    return log


def _stream(storage: LocalStorage, path: str, data: bytes) -> None:
    storage.write_stream(path, lambda out: out.write(data))


def test_data_files_and_their_directory_are_synced_before_the_link(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    _stream(storage, "data/a.parquet", b"a" * 100)
    _stream(storage, "data/b.parquet", b"b" * 100)
    assert events == []  # nothing synced yet: owed
    assert len(OWED_SYNCS) >= 3
    assert storage.put_if_absent("_versions/1.json", b"{}")
    link = events.index(("link", str(tmp_path / "ds" / "_versions" / "1.json")))
    synced_before = {p for kind, p in events[:link] if kind == "fsync"}
    data = tmp_path / "ds" / "data"
    assert {str(data / "a.parquet"), str(data / "b.parquet"), str(data)} <= synced_before
    # the manifest's own bytes (its temp file) too, and its directory after the link
    assert any("/_tmp/" in p for p in synced_before)
    assert ("fsync", str(tmp_path / "ds" / "_versions")) in events[link:]
    assert len(OWED_SYNCS) == 0


def test_a_file_deleted_before_the_commit_owes_nothing(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    _stream(storage, "data/gone.parquet", b"x")
    storage.delete("data/gone.parquet")
    assert storage.put_if_absent("_versions/1.json", b"{}")
    assert storage.read("_versions/1.json") == b"{}"
    assert len(OWED_SYNCS) == 0


def test_a_failed_sync_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    OWED_SYNCS.settle()
    _stream(storage, "data/a.parquet", b"a")

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="I/O error"):
        storage.put_if_absent("_versions/1.json", b"{}")
    assert not storage.exists("_versions/1.json")
    assert os.listdir(tmp_path / "ds" / "_tmp") == []  # the temp file is gone too


def test_a_sync_started_by_another_thread_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    OWED_SYNCS.settle()
    slow_path = str(tmp_path / "ds" / "data" / "slow.parquet")
    release = threading.Event()
    started = threading.Event()
    done: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path == slow_path:
            started.set()
            release.wait(10)
        real_fsync(fd)
        done.append(path)

    monkeypatch.setattr(os, "fsync", fsync)
    _stream(storage, "data/slow.parquet", b"s")
    first = threading.Thread(target=OWED_SYNCS.settle)
    first.start()
    assert started.wait(10)  # the first thread's sync of slow.parquet is in flight
    second = threading.Thread(target=storage.put_if_absent, args=("_versions/1.json", b"{}"))
    second.start()
    time.sleep(0.2)
    assert not storage.exists("_versions/1.json")  # waits for the in-flight sync
    release.set()
    first.join(10)
    second.join(10)
    assert storage.exists("_versions/1.json")
    assert slow_path in done


def test_unsynced_storage_owes_nothing(tmp_path: Path) -> None:
    OWED_SYNCS.settle()
    storage = LocalStorage(str(tmp_path / "ds"), sync=False)
    _stream(storage, "data/a.parquet", b"a")
    assert len(OWED_SYNCS) == 0


def test_a_dataset_commit_syncs_its_fragments_first(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"id": "int64"})
    events.clear()
    ds.append({"id": np.arange(10)})
    ds.commit("ten rows")
    links = [i for i, (kind, p) in enumerate(events) if kind == "link" and "_versions" in p]
    assert links
    data_files = [str(tmp_path / "ds" / d.path) for f in ds._manifest.fragments for d in f.files]
    synced_before = {p for kind, p in events[: links[-1]] if kind == "fsync"}
    assert set(data_files) <= synced_before
    reopened = lakefmt.open_read_only(url)
    assert reopened["id"][:].tolist() == list(range(10))
    assert reopened.to_arrow().column("id").to_pylist() == list(range(10))


def test_a_durable_write_syncs_its_bytes_before_and_its_name_after_the_rename(
    tmp_path: Path, events: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        events.append(("replace", str(dst)))

    monkeypatch.setattr(os, "replace", replace)
    storage.write("data/copied.parquet", b"bytes")
    target = str(tmp_path / "ds" / "data" / "copied.parquet")
    at = events.index(("replace", target))
    assert any(kind == "fsync" and "/_tmp/" in p for kind, p in events[:at])
    assert ("fsync", str(tmp_path / "ds" / "data")) in events[at:]
    # a hint (durable=False) is never synced, and once its directory exists it is written in
    # place (no temp file, no rename)
    events.clear()
    storage.write("_versions/_latest", b"2", durable=False)
    assert all(kind != "fsync" for kind, _ in events)
    events.clear()
    storage.write("_versions/_latest", b"3", durable=False)
    assert events == [] and storage.read("_versions/_latest") == b"3"


def test_a_failed_sync_does_not_poison_later_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(str(tmp_path / "ds"))
    OWED_SYNCS.settle()
    _stream(storage, "data/a.parquet", b"a")
    _stream(storage, "more/b.parquet", b"b")
    real_fsync = os.fsync
    failing = str(tmp_path / "ds" / "data" / "a.parquet")

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == failing:
            raise OSError(errno.EIO, "I/O error")
        time.sleep(0.2)  # the other syncs are still running when the failure comes back
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="I/O error"):
        storage.put_if_absent("_versions/1.json", b"{}")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert len(OWED_SYNCS) == 0  # nothing failed is left owed
    assert storage.put_if_absent("_versions/1.json", b"{}")


def test_directories_removed_underneath_are_made_again(tmp_path: Path) -> None:
    import shutil

    storage = LocalStorage(str(tmp_path / "ds"), sync=False)
    _stream(storage, "data/a.parquet", b"a")
    assert storage.put_if_absent("_versions/1.json", b"{}")
    for name in ("data", "_versions", "_tmp"):
        shutil.rmtree(tmp_path / "ds" / name)
    _stream(storage, "data/b.parquet", b"b")  # the remembered directories are gone
    assert storage.put_if_absent("_versions/2.json", b"{}")
    assert storage.read("data/b.parquet") == b"b"
    assert storage.read("_versions/2.json") == b"{}"
    storage.delete_all()
    _stream(storage, "data/c.parquet", b"c")
    assert storage.read("data/c.parquet") == b"c"
