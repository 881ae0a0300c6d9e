"""Queries: lakefmt's TQL engine vs DuckDB directly over the same data as raw Parquet, in one run.

    python benchmarks/query.py --rows 2000000 --emb-rows 200000 --dim 384

Builds the same data twice: as plain Parquet files written by pyarrow (the floor) and as a
lakefmt dataset (fragments flushed as they come, like a real ingest). Then times, best of
``--repeat`` runs each:

* a selective filter, materialized to Arrow: ``score > 0.9 AND label = 3``;
* a GROUP BY count over ``label``;
* a LIKE text filter, materialized: ``text LIKE '%alpha beta%'``;
* a brute-force cosine top-10 over ``--emb-rows`` x ``--dim`` float32 embeddings,

each against DuckDB over the raw Parquet files, and the cosine top-10 also against a numpy
matrix product with the matrix already in RAM. The scalar queries are also timed as plain
DuckDB SQL over lakefmt's own data files of the version (same files, no engine): the gap
between the two floors is the file layout (lakefmt writes row groups of at most 32k rows so
random access stays cheap), the gap to the second is the query engine's own cost. The first
cosine query of a version loads
its vectors into lakefmt's vector cache; that cold time is shown too. Every answer is
checked against the floor's. Prints a markdown table (ratio = lakefmt time / floor time;
lower is better).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import machine, table, timed

import lakefmt
from lakefmt import types

WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
FILE_ROWS = 1 << 20  # rows per raw Parquet file (the size of a lakefmt fragment)
APPEND_ROWS = 250_000  # rows per lakefmt append


def scalar_data(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = rng.choice(WORDS, size=(rows, 3))
    text = np.char.add(
        np.char.add(np.char.add(words[:, 0], " "), np.char.add(words[:, 1], " ")), words[:, 2]
    )
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "score": pa.array(rng.random(rows, dtype=np.float32)),
            "label": pa.array(rng.integers(0, 10, rows, dtype=np.int32)),
            "text": pa.array(text.astype(str)),
        }
    )


def embedding_data(rows: int, dim: int, seed: int = 11) -> tuple[np.ndarray, pa.Table]:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((rows, dim), dtype=np.float32)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim)
    return matrix, pa.table({"id": pa.array(np.arange(rows, dtype=np.int64)), "emb": emb})


def write_raw(data: pa.Table, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, data.num_rows, FILE_ROWS)):
        path = folder / f"part-{i:04d}.parquet"
        pq.write_table(data.slice(start, FILE_ROWS), path)
        paths.append(str(path))
    return paths


def write_lakefmt(data: pa.Table, url: str, schema: dict[str, Any]) -> Any:
    ds = lakefmt.create(url, schema=schema)
    for start in range(0, data.num_rows, APPEND_ROWS):
        ds.append(data.slice(start, APPEND_ROWS))
        ds.flush()
    ds.commit("benchmark data")
    return lakefmt.open_read_only(url)


def files_sql(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def check(name: str, ok: bool) -> None:
    if not ok:
        raise SystemExit(f"MISMATCH in {name}: lakefmt's answer differs from the floor's")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the scalar table")
    parser.add_argument("--emb-rows", type=int, default=200_000, help="rows of the embedding table")
    parser.add_argument("--dim", type=int, default=384, help="embedding size")
    parser.add_argument(
        "--repeat", type=int, default=15, help="runs per measurement (best is kept)"
    )
    parser.add_argument(
        "--dir", type=str, default=None, help="working directory (default: a temp dir)"
    )
    args = parser.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="lakefmt-bench-query-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    con = duckdb.connect()
    t0 = time.perf_counter()
    data = scalar_data(args.rows)
    raw_paths = write_raw(data, work / "raw_scalar")
    ds = write_lakefmt(
        data,
        str(work / "ds_scalar"),
        {"id": "int64", "score": "float32", "label": "int32", "text": "text"},
    )
    matrix, emb_table = embedding_data(args.emb_rows, args.dim)
    raw_emb = write_raw(emb_table, work / "raw_emb")
    emb_ds = write_lakefmt(
        emb_table, str(work / "ds_emb"), {"id": "int64", "emb": types.Embedding(args.dim)}
    )
    del data, emb_table
    print(
        f"built data in {time.perf_counter() - t0:.1f} s: {args.rows} rows "
        f"({len(ds._manifest.fragments)} fragments), {args.emb_rows} x {args.dim} embeddings "
        f"({len(emb_ds._manifest.fragments)} fragments)\n"
    )
    rows: list[list[str]] = []

    def record(name: str, ours: float, floor: float, floor_name: str) -> None:
        rows.append(
            [name, floor_name, f"{ours * 1000:.1f}", f"{floor * 1000:.1f}", f"{ours / floor:.2f}x"]
        )

    raw = files_sql(raw_paths)
    own = files_sql(
        [f"{work / 'ds_scalar'}/{d.path}" for f in ds._manifest.fragments for d in f.files]
    )

    def own_floor(sql: str) -> float:
        t, _ = timed(lambda: con.sql(sql.replace("__FILES__", own)).to_arrow_table(), args.repeat)
        return t

    # 1. selective filter, materialized
    tql = "SELECT * WHERE score > 0.9 AND label = 3"
    ours_t, ours = timed(lambda: ds.query(tql).to_arrow(), args.repeat)
    floor_t, floor = timed(
        lambda: con.sql(
            f"SELECT * FROM read_parquet({raw}) WHERE score > 0.9 AND label = 3"
        ).to_arrow_table(),
        args.repeat,
    )
    check(
        "filter",
        sorted(ours.column("id").to_pylist()) == sorted(floor.column("id").to_pylist())
        and ours.num_rows == floor.num_rows,
    )
    record(f"filter `{tql}` ({ours.num_rows} rows, to_arrow)", ours_t, floor_t, "DuckDB on Parquet")
    record(
        "  same, floor on lakefmt's data files",
        ours_t,
        own_floor("SELECT * FROM read_parquet(__FILES__) WHERE score > 0.9 AND label = 3"),
        "DuckDB on lakefmt files",
    )

    # 2. GROUP BY count
    tql = "SELECT label, COUNT(*) AS n GROUP BY label"
    ours_t, ours = timed(lambda: ds.query(tql).to_arrow(), args.repeat)
    floor_t, floor = timed(
        lambda: con.sql(
            f"SELECT label, COUNT(*) AS n FROM read_parquet({raw}) GROUP BY label"
        ).to_arrow_table(),
        args.repeat,
    )

    def as_dict(t: pa.Table) -> dict[int, int]:
        return dict(zip(t.column("label").to_pylist(), t.column("n").to_pylist(), strict=True))

    check("group by", as_dict(ours) == as_dict(floor))
    record(f"`{tql}`", ours_t, floor_t, "DuckDB on Parquet")
    record(
        "  same, floor on lakefmt's data files",
        ours_t,
        own_floor("SELECT label, COUNT(*) AS n FROM read_parquet(__FILES__) GROUP BY label"),
        "DuckDB on lakefmt files",
    )

    # 3. LIKE text filter, materialized
    tql = "SELECT * WHERE text LIKE '%alpha beta%'"
    ours_t, ours = timed(lambda: ds.query(tql).to_arrow(), args.repeat)
    floor_t, floor = timed(
        lambda: con.sql(
            f"SELECT * FROM read_parquet({raw}) WHERE text LIKE '%alpha beta%'"
        ).to_arrow_table(),
        args.repeat,
    )
    check("like", sorted(ours.column("id").to_pylist()) == sorted(floor.column("id").to_pylist()))
    record(f"LIKE `{tql}` ({ours.num_rows} rows, to_arrow)", ours_t, floor_t, "DuckDB on Parquet")
    record(
        "  same, floor on lakefmt's data files",
        ours_t,
        own_floor("SELECT * FROM read_parquet(__FILES__) WHERE text LIKE '%alpha beta%'"),
        "DuckDB on lakefmt files",
    )

    # 4. cosine top-10
    rng = np.random.default_rng(3)
    q = rng.standard_normal(args.dim).astype(np.float32)
    literal = "[" + ", ".join(repr(float(x)) for x in q) + "]"
    tql = f"SELECT id, COSINE_SIMILARITY(emb, ARRAY{literal}) AS score ORDER BY score DESC LIMIT 10"
    start = time.perf_counter()
    cold = emb_ds.query(tql)
    cold_t = time.perf_counter() - start
    ours_t, ours = timed(lambda: emb_ds.query(tql), args.repeat)
    ours_ids = list(ours["id"][:])
    raw_e = files_sql(raw_emb)
    floor_t, floor = timed(
        lambda: con.sql(
            f"SELECT id, array_cosine_similarity(emb::FLOAT[{args.dim}], "
            f"{literal}::FLOAT[{args.dim}]) AS score "
            f"FROM read_parquet({raw_e}) ORDER BY score DESC LIMIT 10"
        ).to_arrow_table(),
        args.repeat,
    )

    def numpy_top10() -> np.ndarray:
        scores = (matrix @ q) / (
            np.sqrt(np.einsum("ij,ij->i", matrix, matrix)) * float(np.linalg.norm(q))
        )
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    np_t, np_top = timed(numpy_top10, args.repeat)
    check("cosine vs DuckDB", ours_ids == floor.column("id").to_pylist())
    check("cosine vs numpy", ours_ids == np_top.tolist())
    check("cosine cold", list(cold["id"][:]) == ours_ids)
    name = f"cosine top-10 over {args.emb_rows} x {args.dim}"
    record(name, ours_t, floor_t, "DuckDB on Parquet")
    record(name, ours_t, np_t, "numpy, matrix in RAM")
    record(
        name + " (cold: first query loads the vector cache)", cold_t, floor_t, "DuckDB on Parquet"
    )

    print(f"Machine: {machine()}; duckdb {duckdb.__version__}, pyarrow {pa.__version__}\n")
    print(table(rows, ["query", "floor", "lakefmt ms", "floor ms", "ratio"]))
    print("\nAll answers match the floors'.")


if __name__ == "__main__":
    main()
