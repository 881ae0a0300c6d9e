"""Local backends and URL resolution: what the shared contract
(``tests/storage/test_contract.py``) does not cover."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

import lakefmt
from lakefmt.errors import MissingDependencyError, StorageError
from lakefmt.storage import open_storage, parse_url
from lakefmt.storage.local import LocalStorage
from lakefmt.storage.memory import MemoryStorage

# -- URL resolution -------------------------------------------------------------------------------


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


# -- backend-specific ----------------------------------------------------------------------------


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
