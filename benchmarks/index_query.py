"""Vector search through ``ds.query`` end to end, against numpy exact and Lance, in one run.

    python benchmarks/index_query.py --rows 1000000 --dim 384 --queries 200

Builds a lakefmt dataset of clustered unit vectors (the generator of ``index_vectors.py``:
``--clusters`` Gaussian clusters, so neighbours are as close as in real embeddings) with an
``id``, a ``bucket`` (uniform 0-999, for filters of 50%, 5% and 0.1%) and an ``Embedding``
column that declares a ``ClusteredQuantized`` index (built at commit), then measures, one query
at a time:

* ``numpy exact``: the matrix in RAM, one matrix-vector product per query (the floor; every
  ``ratio`` is p50 / its p50);
* ``lakefmt ds.query``: ``SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[...]) DESC LIMIT 10``
  for several ``SearchConfig(nprobe=...)`` (the IVF-SQ8 engine's knob) and the default,
  recall@10 against the exact top-10;
* ``lakefmt exact``: the same query with ``SearchConfig(exact=True)`` (a few queries);
* freshness: 10% more rows appended and not indexed (``IndexingMode.Off``), then indexed as a
  delta segment (``build_indexes``); 10% of the rows deleted (no deleted row may come back);
* filtered: ``WHERE bucket < b`` at 50%, 5%, 0.1%: rows returned (must be 10) and recall against
  the exact filtered top-10;
* Lance (``pip install pylance``): the same rows, an IVF_HNSW_SQ index, ``to_table(nearest=...)``
  end to end for several ``nprobes``/``ef``, build time and index bytes.

Prints markdown tables; ``RESULTS.md`` records a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, table
from index_vectors import centres_of, exact_topk, recall, sample

import lakefmt
from lakefmt import types

K = 10


def _vector_sql(q: np.ndarray) -> str:
    return ",".join(f"{v:.7f}" for v in q)


def _tql(q: np.ndarray, where: str = "") -> str:
    w = f" WHERE {where}" if where else ""
    return f"SELECT id{w} ORDER BY COSINE_SIMILARITY(emb, ARRAY[{_vector_sql(q)}]) DESC LIMIT {K}"


def _timed_queries(ds: Any, queries: np.ndarray, where: str = "") -> tuple[float, list[np.ndarray]]:
    texts = [_tql(q, where) for q in queries]
    ds.query(texts[0])["id"][:]  # warm: loads the segment and the vector cache
    samples, found = [], []
    for text in texts:
        start = time.perf_counter()
        ids = np.asarray(ds.query(text)["id"][:], dtype=np.int64)
        samples.append(time.perf_counter() - start)
        found.append(ids)
    return float(np.median(samples) * 1000), found


def _index_bytes(ds: Any) -> int:
    return sum(f.size for i in ds._manifest.indexes for s in i.segments for f in s.files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=0.04)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--lance-partitions", type=int, default=256)
    parser.add_argument("--skip-lance", action="store_true")
    args = parser.parse_args()
    # the vector cache must hold the column (1M x 384 float32 is 1.5 GB)
    os.environ.setdefault("LAKEFMT_QUERY_CACHE_BYTES", str(8 << 30))
    rng = np.random.default_rng(0)
    centres = centres_of(args.dim, args.clusters, rng)
    data = sample(centres, args.rows, rng, args.spread)
    fresh = sample(centres, args.rows // 10, rng, args.spread)
    queries = sample(centres, args.queries, rng, args.spread)
    buckets = rng.integers(0, 1000, args.rows).astype(np.int32)
    truth = exact_topk(data, queries, K)
    workdir = Path(tempfile.mkdtemp(prefix="lakefmt-index-query-"))
    rows: list[list[str]] = []
    try:
        start = time.perf_counter()
        for q in queries:
            np.argpartition(-(data @ q), K)[:K]
        numpy_p50 = (time.perf_counter() - start) / len(queries) * 1000

        def add(name: str, knob: str, rec: float, p50: float, extra: str = "") -> None:
            rows.append([name, knob, f"{rec:.3f}", f"{p50:.3f}", f"{p50 / numpy_p50:.4f}", extra])

        add("numpy exact (matrix in RAM)", "-", 1.0, numpy_p50)
        url = str(workdir / "lakefmt")
        ds = lakefmt.create(url)
        ds.add_column("id", types.Int64())
        ds.add_column("bucket", types.Int32())
        index = types.EmbeddingIndex(types.ClusteredQuantized)
        ds.add_column("emb", types.Embedding(args.dim, index_type=index))
        step = 100_000
        for lo in range(0, args.rows, step):
            hi = min(lo + step, args.rows)
            ds.append({"id": np.arange(lo, hi), "bucket": buckets[lo:hi], "emb": data[lo:hi]})
        ds.indexing_mode = lakefmt.IndexingMode.Off
        ds.commit("rows")
        start = time.perf_counter()
        ds.build_indexes()
        build = time.perf_counter() - start
        build_note = f"build {build:.1f} s, index {_index_bytes(ds) / 1e6:.0f} MB"
        settings = [(f"nprobe={n}", lakefmt.SearchConfig(nprobe=n)) for n in (4, 8, 16, 32, 64)]
        settings.append(("default (nprobe 2% of lists)", lakefmt.SearchConfig()))
        for label, config in settings:
            ds.query_config = config
            p50, found = _timed_queries(ds, queries)
            note = build_note if label == settings[0][0] else ""
            add("lakefmt ds.query (ClusteredQuantized)", label, recall(found, truth), p50, note)
        ds.query_config = lakefmt.SearchConfig(exact=True)
        p50, found = _timed_queries(ds, queries[:10])
        add("lakefmt ds.query exact", "exact=True", recall(found, truth[:10]), p50)
        knob = "default"
        ds.query_config = lakefmt.SearchConfig()

        # filtered search: exactly K rows, recall against the exact filtered top-10
        for cut, share in ((500, "50%"), (50, "5%"), (1, "0.1%")):
            allowed = np.flatnonzero(buckets < cut)
            sub_truth = allowed[exact_topk(data[allowed], queries, K)]
            p50, found = _timed_queries(ds, queries, f"bucket < {cut}")
            fewest = min(len(f) for f in found)
            add(
                f"lakefmt filtered {share}",
                knob,
                recall(found, sub_truth),
                p50,
                f"fewest rows {fewest}",
            )

        # freshness: 10% appended, not indexed, then indexed as a delta segment
        total = np.concatenate([data, fresh])
        fresh_truth = exact_topk(total, queries, K)
        n = args.rows
        ds.append(
            {
                "id": np.arange(n, n + len(fresh)),
                "bucket": np.zeros(len(fresh), np.int32),
                "emb": fresh,
            }
        )
        ds.commit("fresh rows")
        p50, found = _timed_queries(ds, queries)
        add("lakefmt +10% rows not indexed", knob, recall(found, fresh_truth), p50)
        start = time.perf_counter()
        ds.build_indexes()
        delta = time.perf_counter() - start
        p50, found = _timed_queries(ds, queries)
        add(
            "lakefmt +10% rows as a delta segment",
            knob,
            recall(found, fresh_truth),
            p50,
            f"delta build {delta:.1f} s",
        )
        doomed = rng.choice(len(total), len(total) // 10, replace=False)
        ds.delete(np.sort(doomed))
        ds.commit("delete 10%")
        keep = np.setdiff1d(np.arange(len(total)), doomed)
        del_truth = keep[exact_topk(total[keep], queries, K)]
        p50, found = _timed_queries(ds, queries)
        returned_deleted = int(sum(np.isin(f, doomed).sum() for f in found))
        add(
            "lakefmt after deleting 10%",
            knob,
            recall(found, del_truth),
            p50,
            f"deleted rows returned: {returned_deleted}",
        )

        if not args.skip_lance:
            rows.extend(_lance(data, queries, truth, workdir, args.lance_partitions, numpy_p50))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(machine())
    print(f"rows {args.rows}, dim {args.dim}, clusters {args.clusters}, spread {args.spread}")
    print(table(rows, ["search", "knob", "recall@10", "p50 ms", "ratio", "notes"]))


def _lance(
    data, queries, truth, workdir: Path, partitions: int, numpy_p50: float
) -> list[list[str]]:
    try:
        import lance
    except ImportError:
        return [["Lance", "-", "-", "-", "-", "pylance not installed: skipped"]]
    import pyarrow as pa

    os.environ.setdefault("LANCE_LOG", "error")
    dim = data.shape[1]
    emb = pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), dim)
    uri = str(workdir / "vectors.lance")
    ds = lance.write_dataset(pa.table({"id": pa.array(np.arange(len(data))), "emb": emb}), uri)
    start = time.perf_counter()
    ds.create_index("emb", index_type="IVF_HNSW_SQ", metric="cosine", num_partitions=partitions)
    build = time.perf_counter() - start
    nbytes = sum(p.stat().st_size for p in (Path(uri) / "_indices").rglob("*") if p.is_file())
    ds = lance.dataset(uri)
    out = []
    for nprobes, ef in ((4, 64), (8, 128), (16, 128), (32, 256)):
        samples, found = [], []
        for q in queries:
            start = time.perf_counter()
            got = ds.to_table(
                columns=["id"],
                nearest={"column": "emb", "q": q, "k": K, "nprobes": nprobes, "ef": ef},
            )
            samples.append(time.perf_counter() - start)
            found.append(got["id"].to_numpy())
        p50 = float(np.median(samples) * 1000)
        note = f"build {build:.1f} s, index {nbytes / 1e6:.0f} MB" if not out else ""
        out.append(
            [
                f"Lance IVF_HNSW_SQ ({partitions} partitions), to_table(nearest=)",
                f"nprobes={nprobes},ef={ef}",
                f"{recall(found, truth):.3f}",
                f"{p50:.3f}",
                f"{p50 / numpy_p50:.4f}",
                note,
            ]
        )
    return out


if __name__ == "__main__":
    main()
