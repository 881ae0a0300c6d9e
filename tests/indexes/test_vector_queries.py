"""Vector queries answered with an index: the same rows as exact search, through every
operation that changes rows (appends, deletes, updates, optimize, branches, time travel)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.format.index_files import INDEX_FILE_CACHE
from lakefmt.indexes.segments import LOADED

pytest.importorskip("faiss")

DIM = 16
EXACT = lakefmt.SearchConfig(exact=True)


def _batch(rng: np.random.Generator, centers: np.ndarray, n: int, start: int) -> dict:
    which = rng.integers(0, len(centers), n)
    vectors = centers[which] + 0.2 * rng.standard_normal((n, DIM))
    return {
        "id": np.arange(start, start + n),
        "label": rng.integers(0, 10, n).astype(np.int32),
        "emb": vectors.astype(np.float32),
    }


@pytest.fixture
def world(tmp_path):
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((20, DIM)) * 3
    ds = lakefmt.create(str(tmp_path / "ds"))
    ds.add_column("id", types.Int64())
    ds.add_column("label", types.Int32())
    ds.add_column("emb", types.Embedding(DIM, index_type=types.EmbeddingIndex(types.Clustered)))
    ds.append(_batch(rng, centers, 3000, 0))
    ds.commit("first")
    return ds, rng, centers


def _tql(q: np.ndarray, k: int = 10, where: str = "") -> str:
    vector = ",".join(f"{v:.6f}" for v in q)
    where_sql = f" WHERE {where}" if where else ""
    return (
        f"SELECT id, COSINE_SIMILARITY(emb, ARRAY[{vector}]) AS s{where_sql} "
        f"ORDER BY s DESC LIMIT {k}"
    )


def _answer(ds, tql: str, config: lakefmt.SearchConfig | None = None) -> tuple[list, list]:
    saved = ds.query_config
    ds.query_config = config or lakefmt.SearchConfig()
    try:
        view = ds.query(tql)
        return list(view["id"][:]), list(view["s"][:])
    finally:
        ds.query_config = saved


def _same(ds, q: np.ndarray, k: int = 10, where: str = "", min_recall: float = 0.9) -> None:
    tql = _tql(q, k, where)
    got_ids, got_scores = _answer(ds, tql)
    want_ids, _ = _answer(ds, tql, EXACT)
    assert len(got_ids) == len(want_ids)
    assert np.all(np.diff(got_scores) <= 1e-6), "index results come best first"
    # every score returned is the exact score of that row
    exact_of = dict(zip(*_answer(ds, _tql(q, len(ds), where), EXACT), strict=True))
    for i, s in zip(got_ids, got_scores, strict=True):
        assert abs(exact_of[i] - s) < 1e-5
    recall = len(set(got_ids) & set(want_ids)) / max(len(want_ids), 1)
    assert recall >= min_recall


def test_declared_index_is_built_at_commit_and_used(world):
    ds, rng, centers = world
    (index,) = ds._manifest.indexes
    assert index.kind == "clustered" and len(index.segments) == 1
    q = centers[3] + 0.05 * rng.standard_normal(DIM)
    assert "index 0 (clustered" in ds.explain(_tql(q))
    ds.query_config = EXACT
    assert "Index: none" in ds.explain(_tql(q))
    ds.query_config = lakefmt.SearchConfig()
    for c in range(5):
        _same(ds, centers[c] + 0.05 * rng.standard_normal(DIM), min_recall=0.95)


def test_appended_rows_are_found_at_once(world):
    ds, rng, centers = world
    ds.append(_batch(rng, centers, 50, 3000))
    ds.commit()  # 50 rows: below the delta threshold, searched exactly
    target = ds["emb"][3020]
    ids, _ = _answer(ds, _tql(target, 1))
    assert ids == [3020]
    _same(ds, target)


def test_deleted_rows_are_never_returned(world):
    ds, _rng, centers = world
    q = centers[1]
    first, _ = _answer(ds, _tql(q, 5))
    ds.delete(sorted(first))  # ids are row indices until something is deleted
    ds.commit()
    after, _ = _answer(ds, _tql(q, 5))
    assert not set(first) & set(after)
    assert len(after) == 5
    _same(ds, q)


def test_updated_vectors_are_never_stale(world):
    ds, _rng, centers = world
    q = centers[2]
    (best,), _ = _answer(ds, _tql(q, 1))
    row = best  # ids are row indices until something is deleted
    far = -q / np.linalg.norm(q)
    ds["emb"][row] = far.astype(np.float32)
    ds.commit()
    ids, scores = _answer(ds, _tql(q, 20))
    assert best not in ids
    ids, scores = _answer(ds, _tql(far, 1))
    assert ids == [best] and scores[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("label_share", ["label = 3", "label = 3 AND id < 300", "id = 17"])
def test_filtered_search_returns_exactly_k_matching_rows(world, label_share):
    ds, _rng, centers = world
    q = centers[4]
    matching = len(ds.query(f"SELECT id WHERE {label_share}"))
    for k in (1, 10, 50):
        ids, _ = _answer(ds, _tql(q, k, label_share))
        assert len(ids) == min(k, matching)
        _same(ds, q, k, label_share)


def test_time_travel_and_branches_use_their_own_index(world, tmp_path):
    ds, rng, centers = world
    first = ds.version
    ds.tag("v1")
    ds.append(_batch(rng, centers, 12_000, 3000))
    ds.commit("more")  # past the delta threshold: a second segment
    assert len(ds._manifest.indexes[0].segments) == 2
    old = lakefmt.open_read_only(ds.url, version="v1")
    assert len(old._manifest.indexes[0].segments) == 1
    q = centers[5]
    _same(old, q)
    ids, _ = _answer(old, _tql(q, 50))
    assert max(ids) < 3000
    assert old.version == first
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.append(_batch(rng, centers, 10, 20_000))
    dev.commit()
    _same(dev, q)
    _same(ds, q)


def test_optimize_merges_segments_and_keeps_answers(world):
    ds, rng, centers = world
    ds.append(_batch(rng, centers, 12_000, 3000))
    ds.commit()
    ds.delete(list(range(500)))
    ds.commit()
    ds.optimize()
    (index,) = ds._manifest.indexes
    assert len(index.segments) == 1
    assert index.segments[0].rows == len(ds)
    for c in range(3):
        _same(ds, centers[c])


def test_indexing_mode_off_and_build_indexes(world):
    ds, rng, centers = world
    ds.indexing_mode = lakefmt.IndexingMode.Off
    ds.append(_batch(rng, centers, 12_000, 3000))
    ds.commit()
    assert len(ds._manifest.indexes[0].segments) == 1
    ds.build_indexes()
    assert len(ds._manifest.indexes[0].segments) == 2
    ds.build_indexes()  # nothing left to index: no new version
    assert len(ds._manifest.indexes[0].segments) == 2
    with pytest.raises(lakefmt.InvalidArgumentError):
        ds.indexing_mode = "off"


def test_create_and_drop_index(world):
    ds, _rng, centers = world
    assert ds["emb"].indexes == ["clustered"]
    with pytest.raises(lakefmt.InvalidArgumentError):
        ds["emb"].create_index(types.Clustered)
    ds["emb"].drop_index(types.Clustered)
    assert ds["emb"].indexes == [] and ds._manifest.indexes == []
    assert "Index: none" in ds.explain(_tql(centers[0]))
    with pytest.raises(lakefmt.InvalidArgumentError):
        ds["emb"].drop_index(types.Clustered)
    ds["emb"].create_index(types.EmbeddingIndex(types.ClusteredQuantized))
    assert ds["emb"].indexes == ["clustered_quantized"]
    assert ds._manifest.indexes[0].segments[0].rows == len(ds)
    _same(ds, centers[0])
    with pytest.raises(lakefmt.InvalidTypeError):
        ds["id"].create_index(types.BM25)
    reopened = lakefmt.open(ds.url)
    assert reopened["emb"].indexes == ["clustered_quantized"]


def test_schema_changes_keep_or_drop_the_index(world):
    ds, _rng, centers = world
    ds.rename_column("emb", "vec")
    q = ",".join(f"{v:.5f}" for v in centers[0])
    tql = f"SELECT id ORDER BY COSINE_SIMILARITY(vec, ARRAY[{q}]) DESC LIMIT 5"
    assert "index 0" in ds.explain(tql)
    ds.query_config = EXACT
    exact = list(ds.query(tql)["id"][:])
    ds.query_config = lakefmt.SearchConfig()
    assert list(ds.query(tql)["id"][:]) == exact
    ds.remove_column("vec")
    assert ds._manifest.indexes == []


def test_damaged_index_falls_back_to_exact(world):
    ds, _rng, centers = world
    q = centers[6]
    want = _answer(ds, _tql(q, 10), EXACT)
    (segment,) = ds._manifest.indexes[0].segments
    graph = next(f for f in segment.files if f.role == "graph")
    path = os.path.join(ds.url, graph.path)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))
    INDEX_FILE_CACHE.clear()  # as in a new process
    LOADED.clear()
    fresh = lakefmt.open(ds.url)
    text = fresh.explain(_tql(q, 10))  # explain loads the segments and names a damaged one
    assert "segment 0 not used" in text and "checksum mismatch" in text, text
    assert _answer(fresh, _tql(q, 10)) == want
    assert any("checksum mismatch" in p for p in fresh.verify())
    os.remove(path)
    LOADED.clear()
    INDEX_FILE_CACHE.clear()
    assert _answer(lakefmt.open(ds.url), _tql(q, 10)) == want


def test_projection_through_duckdb_and_offset(world):
    ds, _rng, centers = world
    q = ",".join(f"{v:.5f}" for v in centers[7])
    tql = (
        f"SELECT id * 2 AS twice, label ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) DESC "
        "LIMIT 5 OFFSET 3"
    )
    got = ds.query(tql)
    ds.query_config = EXACT
    want = ds.query(tql)
    assert list(got["twice"][:]) == list(want["twice"][:])
    star = f"SELECT * ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) DESC LIMIT 4 OFFSET 2"
    ds.query_config = lakefmt.SearchConfig()
    got = ds.query(star)
    ds.query_config = EXACT
    want = ds.query(star)
    assert list(got["id"][:]) == list(want["id"][:])
    assert np.allclose(got["emb"][:], want["emb"][:])
    assert list(got.schema) == list(want.schema)


def test_copy_and_cleanup_keep_index_files(world, tmp_path):
    ds, _rng, centers = world
    ds.tag("keep")
    target = str(tmp_path / "copy")
    lakefmt.copy(ds.url, target)
    copied = lakefmt.open(target)
    assert copied._manifest.indexes
    q = centers[8]
    assert "index 0" in copied.explain(_tql(q))
    assert _answer(copied, _tql(q)) == _answer(ds, _tql(q))
    ds["emb"].drop_index(types.Clustered)
    ds.commit()
    ds.cleanup(older_than=0)
    files = [
        f.path
        for f in lakefmt.open_read_only(ds.url, version="keep")
        ._manifest.indexes[0]
        .segments[0]
        .files
    ]
    assert all(os.path.exists(os.path.join(ds.url, p)) for p in files)


def test_search_and_build_configs_validate_and_change_effort(world):
    ds, _rng, centers = world
    with pytest.raises(lakefmt.InvalidArgumentError):
        lakefmt.SearchConfig(accuracy_factor=0)
    with pytest.raises(lakefmt.InvalidArgumentError):
        lakefmt.SearchConfig(cluster_search_accuracy_factor=-1.0)
    with pytest.raises(lakefmt.InvalidArgumentError):
        lakefmt.SearchConfig(ef_search=True)
    with pytest.raises(lakefmt.InvalidArgumentError):
        lakefmt.IndexBuildConfig(build_multiplier=0)
    with pytest.raises(lakefmt.InvalidArgumentError):
        ds.query_config = {"exact": True}
    with pytest.raises(lakefmt.InvalidArgumentError):
        ds.indexing_config = 4
    assert lakefmt.SearchConfig.high_accuracy().refine > lakefmt.SearchConfig.fast().refine
    for config in (lakefmt.SearchConfig.fast(), lakefmt.SearchConfig.high_accuracy()):
        ds.query_config = config
        _same(ds, centers[9], min_recall=0.8)
    ds.indexing_config = lakefmt.IndexBuildConfig.fast()
    ds["emb"].drop_index(types.Clustered)
    ds["emb"].create_index(types.Clustered)
    assert ds._manifest.indexes[0].params["ef_construction"] == 20
    _same(ds, centers[9], min_recall=0.8)


def test_queries_an_index_cannot_answer_stay_exact(world):
    ds, _rng, centers = world
    q = ",".join(f"{v:.5f}" for v in centers[0])
    zero = ",".join("0" for _ in range(DIM))
    for tql in (
        f"SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) ASC LIMIT 3",
        "SELECT label, count(*) AS c GROUP BY label ORDER BY c DESC LIMIT 3",
        f"SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[{zero}]) DESC LIMIT 3",
        f"SELECT id, ROW_NUMBER() AS r ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) DESC LIMIT 3",
        f"SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) DESC, id LIMIT 3",
    ):
        assert "Index: none" in ds.explain(tql), tql
    with pytest.raises(lakefmt.QueryError):
        ds.query("SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[1.0, 2.0]) DESC LIMIT 3")
    view = ds[0:100]
    got = view.query(f"SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[{q}]) DESC LIMIT 3")
    assert all(i < 100 for i in got["id"][:])
