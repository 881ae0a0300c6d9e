"""COSINE_SIMILARITY / DOT of a vector column with a constant vector: the numpy path.

The relation computes these scores with one matrix-vector product per data file
(``SimilarityRequest``); every case here is checked against numpy on the written data and
against DuckDB's own function (the path taken with the vector cache turned off).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.tql.cache import VECTORS

DIM = 16


def vec(values: np.ndarray) -> str:
    return "ARRAY[" + ", ".join(repr(float(v)) for v in values) + "]"


def cosine(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return matrix @ q / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))


@pytest.fixture(params=["mem", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "mem":
        return f"mem://sim-{uuid.uuid4().hex}"
    return str(tmp_path / f"sim-{uuid.uuid4().hex[:8]}")


def build(url: str, dtype: str = "float32") -> tuple[lakefmt.Dataset, np.ndarray, np.ndarray]:
    """Three fragments, deletions, a null vector, a zero vector and updated vectors.

    Returns the dataset, the live ids and their vectors (NaN rows for the null vector).
    """
    rng = np.random.default_rng(5)
    ds = lakefmt.create(url, schema={"id": "int64", "emb": types.Embedding(DIM, dtype=dtype)})
    matrix = rng.standard_normal((300, DIM)).astype(dtype)
    matrix[7] = 0.0
    for start in (0, 100, 200):
        rows = [
            {"id": i, "emb": None if i == 150 else matrix[i]} for i in range(start, start + 100)
        ]
        ds.append(rows)
        ds.commit(f"rows {start}")
    gone = [3, 120, 250]
    ds.delete(gone)
    ds.commit("deletes")
    live = np.array([i for i in range(300) if i not in gone])
    updated = rng.standard_normal((2, DIM)).astype(dtype)
    for pos, new in zip((10, 200), updated, strict=True):
        row = int(np.flatnonzero(live == pos)[0])
        ds["emb"][row] = new
        matrix[pos] = new
    ds.commit("updates")
    truth = matrix[live].astype(np.float64)
    truth[live == 150] = np.nan
    return ds, live, truth


def scores_of(view: lakefmt.DatasetView, column: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in view[column][:]], dtype=np.float64)


def test_the_numpy_path_is_taken(url: str) -> None:
    ds, _, _ = build(url)
    q = np.linspace(-1, 1, DIM)
    text = ds.explain(f"SELECT id ORDER BY COSINE_SIMILARITY(emb, {vec(q)}) DESC LIMIT 3")
    assert "__lf_sim0" in text
    # short literals and column-to-column similarities stay DuckDB functions
    text = ds.explain("SELECT id, COSINE_SIMILARITY(emb, emb) AS s")
    assert "__lf_sim" not in text and "array_cosine_similarity" in text.lower()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cosine_and_dot_match_numpy_and_duckdb(
    url: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, live, truth = build(url, dtype)
    q = np.random.default_rng(1).standard_normal(DIM)
    tql = f"SELECT id, COSINE_SIMILARITY(emb, {vec(q)}) AS c, DOT({vec(q)}, emb) AS d ORDER BY id"
    fast = ds.query(tql)
    assert fast["id"][:].tolist() == live.tolist()
    expected_c = cosine(truth, q)
    expected_d = truth @ q
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(scores_of(fast, "c"), expected_c, rtol=tol, atol=tol)
    np.testing.assert_allclose(scores_of(fast, "d"), expected_d, rtol=tol, atol=tol * 10)
    zero = int(np.flatnonzero(live == 7)[0])
    assert np.isnan(scores_of(fast, "c")[zero])  # 0 / 0, as DuckDB's function gives
    assert fast["c"][int(np.flatnonzero(live == 150)[0])] is None  # a null vector
    assert fast.to_arrow().schema.field("c").type == ("float" if dtype == "float32" else "double")

    monkeypatch.setattr(VECTORS, "max_bytes", 0)  # DuckDB reads and computes
    slow = ds.query(tql)
    np.testing.assert_allclose(scores_of(slow, "c"), scores_of(fast, "c"), rtol=tol, atol=tol)
    np.testing.assert_allclose(scores_of(slow, "d"), scores_of(fast, "d"), rtol=tol, atol=tol)


def test_top_k_where_and_views(url: str) -> None:
    ds, live, truth = build(url)
    q = np.random.default_rng(2).standard_normal(DIM)
    sims = np.nan_to_num(cosine(truth, q), nan=-np.inf)
    # ORDER BY the function directly, the same score twice, with a filter
    view = ds.query(
        f"SELECT id, COSINE_SIMILARITY(emb, {vec(q)}) AS s WHERE id > 50 "
        f"ORDER BY COSINE_SIMILARITY(emb, {vec(q)}) DESC LIMIT 7"
    )
    keep = live > 50
    order = np.argsort(-sims[keep], kind="stable")[:7]
    assert view["id"][:].tolist() == live[keep][order].tolist()
    # the score in WHERE
    view = ds.query(f"SELECT id WHERE COSINE_SIMILARITY(emb, {vec(q)}) > 0.3 ORDER BY id")
    # DuckDB orders NaN (the zero vector's score) above every number; NULL never passes
    nan_rows = live == 7
    assert view["id"][:].tolist() == live[(sims > 0.3) | nan_rows].tolist()
    # a query over a view (rows in view order, a subset of fragments)
    sub = ds.query("SELECT * WHERE id >= 180 ORDER BY id DESC")
    top = sub.query(f"SELECT id, DOT(emb, {vec(q)}) AS d ORDER BY d DESC LIMIT 4")
    dots = np.nan_to_num(truth @ q, nan=-np.inf)
    sel = live >= 180
    assert top["id"][:].tolist() == live[sel][np.argsort(-dots[sel])[:4]].tolist()
    # an aggregate over the score
    agg = ds.query(f"SELECT MIN(COSINE_SIMILARITY(emb, {vec(q)})) AS m")  # NaN ranks last
    assert agg["m"][0] == pytest.approx(float(np.nanmin(cosine(truth, q))), abs=1e-5)


def test_old_versions_and_size_mismatch(url: str) -> None:
    ds, _, truth = build(url)
    ds.tag("before")
    q = np.ones(DIM)
    ds["emb"][0] = -q  # row 0 (id 0) now points away from q
    ds.commit("flip row 0")
    tql = f'SELECT id, COSINE_SIMILARITY(emb, {vec(q)}) AS s FROM "{url}@before" ORDER BY id'
    old = lakefmt.query(tql)
    np.testing.assert_allclose(scores_of(old, "s"), cosine(truth, q), rtol=1e-5, atol=1e-5)
    new = ds.query(f"SELECT id, COSINE_SIMILARITY(emb, {vec(q)}) AS s ORDER BY id")
    assert new["s"][0] == pytest.approx(-1.0, abs=1e-6)
    with pytest.raises(lakefmt.QueryError):
        ds.query(f"SELECT id ORDER BY COSINE_SIMILARITY(emb, {vec(np.ones(DIM + 1))}) DESC")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.integers(min_value=0, max_value=40),
    dim=st.sampled_from([8, 9, 33]),
    seed=st.integers(min_value=0, max_value=2**16),
    k=st.integers(min_value=1, max_value=10),
)
def test_top_k_property(rows: int, dim: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    ds = lakefmt.create(
        f"mem://sim-prop-{uuid.uuid4().hex}",
        schema={"id": "int64", "emb": types.Embedding(dim)},
    )
    matrix = rng.standard_normal((rows, dim)).astype(np.float32)
    if rows:
        ds.append({"id": np.arange(rows), "emb": matrix})
        ds.commit()
    q = rng.standard_normal(dim)
    view = ds.query(f"SELECT id ORDER BY COSINE_SIMILARITY(emb, {vec(q)}) DESC LIMIT {k}")
    sims = cosine(matrix.astype(np.float64), q)
    got = view["id"][:].tolist()
    assert len(got) == min(k, rows)
    # the top-k set by score (ties between float32 roundings aside)
    if rows:
        expected = np.sort(sims)[::-1][: len(got)]
        np.testing.assert_allclose(np.sort(sims[got])[::-1], expected, rtol=1e-5, atol=1e-6)
