"""Vector indexes side by side: recall@10 against latency for the ANN libraries issue 17 may use.

    python benchmarks/index_vectors.py --rows 200000 --dim 384 --clusters 2000 --queries 200

Generates clustered unit vectors shaped like real embeddings (``--clusters`` Gaussian clusters
around random unit centres, then normalised; uniform noise would flatter every index), and
queries drawn from the same distribution (not rows of the data). The exact top-10 by inner
product (cosine, since every vector has norm 1) is the ground truth. Then, in one run:

* numpy exact search over the matrix in RAM (one matrix-vector product per query, BLAS on
  every core): the baseline every ratio is taken against;
* faiss-cpu: HNSW (flat and 8-bit scalar-quantised vectors), IVF-Flat, IVF-SQ8 and IVF-PQ
  with an exact re-rank of the PQ candidates; HNSW-SQ8 with an exact re-rank of the top
  ``k x --refine`` from the float32 matrix (``faiss-rerank``: the design issue 17 proposes),
  and the same with a WHERE of 50%, 5% and 0.1% selectivity as an in-graph bitmap
  (``faiss-filtered``);
* usearch: HNSW with float32 and int8 vectors;
* Lance (``pip install pylance``), when installed: IVF_HNSW_SQ through ``to_table(nearest=...)``.

For each index: build time (``--build-threads`` threads), serialized bytes, and for several
settings of its search knob (efSearch, nprobe, expansion) the recall@10 and the p50 latency of
one query at a time on one thread (Lance uses its own thread pool). Prints a markdown table;
``ratio`` is p50 / numpy exact's p50 and ``bytes x`` is index bytes / raw float32 bytes.
Libraries that are not installed are skipped and said so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, table

K = 10


def centres_of(dim: int, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """``clusters`` random unit vectors: the centres the data is drawn around."""
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return centres


def sample(centres: np.ndarray, n: int, rng: np.random.Generator, spread: float) -> np.ndarray:
    """``n`` unit vectors, each a random centre plus Gaussian noise, normalised."""
    which = rng.integers(0, len(centres), n)
    x = centres[which] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32) * spread
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the exact top-k by inner product, best first, per query."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ data.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out[start : start + 64] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    """Mean recall@k of the found ids against the true top-k."""
    return float(
        np.mean(
            [
                len(set(f[:K].tolist()) & set(t.tolist())) / K
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )


def per_query(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray):
    """Run ``search`` one query at a time (after two warm-up calls): p50 seconds and the ids."""
    search(queries[0])
    search(queries[1])
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        times.append(time.perf_counter() - start)
        found.append(np.asarray(ids, dtype=np.int64))
    return float(np.median(times)), found


class Result:
    def __init__(self, name: str, build_s: float, nbytes: int) -> None:
        self.name, self.build_s, self.nbytes = name, build_s, nbytes
        self.points: list[tuple[str, float, float]] = []  # (knob, recall, p50 seconds)


def bench_numpy(data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> Result:
    def search(q: np.ndarray) -> np.ndarray:
        scores = data @ q
        part = np.argpartition(-scores, K)[:K]
        return part[np.argsort(-scores[part])]

    res = Result("numpy exact (matrix in RAM)", 0.0, data.nbytes)
    p50, found = per_query(search, queries)
    res.points.append(("-", recall(found, truth), p50))
    return res


def bench_faiss(data, queries, truth, threads: int, nlist: int) -> Iterable[Result]:
    import faiss

    dim = data.shape[1]

    def built(name: str, make: Callable[[], Any], train: bool) -> tuple[Any, Result]:
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        index = make()
        if train:
            index.train(data)
        index.add(data)
        build = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        return index, Result(name, build, len(faiss.serialize_index(index)))

    def sweep(index: Any, res: Result, knob: str, values: list[int], setter) -> Result:
        for v in values:
            setter(index, v)
            p50, found = per_query(lambda q: index.search(q[None, :], K)[1][0], queries)
            res.points.append((f"{knob}={v}", recall(found, truth), p50))
        return res

    def hnsw_ef(index: Any, v: int) -> None:
        index.hnsw.efSearch = v

    def ivf_probe(index: Any, v: int) -> None:
        faiss.extract_index_ivf(index).nprobe = v

    ip = faiss.METRIC_INNER_PRODUCT
    hnsw_values = [16, 32, 64, 128]
    ivf_values = [4, 8, 16, 32, 64]

    def hnsw_flat() -> Any:
        index = faiss.IndexHNSWFlat(dim, 32, ip)
        index.hnsw.efConstruction = 40
        return index

    index, res = built("faiss HNSW32 flat (efC 40)", hnsw_flat, False)
    yield sweep(index, res, "efSearch", hnsw_values, hnsw_ef)
    del index

    def hnsw_sq() -> Any:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, ip)
        index.hnsw.efConstruction = 40
        return index

    index, res = built("faiss HNSW32 SQ8 (efC 40)", hnsw_sq, True)
    yield sweep(index, res, "efSearch", hnsw_values, hnsw_ef)
    del index

    index, res = built(
        f"faiss IVF{nlist} flat",
        lambda: faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, ip),
        True,
    )
    yield sweep(index, res, "nprobe", ivf_values, ivf_probe)
    del index

    index, res = built(
        f"faiss IVF{nlist} SQ8",
        lambda: faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, ip
        ),
        True,
    )
    yield sweep(index, res, "nprobe", ivf_values, ivf_probe)
    del index

    def ivf_pq_refine() -> Any:
        index = faiss.IndexRefineFlat(
            faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, 48, 8, ip)
        )
        index.k_factor = 10
        return index

    index, res = built(f"faiss IVF{nlist} PQ48 + exact re-rank x10", ivf_pq_refine, True)
    yield sweep(index, res, "nprobe", ivf_values, ivf_probe)


def bench_faiss_rerank(data, queries, truth, threads: int, refine: int) -> Iterable[Result]:
    """faiss HNSW32 over SQ8 codes, the top ``k x refine`` re-ranked exactly from the float32
    vectors (which lakefmt keeps in its Parquet column: not counted in the index bytes)."""
    import faiss

    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index = faiss.IndexHNSWSQ(
        data.shape[1], faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT
    )
    index.hnsw.efConstruction = 40
    index.train(data)
    index.add(data)
    build = time.perf_counter() - start
    faiss.omp_set_num_threads(1)
    res = Result(
        f"faiss HNSW32 SQ8 (efC 40) + exact re-rank of {refine}k",
        build,
        len(faiss.serialize_index(index)),
    )
    for ef in (32, 64, 128, 256):
        index.hnsw.efSearch = max(ef, K * refine)

        def search(q: np.ndarray) -> np.ndarray:
            cand = index.search(q[None, :], K * refine)[1][0]
            cand = cand[cand >= 0]
            scores = data[cand] @ q
            return cand[np.argsort(-scores)[:K]]

        p50, found = per_query(search, queries)
        res.points.append((f"efSearch={max(ef, K * refine)}", recall(found, truth), p50))
    yield res


def bench_faiss_filtered(data, queries, threads: int, refine: int) -> Iterable[Result]:
    """Filtered search on HNSW32-SQ8 + re-rank: the allowed rows (a random ``label`` at 50%, 5%
    and 0.1% selectivity) go into the graph search as a bitmap (never a post-filter). Reports
    recall against the exact filtered top-10 and, in the knob, the fewest rows any query got."""
    import faiss

    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index = faiss.IndexHNSWSQ(
        data.shape[1], faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT
    )
    index.hnsw.efConstruction = 40
    index.train(data)
    index.add(data)
    build = time.perf_counter() - start
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(3)
    for share in (0.5, 0.05, 0.001):
        allowed = rng.random(len(data)) < share
        rows = np.flatnonzero(allowed)
        if len(rows) <= K:
            continue  # too few rows at this scale for a top-k
        truth = rows[exact_topk(data[rows], queries, K)]
        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(data), faiss.swig_ptr(bits))
        res = Result(f"filtered {share:.1%}: faiss HNSW32 SQ8 + re-rank", build, 0)
        for ef in (64, 256):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef, K * refine))
            fewest = [K]

            def search(q: np.ndarray, params=params, fewest=fewest) -> np.ndarray:
                cand = index.search(q[None, :], K * refine, params=params)[1][0]
                cand = cand[cand >= 0]
                top = cand[np.argsort(-(data[cand] @ q))[:K]]
                fewest[0] = min(fewest[0], len(top))
                return top

            p50, found = per_query(search, queries)
            res.points.append(
                (
                    f"efSearch={max(ef, K * refine)}, fewest rows {fewest[0]}",
                    recall(found, truth),
                    p50,
                )
            )
        yield res


def bench_usearch(data, queries, truth, threads: int, workdir: Path) -> Iterable[Result]:
    from usearch.index import Index

    keys = np.arange(len(data), dtype=np.uint64)
    for dtype in ("f32", "i8"):
        index = Index(
            ndim=data.shape[1], metric="ip", dtype=dtype, connectivity=32, expansion_add=40
        )
        start = time.perf_counter()
        index.add(keys, data, threads=threads)
        build = time.perf_counter() - start
        path = workdir / f"usearch-{dtype}.usearch"
        index.save(str(path))
        res = Result(f"usearch HNSW M32 {dtype} (efC 40)", build, path.stat().st_size)
        for ef in (16, 32, 64, 128):
            index.expansion_search = ef
            p50, found = per_query(lambda q, ix=index: ix.search(q, K, threads=1).keys, queries)
            res.points.append((f"expansion={ef}", recall(found, truth), p50))
        yield res
        del index


def bench_lance(data, queries, truth, workdir: Path, partitions: int) -> Iterable[Result]:
    os.environ.setdefault("LANCE_LOG", "error")  # one deprecation warning per query otherwise
    import lance
    import pyarrow as pa

    dim = data.shape[1]
    table_ = pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), dim)})
    uri = str(workdir / "vectors.lance")
    ds = lance.write_dataset(table_, uri)
    start = time.perf_counter()
    ds.create_index("emb", index_type="IVF_HNSW_SQ", metric="cosine", num_partitions=partitions)
    build = time.perf_counter() - start
    nbytes = sum(p.stat().st_size for p in (Path(uri) / "_indices").rglob("*") if p.is_file())
    res = Result(f"Lance IVF_HNSW_SQ ({partitions} partitions)", build, nbytes)
    ds = lance.dataset(uri)
    for nprobes, ef in ((1, 32), (2, 64), (4, 64), (8, 128), (16, 128)):

        def search(q: np.ndarray, nprobes: int = nprobes, ef: int = ef) -> np.ndarray:
            got = ds.to_table(
                columns=[],
                with_row_id=True,
                nearest={"column": "emb", "q": q, "k": K, "nprobes": nprobes, "ef": ef},
            )
            return got["_rowid"].to_numpy()

        p50, found = per_query(search, queries)
        res.points.append((f"nprobes={nprobes},ef={ef}", recall(found, truth), p50))
    yield res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=0.04, help="noise per dimension")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--nlist", type=int, default=1024, help="IVF lists for faiss")
    parser.add_argument("--lance-partitions", type=int, default=64)
    parser.add_argument("--refine", type=int, default=4, help="re-rank k x refine candidates")
    parser.add_argument("--only", default="numpy,faiss,faiss-rerank,faiss-filtered,usearch,lance")
    args = parser.parse_args()
    only = set(args.only.split(","))

    rng = np.random.default_rng(17)
    centres = centres_of(args.dim, args.clusters, rng)
    data = sample(centres, args.rows, rng, args.spread)
    queries = sample(centres, args.queries, rng, args.spread)
    truth = exact_topk(data, queries, K)
    gap = (queries @ data[truth[:, 0]].T).diagonal() - (queries @ data[truth[:, -1]].T).diagonal()
    print(f"# {args.rows:,} x {args.dim} unit vectors, {args.clusters} clusters; {machine()}")
    print(f"mean cosine gap between 1st and 10th true neighbour: {gap.mean():.4f}\n")

    results: list[Result] = []
    skipped: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="lakefmt-index-bench-"))
    try:
        if "numpy" in only:
            results.append(bench_numpy(data, queries, truth))
        runs: list[tuple[str, Callable[[], Iterable[Result]]]] = [
            (
                "faiss-filtered",
                lambda: bench_faiss_filtered(data, queries, args.build_threads, args.refine),
            ),
            (
                "faiss-rerank",
                lambda: bench_faiss_rerank(data, queries, truth, args.build_threads, args.refine),
            ),
            ("faiss", lambda: bench_faiss(data, queries, truth, args.build_threads, args.nlist)),
            ("usearch", lambda: bench_usearch(data, queries, truth, args.build_threads, workdir)),
            ("lance", lambda: bench_lance(data, queries, truth, workdir, args.lance_partitions)),
        ]
        for name, run in runs:
            if name not in only:
                continue
            try:
                for res in run():
                    results.append(res)
                    print(f"  done: {res.name} (build {res.build_s:.1f} s)", flush=True)
            except ImportError as exc:
                skipped.append(f"{name} ({exc})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    base = results[0].points[0][2] if results and "numpy" in only else None
    raw = data.nbytes
    rows = []
    for res in results:
        for knob, rec, p50 in res.points:
            rows.append(
                [
                    res.name,
                    knob,
                    f"{rec:.3f}",
                    f"{p50 * 1000:.3f}",
                    f"{p50 / base:.4f}" if base else "-",
                    f"{res.build_s:.1f}",
                    f"{res.nbytes / 1e6:.1f}",
                    f"{res.nbytes / raw:.2f}",
                ]
            )
    header = ["index", "knob", "recall@10", "p50 ms", "ratio", "build s", "MB", "bytes x"]
    print()
    print(table(rows, header))
    for s in skipped:
        print(f"\nskipped: {s}")


if __name__ == "__main__":
    main()
