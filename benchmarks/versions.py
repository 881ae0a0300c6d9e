"""Version-control costs: commit latency vs history length, open time, concurrent commits.

    python benchmarks/versions.py --versions 1000 --writers 4

Measures, in one run: ms per 100-row append+commit at version 10 and at version
``--versions`` (flat is the goal), the floor (one 100-row Parquet write with pyarrow), time
to open a dataset with that many versions, and commits per second with ``--writers``
concurrent writer processes on one local dataset (every row checked afterwards).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import machine, median_ms, table
from ingest_scan import commit_cost, raw_commit_cost

import lakefmt

WRITER = textwrap.dedent(
    """
    import sys, lakefmt
    url, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ds = lakefmt.open(url)
    for i in range(n):
        ds.append({"w": [w], "i": [i]})
        ds.commit(f"{w}-{i}")
    """
)


def open_time(url: str, repeat: int = 20) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        ds = lakefmt.open_read_only(url)
        len(ds)
        samples.append(time.perf_counter() - start)
    return median_ms(samples)


def concurrent_commits(url: str, writers: int, per_writer: int) -> float:
    lakefmt.create(url, schema={"w": "int32", "i": "int32"}).commit("init")
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(w), str(per_writer)])
        for w in range(writers)
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("a writer failed")
    elapsed = time.perf_counter() - start
    ds = lakefmt.open_read_only(url)
    pairs = sorted(zip(ds["w"][:].tolist(), ds["i"][:].tolist(), strict=True))
    assert pairs == sorted((w, i) for w in range(writers) for i in range(per_writer))
    return writers * per_writer / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--commits-per-writer", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lakefmt-bench-"))
    try:
        early, late = commit_cost(str(root / "commits"), args.versions)
        floor = raw_commit_cost(root)
        opened = open_time(str(root / "commits"))
        rate = concurrent_commits(str(root / "concurrent"), args.writers, args.commits_per_writer)
        rows = [
            [
                "100-row append + commit at v5-v45 (median)",
                f"{early:.2f} ms",
                f"{early / floor:.2f}x the floor ({floor:.2f} ms)",
            ],
            [
                f"100-row append + commit at v{args.versions - 39}-v{args.versions} (median)",
                f"{late:.2f} ms",
                f"{late / early:.2f}x the early commits (aim <= 1.5x)",
            ],
            [f"open a dataset with {args.versions} versions", f"{opened:.2f} ms", ""],
            [
                f"commits/s, {args.writers} writer processes",
                f"{rate:.0f} commits/s",
                "every row present once",
            ],
        ]
        print(f"# versions benchmark; {machine()}\n")
        print(table(rows, ["measure", "lakefmt", "ratio"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
