"""The vector index engine against numpy brute force: recall, metrics, allowed masks, invalid
rows, the serialized form and its damage, parameters and the thread budget."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakefmt._pool import thread_budget
from lakefmt.errors import FormatError, InvalidArgumentError, MissingDependencyError
from lakefmt.indexes.embedding import (
    KINDS,
    METRICS,
    EmbeddingIndex,
    EmbeddingIndexParams,
    build_embedding_index,
    default_nlist,
    default_pq_m,
)

#: Every (kind, structure) the engine builds: the default of each kind, and the HNSW graph
#: over SQ8 codes that ``clustered_quantized`` was before header version 2.
CONFIGS = [
    ("clustered", "hnsw"),
    ("clustered_quantized", "ivf"),
    ("clustered_quantized", "hnsw"),
    ("pooled_quantized", "ivf"),
]
CONFIG_IDS = [f"{k}-{s}" for k, s in CONFIGS]

faiss = pytest.importorskip("faiss")

K = 10


def clustered(n: int, dim: int, seed: int, clusters: int = 40, spread: float = 0.05):
    """Unit vectors around ``clusters`` random unit centres (like real embeddings), and 50
    queries from the same distribution."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m: int) -> np.ndarray:
        x = centres[rng.integers(0, clusters, m)]
        x = x + rng.standard_normal((m, dim)).astype(np.float32) * spread
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return draw(n), draw(50)


def exact_scores(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Higher is better, for every row."""
    x = data.astype(np.float64)
    q = q.astype(np.float64)
    if metric == "cosine":
        return (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    if metric == "dot":
        return x @ q
    return -((x - q) ** 2).sum(axis=1)


def exact_top(data, q, metric, k, allowed=None) -> np.ndarray:
    scores = exact_scores(data, q, metric)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:k]
    return order[np.isfinite(scores[order])]


def recall_at(data, queries, index, metric, depth, **knobs) -> float:
    """Mean share of the exact top-10 found in the index's top ``depth``."""
    hits = []
    for q in queries:
        truth = set(exact_top(data, q, metric, K).tolist())
        hits.append(len(truth & set(index.search(q, depth, **knobs).tolist())) / K)
    return float(np.mean(hits))


@cache
def built(
    kind: str, structure: str | None = None, metric: str = "cosine", n: int = 2000, dim: int = 64
) -> EmbeddingIndex:
    data, _ = clustered(n, dim, seed=1)
    params = EmbeddingIndexParams(kind=kind, metric=metric, structure=structure)
    return EmbeddingIndex.from_bytes(build_embedding_index(data, None, params))


def thorough(index: EmbeddingIndex, ef: int = 500) -> dict[str, int]:
    """The knob of a search that visits every IVF list, or a wide HNSW one."""
    return {"nprobe": index.params.nlist or 1} if index.structure == "ivf" else {"ef_search": ef}


# ---- recall and metrics -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "structure"), CONFIGS[:3], ids=CONFIG_IDS[:3])
def test_clustered_kinds_recall_at_the_default_knob(kind: str, structure: str) -> None:
    data, queries = clustered(2000, 64, seed=1)
    index = built(kind, structure)
    assert index.structure == structure
    assert (index.count, index.dim, index.indexed) == (2000, 64, 2000)
    assert recall_at(data, queries, index, "cosine", K) >= 0.95


def test_clustered_quantized_is_ivf_sq8_by_default() -> None:
    index = built("clustered_quantized")
    assert index.structure == "ivf"
    assert index.params.nlist == default_nlist(2000) and index.params.niter == 10
    assert index.params.m is None and index.params.ef_construction is None
    assert isinstance(index._index, faiss.IndexIVFScalarQuantizer)


@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 600),
    dim=st.integers(2, 24),
    clusters=st.integers(1, 30),
    nlist=st.one_of(st.none(), st.integers(1, 64)),
    share=st.floats(0.05, 1.0),
)
def test_ivf_sq8_with_every_list_holds_the_exact_top_k(
    seed: int, rows: int, dim: int, clusters: int, nlist: int | None, share: float
) -> None:
    # the property behind recall: probing every list, the 4k best by SQ8 codes hold the
    # exact top-k (what the caller's exact re-rank of k x accuracy_factor needs), and a
    # filtered search returns exactly min(k, allowed) allowed rows
    data, queries = clustered(rows, dim, seed=seed % 1000, clusters=clusters, spread=0.1)
    params = EmbeddingIndexParams("clustered_quantized", nlist=nlist)
    index = EmbeddingIndex.from_bytes(build_embedding_index(data, None, params))
    allowed = np.random.default_rng(seed).random(rows) < share
    for q in queries[:5]:
        got = index.search(q, 4 * K, nprobe=index.params.nlist)
        assert set(exact_top(data, q, "cosine", min(K, rows)).tolist()) <= set(got.tolist())
        got = index.search(q, K, allowed=allowed, nprobe=index.params.nlist)
        assert len(got) == min(K, int(allowed.sum())) and allowed[got].all()
        truth = exact_top(data, q, "cosine", K, allowed)
        wide = index.search(q, 4 * K, allowed=allowed, nprobe=index.params.nlist)
        assert set(truth.tolist()) <= set(wide.tolist())


def test_pooled_quantized_candidates_hold_the_true_top_ten() -> None:
    # PQ codes cannot order close neighbours; the caller re-ranks k x 10 candidates exactly
    data, queries = clustered(2000, 64, seed=1)
    index = built("pooled_quantized")
    assert index.params.nlist == default_nlist(2000) and index.params.pq_m == 8
    assert recall_at(data, queries, index, "cosine", 10 * K) >= 0.95


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("kind", "structure"), CONFIGS, ids=CONFIG_IDS)
def test_each_metric_orders_like_brute_force_on_easy_data(
    kind: str, structure: str, metric: str
) -> None:
    # few points with distinct norms, queries near a row: the float32 graph ranks the top-3
    # exactly as numpy does; the quantised kinds find the best row (their scores below it
    # are approximate, which the caller's exact re-rank fixes)
    rng = np.random.default_rng(7)
    data = rng.standard_normal((300, 16)) * rng.uniform(0.5, 3, (300, 1))
    data = data.astype(np.float32)
    params = EmbeddingIndexParams(kind=kind, metric=metric, structure=structure)
    index = EmbeddingIndex.from_bytes(build_embedding_index(data, None, params))
    knobs = thorough(index, 300)
    agree = []
    for row in rng.integers(0, 300, 30):
        q = data[row] + rng.standard_normal(16).astype(np.float32) * 0.05
        truth = exact_top(data, q, metric, 3)
        got = index.search(q, 3, **knobs)
        if kind == "clustered":
            agree.append(list(got) == list(truth))
        else:
            agree.append(got[0] == truth[0] and len(set(got) & set(truth)) >= 2)
    assert np.mean(agree) >= 0.9


def test_metrics_differ_where_they_should() -> None:
    # dot favours long vectors, cosine ignores length: the index follows the metric asked
    data = np.array([[1, 0], [10, 1], [0, 1], [-1, 0]], dtype=np.float32)
    q = np.array([1, 0], dtype=np.float32)
    answers = {}
    for metric in METRICS:
        index = EmbeddingIndex.from_bytes(
            build_embedding_index(data, None, EmbeddingIndexParams("clustered", metric))
        )
        answers[metric] = index.search(q, 4).tolist()
    assert answers["cosine"][0] == 0 and answers["l2"][0] == 0 and answers["dot"][0] == 1
    assert answers["cosine"][-1] == 3 and answers["dot"][-1] == 3 and answers["l2"][-1] == 1


def test_query_of_any_numeric_dtype_and_shape() -> None:
    index = built("clustered")
    _, queries = clustered(2000, 64, seed=1)
    q = queries[0]
    expected = index.search(q, K)
    assert list(index.search(q.astype(np.float64), K)) == list(expected)
    assert list(index.search(q[None, :], K)) == list(expected)
    assert index.search(q, K).dtype == np.int64


# ---- allowed masks and invalid rows -------------------------------------------------------


@given(
    config=st.sampled_from(CONFIGS),
    seed=st.integers(0, 2**32 - 1),
    share=st.floats(0.0, 1.0),
    k=st.integers(0, 60),
    which=st.integers(0, 49),
)
def test_allowed_mask_is_honoured(
    config: tuple[str, str], seed: int, share: float, k: int, which: int
) -> None:
    index = built(*config)
    _, queries = clustered(2000, 64, seed=1)
    allowed = np.random.default_rng(seed).random(index.count) < share
    got = index.search(queries[which], k, allowed=allowed)
    assert got.dtype == np.int64 and len(got) <= k
    assert len(set(got.tolist())) == len(got)
    assert allowed[got].all()
    if index.structure == "ivf":
        # every list probed: an IVF search sees every allowed row, so it returns exactly
        # min(k, allowed) rows (a filter inside the search, not after it)
        full = index.search(queries[which], k, allowed=allowed, nprobe=index.params.nlist)
        assert len(full) == min(k, int(allowed.sum()))
        assert allowed[full].all()


def test_allowed_search_returns_the_filtered_neighbours() -> None:
    # the filter is inside the search: with a 5% mask a post-filter of the top-10 would keep
    # about one row; the search still yields the allowed rows' top-10
    data, queries = clustered(2000, 64, seed=1)
    index = built("clustered")
    allowed = np.random.default_rng(5).random(2000) < 0.05  # 100 rows in 40 clusters
    hits = []
    for q in queries:
        truth = exact_top(data, q, "cosine", K, allowed)
        got = index.search(q, K, allowed=allowed, ef_search=400)
        assert len(got) == K
        hits.append(len(set(truth.tolist()) & set(got.tolist())) / K)
    assert np.mean(hits) >= 0.95


@pytest.mark.parametrize(("kind", "structure"), CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("metric", METRICS)
def test_invalid_rows_are_never_returned(kind: str, structure: str, metric: str) -> None:
    data, queries = clustered(400, 16, seed=2)
    data = data * 3  # not unit: zero stays the only zero-norm vector
    valid = np.ones(400, dtype=bool)
    valid[::7] = False  # null vectors
    data[1] = np.nan
    data[2, 5] = np.inf
    data[3] = 0.0  # undefined under cosine only
    data[4] = np.float32(np.finfo(np.float32).max)  # overflows float32 arithmetic
    data[5] = 1e18  # large but fine: squared norm 1.6e37
    params = EmbeddingIndexParams(kind=kind, metric=metric, structure=structure)
    index = EmbeddingIndex.from_bytes(build_embedding_index(data, valid, params))
    expected = valid.copy()
    expected[[1, 2, 4]] = False
    expected[5] = True
    if metric == "cosine":
        expected[3] = False
    assert index.count == 400 and index.indexed == int(expected.sum())
    knobs = thorough(index)
    for q in queries[:10]:
        got = index.search(q, 400, **knobs)
        assert expected[got].all()
        if structure == "ivf":
            assert sorted(got.tolist()) == np.flatnonzero(expected).tolist()
        allowed = ~expected | (np.arange(400) % 2 == 0)  # invalid rows allowed: still never
        got = index.search(q, K, allowed=allowed, **knobs)
        assert expected[got].all() and allowed[got].all()


@pytest.mark.parametrize(("kind", "structure"), CONFIGS, ids=CONFIG_IDS)
def test_k_beyond_count_and_k_zero(kind: str, structure: str) -> None:
    data, queries = clustered(30, 8, seed=3, clusters=3)
    params = EmbeddingIndexParams(kind=kind, structure=structure)
    index = EmbeddingIndex.from_bytes(build_embedding_index(data, None, params))
    got = index.search(queries[0], 1000, **thorough(index, 100))
    assert len(got) <= 30 and (got >= 0).all()
    if (kind, structure) != ("clustered_quantized", "hnsw"):
        assert sorted(got.tolist()) == list(range(30))
    assert index.search(queries[0], 0).tolist() == []
    assert index.search(queries[0], 5, allowed=np.zeros(30, dtype=bool)).tolist() == []


@pytest.mark.parametrize(("kind", "structure"), CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("rows", [0, 1, 2, 5])
def test_empty_and_tiny_indexes(kind: str, structure: str, rows: int) -> None:
    data = np.random.default_rng(4).standard_normal((rows, 12)).astype(np.float32)
    params = EmbeddingIndexParams(kind=kind, structure=structure)
    blob = build_embedding_index(data, None, params)
    index = EmbeddingIndex.from_bytes(blob)
    assert (index.count, index.dim, index.indexed, index.nbytes) == (rows, 12, rows, len(blob))
    q = np.ones(12, dtype=np.float32)
    assert sorted(index.search(q, 10).tolist()) == list(range(rows))
    if rows:
        assert index.search(q, 1).tolist() == exact_top(data, q, "cosine", 1).tolist()


def test_all_rows_invalid_is_an_empty_index() -> None:
    data = np.zeros((50, 4), dtype=np.float32)
    index = EmbeddingIndex.from_bytes(
        build_embedding_index(data, None, EmbeddingIndexParams("clustered_quantized"))
    )
    assert (index.count, index.indexed) == (50, 0)
    assert index.search(np.ones(4), 10).tolist() == []


def test_vectors_of_int_and_float64_dtypes() -> None:
    rng = np.random.default_rng(8)
    ints = rng.integers(-50, 50, (200, 8))
    a = EmbeddingIndex.from_bytes(
        build_embedding_index(ints, None, EmbeddingIndexParams("clustered", "l2"))
    )
    b = EmbeddingIndex.from_bytes(
        build_embedding_index(
            ints.astype(np.float64), None, EmbeddingIndexParams("clustered", "l2")
        )
    )
    q = np.array([3, -4, 0, 1, 2, 0, -1, 5])
    assert a.search(q, 5).tolist() == b.search(q, 5).tolist()
    assert a.search(q, 5).tolist() == exact_top(ints, q, "l2", 5).tolist()


# ---- the serialized form ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "structure"), CONFIGS, ids=CONFIG_IDS)
def test_round_trip_through_bytes(kind: str, structure: str) -> None:
    data, queries = clustered(500, 16, seed=6, clusters=10)
    knobs = {"m": 16, "ef_construction": 20} if structure == "hnsw" else {"niter": 4}
    params = EmbeddingIndexParams(kind=kind, metric="dot", structure=structure, **knobs)
    blob = build_embedding_index(data, None, params)
    assert isinstance(blob, bytes) and blob[:8] == b"LKFVECIX"
    assert struct.unpack_from("<I", blob, 8)[0] == 2
    one, two = EmbeddingIndex.from_bytes(blob), EmbeddingIndex.from_bytes(bytearray(blob))
    assert one.params.kind == kind and one.params.metric == "dot"
    assert one.structure == structure and one.params.structure == structure
    if structure == "hnsw":
        assert one.params.m == 16 and one.params.ef_construction == 20
    else:
        assert one.params.niter == 4 and one.params.nlist == default_nlist(500)
    assert one.params == two.params and one.nbytes == len(blob)
    if kind == "pooled_quantized":
        assert one.params.nlist == default_nlist(500) and one.params.pq_m == default_pq_m(16)
    for q in queries[:10]:
        assert one.search(q, K).tolist() == two.search(q, K).tolist()
    assert EmbeddingIndexParams.from_json(one.params.to_json()) == one.params
    assert json.loads(json.dumps(params.to_json())) == params.to_json()


@pytest.fixture(scope="module")
def blob() -> bytes:
    data, _ = clustered(300, 16, seed=9, clusters=5)
    return build_embedding_index(data, None, EmbeddingIndexParams())


def _split(blob: bytes) -> tuple[dict, bytes]:
    head_len = struct.unpack_from("<I", blob, 12)[0]
    header = json.loads(blob[16 : 16 + head_len])
    return header, blob[16 + head_len + 12 :]


def _assemble(header: dict, body: bytes, version: int = 2) -> bytes:
    head = json.dumps(header).encode()
    return (
        struct.pack("<8sII", b"LKFVECIX", version, len(head))
        + head
        + struct.pack("<QI", len(body), zlib.crc32(body))
        + body
    )


def test_truncated_bytes_are_a_format_error(blob: bytes) -> None:
    for cut in [0, 1, 8, 15, 16, 40, len(blob) // 2, len(blob) - 1]:
        with pytest.raises(FormatError):
            EmbeddingIndex.from_bytes(blob[:cut])
    with pytest.raises(FormatError):
        EmbeddingIndex.from_bytes(blob + b"\0")


@given(at=st.integers(0, 10**9), flip=st.integers(1, 255))
def test_any_damaged_byte_is_a_format_error(blob: bytes, at: int, flip: int) -> None:
    damaged = bytearray(blob)
    damaged[at % len(blob)] ^= flip
    with pytest.raises(FormatError):
        EmbeddingIndex.from_bytes(bytes(damaged))


def test_garbage_and_foreign_bytes_are_a_format_error(blob: bytes) -> None:
    header, body = _split(blob)
    for data in [
        b"",
        b"garbage" * 100,
        np.random.default_rng(0).bytes(5000),
        _assemble(header, body, version=3),  # a newer format version
        _assemble(header, body, version=1),  # version 1 never named a structure
        _assemble({**header, "params": {**header["params"], "structure": None}}, body),
        _assemble({**header, "params": {**header["params"], "structure": "hnsw"}}, body),
        _assemble({**header, "params": {**header["params"], "nlist": 3}}, body),
        _assemble({**header, "dim": "16"}, body),  # a header of the wrong shape
        _assemble({**header, "surprise": 1}, body),
        _assemble({**header, "params": {**header["params"], "kind": "flat"}}, body),
        _assemble({**header, "dim": 17}, body),  # the faiss index does not match
        _assemble({**header, "indexed": 299}, body),
        _assemble({**header, "params": {**header["params"], "metric": "l2"}}, body),
        _assemble(header, b"not a faiss index at all, but its checksum is right"),
        _assemble(header, body[: len(body) // 2]),  # faiss reads past the end
        _assemble({**header, "indexed": 0}, body),
    ]:
        with pytest.raises(FormatError):
            EmbeddingIndex.from_bytes(data)
    with pytest.raises(InvalidArgumentError):
        EmbeddingIndex.from_bytes("not bytes")  # type: ignore[arg-type]  # the error path


def test_a_body_of_another_kind_is_a_format_error(blob: bytes) -> None:
    data, _ = clustered(300, 16, seed=9, clusters=5)
    header, _ = _split(blob)
    _, flat_body = _split(build_embedding_index(data, None, EmbeddingIndexParams("clustered")))
    with pytest.raises(FormatError):
        EmbeddingIndex.from_bytes(_assemble(header, flat_body))


# ---- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "hnsw"},
        {"metric": "cosine_similarity"},
        {"m": 1},
        {"m": 1000},
        {"m": 32.0},
        {"m": True},
        {"ef_construction": 0},
        {"kind": "clustered", "nlist": 10},
        {"kind": "clustered_quantized", "pq_m": 8},
        {"kind": "clustered_quantized", "m": 16},  # an HNSW knob; the default is IVF
        {"kind": "clustered_quantized", "structure": "hnsw", "nlist": 16},
        {"kind": "clustered", "structure": "ivf"},
        {"kind": "pooled_quantized", "structure": "hnsw"},
        {"structure": "flat"},
        {"niter": 0},
        {"niter": 2.5},
        {"kind": "pooled_quantized", "nlist": 0},
        {"kind": "pooled_quantized", "pq_m": -2},
    ],
)
def test_bad_params_are_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        EmbeddingIndexParams(**kwargs)


@pytest.mark.parametrize(
    "obj", [[], {"kind": "hnsw"}, {"unknown": 1}, {"m": "32"}, {"kind": "clustered", "nlist": 4}]
)
def test_bad_params_json_is_a_format_error(obj: object) -> None:
    with pytest.raises(FormatError):
        EmbeddingIndexParams.from_json(obj)  # type: ignore[arg-type]  # the error path


def test_bad_build_inputs_are_invalid_arguments() -> None:
    data = np.ones((10, 4), dtype=np.float32)
    p = EmbeddingIndexParams()
    for vectors, valid in [
        (np.ones(4), None),  # 1-D
        (np.ones((2, 3, 4)), None),
        (np.array([["a"] * 4] * 3), None),
        (np.ones((10, 4), dtype=bool), None),
        (np.ones((10, 0)), None),
        (data, np.ones(9, dtype=bool)),
        (data, np.ones(10, dtype=np.int8)),
    ]:
        with pytest.raises(InvalidArgumentError):
            build_embedding_index(vectors, valid, p)
    with pytest.raises(InvalidArgumentError):
        build_embedding_index(data, None, EmbeddingIndexParams("pooled_quantized", pq_m=3))
    with pytest.raises(InvalidArgumentError):
        build_embedding_index(data, None, {"kind": "clustered"})  # type: ignore[arg-type]  # the error path
    for threads in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError):
            build_embedding_index(data, None, p, threads=threads)  # type: ignore[arg-type]  # the error path


def test_nlist_beyond_the_rows_uses_one_list_per_row() -> None:
    data, _ = clustered(50, 8, seed=10, clusters=5)
    index = EmbeddingIndex.from_bytes(
        build_embedding_index(data, None, EmbeddingIndexParams("pooled_quantized", nlist=1000))
    )
    assert index.params.nlist == 50


def test_bad_queries_are_invalid_arguments() -> None:
    index = built("clustered")
    graph_only, ivf = built("clustered_quantized", "hnsw"), built("clustered_quantized")
    q = np.ones(64, dtype=np.float32)
    for bad in [np.ones(63), np.ones((2, 64)), np.ones((1, 65)), np.array(["x"] * 64)]:
        with pytest.raises(InvalidArgumentError):
            index.search(bad, K)
    nan = q.copy()
    nan[3] = np.nan
    for bad in [nan, np.zeros(64)]:
        with pytest.raises(InvalidArgumentError):
            index.search(bad, K)
    for kwargs in [
        {"k": -1},
        {"k": 2.5},
        {"k": K, "allowed": np.ones(1999, dtype=bool)},
        {"k": K, "allowed": np.ones(2000, dtype=np.uint8)},
        {"k": K, "ef_search": 0},
        {"k": K, "nprobe": 4},  # a knob of the IVF kind
    ]:
        with pytest.raises(InvalidArgumentError):
            graph_only.search(q, **kwargs)
    for kwargs in [{"ef_search": 64}, {"nprobe": 0}]:
        for other in (ivf, built("pooled_quantized")):
            with pytest.raises(InvalidArgumentError):
                other.search(q, K, **kwargs)


def test_l2_and_dot_accept_the_zero_query() -> None:
    data, _ = clustered(100, 8, seed=11, clusters=4)
    for metric in ("l2", "dot"):
        index = EmbeddingIndex.from_bytes(
            build_embedding_index(data, None, EmbeddingIndexParams("clustered", metric))
        )
        assert len(index.search(np.zeros(8), 5)) == 5


# ---- optional dependency and threads ------------------------------------------------------


def test_without_faiss_a_missing_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "lakefmt\[index\]"'):
        build_embedding_index(np.ones((3, 2)), None, EmbeddingIndexParams())


@pytest.mark.parametrize("threads", [1, 2, 10**6, None])
def test_build_threads_stay_within_the_budget(
    monkeypatch: pytest.MonkeyPatch, threads: int | None
) -> None:
    before = faiss.omp_get_max_threads()
    calls: list[int] = []
    real = faiss.omp_set_num_threads

    def record(n: int) -> None:
        calls.append(n)
        real(n)

    monkeypatch.setattr(faiss, "omp_set_num_threads", record)
    data, _ = clustered(200, 8, seed=12, clusters=4)
    build_embedding_index(data, None, EmbeddingIndexParams(), threads=threads)
    assert calls[-1] == before and faiss.omp_get_max_threads() == before  # restored
    used = calls[0]
    assert 1 <= used <= thread_budget()
    if threads is not None and threads <= thread_budget():
        assert used == threads
    if threads == 10**6:
        assert used == thread_budget()


# ---- indexes written before header version 2 ----------------------------------------------


def legacy_blob(data: np.ndarray, valid: np.ndarray | None, kind: str = "clustered_quantized"):
    """The bytes lakefmt wrote before structures (header version 1): an HNSW graph over SQ8
    codes for ``clustered_quantized``, params without ``structure`` and with every default."""
    structure = "ivf" if kind == "pooled_quantized" else "hnsw"
    blob = build_embedding_index(data, valid, EmbeddingIndexParams(kind, structure=structure))
    header, body = _split(blob)
    old = {"kind": kind, "metric": header["params"]["metric"], "m": 32, "ef_construction": 40}
    old |= {"nlist": header["params"]["nlist"], "pq_m": header["params"]["pq_m"]}
    return _assemble({**header, "params": old}, body, version=1)


@pytest.mark.parametrize("kind", KINDS)
def test_version_1_indexes_still_load_and_answer(kind: str) -> None:
    data, queries = clustered(2000, 64, seed=1)
    valid = np.ones(2000, dtype=bool)
    valid[::50] = False
    old = EmbeddingIndex.from_bytes(legacy_blob(data, valid, kind))
    assert old.structure == ("ivf" if kind == "pooled_quantized" else "hnsw")
    assert old.indexed == int(valid.sum())
    depth = 10 * K if kind == "pooled_quantized" else K
    for q in queries[:10]:
        got = old.search(q, depth, **thorough(old))
        assert valid[got].all()
        truth = exact_top(data, q, "cosine", K, valid)
        assert len(set(truth.tolist()) & set(got.tolist())) >= 9
