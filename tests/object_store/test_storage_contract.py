"""The Storage contract on every object store (s3://, az://, gs://) against its real server."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakefmt.errors import StorageError
from lakefmt.storage import Storage, open_storage
from lakefmt.storage.object_store import ObjectStoreStorage
from tests.object_store.conftest import Location


@pytest.fixture
def storage(object_store: Location) -> Storage:
    return open_storage(object_store.url, object_store.creds)


def test_resolves_to_object_store(storage: Storage) -> None:
    assert isinstance(storage, ObjectStoreStorage)
    assert storage.capabilities.local is False
    assert storage.capabilities.atomic_create is True  # the probe passed


def test_write_read_and_ranges(storage: Storage) -> None:
    payload = bytes(range(256)) * 3
    storage.write("a/b/c.bin", payload)
    assert storage.read("a/b/c.bin") == payload
    assert storage.size("a/b/c.bin") == len(payload)
    assert storage.exists("a/b/c.bin")
    assert storage.read("a/b/c.bin", start=2, end=5) == payload[2:5]
    assert storage.read("a/b/c.bin", start=700) == payload[700:]
    assert storage.read("a/b/c.bin", end=4) == payload[:4]
    assert storage.read("a/b/c.bin", start=7, end=7) == b""
    storage.write("a/b/c.bin", b"second")  # write replaces
    assert storage.read("a/b/c.bin") == b"second"


def test_empty_object(storage: Storage) -> None:
    storage.write("empty.bin", b"")
    assert storage.read("empty.bin") == b""
    assert storage.size("empty.bin") == 0


def test_missing_file(storage: Storage) -> None:
    assert not storage.exists("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.read("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.read("nope.bin", start=0, end=1)
    with pytest.raises(FileNotFoundError):
        storage.size("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.modified("nope.bin")
    storage.delete("nope.bin")  # not an error


def test_list_is_by_directory_and_isolated(storage: Storage, object_store: Location) -> None:
    assert list(storage.list()) == []
    files = {"top.json": b"1", "data/x.parquet": b"22", "data/sub/y.parquet": b"333"}
    for path, data in files.items():
        storage.write(path, data)
    sibling = open_storage(object_store.url + "-sibling", object_store.creds)
    sibling.write("data/other.parquet", b"x")
    try:
        assert sorted(storage.list()) == sorted(files)
        assert sorted(storage.list("data")) == ["data/sub/y.parquet", "data/x.parquet"]
        assert sorted(storage.list("data/")) == ["data/sub/y.parquet", "data/x.parquet"]
        assert list(storage.list("data/sub")) == ["data/sub/y.parquet"]
        assert list(storage.list("da")) == []
        assert list(storage.list("missing")) == []
    finally:
        sibling.delete_all()


def test_delete_and_delete_all(storage: Storage, object_store: Location) -> None:
    for i in range(5):
        storage.write(f"d/{i}.bin", b"x")
    storage.write("keep.bin", b"k")
    storage.delete("d/0.bin")
    assert not storage.exists("d/0.bin")
    assert sorted(storage.list()) == ["d/1.bin", "d/2.bin", "d/3.bin", "d/4.bin", "keep.bin"]
    storage.delete_all()
    assert list(storage.list()) == []
    storage.write("again.bin", b"a")  # the root is usable afterwards
    assert open_storage(object_store.url, object_store.creds).read("again.bin") == b"a"


def test_modified(storage: Storage) -> None:
    before = time.time() - 60
    storage.write("m.bin", b"m")
    assert before <= storage.modified("m.bin") <= time.time() + 60


def test_write_stream_small_and_spooled(storage: Storage, small_parts: int) -> None:
    big = bytes(range(256)) * ((3 * small_parts) // 256 + 7)  # above SPOOL_BYTES: spooled

    for name, payload in (("s/small.bin", b"abc" * 10), ("s/big.bin", big)):

        def write(sink: pa.NativeFile, payload: bytes = payload) -> None:
            for i in range(0, len(payload), 10_000):
                sink.write(payload[i : i + 10_000])

        assert storage.write_stream(name, write) == len(payload)
        assert storage.read(name) == payload  # whole read: parallel ranged parts for big
        assert storage.size(name) == len(payload)


def test_write_stream_failure_uploads_nothing(storage: Storage) -> None:
    def write(sink: pa.NativeFile) -> None:
        sink.write(b"partial")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        storage.write_stream("w/never.bin", write)
    assert not storage.exists("w/never.bin")


def test_open_input_random_access_and_parquet(storage: Storage) -> None:
    storage.write("in.bin", b"0123456789")
    f = storage.open_input("in.bin")
    f.seek(4)
    assert f.read(3) == b"456"
    assert f.size() == 10
    assert f.read_at(2, 8) == b"89"
    table = pa.table({"x": list(range(1000)), "y": [str(i) for i in range(1000)]})
    storage.write_stream("t.parquet", lambda sink: pq.write_table(table, sink, row_group_size=100))
    pf = pq.ParquetFile(storage.open_input("t.parquet"))
    assert pf.metadata.num_row_groups == 10
    assert pf.read_row_group(3).column("x").to_pylist() == list(range(300, 400))


def test_put_if_absent(storage: Storage) -> None:
    assert storage.put_if_absent("_versions/1.json", b"first") is True
    assert storage.put_if_absent("_versions/1.json", b"second") is False
    assert storage.read("_versions/1.json") == b"first"
    storage.write("plain.bin", b"p")
    assert storage.put_if_absent("plain.bin", b"q") is False
    assert storage.read("plain.bin") == b"p"
    assert sorted(storage.list()) == ["_versions/1.json", "plain.bin"]  # the probe is gone


def test_put_if_absent_thread_race(storage: Storage) -> None:
    """8 threads create one key at once: the server's conditional create picks one winner."""
    threads_n = 8
    for round_ in range(3):
        path = f"_versions/{round_:020d}.json"
        barrier = threading.Barrier(threads_n, timeout=30)
        results: dict[int, bool] = {}
        errors: list[BaseException] = []

        def race(
            i: int,
            path: str = path,
            barrier: threading.Barrier = barrier,
            results: dict[int, bool] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait()
                results[i] = storage.put_if_absent(path, f"writer-{i}".encode() * 20)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        winners = [i for i, won in results.items() if won]
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert storage.read(path) == f"writer-{winners[0]}".encode() * 20


def test_missing_bucket_is_a_clear_error(object_store: Location) -> None:
    scheme = object_store.url.split("://")[0]
    storage = open_storage(f"{scheme}://no-such-bucket-lakefmt/ds", object_store.creds)
    assert not storage.exists("x")
    assert list(storage.list()) == []
    with pytest.raises(StorageError, match="no-such-bucket-lakefmt"):
        storage.write("x", b"1")
