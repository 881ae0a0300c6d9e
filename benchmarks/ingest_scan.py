"""Ingest and scan of a tabular dataset: lakefmt vs raw pyarrow Parquet, in one run.

    python benchmarks/ingest_scan.py --rows 2000000

Appends ``--rows`` rows of 4 columns in 10k-row column batches, then scans them with
``batches(10_000)``; the floor writes the same batches with a pyarrow ParquetWriter and
reads them with ``ParquetFile.iter_batches(10_000)`` into numpy. Also measures the cost of
a small append+commit at version 10 and at version 1,000. Prints a markdown table of
ratios (lakefmt throughput / floor throughput: higher is better).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import machine, median_ms, table

import lakefmt

BATCH = 10_000


def make_batches(rows: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(42)
    out = []
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        out.append(
            {
                "id": np.arange(start, start + n, dtype=np.int64),
                "score": rng.random(n, dtype=np.float32),
                "label": rng.integers(0, 10, n, dtype=np.int32),
                "value": rng.normal(size=n),
            }
        )
    return out


def lakefmt_ingest(url: str, batches: list[dict[str, np.ndarray]]) -> float:
    start = time.perf_counter()
    ds = lakefmt.create(
        url, schema={"id": "int64", "score": "float32", "label": "int32", "value": "float64"}
    )
    for b in batches:
        ds.append(b)
    ds.commit("ingest")
    return time.perf_counter() - start


def raw_ingest(path: Path, batches: list[dict[str, np.ndarray]]) -> float:
    start = time.perf_counter()
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("score", pa.float32()),
            ("label", pa.int32()),
            ("value", pa.float64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for b in batches:
            writer.write_table(pa.table(b, schema=schema))
    return time.perf_counter() - start


def lakefmt_scan(url: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    ds = lakefmt.open_read_only(url)
    rows = checksum = 0
    for b in ds.batches(BATCH):
        rows += len(b["id"])
        checksum += int(b["id"][-1])
    return time.perf_counter() - start, rows, checksum


def raw_scan(path: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    rows = checksum = 0
    for b in pq.ParquetFile(path).iter_batches(BATCH):
        cols = {name: b.column(name).to_numpy() for name in b.schema.names}
        rows += len(cols["id"])
        checksum += int(cols["id"][-1])
    return time.perf_counter() - start, rows, checksum


def commit_cost(url: str, versions: int) -> tuple[float, float]:
    """ms per 100-row append+commit around version 25 and around version ``versions``.

    The late commits go to a dataset with ``versions - 40`` versions, the early ones to a
    fresh dataset at version 5, one of each in turn: drift of a shared machine between the
    two measurements would otherwise decide the ratio.
    """
    data = {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
    late_ds = lakefmt.create(url, schema={"id": "int64", "score": "float32"})
    for i in range(1, versions - 39):
        late_ds.append(data)
        late_ds.commit(f"c{i}")
    early_ds = lakefmt.create(url + "-early", schema={"id": "int64", "score": "float32"})
    for i in range(1, 5):
        early_ds.append(data)
        early_ds.commit(f"c{i}")
    early: list[float] = []
    late: list[float] = []
    # Medians over 40 commits at each end, so neither an automatic compaction nor a noisy
    # neighbour decides the figure.
    for i in range(40):
        pair = [(early_ds, early), (late_ds, late)]
        for ds, samples in pair if i % 2 else pair[::-1]:
            start = time.perf_counter()
            ds.append(data)
            ds.commit(f"m{i}")
            samples.append(time.perf_counter() - start)
    assert late_ds.version and len(late_ds) == 100 * versions
    return median_ms(early), median_ms(late)


def raw_commit_cost(root: Path, count: int = 50) -> float:
    """ms per 100-row Parquet file written with pyarrow (the floor for a small commit)."""
    data = pa.table({"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)})
    times = []
    for i in range(count):
        start = time.perf_counter()
        pq.write_table(data, root / f"commit-{i}.parquet")
        times.append(time.perf_counter() - start)
    return median_ms(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lakefmt-bench-"))
    try:
        batches = make_batches(args.rows)
        ing_l, ing_r, scan_l, scan_r = [], [], [], []
        for r in range(args.repeat):
            url, raw = str(root / f"ds{r}"), root / f"raw{r}.parquet"
            ing_r.append(raw_ingest(raw, batches))
            ing_l.append(lakefmt_ingest(url, batches))
            t, rows_r, sum_r = raw_scan(raw)
            scan_r.append(t)
            t, rows_l, sum_l = lakefmt_scan(url)
            scan_l.append(t)
            assert (
                (rows_l, sum_l)
                == (rows_r, sum_r)
                == (args.rows, sum(int(b["id"][-1]) for b in batches))
            )
        ingest_ratio = min(ing_r) / min(ing_l)
        scan_ratio = min(scan_r) / min(scan_l)
        early, late = commit_cost(str(root / "commits"), args.versions)
        floor_commit = raw_commit_cost(root)
        rows = [
            [
                "ingest, 10k-row column batches",
                f"{args.rows / min(ing_r) / 1e6:.2f}M rows/s",
                f"{args.rows / min(ing_l) / 1e6:.2f}M rows/s",
                f"{ingest_ratio:.2f}x (aim >= 0.8x)",
            ],
            [
                "scan, batches(10_000)",
                f"{args.rows / min(scan_r) / 1e6:.2f}M rows/s",
                f"{args.rows / min(scan_l) / 1e6:.2f}M rows/s",
                f"{scan_ratio:.2f}x (aim >= 0.8x)",
            ],
            [
                "100-row append + commit at v5-v45 (median)",
                f"{floor_commit:.2f} ms (one Parquet write)",
                f"{early:.2f} ms",
                f"{floor_commit / early:.2f}x",
            ],
            [
                f"100-row append + commit at v{args.versions - 39}-v{args.versions} (median)",
                f"{floor_commit:.2f} ms",
                f"{late:.2f} ms",
                f"late / early = {late / early:.2f} (aim <= 1.5)",
            ],
        ]
        print(f"# ingest_scan: {args.rows} rows x 4 columns; {machine()}\n")
        print(
            table(rows, ["workload", "raw pyarrow Parquet (floor)", "lakefmt", "lakefmt / floor"])
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
