"""Point lookups side by side: lakefmt (sorted-key index; exact: fragment statistics) against
raw DuckDB and pyarrow over the same Parquet files and Lance with BTREE indexes, in one run.

    python benchmarks/index_lookup.py --rows 10000000 --lookups 200

Data: ``id`` int64 appended in order (realistic ids), ``rid`` the same ids shuffled,
``name`` a random 16-character string (unique, no order), ``value`` float64. ``id`` and
``rid`` declare ``NumericIndex()``, ``name`` is a ``Text(index_type="inverted")`` column, so
lakefmt builds sorted-key indexes (``keys`` files; no Parquet bloom filters: the keys answer
lookups).
Rows are appended 1M at a time (one fragment each). Each lookup asks for one existing value
picked at random (the same values for every engine) and reads the whole matching row:

* lakefmt: ``ds.query("SELECT * WHERE id = x").to_arrow()`` with the index, then with
  ``SearchConfig(exact=True)`` (fragment pruning by the manifest's statistics), and once
  with pruning off too;
* DuckDB: ``SELECT * FROM read_parquet([the dataset's data files]) WHERE id = x``;
* pyarrow: ``pyarrow.dataset`` over the same files, ``to_table(filter=...)``;
* DuckDB over a copy of ``rid`` written with a bloom filter (what a declared numeric index
  gives shuffled integers);
* Lance: ``create_scalar_index(col, "BTREE")`` on each column, ``to_table(filter=...)``.

Latencies are p50/p99 of single lookups on one thread (DuckDB and Lance may use both cores
inside one lookup). ``extra storage`` is the lookup index's ``keys`` files plus any bloom
filters (summed from the Parquet footers) plus the manifest's statistics, over the bytes of
the data files without bloom filters.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from _common import machine, table

import lakefmt
from lakefmt import types
from lakefmt.tql import pruning

FRAGMENT_ROWS = 1 << 20


def make_table(n: int, start: int, rng: np.random.Generator, perm: np.ndarray) -> pa.Table:
    """Rows ``start..start+n``: ids in order, shuffled ids, random names, values."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz012345", dtype=np.uint8)
    codes = letters[rng.integers(0, 32, size=(n, 16))]
    names = pa.array(codes.view("S16").ravel().astype(str))
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {"id": ids, "rid": perm[start : start + n], "name": names, "value": rng.random(n)}
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of samples (seconds) in milliseconds."""
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def measure(fn: Callable[[Any], int], values: list[Any]) -> tuple[float, float]:
    """Time ``fn(value)`` once per value (after one warm-up call); each must find one row."""
    fn(values[-1])
    samples = []
    for v in values:
        start = time.perf_counter()
        found = fn(v)
        samples.append(time.perf_counter() - start)
        assert found == 1, (v, found)
    return percentiles(samples)


def literal(v: Any) -> str:
    """``v`` as a SQL literal."""
    return f"'{v}'" if isinstance(v, str) else str(int(v))


def bloom_bytes(paths: list[str]) -> int:
    """Bytes of the bloom filters of Parquet files (from their footers)."""
    total = 0
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                info = meta.row_group(g).column(c).to_dict()
                total += int(info.get("bloom_filter_length") or 0)
    return total


def dir_bytes(path: str) -> int:
    """Bytes of every file below ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main() -> None:
    """Build the datasets, run the lookups, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--no-lance", action="store_true")
    args = parser.parse_args()
    n = args.rows
    rng = np.random.default_rng(17)
    perm = rng.permutation(n).astype(np.int64)
    work = tempfile.mkdtemp(prefix="lookup_")
    print(f"{machine()}; rows {n:,}; lookups {args.lookups}; load {os.getloadavg()[0]:.1f}")
    try:
        url = f"{work}/lakefmt"
        ds = lakefmt.create(
            url,
            schema={
                "id": types.Int64(index_type=types.NumericIndex()),
                "rid": types.Int64(index_type=types.NumericIndex()),
                "name": types.Text(index_type="inverted"),
                "value": "float64",
            },
        )
        ds.auto_compact = False
        tables = []
        t0 = time.perf_counter()
        for start in range(0, n, FRAGMENT_ROWS):
            part = make_table(min(FRAGMENT_ROWS, n - start), start, rng, perm)
            tables.append(part)
            ds.append(part)
            ds.commit()
        build_lakefmt = time.perf_counter() - t0
        full = pa.concat_tables(tables)
        del tables
        files = sorted(glob.glob(f"{url}/data/*.parquet"))
        picks = rng.integers(0, n, args.lookups)
        values = {
            "id": [int(full["id"][int(i)].as_py()) for i in picks],
            "rid": [int(full["rid"][int(i)].as_py()) for i in picks],
            "name": [full["name"][int(i)].as_py() for i in picks],
        }
        rows: list[list[str]] = []
        results: dict[tuple[str, str], tuple[float, float]] = {}

        def add(engine: str, column: str, fn: Callable[[Any], int], count: int) -> None:
            p50, p99 = measure(fn, values[column][:count])
            results[(engine, column)] = (p50, p99)
            rows.append([engine, column, f"{p50:.2f}", f"{p99:.2f}"])
            print(rows[-1], flush=True)

        def lakefmt_lookup(column: str) -> Callable[[Any], int]:
            def run(v: Any) -> int:
                view = ds.query(f"SELECT * WHERE {column} = {literal(v)}")
                return view.to_arrow().num_rows

            return run

        for column in ("id", "rid", "name"):
            add("lakefmt, sorted-key index", column, lakefmt_lookup(column), args.lookups)
        ds.query_config = lakefmt.SearchConfig(exact=True)
        for column in ("id", "rid", "name"):
            add("lakefmt exact (fragment statistics)", column, lakefmt_lookup(column), 50)
        pruning.ENABLED = False
        for column in ("id", "name"):
            add("lakefmt exact, no pruning", column, lakefmt_lookup(column), 50)
        pruning.ENABLED = True
        ds.query_config = lakefmt.SearchConfig()

        con = duckdb.connect()
        file_list = "[" + ", ".join(f"'{p}'" for p in files) + "]"
        for column in ("id", "rid", "name"):
            add(
                "DuckDB read_parquet",
                column,
                lambda v, c=column: len(
                    con.execute(
                        f"SELECT * FROM read_parquet({file_list}) WHERE {c} = {literal(v)}"
                    ).fetchall()
                ),
                args.lookups,
            )
        dataset = pads.dataset(files, format="parquet")
        for column in ("id", "name"):
            add(
                "pyarrow.dataset",
                column,
                lambda v, c=column: dataset.to_table(filter=pads.field(c) == v).num_rows,
                50,
            )
        rid_path = f"{work}/rid_bloom.parquet"
        pq.write_table(
            full.select(["rid"]),
            rid_path,
            row_group_size=131_072,
            bloom_filter_options={"rid": {"ndv": 131_072, "fpp": 0.02}},
        )
        add(
            "DuckDB, rid with a bloom filter",
            "rid",
            lambda v: len(
                con.execute(f"SELECT * FROM read_parquet('{rid_path}') WHERE rid = {v}").fetchall()
            ),
            args.lookups,
        )
        blooms = bloom_bytes(files)
        data = sum(os.path.getsize(p) for p in files)
        manifest_path = sorted(glob.glob(f"{url}/_versions/*.json"))[-1]
        manifest = json.loads(Path(manifest_path).read_bytes())
        stats_bytes = sum(
            len(json.dumps(f.get("stats"), separators=(",", ":")))
            for frag in manifest["fragments"]
            for f in frag["files"]
            if f.get("stats") is not None
        )
        index_files = [f for i in ds._manifest.indexes for s in i.segments for f in s.files]
        keys_bytes = sum(f.size for f in index_files if f.role == "keys")
        text_bytes = sum(f.size for f in index_files if f.role != "keys")
        storage = [
            ["lakefmt data files", f"{data / 1e6:.1f}"],
            ["of which bloom filters (id, rid, name)", f"{blooms / 1e6:.2f}"],
            ["sorted-key index keys files (id, rid, name)", f"{keys_bytes / 1e6:.1f}"],
            [
                "keys files over the data files without bloom filters",
                f"{100 * keys_bytes / (data - blooms):.1f}%",
            ],
            ["BM25 postings + lengths of name (not used by lookups)", f"{text_bytes / 1e6:.1f}"],
            ["manifest statistics", f"{stats_bytes / 1e6:.4f}"],
            [
                "extra storage for lookups (keys files + bloom filters + statistics)",
                f"{100 * (keys_bytes + blooms + stats_bytes) / (data - blooms):.1f}%",
            ],
        ]
        build = [["lakefmt append + commit", f"{build_lakefmt:.1f}"]]
        if not args.no_lance:
            import lance

            t0 = time.perf_counter()
            lds = lance.write_dataset(full, f"{work}/lance")
            lance_write = time.perf_counter() - t0
            lance_data = dir_bytes(f"{work}/lance")
            t0 = time.perf_counter()
            for column in ("id", "rid", "name"):
                lds.create_scalar_index(column, "BTREE")
            lance_index = time.perf_counter() - t0
            lds = lance.dataset(f"{work}/lance")
            for column in ("id", "rid", "name"):
                add(
                    "Lance BTREE",
                    column,
                    lambda v, c=column: lds.to_table(filter=f"{c} = {literal(v)}").num_rows,
                    args.lookups,
                )
            index_bytes = dir_bytes(f"{work}/lance") - lance_data
            storage += [
                ["Lance data", f"{lance_data / 1e6:.1f}"],
                ["Lance BTREE indexes (3 columns)", f"{index_bytes / 1e6:.1f}"],
            ]
            build += [
                ["Lance write_dataset", f"{lance_write:.1f}"],
                ["Lance 3 BTREE indexes", f"{lance_index:.1f}"],
            ]
        print()
        print(table(rows, ["engine", "lookup column", "p50 ms", "p99 ms"]))
        print()
        print(table(storage, ["storage", "MB"]))
        print()
        print(table(build, ["build", "s"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
