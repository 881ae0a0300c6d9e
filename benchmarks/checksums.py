"""What checking page CRC32s on every read costs (issue 14, defect 13).

    python benchmarks/checksums.py --rows 2000000 --images 1000 --repeat 5

Writes a tabular dataset (``--rows`` x 4 columns, as ``ingest_scan.py``) and a media dataset
(``--images`` 256x256 JPEGs of noise, ~100 KB each), then times, with page checksum
verification on (what lakefmt does) and off, in alternation so drift hits both alike:

* a cold scan of every column, ``batches(10_000)``;
* 1,000 random single-row reads of the tabular dataset, cold (each decodes a row group);
* a cold scan of the image bytes (``to_arrow(["image"])``: no decoding, pure I/O + CRC);
* a later epoch of the tabular scan: decoded again (as a scan too large for the decoded
  row-group cache is), but its pages were checked by the first epoch.

"Cold" means lakefmt's caches (footers, decoded row groups) are emptied before each run; the
files stay in the OS page cache, so the figures are CPU cost, the upper bound of the share
checksums take. Prints a markdown table of ratios (off time / on time: 1.00 = free).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, table
from ingest_scan import make_batches

import lakefmt
from lakefmt import types
from lakefmt.codecs.image import encode_image
from lakefmt.format import fragments, snapshot


def cold(*, keep_checks: bool = False) -> None:
    """Empty lakefmt's caches; ``keep_checks`` keeps the record of row groups whose
    checksums this process already checked (a later epoch of a large scan)."""
    for cache in (fragments._FOOTERS, fragments._POSITIONS, fragments._UPDATES, fragments._SIZES):
        cache.clear()
    fragments._GROUPS.clear()
    snapshot._SCANNED.clear()
    if not keep_checks:
        fragments._VERIFIED.clear()


def scan(url: str, *, later_epoch: bool = False) -> float:
    if later_epoch:
        scan(url)  # the first epoch checks every page
    cold(keep_checks=later_epoch)
    ds = lakefmt.open_read_only(url)
    start = time.perf_counter()
    for _ in ds.batches(10_000):
        pass
    return time.perf_counter() - start


def random_reads(url: str, rows: int) -> float:
    cold()
    ds = lakefmt.open_read_only(url)
    picks = np.random.default_rng(1).integers(0, rows, 1000)
    start = time.perf_counter()
    for i in picks.tolist():
        cold()  # every read decodes its row group again
        ds["value"][i]
    return time.perf_counter() - start


def media_scan(url: str) -> float:
    cold()
    ds = lakefmt.open_read_only(url)
    start = time.perf_counter()
    ds.to_arrow(["image"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakefmt-crc-"))
    try:
        tab = str(work / "tab")
        ds = lakefmt.create(
            tab, schema={"id": "int64", "score": "float32", "label": "int32", "value": "float64"}
        )
        for b in make_batches(args.rows):
            ds.append(b)
        ds.commit("ingest")
        rng = np.random.default_rng(7)
        jpeg = [
            encode_image(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), "jpeg")
            for _ in range(50)
        ]
        med = str(work / "media")
        mds = lakefmt.create(med, schema={"image": types.Image(sample_compression="jpeg")})
        mds.append({"image": [jpeg[i % len(jpeg)] for i in range(args.images)]})
        mds.commit("images")
        image_bytes = sum(len(jpeg[i % len(jpeg)]) for i in range(args.images))

        workloads = {
            f"scan {args.rows:,} rows x 4 columns, batches(10_000)": lambda: scan(tab),
            "1,000 random single-row reads (cold row groups)": lambda: random_reads(tab, args.rows),
            "later epoch of the scan (pages checked by the first)": lambda: scan(
                tab, later_epoch=True
            ),
            f"scan {args.images:,} JPEG bytes ({image_bytes / 1e6:.0f} MB)": lambda: media_scan(
                med
            ),
        }
        rows = []
        for name, run in workloads.items():
            on, off = [], []
            for _ in range(args.repeat):
                for verify, into in ((True, on), (False, off)):
                    fragments.VERIFY_PAGE_CHECKSUMS = verify
                    into.append(run())
            fragments.VERIFY_PAGE_CHECKSUMS = True
            best_on, best_off = min(on), min(off)
            rows.append(
                [
                    name,
                    f"{best_off * 1000:.1f} ms",
                    f"{best_on * 1000:.1f} ms",
                    f"{best_off / best_on:.2f}x",
                    f"{(best_on / best_off - 1) * 100:+.1f}%",
                ]
            )
        print(f"machine: {machine()}")
        print(
            table(
                rows,
                ["workload", "verification off", "on (lakefmt)", "off / on", "cost of checking"],
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
