"""The dataset API on every backend: file://, mem://, s3:// (moto), az:// (Azurite), gs://.

One parametrized fixture (``store`` in ``conftest.py``) gives each test a fresh location on
each backend, so the same behaviour is checked on local disk, in memory and against the
real protocol servers.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import (
    BranchNotFoundError,
    DatasetExistsError,
    DatasetNotFoundError,
    ReadOnlyError,
    TagExistsError,
)
from tests.object_store.servers import Location


def _rows(ds: lakefmt.ReadOnlyDataset) -> list[tuple[int, str]]:
    return list(zip(ds["id"][:].tolist(), ds["t"][:], strict=True))


def _create(loc: Location) -> lakefmt.Dataset:
    return lakefmt.create(loc.url, schema={"id": "int64", "t": "text"}, creds=loc.creds)


def test_create_exists_open_delete(store: Location) -> None:
    assert not lakefmt.exists(store.url, creds=store.creds)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.open(store.url, creds=store.creds)
    ds = _create(store)
    assert lakefmt.exists(store.url, creds=store.creds)
    with pytest.raises(DatasetExistsError):
        _create(store)
    ds.append({"id": np.arange(5), "t": list("abcde")})
    ds.commit("five")
    assert _rows(lakefmt.open(store.url, creds=store.creds)) == list(
        zip(range(5), "abcde", strict=True)
    )
    ro = lakefmt.open_read_only(store.url, creds=store.creds)
    with pytest.raises(ReadOnlyError):
        ro.append({"id": [9], "t": ["z"]})
    lakefmt.delete(store.url, creds=store.creds)
    assert not lakefmt.exists(store.url, creds=store.creds)
    with pytest.raises(DatasetNotFoundError):
        lakefmt.delete(store.url, creds=store.creds)


def test_append_read_update_delete(store: Location) -> None:
    ds = _create(store)
    ds.append({"id": np.arange(30), "t": [f"r{i}" for i in range(30)]})
    ds.append([{"id": 30, "t": "row dict"}])
    ds.flush()
    ds["t"][3] = "updated"
    ds.delete([0, 7])
    ds.commit("edits")
    reopened = lakefmt.open_read_only(store.url, creds=store.creds)
    expected = [(i, f"r{i}") for i in range(30) if i not in (0, 7)] + [(30, "row dict")]
    expected[2] = (3, "updated")
    assert _rows(reopened) == expected
    assert reopened[5]["t"] == expected[5][1]
    assert reopened["id"][[1, 4, 20]].tolist() == [expected[1][0], expected[4][0], expected[20][0]]
    batches = list(reopened.batches(8))
    assert sum(len(b["id"]) for b in batches) == len(expected)
    assert reopened.to_arrow().num_rows == len(expected)


def test_versions_tags_branches_merge(store: Location) -> None:
    ds = _create(store)
    ds.append({"id": np.arange(4), "t": list("abcd")})
    v1 = ds.commit("one")
    ds.tag("first", message="the first")
    with pytest.raises(TagExistsError):
        ds.tag("first")
    ds.branch("dev")
    dev = lakefmt.open(store.url, creds=store.creds, branch="dev")
    dev.append({"id": [100], "t": ["dev"]})
    dev["t"][0] = "A"
    dev.commit("dev work")
    ds.append({"id": [200], "t": ["main"]})
    v2 = ds.commit("two")
    assert [h.message for h in ds.history][-2:] == ["one", "two"]
    assert ds.tags.names() == ["first"] and ds.branches.names() == ["main", "dev"]
    assert _rows(lakefmt.open_read_only(store.url, creds=store.creds, version=v1)) == list(
        zip(range(4), "abcd", strict=True)
    )
    assert len(lakefmt.open_read_only(store.url, creds=store.creds, version="first")) == 4
    assert len(lakefmt.open_read_only(store.url, creds=store.creds, version=v2)) == 5
    ds.merge("dev")
    assert _rows(ds) == [(0, "A"), (1, "b"), (2, "c"), (3, "d"), (200, "main"), (100, "dev")]
    assert _rows(lakefmt.open_read_only(store.url, creds=store.creds)) == _rows(ds)
    ds.branches["dev"].delete()
    with pytest.raises(BranchNotFoundError):
        lakefmt.open(store.url, creds=store.creds, branch="dev")


def test_optimize_and_cleanup(store: Location) -> None:
    ds = _create(store)
    ds.auto_compact = False
    for i in range(4):
        ds.append({"id": [2 * i, 2 * i + 1], "t": ["x", "y"]})
        ds.flush()
    v = ds.commit("four fragments")
    ds.delete(0)
    before = _rows(ds)
    ds.optimize()
    assert len(ds._manifest.fragments) == 1
    assert _rows(ds) == before
    report = ds.cleanup(0)
    assert report.files  # the compacted fragments' files went
    assert _rows(lakefmt.open_read_only(store.url, creds=store.creds)) == before
    assert len(lakefmt.open_read_only(store.url, creds=store.creds, version=v)) == 8


def test_query(store: Location) -> None:
    ds = _create(store)
    if not hasattr(ds, "query"):
        pytest.skip("ds.query is not implemented yet")
    ds.append({"id": np.arange(10), "t": [f"r{i}" for i in range(10)]})
    ds.commit()
    view = lakefmt.open_read_only(store.url, creds=store.creds).query(
        "SELECT * WHERE id >= 7 ORDER BY id DESC"
    )
    assert view["id"][:].tolist() == [9, 8, 7]
    assert view["t"][:] == ["r9", "r8", "r7"]


@pytest.mark.parametrize("via", ["mem", "file"])
def test_copy_between_stores(
    store: Location, via: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """mem:// or file:// -> the backend -> back, with history, tags and branches."""
    import uuid

    middle = (
        f"mem://copy-{uuid.uuid4().hex}"
        if via == "mem"
        else str(tmp_path_factory.mktemp("copy") / "ds")
    )
    src = lakefmt.create(middle, schema={"id": "int64", "t": "text"})
    src.append({"id": [1, 2, 3], "t": ["a", "b", "c"]})
    v1 = src.commit("one")
    src.tag("t1")
    src.branch("dev")
    src.delete(0)
    src.commit("two")
    lakefmt.copy(middle, store.url, dst_creds=store.creds)
    copied = lakefmt.open(store.url, creds=store.creds)
    assert [h.id for h in copied.history] == [h.id for h in src.history]
    assert copied.tags.names() == ["t1"] and copied.branches.names() == ["main", "dev"]
    assert lakefmt.open_read_only(store.url, creds=store.creds, version=v1)["id"][:].tolist() == [
        1,
        2,
        3,
    ]
    with pytest.raises(DatasetExistsError):
        lakefmt.copy(middle, store.url, dst_creds=store.creds)
    back = f"mem://copy-back-{uuid.uuid4().hex}"
    lakefmt.copy(store.url, back, src_creds=store.creds)
    assert lakefmt.open_read_only(back).to_arrow().equals(src.to_arrow())


def test_threads_append_concurrently(store: Location) -> None:
    """4 handles in 4 threads race for each version; every row and commit lands once."""
    lakefmt.create(store.url, schema={"writer": "int32", "seq": "int32"}, creds=store.creds).commit(
        "init"
    )
    writers, commits = 4, 3
    start = threading.Barrier(writers, timeout=60)

    def write(w: int) -> None:
        ds = lakefmt.open(store.url, creds=store.creds)
        ds.auto_compact = False
        start.wait()
        for c in range(commits):
            ds.append({"writer": [w, w], "seq": [2 * c, 2 * c + 1]})
            ds.commit(f"writer {w} commit {c}")

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    ds = lakefmt.open_read_only(store.url, creds=store.creds)
    pairs = sorted(zip(ds["writer"][:].tolist(), ds["seq"][:].tolist(), strict=True))
    assert pairs == sorted((w, s) for w in range(writers) for s in range(2 * commits))
    messages = [h.message for h in ds.history]
    assert all(f"writer {w} commit {c}" in messages for w in range(writers) for c in range(commits))


def test_appends_written_behind(store: Location, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full buffers written on the write-behind pool (other threads, same storage handle)
    land in order on every backend."""
    from lakefmt.dataset import writer as writer_module

    monkeypatch.setattr(writer_module, "FLUSH_BYTES", 2_000)
    ds = _create(store)
    for k in range(10):
        ids = np.arange(k * 50, (k + 1) * 50)
        ds.append({"id": ids, "t": [f"row {i}" for i in ids]})
    assert ds._writes.behind  # some buffers were handed to the pool
    ds.commit("written behind")
    back = lakefmt.open_read_only(store.url, creds=store.creds)
    assert _rows(back) == [(i, f"row {i}") for i in range(500)]
