"""The Storage contract, once, on every backend: memory, a plain path, ``file://``,
``tmp://``, and ``s3://``, ``az://``, ``gs://`` against their servers (moto, Azurite,
fake-gcs-server; see ``tests/object_store/servers.py``).

Backend-specific behaviour (local durability, request counts on S3, retries, the memory
store's reservations) is tested beside its backend, not here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakefmt.storage import Storage, open_storage
from lakefmt.storage.local import LocalStorage
from lakefmt.storage.memory import MemoryStorage
from lakefmt.storage.object_store import ObjectStoreStorage
from tests.object_store.servers import LOCAL_BACKENDS, OBJECT_STORES, Location, make_location

_EXPECTED_CLASS: dict[str, type[Storage]] = {
    "mem": MemoryStorage,
    "file": LocalStorage,
    "file_url": LocalStorage,
    "tmp": LocalStorage,
    **dict.fromkeys(OBJECT_STORES, ObjectStoreStorage),
}


@pytest.fixture(params=[*LOCAL_BACKENDS, *OBJECT_STORES])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Location]:
    """A fresh, empty root on each backend (removed afterwards)."""
    location = make_location(str(request.param), request, tmp_path)
    yield location
    with contextlib.suppress(Exception):
        open_storage(location.url, location.creds).delete_all()


@pytest.fixture
def storage(root: Location) -> Storage:
    return open_storage(root.url, root.creds)


def _on_object_store(root: Location) -> bool:
    return root.backend in OBJECT_STORES


# -- URL resolution -------------------------------------------------------------------------------


def test_url_resolves_to_expected_backend(storage: Storage, root: Location) -> None:
    assert type(storage) is _EXPECTED_CLASS[root.backend]
    assert storage.capabilities.local == (root.backend in ("file", "file_url", "tmp"))
    assert storage.capabilities.atomic_create  # on an object store: the probe passed


# -- reads and writes -----------------------------------------------------------------------------


def test_write_and_read(storage: Storage) -> None:
    payload = bytes(range(256)) * 3
    storage.write("a/b/c.bin", payload)
    assert storage.read("a/b/c.bin") == payload
    assert storage.exists("a/b/c.bin")
    assert storage.size("a/b/c.bin") == len(payload)
    assert storage.read("a/b/c.bin", start=2, end=5) == payload[2:5]
    assert storage.read("a/b/c.bin", start=700) == payload[700:]
    assert storage.read("a/b/c.bin", end=4) == payload[:4]


def test_write_replaces(storage: Storage) -> None:
    storage.write("f.bin", b"first version, long")
    storage.write("f.bin", b"second")
    assert storage.read("f.bin") == b"second"
    assert storage.size("f.bin") == 6


def test_ranged_read(storage: Storage) -> None:
    payload = b"0123456789abcdef"
    storage.write("r.bin", payload)
    assert storage.read("r.bin", start=2, end=5) == b"234"
    assert storage.read("r.bin", start=10) == b"abcdef"
    assert storage.read("r.bin", end=4) == b"0123"
    assert storage.read("r.bin", start=0, end=len(payload)) == payload
    assert storage.read("r.bin", start=7, end=7) == b""
    assert storage.read("r.bin", start=15, end=16) == b"f"


def test_empty_object(storage: Storage) -> None:
    storage.write("empty.bin", b"")
    assert storage.read("empty.bin") == b""
    assert storage.size("empty.bin") == 0
    assert storage.exists("empty.bin")


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
    storage.delete("nope.bin")  # deleting a missing file is not an error


def test_modified(storage: Storage, root: Location) -> None:
    slack = 60 if _on_object_store(root) else 5  # a server's clock, not ours
    before = time.time() - slack
    storage.write("m.bin", b"m")
    assert before <= storage.modified("m.bin") <= time.time() + slack


# -- listing and deletion -------------------------------------------------------------------------


def test_list_is_by_directory_and_isolated(storage: Storage, root: Location) -> None:
    assert list(storage.list()) == []
    files = {
        "top.json": b"1",
        "data/x.parquet": b"22",
        "data/sub/y.parquet": b"333",
        "_refs/t.json": b"4",
    }
    for path, data in files.items():
        storage.write(path, data)
    # a sibling root whose name starts with ours must not leak into our listing
    sibling_root = root.sibling("sibling")
    sibling = open_storage(sibling_root.url, sibling_root.creds)
    sibling.write("data/other.parquet", b"x")
    try:
        assert sorted(storage.list()) == sorted(files)
        assert sorted(storage.list("data")) == ["data/sub/y.parquet", "data/x.parquet"]
        assert sorted(storage.list("data/")) == ["data/sub/y.parquet", "data/x.parquet"]
        assert sorted(storage.list("data/sub")) == ["data/sub/y.parquet"]
        assert list(storage.list("missing")) == []
        # "da" is not a directory of ours: a prefix is a directory, not a string prefix
        assert list(storage.list("da")) == []
    finally:
        sibling.delete_all()


def test_delete(storage: Storage) -> None:
    for i in range(5):
        storage.write(f"d/{i}.bin", b"x")
    storage.write("keep.bin", b"k")
    storage.write("dir/gone.bin", b"g")
    storage.delete("dir/gone.bin")
    storage.delete("d/0.bin")
    assert not storage.exists("dir/gone.bin")
    assert not storage.exists("d/0.bin")
    assert storage.exists("keep.bin")
    assert sorted(storage.list()) == ["d/1.bin", "d/2.bin", "d/3.bin", "d/4.bin", "keep.bin"]
    with pytest.raises(FileNotFoundError):
        storage.read("dir/gone.bin")


def test_delete_all(storage: Storage, root: Location) -> None:
    storage.write("a.bin", b"a")
    storage.write("d/e/f.bin", b"f")
    storage.delete_all()
    assert list(storage.list()) == []
    assert not storage.exists("a.bin")
    # the root can be used again afterwards, by this handle or a new one
    storage.write("a.bin", b"again")
    assert open_storage(root.url, root.creds).read("a.bin") == b"again"


# -- streams and random access --------------------------------------------------------------------


def test_write_stream(storage: Storage) -> None:
    chunks = [b"abc", b"", b"defg" * 1000, b"h"]

    def write(sink: pa.NativeFile) -> None:
        for chunk in chunks:
            sink.write(chunk)

    size = storage.write_stream("stream/s.bin", write)
    expected = b"".join(chunks)
    assert size == len(expected)
    assert storage.read("stream/s.bin") == expected
    assert storage.size("stream/s.bin") == len(expected)
    assert storage.read("stream/s.bin", start=3, end=7) == b"defg"


@pytest.mark.parametrize("hint", [1, 100, 4004, 4005, 10_000, 1 << 20])
def test_write_stream_with_a_size_hint(storage: Storage, hint: int) -> None:
    calls = []

    def write(sink: pa.NativeFile) -> None:
        calls.append(1)
        sink.write(b"abcd" * 1000)
        sink.write(b"x" * 5)

    assert storage.write_stream("stream/h.bin", write, size_hint=hint) == 4005
    assert storage.read("stream/h.bin") == b"abcd" * 1000 + b"x" * 5
    assert storage.size("stream/h.bin") == 4005
    assert len(calls) <= 2  # once more at most, when the output outgrew a reservation


def test_write_stream_small_and_spooled(storage: Storage, small_parts: int) -> None:
    """On an object store the big one is above ``SPOOL_BYTES``: spooled to a file, uploaded
    in parts, and read back in parallel ranged parts."""
    big = bytes(range(256)) * ((3 * small_parts) // 256 + 7)

    for name, payload in (("s/small.bin", b"abc" * 10), ("s/big.bin", big)):

        def write(sink: pa.NativeFile, payload: bytes = payload) -> None:
            for i in range(0, len(payload), 10_000):
                sink.write(payload[i : i + 10_000])

        assert storage.write_stream(name, write) == len(payload)
        assert storage.read(name) == payload
        assert storage.size(name) == len(payload)


def test_write_stream_failure_publishes_nothing(storage: Storage) -> None:
    def write(sink: pa.NativeFile) -> None:
        sink.write(b"partial")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        storage.write_stream("w/never.bin", write)
    assert not storage.exists("w/never.bin")


def test_open_input_random_access_and_parquet(storage: Storage) -> None:
    storage.write("in.bin", b"0123456789")
    f = storage.open_input("in.bin")
    try:
        f.seek(4)
        assert f.read(3) == b"456"
        assert f.size() == 10
        assert f.read_at(2, 8) == b"89"
    finally:
        f.close()
    table = pa.table({"x": list(range(1000)), "y": [str(i) for i in range(1000)]})
    storage.write_stream("t.parquet", lambda sink: pq.write_table(table, sink, row_group_size=100))
    pf = pq.ParquetFile(storage.open_input("t.parquet"))
    assert pf.metadata.num_row_groups == 10
    assert pf.read_row_group(3).column("x").to_pylist() == list(range(300, 400))


# -- the atomic create commits rely on ------------------------------------------------------------


def test_put_if_absent(storage: Storage) -> None:
    assert storage.put_if_absent("_versions/1.json", b"first") is True
    assert storage.put_if_absent("_versions/1.json", b"second") is False
    assert storage.read("_versions/1.json") == b"first"
    assert storage.put_if_absent("_versions/2.json", b"other") is True
    # an existing file written by write() also blocks put_if_absent
    storage.write("plain.bin", b"p")
    assert storage.put_if_absent("plain.bin", b"q") is False
    assert storage.read("plain.bin") == b"p"
    # no temporary files (nor an object store's probe) are left behind in listings
    assert sorted(storage.list()) == ["_versions/1.json", "_versions/2.json", "plain.bin"]


def test_put_if_absent_thread_race(storage: Storage, root: Location) -> None:
    """Threads create one name at once: exactly one wins (on an object store, the server's
    conditional create picks it)."""
    threads_n, rounds, repeat = (8, 3, 20) if _on_object_store(root) else (16, 5, 50)
    for round_ in range(rounds):
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
                results[i] = storage.put_if_absent(path, f"writer-{i}".encode() * repeat)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        winners = [i for i, won in results.items() if won]
        assert len(results) == threads_n
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert storage.read(path) == f"writer-{winners[0]}".encode() * repeat
