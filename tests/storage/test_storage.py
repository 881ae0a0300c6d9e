"""The Storage contract, on every local backend (memory, plain path, file://, tmp://)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import lakefmt
from lakefmt.errors import MissingDependencyError, StorageError
from lakefmt.storage import Storage, open_storage, parse_url
from lakefmt.storage.local import LocalStorage
from lakefmt.storage.memory import MemoryStorage

_EXPECTED_CLASS = {
    "mem": MemoryStorage,
    "file": LocalStorage,
    "file_url": LocalStorage,
    "tmp": LocalStorage,
}


@pytest.fixture
def storage(dataset_url: str) -> Storage:
    return open_storage(dataset_url)


# -- URL resolution -------------------------------------------------------------------------------


def test_url_resolves_to_expected_backend(dataset_url: str, storage_backend: str) -> None:
    storage = open_storage(dataset_url)
    assert type(storage) is _EXPECTED_CLASS[storage_backend]
    assert storage.capabilities.atomic_create
    assert storage.capabilities.local == (storage_backend != "mem")


def test_file_url_and_plain_path_are_the_same_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    plain = open_storage(str(root))
    as_url = open_storage("file://" + str(root))
    plain.write("x/y.bin", b"shared")
    assert as_url.read("x/y.bin") == b"shared"
    assert (root / "x" / "y.bin").read_bytes() == b"shared"


def test_parse_url() -> None:
    assert parse_url("mem://abc") == ("mem", "abc")
    assert parse_url("/some/path") == ("file", "/some/path")
    assert parse_url("relative/path") == ("file", "relative/path")
    assert parse_url("S3://bucket/p") == ("s3", "bucket/p")
    assert parse_url("gcs://bucket/p") == ("gs", "bucket/p")
    assert parse_url("azure://c/p") == ("az", "c/p")


# -- the contract ---------------------------------------------------------------------------------


def test_write_and_read(storage: Storage) -> None:
    payload = bytes(range(256)) * 3
    storage.write("a/b/c.bin", payload)
    assert storage.read("a/b/c.bin") == payload
    assert storage.exists("a/b/c.bin")
    assert storage.size("a/b/c.bin") == len(payload)


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


def test_missing_file(storage: Storage) -> None:
    assert not storage.exists("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.read("nope.bin")
    with pytest.raises(FileNotFoundError):
        storage.read("nope.bin", start=0, end=1)
    with pytest.raises(FileNotFoundError):
        storage.size("nope.bin")
    storage.delete("nope.bin")  # deleting a missing file is not an error


def test_list(storage: Storage, dataset_url: str) -> None:
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
    sibling = open_storage(dataset_url.rstrip("/") + "-sibling")
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
    storage.write("keep.bin", b"k")
    storage.write("dir/gone.bin", b"g")
    storage.delete("dir/gone.bin")
    assert not storage.exists("dir/gone.bin")
    assert storage.exists("keep.bin")
    assert list(storage.list()) == ["keep.bin"]
    with pytest.raises(FileNotFoundError):
        storage.read("dir/gone.bin")


def test_delete_all(storage: Storage, dataset_url: str) -> None:
    storage.write("a.bin", b"a")
    storage.write("d/e/f.bin", b"f")
    storage.delete_all()
    assert list(storage.list()) == []
    assert not storage.exists("a.bin")
    # the root can be used again afterwards
    storage.write("a.bin", b"again")
    assert open_storage(dataset_url).read("a.bin") == b"again"


def test_modified(storage: Storage) -> None:
    import time

    before = time.time() - 5
    storage.write("m.bin", b"m")
    assert before <= storage.modified("m.bin") <= time.time() + 5
    with pytest.raises(FileNotFoundError):
        storage.modified("missing.bin")


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


def test_memory_write_stream_reserves_the_hint_and_retries_when_outgrown() -> None:
    storage = MemoryStorage(f"hint-{os.getpid()}")
    calls: list[type] = []

    def write(sink: pa.NativeFile) -> None:
        calls.append(type(sink))
        sink.write(b"y" * 3000)

    storage.write_stream("fits.bin", write, size_hint=4000)
    assert calls == [pa.FixedSizeBufferWriter]
    calls.clear()
    storage.write_stream("outgrown.bin", write, size_hint=1000)
    assert calls == [pa.FixedSizeBufferWriter, pa.BufferOutputStream]
    storage.write_stream("poor-guess.bin", write, size_hint=1 << 20)
    for name in ("fits.bin", "outgrown.bin", "poor-guess.bin"):
        assert storage.read(name) == b"y" * 3000
    # a reservation far too large is not kept alive behind a small file
    assert storage._get("poor-guess.bin").size == 3000
    storage.delete_all()


def test_memory_write_stream_raises_what_write_raises() -> None:
    storage = MemoryStorage(f"hint-error-{os.getpid()}")

    def write(sink: pa.NativeFile) -> None:
        raise FileNotFoundError("a source file vanished")

    with pytest.raises(FileNotFoundError, match="vanished"):
        storage.write_stream("e.bin", write, size_hint=100)
    assert not storage.exists("e.bin")


def test_open_input_random_access(storage: Storage) -> None:
    storage.write("in.bin", b"0123456789")
    f = storage.open_input("in.bin")
    try:
        f.seek(4)
        assert f.read(3) == b"456"
        assert f.size() == 10
    finally:
        f.close()


def test_put_if_absent(storage: Storage) -> None:
    assert storage.put_if_absent("_versions/1.json", b"first") is True
    assert storage.put_if_absent("_versions/1.json", b"second") is False
    assert storage.read("_versions/1.json") == b"first"
    assert storage.put_if_absent("_versions/2.json", b"other") is True
    # an existing file written by write() also blocks put_if_absent
    storage.write("plain.bin", b"p")
    assert storage.put_if_absent("plain.bin", b"q") is False
    assert storage.read("plain.bin") == b"p"
    # put_if_absent leaves no temporary files behind in listings
    assert sorted(storage.list()) == ["_versions/1.json", "_versions/2.json", "plain.bin"]


def test_put_if_absent_thread_race(storage: Storage) -> None:
    threads_n = 16
    for round_ in range(5):
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
                results[i] = storage.put_if_absent(path, f"writer-{i}".encode() * 50)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        winners = [i for i, won in results.items() if won]
        assert len(results) == threads_n
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert storage.read(path) == f"writer-{winners[0]}".encode() * 50


def _process_race(root: str, path: str, i: int, barrier: object, results: object) -> None:
    storage = LocalStorage(root)
    barrier.wait()  # type: ignore[attr-defined]
    won = storage.put_if_absent(path, f"process-{i}".encode() * 100)
    results.put((i, won))  # type: ignore[attr-defined]


def test_put_if_absent_process_race(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs_n = 4
    root = str(tmp_path / "race")
    for round_ in range(3):
        path = f"_versions/{round_:020d}.json"
        barrier = ctx.Barrier(procs_n, timeout=30)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_process_race, args=(root, path, i, barrier, results))
            for i in range(procs_n)
        ]
        for p in procs:
            p.start()
        outcome = dict(results.get(timeout=60) for _ in range(procs_n))
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        winners = [i for i, won in outcome.items() if won]
        assert len(winners) == 1, f"round {round_}: {outcome}"
        assert LocalStorage(root).read(path) == f"process-{winners[0]}".encode() * 100


def test_memory_roots_are_isolated() -> None:
    a = open_storage("mem://iso-a")
    b = open_storage("mem://iso-b")
    try:
        a.write("x.bin", b"a")
        assert not b.exists("x.bin")
        assert list(b.list()) == []
        # a second handle to the same name sees the same files
        assert open_storage("mem://iso-a").read("x.bin") == b"a"
    finally:
        a.delete_all()
        b.delete_all()


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://host/ds", "foo://bar", "hdfs://nn/x"])
def test_unknown_scheme(url: str) -> None:
    scheme = url.split("://")[0]
    with pytest.raises(StorageError, match=f"{scheme}://"):
        open_storage(url)
    with pytest.raises(StorageError, match=f"{scheme}://"):
        lakefmt.create(url)
    with pytest.raises(StorageError, match=f"{scheme}://"):
        lakefmt.open(url)


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("s3://bucket/ds", "s3fs", "s3"),
        ("gs://bucket/ds", "gcsfs", "gcs"),
        ("az://container/ds", "adlfs", "azure"),
    ],
)
def test_missing_optional_package(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        open_storage(url)
    assert f"pip install 'lakefmt[{extra}]'" in str(info.value)
    assert module in str(info.value)
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingDependencyError, match=rf"lakefmt\[{extra}\]"):
        lakefmt.open(url)


def test_missing_package_via_import_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *args: object, **kwargs: object) -> object:
        if name == "s3fs":
            raise ModuleNotFoundError("No module named 's3fs'")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lakefmt\[s3\]'"):
        open_storage("s3://bucket/prefix")


def test_bad_credentials_key() -> None:
    pytest.importorskip("s3fs")
    with pytest.raises(StorageError, match="password"):
        open_storage("s3://bucket/ds", creds={"password": "hunter2"})
    with pytest.raises(StorageError, match="password"):
        lakefmt.open("s3://bucket/ds", creds={"password": "hunter2"})


def test_mem_keeps_credentials_for_links() -> None:
    creds = {"aws_access_key_id": "x"}
    assert open_storage("mem://creds", creds=creds).creds == creds


def test_object_store_url_without_bucket() -> None:
    pytest.importorskip("s3fs")
    with pytest.raises(StorageError):
        open_storage("s3://")


# -- tmp:// ---------------------------------------------------------------------------------------

_TMP_SCRIPT = textwrap.dedent(
    """
    import sys, lakefmt
    ds = lakefmt.create("tmp://", schema={"a": "int64"})
    ds.append({"a": [1, 2, 3]})
    if sys.argv[1] == "flush":
        ds.flush()
    assert lakefmt.exists(ds.url)
    second = lakefmt.create("tmp://", schema={"a": "int64"})
    assert second.url != ds.url
    print(ds.url)
    print(second.url)
    """
)


def _run_tmp_script(mode: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _TMP_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    paths = out.stdout.split()
    assert len(paths) == 2
    return paths


def test_tmp_dataset_removed_at_exit() -> None:
    paths = _run_tmp_script("flush")
    for path in paths:
        assert os.path.isabs(path)
        assert not os.path.exists(path), f"{path} survived the interpreter"
        assert not os.path.exists(os.path.dirname(path))


def test_tmp_dataset_with_unflushed_rows_removed_at_exit() -> None:
    paths = _run_tmp_script("noflush")
    leaked = [p for p in paths if os.path.exists(p)]
    for path in leaked:  # do not leave the leaked directory behind in /tmp
        import shutil

        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    assert not leaked, f"{leaked} survived the interpreter"


def test_tmp_names_are_fresh_and_named_ones_shared() -> None:
    a = lakefmt.create("tmp://", schema={"a": "int64"})
    b = lakefmt.create("tmp://", schema={"a": "int64"})
    assert a.url != b.url
    name = "tmp://named-" + os.urandom(4).hex()
    c = lakefmt.create(name, schema={"a": "int64"})
    c.append({"a": [5]})
    c.flush()
    assert lakefmt.open(name)["a"][:].tolist() == [5]
