"""BM25 queries answered with a text index return exactly the exact path's rows and scores,
through appends, deletes, updates, filters, optimize and time travel."""

from __future__ import annotations

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.tql import text_search

EXACT = lakefmt.SearchConfig(exact=True)
WORDS = [f"w{i}" for i in range(500)] + ["Straße", "İstanbul", "naïve", "x2"]


def _docs(rng: np.random.Generator, n: int) -> list[str | None]:
    p = 1 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    out: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.02:
            out.append(None)
            continue
        words = rng.choice(WORDS, rng.integers(0, 15), p=p)
        out.append(", ".join(words) if rng.random() < 0.3 else " ".join(words))
    return out


@pytest.fixture
def world(tmp_path):
    rng = np.random.default_rng(3)
    ds = lakefmt.create(str(tmp_path / "ds"))
    ds.add_column("id", types.Int64())
    ds.add_column("label", types.Int32())
    ds.add_column("t", types.Text(index_type=types.BM25))
    n = 4000
    ds.append(
        {"id": np.arange(n), "label": rng.integers(0, 8, n).astype(np.int32), "t": _docs(rng, n)}
    )
    ds.commit()
    return ds, rng


def _both(ds, tql: str) -> tuple[tuple[list, list], tuple[list, list]]:
    saved = ds.query_config
    try:
        ds.query_config = lakefmt.SearchConfig()
        got = ds.query(tql)
        ds.query_config = EXACT
        want = ds.query(tql)
    finally:
        ds.query_config = saved
    return (list(got["id"][:]), list(got["s"][:])), (list(want["id"][:]), list(want["s"][:]))


QUERIES = ["w1 w7", "w300 w2 w499", "straße", "İstanbul naïve", "nothing here", "x2 w0"]


def _check(ds, where: str = "", k: int = 10) -> None:
    for q in QUERIES:
        w = f" WHERE {where}" if where else ""
        tql = f"SELECT id, BM25_SIMILARITY(t, '{q}') AS s{w} ORDER BY s DESC LIMIT {k}"
        (got_ids, got_scores), (want_ids, want_scores) = _both(ds, tql)
        assert got_scores == want_scores, q  # bit for bit
        # ties at the k-th score may pick other rows; every strictly better row is there
        cut = want_scores[-1] if want_scores else 0
        assert {i for i, s in zip(want_ids, want_scores, strict=True) if s > cut} <= set(got_ids)
        assert len(got_ids) == len(want_ids)


def test_index_is_built_and_answers_exactly(world):
    ds, _ = world
    (index,) = ds._manifest.indexes
    assert index.kind == "bm25" and index.engine == "lakefmt.inverted"
    assert "index 0 (bm25" in ds.explain("SELECT id ORDER BY BM25_SIMILARITY(t, 'w1') DESC LIMIT 3")
    _check(ds)
    _check(ds, "label = 2")
    _check(ds, "id < 40", k=50)


def test_appends_deletes_updates_keep_scores_exact(world):
    ds, rng = world
    ds.append({"id": np.arange(4000, 4300), "label": np.zeros(300, np.int32), "t": _docs(rng, 300)})
    ds.commit()
    ds.delete(list(range(0, 600, 3)))
    ds.commit()
    ds["t"][10] = "w7 w7 w7 w1"
    ds["t"][3999] = None
    ds.commit()
    _check(ds)
    _check(ds, "label = 0")
    ds.optimize()
    (index,) = ds._manifest.indexes
    assert len(index.segments) == 1 and index.segments[0].rows == len(ds)
    _check(ds)


def test_time_travel_reads_its_own_statistics(world):
    ds, _ = world
    ds.tag("before")
    ds.append({"id": np.arange(4000, 4100), "label": np.ones(100, np.int32), "t": ["w1 w7"] * 100})
    ds.commit()
    old = lakefmt.open_read_only(ds.url, version="before")
    _check(old)
    _check(ds)


def test_without_declared_index_queries_are_exact_and_unchanged(tmp_path):
    plain = lakefmt.create(str(tmp_path / "plain"))
    plain.add_column("t", types.Text())
    plain.append({"t": ["a b", "b c"]})
    plain.commit()
    assert plain._manifest.indexes == []
    assert "Index: none" in plain.explain("SELECT * ORDER BY BM25_SIMILARITY(t, 'b') DESC LIMIT 1")
    plain["t"].create_index(types.TextIndex(types.BM25))
    assert plain["t"].indexes == ["bm25"]
    _check_small = plain.query("SELECT * ORDER BY BM25_SIMILARITY(t, 'c') DESC LIMIT 1")
    assert _check_small["t"][:] == ["b c"]


def _columns(view, names):
    return [list(view[n][:]) for n in names]


def test_direct_and_duckdb_results_equal_the_exact_path(world, monkeypatch):
    """Plain projections are answered without DuckDB, the others through DuckDB over the
    candidates; both give the exact path's rows and scores (ties at the cut aside)."""
    ds, _ = world
    cases = [
        ("SELECT id, label, BM25_SIMILARITY(t, 'w3 w9') AS s ORDER BY s DESC LIMIT 15", True),
        ("SELECT *, BM25_SIMILARITY(t, 'w3 w9') AS s ORDER BY s DESC LIMIT 7 OFFSET 4", True),
        ("SELECT id, BM25_SIMILARITY(t, 'w3') AS s WHERE id < 6 ORDER BY s DESC LIMIT 10", True),
        (
            "SELECT id, label * 2 AS l, BM25_SIMILARITY(t, 'w3 w9') AS s ORDER BY s DESC LIMIT 9",
            False,
        ),
        ("SELECT id, BM25_SIMILARITY(t, '!!!') AS s ORDER BY s DESC LIMIT 5", True),
    ]
    calls = []
    original = text_search.direct_result

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(text_search, "direct_result", spy)
    saved = ds.query_config
    try:
        for tql, direct in cases:
            ds.query_config = lakefmt.SearchConfig()
            calls.clear()
            got = ds.query(tql)
            assert bool(calls) == direct, tql
            ds.query_config = EXACT
            want = ds.query(tql)
            assert list(got["s"][:]) == list(want["s"][:]), tql
            assert len(got) == len(want)
            names = ["id", "label", "t"] if tql.startswith("SELECT *") else ["id"]
            scores = list(want["s"][:])
            cut = scores[-1]
            # every row strictly above the last score is the exact path's, cell for cell
            keep_got = [i for i, s in enumerate(got["s"][:]) if s > cut]
            keep_want = [i for i, s in enumerate(scores) if s > cut]
            got_rows = {tuple(c[i] for c in _columns(got, names)) for i in keep_got}
            want_rows = {tuple(c[i] for c in _columns(want, names)) for i in keep_want}
            assert got_rows == want_rows, tql
    finally:
        ds.query_config = saved
    small = ds.query(
        "SELECT id, BM25_SIMILARITY(t, 'w3') AS s WHERE id < 6 ORDER BY s DESC LIMIT 10"
    )
    assert len(small) == 6  # fewer matching rows than LIMIT: every one, zeros included
