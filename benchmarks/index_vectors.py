"""Vector indexes side by side: recall@10 against latency for the ANN libraries issue 17 may use.

    python benchmarks/index_vectors.py --rows 200000 --dim 384 --clusters 2000 --queries 200

Generates clustered unit vectors shaped like real embeddings (``--clusters`` Gaussian clusters
around random unit centres, then normalised; uniform noise would flatter every index), and
queries drawn from the same distribution (not rows of the data). The exact top-10 by inner
product (cosine, since every vector has norm 1) is the ground truth. Then, in one run:

* numpy exact search over the matrix in RAM (one matrix-vector product per query, BLAS on
  every core): the baseline every ratio is taken against;
* lakefmt's own engine (:mod:`lakefmt.indexes.embedding`, faiss inside), each kind of
  ``--engine-kinds`` (``engine``): its own top-10 and its top ``k x --refine`` re-ranked
  exactly from the float32 matrix (what lakefmt does from the stored column); the default
  kind (HNSW32-SQ8) with a WHERE of 50%, 5%, 0.5% and 0.1% selectivity passed in as the
  ``allowed`` mask, beside numpy's exact scoring of the allowed rows (``engine-filtered``);
  and freshness, the index built on the first 90% and the last ``--fresh`` 10% answered
  exactly or by a delta index, merged (``engine-fresh``);
* faiss-cpu directly: HNSW (flat and 8-bit scalar-quantised vectors), IVF-Flat, IVF-SQ8 and
  IVF-PQ with an exact re-rank of the PQ candidates (``faiss``);
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


def _rerank(data: np.ndarray, q: np.ndarray, cand: np.ndarray, k: int = K) -> np.ndarray:
    """The exact top-k of the candidates, from the float32 matrix (what lakefmt does from
    the stored column)."""
    return cand[np.argsort(-(data[cand] @ q))[:k]]


def _engine_build(data: np.ndarray, kind: str, threads: int, valid=None):
    from lakefmt.indexes.embedding import (
        EmbeddingIndex,
        EmbeddingIndexParams,
        build_embedding_index,
    )

    start = time.perf_counter()
    blob = build_embedding_index(data, valid, EmbeddingIndexParams(kind=kind), threads=threads)
    build = time.perf_counter() - start
    return EmbeddingIndex.from_bytes(blob), build


_ENGINE_NAMES = {
    "clustered": "HNSW32 flat",
    "clustered_quantized": "IVF-SQ8",
    "pooled_quantized": "IVF-PQ",
}


def _knob(index: Any) -> tuple[str, list[int]]:
    """The search knob of an engine index and the values swept."""
    if index.structure == "ivf":
        return "nprobe", [4, 8, 16, 32, 64, 128]
    return "ef_search", [16, 32, 64, 128, 256]


def bench_engine(
    data, queries, truth, threads: int, refine: int, kinds: list[str], built: dict
) -> Iterable[Result]:
    """lakefmt's engine (:mod:`lakefmt.indexes.embedding`), each kind: its own top-10, and
    its top ``k x refine`` re-ranked exactly from the float32 matrix (the float32 vectors are
    lakefmt's Parquet column: not counted in the index bytes). ``pooled_quantized`` re-ranks
    ``k x 10`` (PQ codes cannot order close neighbours)."""
    for kind in kinds:
        index, build = _engine_build(data, kind, threads)
        if kind == "clustered_quantized":
            built[kind] = (index, build)  # reused by the filtered and freshness runs
        label = f"lakefmt engine {kind} ({_ENGINE_NAMES[kind]}, cosine)"
        raw = Result(f"{label}, its own top-10", build, index.nbytes)
        knob, values = _knob(index)
        depth = K * 10 if kind == "pooled_quantized" else K * refine
        reranked = Result(f"{label} + exact re-rank of top {depth}", build, index.nbytes)
        for v in values:
            opts = {knob: v}
            p50, found = per_query(lambda q, o=opts, ix=index: ix.search(q, K, **o), queries)
            raw.points.append((f"{knob}={v}", recall(found, truth), p50))
            if knob == "ef_search":
                opts = {knob: max(v, depth)}
                if any(p[0] == f"{knob}={opts[knob]}" for p in reranked.points):
                    continue  # ef below the depth: the same search as the last one

            def search(q: np.ndarray, o=opts, ix=index, depth=depth) -> np.ndarray:
                return _rerank(data, q, ix.search(q, depth, **o))

            p50, found = per_query(search, queries)
            reranked.points.append((f"{knob}={opts[knob]}", recall(found, truth), p50))
        yield raw
        yield reranked


def bench_engine_filtered(
    data, queries, threads: int, refine: int, built: dict
) -> Iterable[Result]:
    """Filtered search on the engine's default kind (IVF-SQ8) + re-rank: the allowed rows
    (a random ``label`` at 50%, 5%, 0.5% and 0.1% selectivity) go into the search as
    ``allowed`` (a bitmap inside the search, never a post-filter; ``nprobe`` widened by
    1 / share as ``ds.query`` does). Reports recall against the exact
    filtered top-10, the fewest rows any query got, and beside it the exact scoring of the
    allowed rows with numpy (gather the rows, score, top-10), which is exact by construction."""
    if "clustered_quantized" not in built:
        built["clustered_quantized"] = _engine_build(data, "clustered_quantized", threads)
    index, build = built["clustered_quantized"]
    rng = np.random.default_rng(3)
    for share in (0.5, 0.05, 0.005, 0.001):
        allowed = rng.random(len(data)) < share
        rows = np.flatnonzero(allowed)
        if len(rows) <= K:
            continue  # too few rows at this scale for a top-k
        truth = rows[exact_topk(data[rows], queries, K)]
        name = _ENGINE_NAMES["clustered_quantized"]
        res = Result(
            f"filtered {share:.1%} ({len(rows):,} rows): engine {name} + re-rank", build, 0
        )
        knob, values = _knob(index)
        for v in values[1:4]:
            if knob == "nprobe":
                v = min(int(np.ceil(v / share)), index.params.nlist)
            else:
                v = max(v * 4, K * refine)
            fewest = [K]

            def search(q: np.ndarray, knob=knob, v=v, fewest=fewest, allowed=allowed) -> np.ndarray:
                cand = index.search(q, K * refine, allowed=allowed, **{knob: v})
                top = _rerank(data, q, cand)
                fewest[0] = min(fewest[0], len(top))
                return top

            p50, found = per_query(search, queries)
            res.points.append((f"{knob}={v}, fewest rows {fewest[0]}", recall(found, truth), p50))

        def exact(q: np.ndarray, rows=rows) -> np.ndarray:
            scores = data[rows] @ q
            part = np.argpartition(-scores, K)[:K]
            return rows[part[np.argsort(-scores[part])]]

        p50, found = per_query(exact, queries)
        res.points.append(
            ("numpy exact over the allowed rows (gather + score)", recall(found, truth), p50)
        )
        yield res


def bench_engine_fresh(
    data, queries, truth, threads: int, refine: int, fresh: float, built: dict
) -> Iterable[Result]:
    """Freshness: the default kind built on the first ``1 - fresh`` of the rows; the rest
    (appended after the build) answered (a) exactly with numpy, (b) by a delta index built
    over them alone (what ``automatic`` indexing adds at commit); both merged with the
    re-ranked index candidates into one top-10. Against the index over every row."""
    if "clustered_quantized" not in built:
        built["clustered_quantized"] = _engine_build(data, "clustered_quantized", threads)
    full, full_build = built["clustered_quantized"]
    cut = round(len(data) * (1 - fresh))
    main, build = _engine_build(data[:cut], "clustered_quantized", threads)
    tail = data[cut:]
    delta, delta_build = _engine_build(tail, "clustered_quantized", threads)
    depth = K * refine

    knob, values = _knob(main)

    def merged(q: np.ndarray, v: int, tail_top: np.ndarray) -> np.ndarray:
        cand = main.search(q, depth, **{knob: v})
        both = np.concatenate([cand, tail_top])
        return _rerank(data, q, both)

    name = _ENGINE_NAMES["clustered_quantized"]
    res_full = Result(f"fresh: engine {name} over all rows + re-rank", full_build, full.nbytes)
    res_exact = Result(
        f"fresh: engine over {1 - fresh:.0%} + numpy exact over the last {fresh:.0%}",
        build,
        main.nbytes,
    )
    res_delta = Result(
        f"fresh: engine over {1 - fresh:.0%} + delta index over the last {fresh:.0%} "
        f"(delta build {delta_build:.1f} s)",
        build,
        main.nbytes + delta.nbytes,
    )
    for v in values[1:4]:
        if knob == "ef_search":
            v = max(v * 2, depth)
        p50, found = per_query(
            lambda q, v=v: _rerank(data, q, full.search(q, depth, **{knob: v})), queries
        )
        res_full.points.append((f"{knob}={v}", recall(found, truth), p50))

        def exact_tail(q: np.ndarray, v=v) -> np.ndarray:
            scores = tail @ q
            part = np.argpartition(-scores, K)[:K] + cut
            return merged(q, v, part)

        p50, found = per_query(exact_tail, queries)
        res_exact.points.append((f"{knob}={v}", recall(found, truth), p50))

        def delta_tail(q: np.ndarray, v=v) -> np.ndarray:
            return merged(q, v, delta.search(q, depth, **{knob: v}) + cut)

        p50, found = per_query(delta_tail, queries)
        res_delta.points.append((f"{knob}={v}", recall(found, truth), p50))
    yield res_full
    yield res_exact
    yield res_delta


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
    parser.add_argument(
        "--only", default="numpy,engine,engine-filtered,engine-fresh,faiss,usearch,lance"
    )
    parser.add_argument(
        "--engine-kinds",
        default="clustered,clustered_quantized,pooled_quantized",
        help="lakefmt engine kinds for the 'engine' run",
    )
    parser.add_argument("--fresh", type=float, default=0.1, help="share appended after the build")
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
        built: dict[str, Any] = {}  # engine indexes built once, reused by the runs after
        kinds = args.engine_kinds.split(",")
        runs: list[tuple[str, Callable[[], Iterable[Result]]]] = [
            (
                "engine",
                lambda: bench_engine(
                    data, queries, truth, args.build_threads, args.refine, kinds, built
                ),
            ),
            (
                "engine-filtered",
                lambda: bench_engine_filtered(
                    data, queries, args.build_threads, args.refine, built
                ),
            ),
            (
                "engine-fresh",
                lambda: bench_engine_fresh(
                    data, queries, truth, args.build_threads, args.refine, args.fresh, built
                ),
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
                    for knob, rec, p50 in res.points:  # kept if a long run is stopped
                        print(f"    {knob}: recall {rec:.3f}, p50 {p50 * 1000:.3f} ms", flush=True)
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
