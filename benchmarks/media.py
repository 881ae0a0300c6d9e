"""Image ingest and decode scan: lakefmt vs raw pyarrow Parquet and a Pillow loop, in one run.

    python benchmarks/media.py --images 10000

Generates ``--images`` deterministic 256x256 JPEGs (about 15 KB each) as bytes, then:

* **ingest**: appends them (in batches of ``--batch`` rows, with an int32 label) to an
  ``Image("uint8", "jpeg")`` column and commits; the floor writes the same bytes and labels
  with a pyarrow ``ParquetWriter`` (uncompressed, no dictionary: the cheapest raw write).
  lakefmt only sniffs each JPEG header on the write path, never decodes. Measured twice:
  on local disk, where lakefmt's commit is durable (fsync) and so the floor fsyncs its file
  too, and in memory (``mem://`` vs a Parquet file written to an in-memory buffer), which
  shows the CPU cost alone.
* **decode scan**: ``ds.batches(256, columns=["image"])`` (parallel decode on a thread pool,
  with simplejpeg when installed, else Pillow; the header line says which) vs a
  single-threaded Pillow loop over the same in-memory bytes.

Answers are verified (row counts, and a checksum of every decoded pixel equal on both
sides). Prints a markdown table of ratios (lakefmt throughput / floor throughput: higher is
better; the issue aims at >= 0.8 for ingest and >= 1.7 for the decode scan on 2 cores).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import machine, table

import lakefmt
from lakefmt import types

SIDE = 256


def make_jpegs(count: int, seed: int = 7) -> list[bytes]:
    """``count`` distinct, deterministic 256x256 RGB JPEGs of about 15 KB."""
    from PIL import Image

    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)

    def one(i: int) -> bytes:
        rng = np.random.default_rng(seed + i)
        fx, fy = rng.uniform(0.01, 0.06, 2).tolist()
        phase = rng.uniform(0, 6.28)
        base = np.stack(
            [
                127 + 100 * np.sin(xx * fx + phase),
                127 + 100 * np.cos(yy * fy - phase),
                127 + 100 * np.sin((xx + yy) * (fx + fy) / 2),
            ],
            axis=-1,
        )
        noise = rng.normal(0, 8, (SIDE, SIDE, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=85)
        return buf.getvalue()

    with ThreadPoolExecutor() as pool:
        return list(pool.map(one, range(count)))


def jpeg_decoder() -> str:
    """The library lakefmt decodes JPEGs with (simplejpeg when installed, else Pillow)."""
    try:
        import simplejpeg
    except ImportError:
        return "Pillow (simplejpeg is not installed)"
    return f"simplejpeg {simplejpeg.__version__}"


def lakefmt_ingest(url: str, jpegs: list[bytes], batch: int) -> float:
    start = time.perf_counter()
    ds = lakefmt.create(url, schema={"image": types.Image("uint8", "jpeg"), "label": "int32"})
    for lo in range(0, len(jpegs), batch):
        chunk = jpegs[lo : lo + batch]
        ds.append({"image": chunk, "label": np.arange(lo, lo + len(chunk), dtype=np.int32) % 10})
    ds.commit("ingest")
    return time.perf_counter() - start


def lakefmt_mem_ingest(url: str, jpegs: list[bytes], batch: int) -> float:
    """:func:`lakefmt_ingest` into ``mem://``, then free the dataset (not timed)."""
    seconds = lakefmt_ingest(url, jpegs, batch)
    lakefmt.delete(url)
    return seconds


def raw_ingest(path: Path | None, jpegs: list[bytes], batch: int) -> float:
    """Write the bytes with pyarrow: to ``path`` (then fsync it), or to memory if None."""
    start = time.perf_counter()
    schema = pa.schema([("image", pa.binary()), ("label", pa.int32())])
    sink: Any = pa.BufferOutputStream() if path is None else pa.OSFile(str(path), "wb")
    with pq.ParquetWriter(sink, schema, compression="none", use_dictionary=False) as writer:
        for lo in range(0, len(jpegs), batch):
            chunk = jpegs[lo : lo + batch]
            labels = np.arange(lo, lo + len(chunk), dtype=np.int32) % 10
            writer.write_table(
                pa.table([pa.array(chunk, pa.binary()), pa.array(labels)], schema=schema)
            )
    if path is None:
        sink.getvalue()
    else:
        sink.close()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # lakefmt's commit is durable; so is this floor
        finally:
            os.close(fd)
    return time.perf_counter() - start


def lakefmt_scan(url: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    ds = lakefmt.open_read_only(url)
    rows = checksum = 0
    for b in ds.batches(256, columns=["image"]):
        for image in b["image"]:
            checksum += int(image.sum(dtype=np.int64))
        rows += len(b["image"])
    return time.perf_counter() - start, rows, checksum


def pillow_scan(jpegs: list[bytes]) -> tuple[float, int, int]:
    from PIL import Image

    start = time.perf_counter()
    rows = checksum = 0
    for data in jpegs:
        with Image.open(io.BytesIO(data)) as im:
            pixels = np.asarray(im.convert("RGB"))
        checksum += int(pixels.sum(dtype=np.int64))
        rows += 1
    return time.perf_counter() - start, rows, checksum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="rows per append")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    jpegs = make_jpegs(args.images)
    total_mb = sum(map(len, jpegs)) / 1e6
    print(
        f"{machine()}; {args.images} JPEGs of {SIDE}x{SIDE}, {total_mb:.1f} MB "
        f"(mean {total_mb * 1e3 / args.images:.1f} KB); lakefmt decodes JPEGs with "
        f"{jpeg_decoder()}"
    )

    root = Path(tempfile.mkdtemp(prefix="lakefmt-bench-media-"))
    try:
        lakefmt_ingest(f"mem://bench-media-warmup-{os.getpid()}", jpegs[:100], args.batch)
        # Each case runs its repeats back to back: the first run after another case pays for
        # memory that case just gave back (page faults on ~150 MB), whichever side it is.
        url = str(root / "ds0")
        lf_ingest = min(
            lakefmt_ingest(str(root / f"ds{r}"), jpegs, args.batch) for r in range(args.repeat)
        )
        raw_in = min(
            raw_ingest(root / f"raw{r}.parquet", jpegs, args.batch) for r in range(args.repeat)
        )
        lf_mem = min(
            lakefmt_mem_ingest(f"mem://bench-media-{os.getpid()}-{r}", jpegs, args.batch)
            for r in range(args.repeat)
        )
        raw_mem = min(raw_ingest(None, jpegs, args.batch) for _ in range(args.repeat))
        lf_scan = pil_scan = float("inf")
        answers = set()
        for _ in range(args.repeat):
            t, rows, checksum = lakefmt_scan(url)
            lf_scan = min(lf_scan, t)
            answers.add(("lakefmt", rows, checksum))
            t, rows, checksum = pillow_scan(jpegs)
            pil_scan = min(pil_scan, t)
            answers.add(("pillow", rows, checksum))
        by_side = {side: (rows, checksum) for side, rows, checksum in answers}
        assert len(answers) == 2, f"answers differ between runs: {answers}"
        assert by_side["lakefmt"] == by_side["pillow"], f"answers differ: {by_side}"
        assert by_side["lakefmt"][0] == args.images
        ds = lakefmt.open_read_only(url)
        assert len(ds) == args.images
        assert ds["image"].get_bytes(args.images // 2) == jpegs[args.images // 2]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = args.images
    rows = [
        [
            "ingest, local disk (append + durable commit vs ParquetWriter + fsync)",
            f"{n / lf_ingest:,.0f}",
            f"{n / raw_in:,.0f}",
            f"{raw_in / lf_ingest:.2f}x",
            ">= 0.8x",
        ],
        [
            "ingest, memory (mem:// vs ParquetWriter to a buffer)",
            f"{n / lf_mem:,.0f}",
            f"{n / raw_mem:,.0f}",
            f"{raw_mem / lf_mem:.2f}x",
            ">= 0.8x",
        ],
        [
            "decode scan (batches(256) vs Pillow loop)",
            f"{n / lf_scan:,.0f}",
            f"{n / pil_scan:,.0f}",
            f"{pil_scan / lf_scan:.2f}x",
            ">= 1.7x",
        ],
    ]
    print()
    print(table(rows, ["case", "lakefmt images/s", "floor images/s", "ratio", "aim"]))
    print(f"\nanswers equal: {n} rows, pixel checksum {by_side['lakefmt'][1]}")


if __name__ == "__main__":
    main()
