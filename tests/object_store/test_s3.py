"""s3:// against moto's server: conditional creates, races, requests, retries, failures."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import threading
from typing import Any

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import StorageError
from lakefmt.format import encoding, fragments
from lakefmt.storage import object_store as object_store_module
from lakefmt.storage import open_storage, retry
from lakefmt.storage.object_store import ObjectStoreStorage
from lakefmt.storage.providers import S3Ops
from tests.object_store.helpers import Flaky
from tests.object_store.servers import Request, S3Server

MANIFEST = re.compile(r"/_versions/(\d{20})\.json$")


def _manifest_puts(requests: list[Request]) -> list[tuple[int, int]]:
    """(version number, status) of every conditional manifest PUT, in order."""
    out = []
    for r in requests:
        match = MANIFEST.search(r.path)
        if r.method == "PUT" and match:
            assert r.if_none_match == "*", f"manifest {r.path} written without If-None-Match"
            out.append((int(match.group(1)), r.status))
    return out


def _versions(url: str, creds: dict[str, Any]) -> list[str]:
    return [p for p in open_storage(url, creds).list("_versions") if p.endswith(".json")]


def test_conditional_create_is_sent_and_refused_by_the_server(s3_server: S3Server) -> None:
    storage = open_storage(s3_server.url(), s3_server.creds)
    mark = s3_server.log.mark()
    assert storage.put_if_absent("_versions/x.json", b"one")
    assert not storage.put_if_absent("_versions/x.json", b"two")
    puts = [r for r in s3_server.log.since(mark) if r.path.endswith("/_versions/x.json")]
    assert [(r.method, r.if_none_match, r.status) for r in puts] == [
        ("PUT", "*", 200),
        ("PUT", "*", 412),  # moto refuses: the second writer loses on the server
    ]
    assert storage.read("_versions/x.json") == b"one"


def test_commit_race_is_decided_by_the_conditional_create(s3_server: S3Server) -> None:
    """Two handles at the same base version commit: the server refuses the second PUT of
    the next manifest (412); that writer rebases and lands one version later."""
    url, creds = s3_server.url(), s3_server.creds
    base = lakefmt.create(url, schema={"w": "int32"}, creds=creds)
    base.commit("init")
    a = lakefmt.open(url, creds=creds)
    b = lakefmt.open(url, creds=creds)
    assert a.version == b.version
    n = a._manifest.version
    a.append({"w": [1]})
    b.append({"w": [2]})
    mark = s3_server.log.mark()
    a.commit("a")
    b.commit("b")
    assert _manifest_puts(s3_server.log.since(mark)) == [(n + 1, 200), (n + 1, 412), (n + 2, 200)]
    assert (a._manifest.version, b._manifest.version) == (n + 1, n + 2)
    assert [h.id for h in lakefmt.open_read_only(url, creds=creds).history][-2:] == [
        a.version,
        b.version,
    ]
    ds = lakefmt.open_read_only(url, creds=creds)
    assert sorted(ds["w"][:].tolist()) == [1, 2]
    assert [h.message for h in ds.history][-2:] == ["a", "b"]


def test_threads_racing_for_one_version_have_one_winner(s3_server: S3Server) -> None:
    """8 handles at one base version commit at once: for each version number the server
    accepts exactly one conditional PUT; every loser rebases; nothing is lost."""
    url, creds = s3_server.url(), s3_server.creds
    lakefmt.create(url, schema={"w": "int32"}, creds=creds).commit("init")
    handles = [lakefmt.open(url, creds=creds) for _ in range(8)]
    for i, ds in enumerate(handles):
        ds.auto_compact = False
        ds.append({"w": [i]})
    start = threading.Barrier(len(handles), timeout=60)
    mark = s3_server.log.mark()

    def commit(i: int) -> None:
        start.wait()
        handles[i].commit(f"writer {i}")

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    puts = _manifest_puts(s3_server.log.since(mark))
    wins: dict[int, int] = {}
    for version, status in puts:
        assert status in (200, 412)
        wins[version] = wins.get(version, 0) + (status == 200)
    assert all(count == 1 for count in wins.values()), wins
    assert any(status == 412 for _, status in puts)  # there was a race, and it was refused
    ds = lakefmt.open_read_only(url, creds=creds)
    assert sorted(ds["w"][:].tolist()) == list(range(8))
    assert {f"writer {i}" for i in range(8)} <= {h.message for h in ds.history}


WRITER = textwrap.dedent(
    """
    import json, sys, lakefmt
    url, creds = sys.argv[1], json.loads(sys.argv[2])
    writer, commits = int(sys.argv[3]), int(sys.argv[4])
    ds = lakefmt.open(url, creds=creds)
    for c in range(commits):
        ds.append({"writer": [writer] * 3, "seq": [c * 3, c * 3 + 1, c * 3 + 2]})
        ds.commit(f"writer {writer} commit {c}")
    """
)


@pytest.mark.slow
def test_four_processes_ten_commits_lose_nothing(s3_server: S3Server) -> None:
    url, creds = s3_server.url(), s3_server.creds
    lakefmt.create(url, schema={"writer": "int32", "seq": "int32"}, creds=creds).commit("init")
    writers, commits = 4, 10
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, json.dumps(creds), str(w), str(commits)],
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-3000:]
    ds = lakefmt.open_read_only(url, creds=creds)
    pairs = sorted(zip(ds["writer"][:].tolist(), ds["seq"][:].tolist(), strict=True))
    assert pairs == sorted((w, s) for w in range(writers) for s in range(commits * 3))
    messages = [h.message for h in ds.history]
    for w in range(writers):
        for c in range(commits):
            assert messages.count(f"writer {w} commit {c}") == 1
    numbers = [h.number for h in ds.history]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_requests_per_append_and_commit(s3_server: S3Server) -> None:
    """One append + commit on a warm handle: a data PUT, the conditional manifest PUT and
    the latest-version hint, nothing else."""
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"}, creds=creds)
    ds.append({"id": [0], "t": ["warm-up"]})
    ds.commit("warm-up")
    mark = s3_server.log.mark()
    ds.append({"id": np.arange(1000), "t": [f"row {i}" for i in range(1000)]})
    ds.commit("one append")
    requests = s3_server.log.since(mark)
    summary = [(r.method, re.sub(r"^/[^/]+/[^/]+/", "", r.path)) for r in requests]
    print("requests for one append+commit:", summary)
    assert len(requests) == 3, summary
    assert [m for m, _ in summary] == ["PUT", "PUT", "PUT"]
    assert summary[0][1].startswith("data/") and summary[1][1].startswith("_versions/0")
    assert summary[2][1] == "_versions/_latest"
    # a fresh handle: opening reads the hint, checks for a newer manifest, reads the format
    # file and the manifest; no listing
    mark = s3_server.log.mark()
    lakefmt.open(url, creds=creds)
    opened = s3_server.log.since(mark)
    assert len(opened) <= 5 and all(r.method in ("GET", "HEAD") for r in opened), opened
    assert not any("list-type" in r.query for r in opened)


def _png(side: int, seed: int) -> bytes:
    from PIL import Image as PILImage

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def test_single_row_read_fetches_only_its_row_group(s3_server: S3Server) -> None:
    pytest.importorskip("PIL")
    url, creds = s3_server.url(), s3_server.creds
    images = [_png(300, i) for i in range(24)]  # ~270 KB each, ~6.5 MB in one data file
    ds = lakefmt.create(url, schema={"id": "int64", "img": types.Image()}, creds=creds)
    ds.append({"id": np.arange(len(images)), "img": images})
    ds.commit("images")
    data_file = next(d for d in ds._manifest.fragments[0].files if len(d.row_groups) > 1)
    file_size = data_file.size
    fragments._FOOTERS.clear()  # a cold reader: no cached footer, no cached size
    object_store_module._SIZES.clear()
    reader = lakefmt.open_read_only(url, creds=creds)
    mark = s3_server.log.mark()
    assert reader["img"].get_bytes(17) == images[17]
    on_file = [r for r in s3_server.log.since(mark) if r.path.endswith(data_file.path)]
    fetched = sum(r.sent for r in on_file if r.method == "GET")
    print(f"one row of a {file_size} byte file: {len(on_file)} requests, {fetched} bytes")
    assert all(r.range for r in on_file if r.method == "GET"), on_file  # ranged GETs only
    assert fetched < file_size / 4
    # its row group (about MEDIA_ROW_GROUP_BYTES) and the footer
    assert fetched < encoding.MEDIA_ROW_GROUP_BYTES + len(images[17]) + (128 << 10)
    # a second read of another row reuses the cached footer and size: only the data
    mark = s3_server.log.mark()
    assert reader["img"].get_bytes(3) == images[3]
    again = [r for r in s3_server.log.since(mark) if r.path.endswith(data_file.path)]
    assert [r.method for r in again] == ["GET"] * len(again) and len(again) <= 2


def test_large_transfers_are_parallel_parts(s3_server: S3Server, small_parts: int) -> None:
    storage = open_storage(s3_server.url(), s3_server.creds)
    payload = np.random.default_rng(0).bytes(12 << 20)  # above S3's 5 MiB part minimum x 2
    mark = s3_server.log.mark()
    storage.write_stream("data/big.bin", lambda sink: sink.write(payload))
    parts = [r for r in s3_server.log.since(mark) if "partNumber" in r.query]
    assert len(parts) == 3  # 5 + 5 + 2 MiB, uploaded concurrently
    mark = s3_server.log.mark()
    assert storage.read("data/big.bin") == payload
    gets = [r for r in s3_server.log.since(mark) if r.method == "GET"]
    assert len(gets) == (12 << 20) // small_parts and all(r.range for r in gets)


def test_transient_errors_are_retried(s3_server: S3Server, fast_retries: None) -> None:
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    flaky = Flaky(ds._storage._ops, 4, lambda: ConnectionError("connection reset by peer"))
    ds._storage._ops = flaky  # type: ignore[attr-defined]
    ds.append({"id": [1, 2, 3]})
    ds.commit("through a flaky network")
    assert flaky.failed == 4
    flaky.remaining = 2
    flaky.error = lambda: OSError("temporary failure")  # a bare OSError is transient too
    assert ds._storage.read("_lakefmt.json")
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1, 2, 3]


def test_retries_give_up_with_a_storage_error(s3_server: S3Server, fast_retries: None) -> None:
    storage = open_storage(s3_server.url(), s3_server.creds)
    assert isinstance(storage, ObjectStoreStorage)
    storage._ops = Flaky(storage._ops, 100, lambda: TimeoutError("read timed out"))  # type: ignore[assignment]
    with pytest.raises(StorageError, match=r"after 5 attempts"):
        storage.write("x.bin", b"1")
    assert storage._ops.failed == retry.RETRIES  # type: ignore[attr-defined]
    # permanent errors are not retried
    storage._ops = Flaky(storage._ops._ops, 100, lambda: PermissionError("403 Forbidden"))  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="access denied"):
        storage.read("x.bin")
    assert storage._ops.failed == 1  # type: ignore[attr-defined]


def test_lost_response_of_a_winning_create_still_wins(
    s3_server: S3Server, fast_retries: None
) -> None:
    """The first conditional PUT lands but its response is lost: the retry gets 412, reads
    the object back, finds its own bytes, and reports the create as won."""
    storage = open_storage(s3_server.url(), s3_server.creds)
    storage._ops = Flaky(  # type: ignore[attr-defined]
        storage._ops, 1, lambda: ConnectionError("response lost"), methods=("put",), after=True
    )
    assert storage.put_if_absent("_versions/00000000000000000001.json", b"mine") is True
    assert storage.put_if_absent("_versions/00000000000000000001.json", b"theirs") is False


def test_failed_upload_never_leaves_a_version(s3_server: S3Server, fast_retries: None) -> None:
    url, creds = s3_server.url(), s3_server.creds
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    ds.append({"id": [1]})
    ds.commit("one")
    versions = _versions(url, creds)
    real_ops = ds._storage._ops
    ds._storage._ops = Flaky(  # type: ignore[attr-defined]
        real_ops,
        10**6,
        lambda: ConnectionError("upload failed"),
        methods=("put", "upload"),
        match=lambda name: "/data/" in name,
    )
    ds.append({"id": [2, 3]})
    with pytest.raises(StorageError, match="upload"):
        ds.commit("two")
    assert _versions(url, creds) == versions  # no manifest was written
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1]
    ds._storage._ops = real_ops  # type: ignore[attr-defined]
    ds.commit("two, after the network came back")  # the rows were kept and land now
    assert lakefmt.open_read_only(url, creds=creds)["id"][:].tolist() == [1, 2, 3]


def test_default_credential_chain_from_environment(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """creds=None: s3fs/botocore take key, secret, endpoint and region from the environment."""
    url = s3_server.url()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [7]})
    ds.commit("from the environment")
    assert lakefmt.open_read_only(url)["id"][:].tolist() == [7]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert lakefmt.open_read_only(url, creds=s3_server.creds)["id"][:].tolist() == [7]


def _ignore_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every S3 PUT unconditional, as a store that ignores If-None-Match behaves."""
    real_put = S3Ops.put

    def put(self: S3Ops, full: str, data: bytes, *, create: bool) -> None:
        real_put(self, full, data, create=False)

    monkeypatch.setattr(S3Ops, "put", put)
    monkeypatch.setattr(object_store_module, "_PROBED", {})  # forget earlier probes


def test_store_without_conditional_create_refuses_writers(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, creds = s3_server.url(), s3_server.creds
    lakefmt.create(url, schema={"id": "int64"}, creds=creds).commit("made on a good store")
    _ignore_conditions(monkeypatch)
    assert open_storage(url, creds).probe_atomic_create() is False  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match=r"single.writer"):
        lakefmt.open(url, creds=creds)
    with pytest.raises(StorageError, match="'single_writer': True"):
        lakefmt.create(s3_server.url(), schema={"id": "int64"}, creds=creds)
    assert len(lakefmt.open_read_only(url, creds=creds)) == 0  # readers are fine


def test_single_writer_mode_on_a_store_without_conditional_create(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ignore_conditions(monkeypatch)
    url, creds = s3_server.url(), {**s3_server.creds, "single_writer": True}
    ds = lakefmt.create(url, schema={"id": "int64"}, creds=creds)
    ds.append({"id": [1]})
    ds.commit("one")
    stale = lakefmt.open(url, creds=creds)  # a second handle of the same (single) writer
    ds.append({"id": [2]})
    ds.commit("two")
    stale.append({"id": [3]})
    stale.commit("three")  # finds v2 taken (HEAD before PUT), rebases instead of overwriting
    assert sorted(lakefmt.open_read_only(url, creds=creds)["id"][:].tolist()) == [1, 2, 3]


def test_probe_once_per_bucket_and_never_for_readers(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, creds = s3_server.url(), s3_server.creds
    lakefmt.create(url, schema={"id": "int64"}, creds=creds).commit()
    monkeypatch.setattr(object_store_module, "_PROBED", {})
    mark = s3_server.log.mark()
    ro = lakefmt.open_read_only(url, creds=creds)
    assert len(ro) == 0 and ro._storage.capabilities.local is False
    assert all(r.method in ("GET", "HEAD") for r in s3_server.log.since(mark))
    mark = s3_server.log.mark()
    lakefmt.open(url, creds=creds)
    probes = [r for r in s3_server.log.since(mark) if "/_tmp/probe-" in r.path]
    assert [(r.method, r.status) for r in probes] == [("PUT", 200), ("PUT", 412), ("DELETE", 204)]
    mark = s3_server.log.mark()
    lakefmt.open(url, creds=creds)
    assert not [r for r in s3_server.log.since(mark) if "/_tmp/probe-" in r.path]
