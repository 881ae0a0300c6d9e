"""TQL functions checked against numpy/pandas computations on the same data."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from qhelpers import CLASSES, Built, build_rich, ids, png_bytes

import lakefmt
from lakefmt import QueryError, types


def vec(values: np.ndarray) -> str:
    return "ARRAY[" + ", ".join(repr(float(v)) for v in values) + "]"


def emb_matrix(t) -> np.ndarray:
    return np.stack(t.emb.to_list()).astype(np.float64)


def test_cosine_similarity_top_k(rich: Built) -> None:
    t = rich.truth
    q = np.linspace(-1, 1, 8)
    view = rich.ds.query(
        f"SELECT id, COSINE_SIMILARITY(emb, {vec(q)}) AS score ORDER BY score DESC LIMIT 10"
    )
    m = emb_matrix(t)
    sims = m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    order = np.argsort(-sims)[:10]
    assert ids(view) == t.id.to_numpy()[order].tolist()
    np.testing.assert_allclose(view["score"][:], sims[order], rtol=1e-5, atol=1e-5)
    # a short literal (not lifted out before parsing) gives the same answer
    q3 = np.array([1.0, 0, 0, 0, 0, 0, 0, 2.0])
    short = rich.ds.query(
        f"SELECT id, COSINE_SIMILARITY(emb, {vec(q3)}) AS s ORDER BY s DESC LIMIT 3"
    )
    sims3 = m @ q3 / (np.linalg.norm(m, axis=1) * np.linalg.norm(q3))
    assert ids(short) == t.id.to_numpy()[np.argsort(-sims3)[:3]].tolist()


def test_vector_functions_without_the_cache(rich: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakefmt.tql.cache import VECTORS

    monkeypatch.setattr(VECTORS, "max_bytes", 0)  # read vectors through DuckDB's Parquet reader
    t = rich.truth
    q = np.arange(8, dtype=np.float64)
    view = rich.ds.query(f"SELECT id, DOT(emb, {vec(q)}) AS d ORDER BY d DESC LIMIT 5")
    d = emb_matrix(t) @ q
    assert ids(view) == t.id.to_numpy()[np.argsort(-d)[:5]].tolist()


def test_norms_and_dot(rich: Built) -> None:
    t = rich.truth
    q = np.linspace(0.5, -0.5, 8)
    view = rich.ds.query(
        f"SELECT id, L2_NORM(emb - {vec(q)}) AS l2, L1_NORM(emb - {vec(q)}) AS l1, "
        f"LINF_NORM(emb - {vec(q)}) AS linf, L2_NORM(emb) AS n2, DOT(emb, {vec(q)}) AS d "
        "ORDER BY id"
    )
    e = t.sort_values("id")
    m = emb_matrix(e)
    diff = m - q
    np.testing.assert_allclose(view["l2"][:], np.linalg.norm(diff, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(view["l1"][:], np.abs(diff).sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(view["linf"][:], np.abs(diff).max(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(view["n2"][:], np.linalg.norm(m, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(view["d"][:], m @ q, rtol=1e-5, atol=1e-5)
    nearest = rich.ds.query(f"SELECT * ORDER BY L2_NORM(emb - {vec(q)}) LIMIT 4")
    assert ids(nearest) == e.id.to_numpy()[np.argsort(np.linalg.norm(diff, axis=1))[:4]].tolist()


def test_data_references_another_row(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT id, L2_NORM(emb - DATA(emb, 10)) AS dist ORDER BY dist LIMIT 3")
    m = emb_matrix(t)
    dist = np.linalg.norm(m - m[10], axis=1)
    assert ids(view)[0] == int(t.id[10])
    assert ids(view) == t.id.to_numpy()[np.argsort(dist)[:3]].tolist()
    assert rich.ds.query("SELECT DATA(title, -1) AS last LIMIT 1")["last"][:] == [t.title.iloc[-1]]


def test_contains_on_text_lists_and_labels(rich: Built) -> None:
    t = rich.truth
    assert (
        ids(rich.ds.query("SELECT * WHERE CONTAINS(title, 'cat')"))
        == t[t.title.str.contains("cat")].id.tolist()
    )
    with_3 = rich.ds.query("SELECT * WHERE CONTAINS(tags, 3)")
    assert ids(with_3) == t[[3 in list(x) for x in t.tags]].id.tolist()
    dogs = rich.ds.query("SELECT * WHERE CONTAINS(label, 'dog')")
    assert ids(dogs) == t[t.label == CLASSES.index("dog")].id.tolist()


def _bm25(docs: list[str], query: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    tokenize = lambda s: [w.lower() for w in re.findall(r"[^\W_]+", s)]  # noqa: E731
    toks = [tokenize(d) for d in docs]
    n = len(docs)
    avg = sum(len(x) for x in toks) / n
    scores = np.zeros(n)
    for term in dict.fromkeys(tokenize(query)):
        df = sum(term in x for x in toks)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, x in enumerate(toks):
            tf = Counter(x)[term]
            scores[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(x) / avg))
    return scores


def test_bm25_similarity_matches_reference(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT id, BM25_SIMILARITY(title, 'cat dog') AS s ORDER BY id")
    e = t.sort_values("id")
    np.testing.assert_allclose(view["s"][:], _bm25(e.title.tolist(), "cat dog"), rtol=1e-9)
    top = rich.ds.query("SELECT id ORDER BY BM25_SIMILARITY(title, 'Bird') DESC, id LIMIT 5")
    ref = _bm25(t.title.tolist(), "bird")
    order = sorted(range(len(t)), key=lambda i: (-ref[i], int(t.id[i])))[:5]
    assert ids(top) == [int(t.id[i]) for i in order]


def test_shape_of_images_arrays_and_embeddings(tmp_path: Path) -> None:
    for url in (f"mem://query-{uuid.uuid4().hex}", str(tmp_path / "img")):
        built = build_rich(url, images=True)
        t = built.truth
        shapes = [(4 + i % 5, 3 + i % 4, 3) if i < 100 else (9, 9, 3) for i in t.id]
        view = built.ds.query(
            "SELECT id, SHAPE(img) AS s, SHAPE(tags) AS st, SHAPE(emb) AS se ORDER BY id"
        )
        order = np.argsort(t.id.to_numpy())
        assert [tuple(x) for x in view["s"][:]] == [shapes[i] for i in order]
        assert [list(x) for x in view["st"][:]] == [[len(t.tags.iloc[i])] for i in order]
        assert all(list(x) == [8] for x in view["se"][:])
        tall = built.ds.query("SELECT id WHERE SHAPE(img)[0] > 6")
        assert ids(tall) == [int(i) for i, s in zip(t.id, shapes, strict=True) if s[0] > 6]


def test_shape_reads_headers_not_pixels(make_mem: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import lakefmt.codecs.image as image_codec

    ds = lakefmt.create(
        f"mem://query-{uuid.uuid4().hex}", schema={"img": types.Image(sample_compression="png")}
    )
    ds.append({"img": [png_bytes(5, 6), png_bytes(7, 2)]})
    ds.flush()

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("SHAPE decoded an image")

    monkeypatch.setattr(image_codec, "decode_image", no_decode)
    assert [list(s) for s in ds.query("SELECT SHAPE(img) AS s")["s"][:]] == [[5, 6, 3], [7, 2, 3]]


def test_any_all_over_arrays(rich: Built) -> None:
    t = rich.truth
    tags = [list(x) for x in t.tags]
    assert ids(rich.ds.query("SELECT * WHERE ANY(tags > 7)")) == [
        int(i) for i, x in zip(t.id, tags, strict=True) if any(v > 7 for v in x)
    ]
    assert ids(rich.ds.query("SELECT * WHERE ALL(tags < 5)")) == [
        int(i) for i, x in zip(t.id, tags, strict=True) if all(v < 5 for v in x)
    ]
    strict = rich.ds.query("SELECT * WHERE ALL_STRICT(tags < 5)")
    assert ids(strict) == [
        int(i) for i, x in zip(t.id, tags, strict=True) if x and all(v < 5 for v in x)
    ]
    emb = rich.ds.query("SELECT * WHERE ANY(emb > 2)")
    assert ids(emb) == [
        int(i) for i, e in zip(t.id, t.emb, strict=True) if (np.asarray(e) > 2).any()
    ]
    subquery = rich.ds.query("SELECT * WHERE score > ALL(SELECT score WHERE extra != 5)")
    assert ids(subquery) == t[t.score > t[t.extra != 5].score.max()].id.tolist()


def test_indexing_and_slicing_are_zero_based(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query(
        "SELECT id, emb[0] AS e0, emb[-1] AS elast, emb[2:5] AS mid, emb[:2] AS head, "
        "emb[-3:] AS tail, "
        "emb[1:-1] AS inner, tags[0] AS t0 ORDER BY id"
    )
    e = t.sort_values("id")
    m = emb_matrix(e)
    np.testing.assert_allclose(view["e0"][:], m[:, 0], rtol=1e-6)
    np.testing.assert_allclose(view["elast"][:], m[:, -1], rtol=1e-6)
    np.testing.assert_allclose(np.stack(view["mid"][:]), m[:, 2:5], rtol=1e-6)
    np.testing.assert_allclose(np.stack(view["head"][:]), m[:, :2], rtol=1e-6)
    np.testing.assert_allclose(np.stack(view["tail"][:]), m[:, -3:], rtol=1e-6)
    np.testing.assert_allclose(np.stack(view["inner"][:]), m[:, 1:-1], rtol=1e-6)
    got = view["t0"][:]
    assert [None if v is None else int(v) for v in got] == [
        int(x[0]) if len(x) else None for x in e.tags
    ]
    where = rich.ds.query("SELECT * WHERE emb[3] > 0.5")
    assert ids(where) == [int(i) for i, x in zip(t.id, t.emb, strict=True) if x[3] > 0.5]


def test_fixed_shape_arrays(make_mem: object) -> None:
    ds = lakefmt.create(
        f"mem://query-{uuid.uuid4().hex}", schema={"g": types.Array("float32", shape=(2, 3))}
    )
    grids = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    ds.append({"g": grids})
    ds.flush()
    view = ds.query("SELECT g[1, 2] AS a, g[0] AS row0, SHAPE(g) AS s")
    np.testing.assert_array_equal(view["a"][:], grids[:, 1, 2])
    np.testing.assert_array_equal(np.stack(view["row0"][:]), grids[:, 0, :])
    assert [list(s) for s in view["s"][:]] == [[2, 3]] * 4


def test_json_access(rich: Built) -> None:
    t = rich.truth
    metas = [m if isinstance(m, dict) else json.loads(m) for m in t.meta]
    view = rich.ds.query("SELECT id, meta['s'] AS s WHERE meta['k']['n'] >= 4 ORDER BY id")
    expected = sorted(
        (int(i), m["s"]) for i, m in zip(t.id, metas, strict=True) if m["k"]["n"] >= 4
    )
    assert list(zip(ids(view), view["s"][:], strict=True)) == expected
    listed = rich.ds.query("SELECT id WHERE meta['k']['n'] IN (1, 2)")
    pairs = zip(t.id, metas, strict=True)
    assert ids(listed) == [int(i) for i, m in pairs if m["k"]["n"] in (1, 2)]
    cats = rich.ds.query("SELECT * WHERE meta['s'] = 'cat'")
    assert ids(cats) == [int(i) for i, m in zip(t.id, metas, strict=True) if m["s"] == "cat"]


def test_class_label_compares_by_name(rich: Built) -> None:
    t = rich.truth
    assert ids(rich.ds.query("SELECT * WHERE label = 'dog'")) == t[t.label == 1].id.tolist()
    assert ids(rich.ds.query("SELECT * WHERE label == 'bird'")) == t[t.label == 2].id.tolist()
    assert ids(rich.ds.query("SELECT * WHERE label != 'cat'")) == t[t.label != 0].id.tolist()
    assert (
        ids(rich.ds.query("SELECT * WHERE label IN ('cat', 'bird')"))
        == t[t.label.isin([0, 2])].id.tolist()
    )
    assert ids(rich.ds.query("SELECT * WHERE label = 1")) == t[t.label == 1].id.tolist()
    assert ids(rich.ds.query("SELECT * WHERE label LIKE 'b*'")) == t[t.label == 2].id.tolist()
    with pytest.raises(QueryError, match="not a class"):
        rich.ds.query("SELECT * WHERE label = 'horse'")


def test_multi_label_class_labels(make_mem: object) -> None:
    ds = lakefmt.create(
        f"mem://query-{uuid.uuid4().hex}",
        schema={
            "id": "int64",
            "labels": types.ClassLabel(
                types.Array("int32", dimensions=1), class_names=["a", "b", "c"]
            ),
        },
    )
    ds.append({"id": [0, 1, 2], "labels": [["a", "b"], ["c"], []]})
    ds.flush()
    assert ids(ds.query("SELECT * WHERE labels = 'b'")) == [0]
    assert ids(ds.query("SELECT * WHERE CONTAINS(labels, 'c')")) == [1]


def test_every_tql_function_is_one_registry_entry() -> None:
    """Adding a TQL function is one entry in lakefmt.tql.functions.FUNCTIONS: this test
    registers nothing, it checks each entry is complete and that the names the parser gives
    the entries' example calls are exactly the registry's names."""
    from lakefmt.tql import parser
    from lakefmt.tql.context import PlanningContext
    from lakefmt.tql.functions import FUNCTIONS

    ctx = PlanningContext({})
    recognised = set()
    for fn in FUNCTIONS:
        assert fn.doc.upper().startswith(f"{fn.names[0].upper()}("), fn.doc
        assert fn.arity >= 0 and callable(fn.returns) and callable(fn.translate)
        node = parser.parse(f"SELECT * WHERE {fn.example}").tree.args["where"].this
        assert FUNCTIONS.lookup(node) is fn, fn.example
        assert len(fn.arguments(ctx, node)) == fn.arity, fn.example
        recognised.add(parser.function_name(node) or type(node).__name__.lower())
    assert recognised == FUNCTIONS.names()


def test_a_name_registered_twice_is_refused() -> None:
    from lakefmt.tql.functions import FUNCTIONS, FunctionRegistry

    entry = next(iter(FUNCTIONS))
    with pytest.raises(ValueError, match="registered twice"):
        FunctionRegistry([entry, entry])


@pytest.mark.parametrize(
    ("tql", "message"),
    [
        ("SELECT COSINE_SIMILARITY(emb)", "COSINE_SIMILARITY takes 2 arguments, got 1"),
        ("SELECT L2_NORM(emb, emb)", "L2_NORM takes 1 argument, got 2"),
        ("SELECT SHAPE()", "SHAPE takes 1 argument, got 0"),
        ("SELECT * WHERE ALL_STRICT(tags > 5, 1)", "ALL_STRICT takes one argument"),
        ("SELECT * WHERE ALL(tags, 1)", "ALL takes one argument"),
        ("SELECT * WHERE ANY(score > 1)", "ANY() needs an array column in its argument"),
    ],
)
def test_wrong_arguments_name_the_function(rich: Built, tql: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        rich.ds.query(tql)
