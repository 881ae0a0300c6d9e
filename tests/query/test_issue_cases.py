"""Regression tests for the query defects of issue 14 (defects 9, 16 and 17, TQL part)."""

from __future__ import annotations

import math
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qhelpers import png_bytes

import lakefmt
from lakefmt import types
from lakefmt.errors import QueryError
from lakefmt.tql.cache import VECTORS

# -- defect 16: fragments with several column groups ------------------------------------------

#: Column mixtures: every one has an int column ``a`` (filtered on) and ``c`` (rewritten).
MIXTURES: dict[str, dict[str, Any]] = {
    "scalars": {"a": "int32", "c": "int32", "f": "float64", "t": "text"},
    "arrays": {"a": "int32", "c": "int32", "arr": types.Array("int64", dimensions=1)},
    "embeddings": {"a": "int32", "c": "int32", "emb": types.Embedding(4)},
    "text": {"a": "int32", "c": "text", "t": types.Text()},
    "media": {"a": "int32", "c": "int32", "img": types.Image(sample_compression="png")},
    "everything": {
        "a": "int32",
        "c": "int32",
        "t": "text",
        "arr": types.Array("int64", dimensions=1),
        "emb": types.Embedding(4),
        "img": types.Image(sample_compression="png"),
    },
}

ROWS_PER_FRAGMENT = 4


def _batch(schema: dict[str, Any], start: int) -> dict[str, Any]:
    n = ROWS_PER_FRAGMENT
    ids = range(start, start + n)
    out: dict[str, Any] = {}
    for name in schema:
        if name == "a":
            out[name] = list(ids)
        elif name == "c":
            tens = [i * 10 for i in ids]
            out[name] = [str(v) for v in tens] if schema["c"] == "text" else tens
        elif name == "f":
            out[name] = [i / 4 for i in ids]
        elif name == "t":
            out[name] = [f"row {i}" for i in ids]
        elif name == "arr":
            out[name] = [list(range(i % 3)) for i in ids]
        elif name == "emb":
            out[name] = np.arange(start * 4, (start + n) * 4, dtype=np.float32).reshape(n, 4)
        elif name == "img":
            out[name] = [png_bytes(2 + i % 3, 2) for i in ids]
        else:  # pragma: no cover - the mixtures above name only these columns
            raise AssertionError(name)
    return out


def _build(url: str, schema: dict[str, Any], rewritten: list[int]) -> Any:
    """Three committed fragments; column ``c`` of the fragments ``rewritten`` is rewritten
    (a second column group), one row of another fragment gets an update file, one row is
    deleted."""
    ds = lakefmt.create(url, schema=schema)
    ds.auto_compact = False
    for k in range(3):
        ds.append(_batch(schema, k * ROWS_PER_FRAGMENT))
        ds.commit(f"fragment {k}")
    text = schema["c"] == "text"
    for k in rewritten:  # more than a quarter of the rows: the column group is rewritten
        rows = list(range(k * ROWS_PER_FRAGMENT, k * ROWS_PER_FRAGMENT + 3))
        ds["c"][rows] = ["7"] * 3 if text else [7] * 3
        ds.commit(f"rewrite c in fragment {k}")
    small = next(k for k in range(3) if k not in rewritten) if len(rewritten) < 3 else 0
    ds["a"][small * ROWS_PER_FRAGMENT + 3] = 100  # one cell: an update file
    ds.commit("one cell")
    ds.delete(1 * ROWS_PER_FRAGMENT + 1)
    ds.commit("one deletion")
    return ds


def _plain(table: pa.Table) -> pa.Table:
    """The table with extension types replaced by their storage (comparable by value)."""
    cols = []
    for c in table.columns:
        chunks = [ch.storage if isinstance(ch, pa.ExtensionArray) else ch for ch in c.chunks]
        cols.append(pa.chunked_array(chunks, type=chunks[0].type) if chunks else c)
    return pa.table(dict(zip(table.column_names, cols, strict=True)))


@pytest.mark.parametrize("cache", [True, False], ids=["vector-cache", "duckdb-vectors"])
@pytest.mark.parametrize("rewritten", [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]])
@pytest.mark.parametrize("mixture", list(MIXTURES))
def test_query_over_fragments_with_several_column_groups(
    url: str, mixture: str, rewritten: list[int], cache: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 16: a query over fragments whose column groups differ (a rewritten middle
    fragment made every query fail) returns what ``to_arrow()`` reads."""
    if not cache:
        monkeypatch.setattr(VECTORS, "max_bytes", 0)
    ds = _build(url, MIXTURES[mixture], rewritten)
    snap = ds._snapshot()
    c_id = snap.field("c").id
    groups = [[f.field_ids for f in frag.files] for frag in snap.manifest.fragments]
    assert [k for k, g in enumerate(groups) if g[-1] == [c_id]] == rewritten
    expected = _plain(ds.to_arrow())
    assert expected.num_rows == 3 * ROWS_PER_FRAGMENT - 1
    everything = ds.query("SELECT * WHERE a >= 0")
    assert _plain(everything.to_arrow()).equals(expected)
    some = ds.query("SELECT * WHERE a % 2 = 0 ORDER BY a DESC")
    keep = [i for i, a in enumerate(expected.column("a").to_pylist()) if a % 2 == 0]
    want = expected.take(pa.array(keep))
    want = want.take(pa.array(np.argsort(-np.asarray(want.column("a")), kind="stable")))
    assert _plain(some.to_arrow()).equals(want)
    counted = ds.query("SELECT count(*) AS n, max(c) AS m WHERE a >= 0").to_arrow()
    assert counted.to_pylist() == [
        {"n": expected.num_rows, "m": max(expected.column("c").to_pylist())}
    ]
    # a view over rows of the first and the last fragment only
    first_last = [0, expected.num_rows - 1]
    view = ds[first_last].query("SELECT * WHERE a >= 0")
    assert _plain(view.to_arrow()).equals(expected.take(pa.array(first_last)))


def test_query_after_a_middle_fragment_is_wholly_deleted(url: str) -> None:
    """Defect 16, second form: fragments 0 and 2 read by one scan, fragment 1 gone."""
    ds = lakefmt.create(url, schema={"a": "int32"})
    for k in range(3):
        ds.append({"a": [2 * k, 2 * k + 1]})
        ds.commit()
    ds.delete([2, 3])
    ds.commit()
    assert ds.query("SELECT * WHERE a >= 0").to_arrow().column("a").to_pylist() == [0, 1, 4, 5]


def test_defect_16_exact_report(url: str) -> None:
    """The report's own steps (three appends, ``ds["c"][4] = 7`` rewrites the column group
    of the middle fragment)."""
    ds = lakefmt.create(url, schema={"a": "int32", "c": "int32"})
    for k in range(3):
        ds.append({"a": [3 * k, 3 * k + 1, 3 * k + 2], "c": [10 * k, 10 * k + 1, 10 * k + 2]})
        ds.commit()
    ds["c"][4] = 7
    ds.commit()
    assert len(ds._snapshot().manifest.fragments[1].files) == 2
    got = ds.query("SELECT * WHERE a >= 0").to_arrow()
    assert got.column("c").to_pylist() == [0, 1, 2, 10, 7, 12, 20, 21, 22]


# -- defect 17: reserved keywords are never implicit aliases ----------------------------------


@pytest.fixture
def small() -> Any:
    """Two int columns, two rows, in memory."""
    ds = lakefmt.create(f"mem://q-{uuid.uuid4().hex}", schema={"id": "int32", "b": "int32"})
    ds.append({"id": [1, 2], "b": [3, 4]})
    ds.flush()
    return ds


@pytest.mark.parametrize(
    "tql",
    [
        "SELECT * LIMIT",
        "SELECT id LIMIT",
        "SELECT id limit",
        "SELECT id, b OFFSET",
        "SELECT id ORDER",
        "SELECT * FROM (SELECT id) order",
        "SELECT id WHERE",
    ],
)
def test_reserved_keyword_is_no_implicit_alias(small: Any, tql: str) -> None:
    """Defect 17: ``SELECT * LIMIT`` raised KeyError, ``SELECT id LIMIT`` named id LIMIT."""
    with pytest.raises(QueryError, match=r"syntax error|reserved"):
        small.query(tql)


def test_reserved_keyword_as_explicit_or_quoted_alias(small: Any) -> None:
    """``AS limit`` and ``"limit"`` name a column, as in DuckDB."""
    assert small.query("SELECT id AS limit").to_arrow().to_pydict() == {"limit": [1, 2]}
    assert small.query('SELECT id "LIMIT"').to_arrow().to_pydict() == {"LIMIT": [1, 2]}
    assert small.query("SELECT id x LIMIT 1").to_arrow().to_pydict() == {"x": [1]}


@pytest.mark.parametrize(
    "tql",
    [
        "SELECT * AS x",
        "SELECT t.* x FROM (SELECT id, b) t",
        "SELECT * REPLACE (b + 1 AS b)",
        "SELECT * RENAME (id AS x)",
        "SELECT COLUMNS(*)",
        "SELECT max(COLUMNS(*))",
    ],
)
def test_star_forms_that_gave_wrong_columns_are_refused(small: Any, tql: str) -> None:
    """``* AS x`` raised KeyError or returned a hidden column; ``* REPLACE`` returned the old
    values; ``COLUMNS(*)`` expanded over hidden columns: each is a QueryError now."""
    with pytest.raises(QueryError):
        small.query(tql)


def test_repeated_output_names_of_an_aggregate(small: Any) -> None:
    """Two outputs named alike: ``n``, ``n_1`` (as row results), not a KeyError."""
    got = small.query("SELECT id AS x, b AS x GROUP BY id, b ORDER BY id").to_arrow()
    assert got.to_pydict() == {"x": [1, 2], "x_1": [3, 4]}
    got = small.query("SELECT count(*) AS n, max(b) AS n").to_arrow()
    assert got.to_pydict() == {"n": [2], "n_1": [4]}


# -- defect 9: computed scores in every scope -------------------------------------------------

WORDS = ["cat", "dog", "bird", "fish", "the", "a", "red", "blue"]
BM25_K1, BM25_B = 1.2, 0.75


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w]|_", text.lower()) if t]


def _bm25(docs: list[str], query: str) -> np.ndarray:
    """BM25 (Lucene's k1, b) of every document against ``query``, by hand."""
    toks = [_tokens(d) for d in docs]
    n = len(docs)
    avg = sum(len(t) for t in toks) / n
    scores = np.zeros(n)
    for term in dict.fromkeys(_tokens(query)):
        df = sum(term in t for t in toks)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, t in enumerate(toks):
            tf = t.count(term)
            norm = 1 - BM25_B + BM25_B * (len(t) / avg if avg > 0 else 0)
            scores[i] += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm)
    return scores


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> list[int]:
    order = np.lexsort((ids, -scores))  # by score, ties by id
    return sorted(int(i) for i in ids[order[:k]])


@pytest.fixture
def texts(url: str) -> tuple[Any, dict[str, Any]]:
    """40 rows of random text and vectors over two fragments, with a deletion."""
    rng = np.random.default_rng(5)
    n = 40
    data = {
        "id": np.arange(n, dtype=np.int64),
        "name": [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(n)],
        "emb": rng.standard_normal((n, 8)).astype(np.float32),
    }
    ds = lakefmt.create(url, schema={"id": "int64", "name": "text", "emb": types.Embedding(8)})
    ds.append({k: v[:25] for k, v in data.items()})
    ds.commit()
    ds.append({k: v[25:] for k, v in data.items()})
    ds.commit()
    ds.delete(3)
    ds.commit()
    keep = np.delete(np.arange(n), 3)
    truth = {
        "id": data["id"][keep],
        "name": [data["name"][i] for i in keep],
        "emb": data["emb"][keep],
    }
    return ds, truth


def _ids(ds: Any, tql: str) -> list[int]:
    return sorted(ds.query(tql).to_arrow().column("id").to_pylist())


@pytest.mark.parametrize("term", ["cat", "bird fish", "red dog"])
def test_bm25_in_an_in_subquery_uses_its_own_scores(texts: Any, term: str) -> None:
    """Defect 9: the inner ORDER BY BM25 of an IN subquery used the outer relation's scores
    (wrong rows, no error)."""
    ds, truth = texts
    scores = _bm25(truth["name"], term)
    want = _top(scores, truth["id"], 5)
    inner = f"SELECT id ORDER BY BM25_SIMILARITY(name, '{term}') DESC, id LIMIT 5"
    assert _ids(ds, f"SELECT id WHERE id IN ({inner})") == want
    # with the outer query scoring another term at the same time
    got = ds.query(
        f"SELECT id, BM25_SIMILARITY(name, 'blue') AS s WHERE id IN ({inner}) ORDER BY id"
    ).to_arrow()
    assert got.column("id").to_pylist() == want
    blue = dict(zip(truth["id"].tolist(), _bm25(truth["name"], "blue"), strict=True))
    np.testing.assert_allclose(got.column("s").to_pylist(), [blue[i] for i in want])


@pytest.mark.parametrize(
    "tql",
    [
        "SELECT id FROM (SELECT * WHERE id >= 0) ORDER BY BM25_SIMILARITY(name, 'cat') DESC, id "
        "LIMIT 5",
        "SELECT id FROM (SELECT * FROM (SELECT *)) t ORDER BY BM25_SIMILARITY(t.name, 'cat') "
        "DESC, id LIMIT 5",
        "WITH c AS (SELECT *) SELECT id FROM c ORDER BY BM25_SIMILARITY(name, 'cat') DESC, id "
        "LIMIT 5",
        "SELECT * FROM (SELECT id ORDER BY BM25_SIMILARITY(name, 'cat') DESC, id LIMIT 5)",
    ],
)
def test_bm25_in_derived_tables_and_ctes(texts: Any, tql: str) -> None:
    """Defect 9: BM25 inside a derived table failed with 'Referenced table "__lf_s0" not
    found'. The scores are those of the dataset the column comes from."""
    ds, truth = texts
    assert _ids(ds, tql) == _top(_bm25(truth["name"], "cat"), truth["id"], 5)


def test_bm25_scores_through_a_derived_table(texts: Any) -> None:
    ds, truth = texts
    got = ds.query(
        "SELECT id, BM25_SIMILARITY(name, 'fish') AS s FROM (SELECT * WHERE id < 30) ORDER BY id"
    ).to_arrow()
    scores = dict(zip(truth["id"].tolist(), _bm25(truth["name"], "fish"), strict=True))
    ids = got.column("id").to_pylist()
    assert ids == [i for i in truth["id"].tolist() if i < 30]
    np.testing.assert_allclose(got.column("s").to_pylist(), [scores[i] for i in ids])


def test_bm25_in_a_self_join(texts: Any) -> None:
    """Each side of a join of the dataset with itself has its own scores."""
    ds, truth = texts
    got = ds.query(
        "SELECT a.id, BM25_SIMILARITY(a.name, 'cat') AS s, BM25_SIMILARITY(b.name, 'dog') AS t "
        "FROM (SELECT * FROM (SELECT *)) a JOIN (SELECT *) b ON a.id = b.id + 1 ORDER BY a.id"
    ).to_arrow()
    cat = dict(zip(truth["id"].tolist(), _bm25(truth["name"], "cat"), strict=True))
    dog = dict(zip(truth["id"].tolist(), _bm25(truth["name"], "dog"), strict=True))
    ids = got.column("id").to_pylist()
    assert ids == [i for i in truth["id"].tolist() if i - 1 in dog]
    np.testing.assert_allclose(got.column("s").to_pylist(), [cat[i] for i in ids])
    np.testing.assert_allclose(got.column("t").to_pylist(), [dog[i - 1] for i in ids])


def test_bm25_through_a_grouped_subquery_is_a_query_error(texts: Any) -> None:
    ds, _ = texts
    with pytest.raises(QueryError, match="BM25_SIMILARITY"):
        ds.query(
            "SELECT name FROM (SELECT name, count(*) AS n GROUP BY name) "
            "ORDER BY BM25_SIMILARITY(name, 'cat')"
        )


def _vector(seed: int) -> tuple[np.ndarray, str]:
    q = np.random.default_rng(seed).standard_normal(8)
    return q, "ARRAY[" + ", ".join(repr(float(v)) for v in q) + "]"


@pytest.mark.parametrize("cache", [True, False], ids=["vector-cache", "duckdb-vectors"])
def test_similarity_and_l2_in_subqueries_and_self_joins(
    texts: Any, cache: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COSINE_SIMILARITY and L2_NORM in IN subqueries, derived tables, CTEs and self joins
    give numpy's answer in every scope."""
    if not cache:
        monkeypatch.setattr(VECTORS, "max_bytes", 0)
    ds, truth = texts
    ids, emb = truth["id"], truth["emb"].astype(np.float64)
    q1, v1 = _vector(1)
    q2, v2 = _vector(2)
    cos1 = emb @ q1 / np.linalg.norm(emb, axis=1) / np.linalg.norm(q1)
    cos2 = emb @ q2 / np.linalg.norm(emb, axis=1) / np.linalg.norm(q2)
    l2 = np.linalg.norm(emb - q2, axis=1)
    top1, top2, near = _top(cos1, ids, 4), _top(cos2, ids, 4), _top(-l2, ids, 4)
    inner = f"SELECT id ORDER BY COSINE_SIMILARITY(emb, {v1}) DESC, id LIMIT 4"
    assert _ids(ds, f"SELECT id WHERE id IN ({inner})") == top1
    got = ds.query(
        f"SELECT id, COSINE_SIMILARITY(emb, {v2}) AS s WHERE id IN ({inner}) ORDER BY id"
    ).to_arrow()
    assert got.column("id").to_pylist() == top1
    by_id = dict(zip(ids.tolist(), cos2, strict=True))
    np.testing.assert_allclose(
        got.column("s").to_pylist(), [by_id[i] for i in top1], rtol=1e-5, atol=1e-6
    )
    derived = (
        f"SELECT id FROM (SELECT * WHERE id >= 0) ORDER BY COSINE_SIMILARITY(emb, {v2}) DESC, "
        "id LIMIT 4"
    )
    assert _ids(ds, derived) == top2
    cte = f"WITH c AS (SELECT *) SELECT id FROM c ORDER BY L2_NORM(emb - {v2}), id LIMIT 4"
    assert _ids(ds, cte) == near
    joined = ds.query(
        f"SELECT a.id, COSINE_SIMILARITY(a.emb, {v1}) AS s, COSINE_SIMILARITY(b.emb, {v2}) AS t "
        "FROM (SELECT *) a JOIN (SELECT *) b ON a.id = b.id ORDER BY a.id"
    ).to_arrow()
    assert joined.column("id").to_pylist() == ids.tolist()
    np.testing.assert_allclose(joined.column("s").to_pylist(), cos1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joined.column("t").to_pylist(), cos2, rtol=1e-5, atol=1e-6)


def test_class_label_names_in_a_subquery_over_another_dataset() -> None:
    """A column of an IN subquery was resolved against the outer dataset: with different
    class names, ``label == 'y'`` compared with the outer column's index (wrong rows)."""
    a = lakefmt.create(
        f"mem://q-{uuid.uuid4().hex}",
        schema={"id": "int32", "lab": types.ClassLabel(class_names=["x", "y"])},
    )
    a.append({"id": [1, 2, 3], "lab": [0, 1, 0]})
    a.flush()
    b = lakefmt.create(
        f"mem://q-{uuid.uuid4().hex}",
        schema={"id": "int32", "lab": types.ClassLabel(class_names=["y", "x"])},
    )
    b.append({"id": [2, 3, 4], "lab": [0, 0, 1]})
    b.flush()
    got = a.query(f"SELECT id WHERE id IN (SELECT id FROM \"{b.url}\" WHERE lab == 'y')")
    assert got.to_arrow().column("id").to_pylist() == [2, 3]
    got = a.query(
        f"SELECT id WHERE lab == 'y' AND id IN (SELECT id FROM \"{b.url}\" WHERE lab == 'x')"
    )
    assert got.to_arrow().column("id").to_pylist() == []


def test_star_of_nested_unnamed_derived_tables(texts: Any) -> None:
    """``SELECT * FROM (SELECT * FROM (...))`` failed: 'zero-length delimited identifier'."""
    ds, truth = texts
    got = ds.query("SELECT * FROM (SELECT * FROM (SELECT * WHERE id < 5)) a").to_arrow()
    assert got.column("id").to_pylist() == [i for i in truth["id"].tolist() if i < 5]
    count = ds.query("SELECT count(*) AS n FROM (SELECT * FROM (SELECT * WHERE id < 5))")
    assert count.to_arrow().to_pydict() == {"n": [4]}
