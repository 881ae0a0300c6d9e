"""Two-phase writes: what the driver's commit costs as the number of fragments grows.

    python benchmarks/two_phase_commit.py --fragments 100,1000,4000

Per fragment count, in one run on a local dataset: the seconds ``commit_fragments`` takes for
that many infos (the check of every info and file, the manifest), and the checks alone;
beside it, a plain ``commit`` of one row on the same dataset (the floor every commit of a
manifest that size pays; automatic compaction off). Also the manifest's bytes per 1,000
fragments and an info's JSON bytes. The workers' writes are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, table

import lakefmt
from lakefmt.format import transactions
from lakefmt.format.layout import manifest_path


def measure(root: Path, fragments: int) -> list[str]:
    url = str(root / f"ds-{fragments}")
    ds = lakefmt.create(url, schema={"id": "int64", "text": "text"})
    infos = []
    for k in range(fragments):
        infos += lakefmt.write_fragments(url, {"id": [k] * 10, "text": [f"t{k}"] * 10})
    head = lakefmt.open(url)._manifest
    start = time.perf_counter()
    transactions.check_infos(ds._storage, head, infos)
    checks = time.perf_counter() - start
    start = time.perf_counter()
    ds.commit_fragments(infos, transaction_id=f"bench-{fragments}")
    total = time.perf_counter() - start
    manifest = (Path(url) / manifest_path("main", ds._manifest.version)).stat().st_size
    ds.auto_compact = False  # 4,000 tiny fragments would be compacted now: not the floor
    start = time.perf_counter()
    ds.append({"id": [0], "text": ["x"]})
    ds.commit()
    floor = time.perf_counter() - start
    assert len(ds) == fragments * 10 + 1
    return [
        str(fragments),
        f"{total:.3f}",
        f"{checks:.3f}",
        f"{floor:.3f}",
        f"{manifest * 1000 / fragments / 1024:.0f}",
        str(len(infos[0].to_json())),
    ]


def main() -> None:
    """Run the measurements and print one markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fragments", default="100,1000")
    args = parser.parse_args()
    counts = [int(c) for c in args.fragments.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(Path(tmp), n) for n in counts]
    print(machine())
    header = [
        "fragments",
        "commit_fragments s",
        "of which checks s",
        "1-fragment commit s (floor)",
        "manifest KiB / 1000 fragments",
        "info JSON bytes",
    ]
    print(table(rows, header))


if __name__ == "__main__":
    main()
