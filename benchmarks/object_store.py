"""Object-store costs against a local S3 server (moto): requests per commit, ranged reads.

    python benchmarks/object_store.py --size-mb 500

Starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port) with a WSGI middleware that
counts every request and the response bytes it sent, then measures, in one run:

* requests (and bytes uploaded) per ``append`` + ``commit`` of 1,000 rows on a warm handle,
  and per ``open`` of the dataset;
* the time and bytes of reading **one** ~1 MB image (``col.get_bytes(i)``) from a dataset of
  ``--size-mb`` MB of images, with a cold reader (no cached footer) and a warm one, against
  downloading the whole fragment file (lakefmt's parallel ranged whole-file read, and one
  plain ``GetObject`` stream with boto3) -- the floor of any reader that fetches whole files.

moto keeps objects in this process's memory, so absolute times are loopback times on a
shared CPU; the request and byte counts are what a remote store would see.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from _common import machine, table

import lakefmt
from lakefmt import types
from lakefmt.format import fragments
from lakefmt.storage import object_store, open_storage

BUCKET = "lakefmt-bench"
CREDS_BASE = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region": "us-east-1"}


class Counter:
    """WSGI middleware counting requests and response body bytes.

    With ``latency`` (seconds) and ``bandwidth`` (bytes/s per request) it also delays each
    response as a remote store would: a round trip, plus the transfer time of its body over
    one connection. The delay is a sleep, so concurrent requests overlap as on a network.
    """

    def __init__(
        self, app: Callable[..., Iterable[bytes]], latency: float = 0.0, bandwidth: float = 0.0
    ) -> None:
        self.app = app
        self.latency = latency
        self.bandwidth = bandwidth
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, int, int]] = []  # method, path, bytes in, bytes out

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = list(self.app(environ, start_response))
        sent = sum(len(b) for b in body)
        received = int(environ.get("CONTENT_LENGTH") or 0)
        with self.lock:
            self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], received, sent))
        delay = self.latency + ((sent + received) / self.bandwidth if self.bandwidth else 0.0)
        if delay:
            time.sleep(delay)
        return body

    def mark(self) -> int:
        """Position in the log."""
        with self.lock:
            return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str, int, int]]:
        """Requests after ``mark``."""
        with self.lock:
            return list(self.requests[mark:])


def start_server(latency: float = 0.0, bandwidth: float = 0.0) -> tuple[Any, str, Counter]:
    """moto on 127.0.0.1:<free port> with a bucket; returns (server, endpoint, counter)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    counter = Counter(server._server.app, latency, bandwidth)
    server._server.app = counter
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_creds())
    client.create_bucket(Bucket=BUCKET)
    return server, endpoint, counter


def _boto_creds() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDS_BASE["aws_access_key_id"],
        "aws_secret_access_key": CREDS_BASE["aws_secret_access_key"],
        "region_name": CREDS_BASE["region"],
    }


def commit_requests(endpoint: str, counter: Counter, repeat: int = 5) -> list[list[str]]:
    """Requests per 1,000-row append+commit and per open (median over ``repeat``)."""
    creds = {**CREDS_BASE, "endpoint_url": endpoint}
    url = f"s3://{BUCKET}/commits-{uuid.uuid4().hex}"
    schema = {"id": "int64", "text": "text", "score": "float32"}
    ds = lakefmt.create(url, schema=schema, creds=creds)
    ds.auto_compact = False
    ds.append({"id": [0], "text": ["warm"], "score": [0.0]})
    ds.commit("warm-up")
    counts, sent, times = [], [], []
    for i in range(repeat):
        mark = counter.mark()
        start = time.perf_counter()
        ds.append(
            {
                "id": np.arange(1000) + 1000 * i,
                "text": [f"row {j}" for j in range(1000)],
                "score": np.random.default_rng(i).random(1000, dtype=np.float32),
            }
        )
        ds.commit(f"commit {i}")
        times.append(time.perf_counter() - start)
        reqs = counter.since(mark)
        counts.append(len(reqs))
        sent.append(sum(r[2] for r in reqs))
        kinds = ", ".join(f"{m} {p.split('/', 3)[-1]}" for m, p, _, _ in reqs)
    opens = []
    for _ in range(repeat):
        mark = counter.mark()
        lakefmt.open_read_only(url, creds=creds)
        opens.append(len(counter.since(mark)))
    return [
        [
            "1,000-row append + commit (warm handle)",
            f"{statistics.median(counts):.0f}",
            f"{statistics.median(sent) / 1e3:.1f} KB up",
            f"{statistics.median(times) * 1e3:.1f} ms",
            kinds.replace("_versions/", "").replace("data/", "data/…"),
        ],
        [
            "open_read_only (hint, newer-manifest check, format file, manifest)",
            f"{statistics.median(opens):.0f}",
            "",
            "",
            "",
        ],
    ]


def _image(side: int, seed: int) -> bytes:
    from PIL import Image as PILImage

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def ranged_read(
    endpoint: str,
    counter: Counter,
    size_mb: int,
    repeat: int,
    links: list[tuple[float, float]],
) -> list[list[str]]:
    """One image from a ``size_mb`` dataset vs downloading its whole fragment file.

    Each read is timed once per ``(latency seconds, bytes/s)`` network setting in ``links``.
    """
    import boto3

    creds = {**CREDS_BASE, "endpoint_url": endpoint}
    url = f"s3://{BUCKET}/images-{uuid.uuid4().hex}"
    images = [_image(590, seed) for seed in range(8)]  # ~1.04 MB PNGs
    rows = max(4, round(size_mb * 1e6 / len(images[0])))
    ds = lakefmt.create(url, schema={"id": "int64", "img": types.Image()}, creds=creds)
    start = time.perf_counter()
    ds.append({"id": np.arange(rows), "img": [images[i % len(images)] for i in range(rows)]})
    ds.commit("images")
    ingest = time.perf_counter() - start
    manifest = ds._manifest
    media = [d for f in manifest.fragments for d in f.files if len(d.row_groups) > 1]
    data_file = max(media, key=lambda d: d.size)
    total = sum(d.size for f in manifest.fragments for d in f.files)
    target = rows // 2
    expected = images[target % len(images)]
    storage = open_storage(url, creds)

    def forget(*, footers: bool) -> None:
        for name in ("_GROUPS", *(("_FOOTERS",) if footers else ())):
            cache = getattr(fragments, name, None)  # the decoded row-group cache, footers
            if cache is not None:
                cache.clear()
        if footers:
            object_store._SIZES.clear()

    def cold_read() -> bytes:
        forget(footers=True)
        return lakefmt.open_read_only(url, creds=creds)["img"].get_bytes(target)

    warm = lakefmt.open_read_only(url, creds=creds)
    warm["img"].get_bytes(0)

    def warm_read() -> bytes:
        forget(footers=False)
        return warm["img"].get_bytes(target)

    def measure(fn: Callable[[], bytes], check: bytes | int) -> tuple[float, int, int]:
        best, reqs, down = float("inf"), 0, 0
        for _ in range(repeat):
            mark = counter.mark()
            begin = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - begin
            log = counter.since(mark)
            assert (out == check) if isinstance(check, bytes) else len(out) == check
            if elapsed < best:
                best, reqs, down = elapsed, len(log), sum(r[3] for r in log)
        return best, reqs, down

    client = boto3.client("s3", endpoint_url=endpoint, **_boto_creds())
    key = f"{url.split('/', 3)[-1]}/{data_file.path}"
    reads: dict[str, tuple[Callable[[], bytes], bytes | int]] = {
        "one image, new reader (open + footer + row group)": (cold_read, expected),
        "one image, open reader (footer cached)": (warm_read, expected),
        "whole fragment file, lakefmt (parallel ranged GETs)": (
            lambda: storage.read(data_file.path),
            data_file.size,
        ),
        "whole fragment file, one GetObject stream (boto3)": (
            lambda: client.get_object(Bucket=BUCKET, Key=key)["Body"].read(),
            data_file.size,
        ),
    }
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in reads}
    for latency, bandwidth in links:
        counter.latency, counter.bandwidth = latency, bandwidth
        for name, (fn, check) in reads.items():
            results[name].append(measure(fn, check))
    counter.latency, counter.bandwidth = 0.0, 0.0
    rows_out = []
    whole = results["whole fragment file, one GetObject stream (boto3)"]
    for name, per_link in results.items():
        row = [name, str(per_link[0][1]), f"{per_link[0][2] / 1e6:.2f} MB"]
        for i, (seconds, _, _) in enumerate(per_link):
            row.append(f"{seconds * 1e3:.0f} ms ({whole[i][0] / seconds:.1f}x)")
        rows_out.append(row)
    print(
        f"\ndataset: {rows} images of {len(images[0]) / 1e6:.2f} MB, {total / 1e6:.0f} MB in "
        f"{len(manifest.fragments)} fragment(s); the fragment file read is "
        f"{data_file.size / 1e6:.0f} MB in {len(data_file.row_groups)} row groups; "
        f"ingest {ingest:.1f} s"
    )
    return rows_out


def main() -> None:
    """Run both measurements and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=500, help="dataset size for the read test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="simulated round trip per request for the second set of read timings",
    )
    parser.add_argument(
        "--mbps",
        type=float,
        default=50.0,
        help="simulated MB/s per connection for the second set of read timings",
    )
    args = parser.parse_args()
    server, endpoint, counter = start_server()
    try:
        print(f"# object_store benchmark ({machine()}; moto S3 server on {endpoint})\n")
        print("## Requests per commit\n")
        print(
            table(
                commit_requests(endpoint, counter, repeat=max(3, args.repeat)),
                ["operation", "requests", "bytes", "time", "what"],
            )
        )
        print(f"\n## Single-row read vs whole-file download ({args.size_mb} MB dataset)")
        links = [(0.0, 0.0), (args.latency_ms / 1e3, args.mbps * 1e6)]
        rows = ranged_read(endpoint, counter, args.size_mb, args.repeat, links)
        print()
        link = f"{args.latency_ms:g} ms + {args.mbps:g} MB/s per connection"
        print(
            table(
                rows,
                [
                    "read",
                    "requests",
                    "downloaded",
                    "loopback (x vs whole GET)",
                    f"simulated link: {link} (x vs whole GET)",
                ],
            )
        )
        print(
            "\nloopback: moto copies the whole object for every GET, ranged or not, under a "
            "per-object lock, so ranged reads of a large object cost it O(object) each; a real "
            "store serves a range in O(range). The simulated link delays each response by one "
            "round trip plus its bytes over one connection (a sleep in the server thread)."
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
