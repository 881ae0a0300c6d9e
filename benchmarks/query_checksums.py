"""What checking page CRCs costs a TQL query.

DuckDB reads the data files of a query and does not check page CRCs, so lakefmt checks each
column chunk a query reads the first time the process reads it. This measures a filtered
GROUP BY over 2M rows (a Zipf-distributed key, uniform floats), the first query (every chunk
checked) and a repeated one (nothing checked again), with verification off and on alternated,
best of ``--repeat``.

Usage: python benchmarks/query_checksums.py [--rows 2000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

import lakefmt
from lakefmt.format import fragments

QUERY = "SELECT c, SUM(x) AS s WHERE x > 0.5 GROUP BY c"


def _timed(reader: lakefmt.ReadOnlyDataset) -> float:
    start = time.perf_counter()
    reader.query(QUERY).to_arrow()
    return time.perf_counter() - start


def _first_and_repeated(reader: lakefmt.ReadOnlyDataset, verify: bool) -> tuple[float, float]:
    fragments.VERIFY_PAGE_CHECKSUMS = verify
    fragments._VERIFIED.clear()  # as a fresh process: no chunk checked yet
    return _timed(reader), _timed(reader)


def main() -> None:
    """Print the first and repeated query times with checking off and on, and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    url = tempfile.mkdtemp() + "/ds"
    ds = lakefmt.create(url, schema={"id": "int64", "x": "float64", "c": "int32"})
    keys = (rng.zipf(1.5, args.rows) % 1000).astype(np.int32)
    ds.append({"id": np.arange(args.rows), "x": rng.random(args.rows), "c": keys})
    ds.commit()
    reader = lakefmt.open_read_only(url)
    _first_and_repeated(reader, True)  # warm the OS page cache and DuckDB
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.repeat):
        for verify in (False, True):
            runs[verify].append(_first_and_repeated(reader, verify))
    best = {v: (min(r[0] for r in rs), min(r[1] for r in rs)) for v, rs in runs.items()}
    for i, what in enumerate(("first query", "repeated query")):
        off, on = best[False][i] * 1e3, best[True][i] * 1e3
        print(f"{what}: off {off:.1f} ms, on {on:.1f} ms, off/on {off / on:.2f}x")
    fragments.VERIFY_PAGE_CHECKSUMS = True


if __name__ == "__main__":
    main()
