"""Queries over ``clustered_quantized`` indexes, the IVF-SQ8 engine: filtered searches return
exactly ``min(k, matching)`` rows with the exact top-k's recall, and segments written with the
HNSW-SQ8 engine before it (header version 1) still load and answer beside new IVF ones."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.indexes import embedding
from lakefmt.indexes.kinds import KINDS
from lakefmt.indexes.segments import LOADED, load_segment

pytest.importorskip("faiss")

DIM = 16
EXACT = lakefmt.SearchConfig(exact=True)


def _batch(rng: np.random.Generator, centers: np.ndarray, n: int, start: int) -> dict:
    which = rng.integers(0, len(centers), n)
    vectors = centers[which] + 0.3 * rng.standard_normal((n, DIM))
    return {
        "id": np.arange(start, start + n),
        "bucket": rng.integers(0, 1000, n).astype(np.int32),
        "emb": vectors.astype(np.float32),
    }


def _dataset(path: str, rows: int, seed: int = 3) -> tuple[lakefmt.Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, DIM)) * 2
    ds = lakefmt.create(path)
    ds.add_column("id", types.Int64())
    ds.add_column("bucket", types.Int32())
    index = types.EmbeddingIndex(types.ClusteredQuantized)
    ds.add_column("emb", types.Embedding(DIM, index_type=index))
    ds.append(_batch(rng, centers, rows, 0))
    ds.commit("rows")
    return ds, centers


def _tql(q: np.ndarray, k: int, where: str = "") -> str:
    vector = ",".join(f"{v:.6f}" for v in q)
    w = f" WHERE {where}" if where else ""
    return f"SELECT id{w} ORDER BY COSINE_SIMILARITY(emb, ARRAY[{vector}]) DESC LIMIT {k}"


def _ids(ds, tql: str, config: lakefmt.SearchConfig | None = None) -> list[int]:
    saved = ds.query_config
    ds.query_config = config or lakefmt.SearchConfig()
    try:
        return [int(i) for i in ds.query(tql)["id"][:]]
    finally:
        ds.query_config = saved


@pytest.fixture(scope="module")
def ivf_world(tmp_path_factory):
    ds, centers = _dataset(str(tmp_path_factory.mktemp("ivf") / "ds"), 20_000)
    return ds, centers


def test_the_default_vector_index_is_ivf_sq8(ivf_world):
    ds, centers = ivf_world
    (index,) = ds._manifest.indexes
    assert index.kind == "clustered_quantized" and index.params == {"niter": 10}
    (segment,) = index.segments
    graph = load_segment(ds._storage, index, segment).graph
    assert graph.structure == "ivf" and graph.params.nlist == embedding.default_nlist(20_000)
    q = centers[1]
    assert _ids(ds, _tql(q, 10)) == _ids(ds, _tql(q, 10), EXACT)
    assert "clustered_quantized" in ds.explain(_tql(q, 10))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.sampled_from([1, 2, 10, 50, 100, 300, 500, 900]),
    k=st.sampled_from([1, 10, 40]),
    which=st.integers(0, 39),
    noise=st.integers(0, 2**16),
)
def test_filtered_search_returns_exactly_k_with_the_exact_recall(ivf_world, cut, k, which, noise):
    # WHERE bucket < cut keeps cut / 1000 of the rows: 0.1% (exact scoring) to 90% (the
    # allowed set inside the IVF search, with nprobe widened by 1 / share)
    ds, centers = ivf_world
    q = centers[which] + np.random.default_rng(noise).standard_normal(DIM) * 0.3
    where = f"bucket < {cut}"
    matching = len(ds.query(f"SELECT id WHERE {where}"))
    got = _ids(ds, _tql(q, k, where))
    want = _ids(ds, _tql(q, k, where), EXACT)
    assert len(got) == len(want) == min(k, matching)
    assert len(set(got) & set(want)) >= 0.95 * len(want)


# ---- segments of the HNSW-SQ8 engine (header version 1) ----------------------------------


def _legacy_graph(vectors: np.ndarray, valid: np.ndarray) -> bytes:
    """A ``graph`` file as lakefmt wrote it before IVF: header version 1, params without a
    structure, an HNSW graph over SQ8 codes."""
    params = embedding.EmbeddingIndexParams("clustered_quantized", structure="hnsw")
    blob = embedding.build_embedding_index(vectors, valid, params)
    head_len = struct.unpack_from("<I", blob, 12)[0]
    header = json.loads(blob[16 : 16 + head_len])
    body = blob[16 + head_len + 12 :]
    header["params"] = {
        "kind": "clustered_quantized",
        "metric": "cosine",
        "m": 32,
        "ef_construction": 40,
        "nlist": None,
        "pq_m": None,
    }
    head = json.dumps(header).encode()
    return b"".join(
        [
            struct.pack("<8sII", b"LKFVECIX", 1, len(head)),
            head,
            struct.pack("<QI", len(body), zlib.crc32(body)),
            body,
        ]
    )


def test_hnsw_segments_written_before_ivf_still_answer(tmp_path, monkeypatch):
    kind = KINDS["clustered_quantized"]

    def old_build(values, live, params):
        files = kind.build(values, live, params)
        vectors = np.asarray(values.values.to_numpy(), dtype=np.float32).reshape(len(values), -1)
        files["graph"] = _legacy_graph(vectors, live)
        return files

    monkeypatch.setitem(KINDS, "clustered_quantized", dataclasses.replace(kind, build=old_build))
    ds, centers = _dataset(str(tmp_path / "ds"), 5_000)
    monkeypatch.undo()  # from here on, this lakefmt: new segments are IVF
    LOADED.clear()
    (index,) = ds._manifest.indexes
    (old,) = index.segments
    assert load_segment(ds._storage, index, old).graph.structure == "hnsw"
    rng = np.random.default_rng(11)
    for which in range(0, 40, 4):
        q = centers[which]
        assert len(set(_ids(ds, _tql(q, 10))) & set(_ids(ds, _tql(q, 10), EXACT))) >= 9
        assert len(_ids(ds, _tql(q, 10, "bucket < 500"))) == 10

    ds.append(_batch(rng, centers, 12_000, 5_000))  # a delta segment of the new engine
    ds.commit("more")
    (index,) = ds._manifest.indexes
    structures = [load_segment(ds._storage, index, s).graph.structure for s in index.segments]
    assert structures == ["hnsw", "ivf"]
    for which in range(1, 40, 4):
        q = centers[which]
        for where in ("", "bucket < 500", "bucket < 100"):
            got, want = _ids(ds, _tql(q, 10, where)), _ids(ds, _tql(q, 10, where), EXACT)
            assert len(got) == 10 and len(set(got) & set(want)) >= 9

    ds.optimize()  # one segment over every row, of the new engine
    (index,) = ds._manifest.indexes
    (merged,) = index.segments
    assert load_segment(ds._storage, index, merged).graph.structure == "ivf"
    q = centers[5]
    assert _ids(ds, _tql(q, 10)) == _ids(ds, _tql(q, 10), EXACT)
