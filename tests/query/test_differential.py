"""Differential tests: random filters over random data, compared with a Python evaluation.

The data has nulls, several fragments and a deletion; the evaluator applies SQL's
three-valued logic (a row is kept only when the filter is TRUE).
"""

from __future__ import annotations

import fnmatch
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt

WORDS = ["ant", "bee", "cat", "cow", "dog", "eel", "a", ""]

Row = dict[str, Any]
Pred = tuple[str, Any]  # (TQL text, function row -> True/False/None)


def _cmp(op: str, x: Any, y: Any) -> bool | None:
    if x is None or y is None:
        return None
    return {"=": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _like(value: str | None, pattern: str, *, ilike: bool = False) -> bool | None:
    if value is None:
        return None
    glob = pattern.replace("%", "*").replace("_", "?")
    if ilike:
        return fnmatch.fnmatchcase(value.lower(), glob.lower())
    return fnmatch.fnmatchcase(value, glob)


def _and(x: bool | None, y: bool | None) -> bool | None:
    if x is False or y is False:
        return False
    if x is None or y is None:
        return None
    return True


def _or(x: bool | None, y: bool | None) -> bool | None:
    if x is True or y is True:
        return True
    if x is None or y is None:
        return None
    return False


ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
ints = st.integers(-5, 5)
floats = st.sampled_from([-2.5, -1.0, 0.0, 0.25, 0.5, 1.0, 3.75])
words = st.sampled_from(WORDS)
patterns = st.text(alphabet="acdeotw%_*?", min_size=0, max_size=4)


@st.composite
def leaf(draw: st.DrawFn) -> Pred:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        op, v = draw(ops), draw(ints)
        return f"a {op} {v}", lambda r, op=op, v=v: _cmp(op, r["a"], v)
    if kind == 1:
        op, v = draw(ops), draw(floats)
        return f"b {op} {v}", lambda r, op=op, v=v: _cmp(op, r["b"], v)
    if kind == 2:
        op, v = draw(st.sampled_from(["=", "!=", "<", ">"])), draw(words)
        return f"t {op} '{v}'", lambda r, op=op, v=v: _cmp(op, r["t"], v)
    if kind == 3:
        p = draw(patterns)
        tql_p = p
        sql_p = p.replace("*", "%").replace("?", "_")
        word = draw(st.sampled_from(["LIKE", "ILIKE"]))
        return f"t {word} '{tql_p}'", lambda r, p=sql_p, w=word: _like(
            r["t"], p, ilike=w == "ILIKE"
        )
    if kind == 4:
        col = draw(st.sampled_from(["a", "b", "t"]))
        neg = draw(st.booleans())
        text = f"{col} IS {'NOT ' if neg else ''}NULL"
        return text, lambda r, c=col, n=neg: (r[c] is not None) if n else (r[c] is None)
    if kind == 5:
        lo, hi = sorted((draw(ints), draw(ints)))
        return f"a BETWEEN {lo} AND {hi}", lambda r, lo=lo, hi=hi: _and(
            _cmp(">=", r["a"], lo), _cmp("<=", r["a"], hi)
        )
    if kind == 6:
        values = draw(st.lists(ints, min_size=1, max_size=3))
        text = f"a IN ({', '.join(map(str, values))})"
        return text, lambda r, vs=values: None if r["a"] is None else r["a"] in vs
    v = draw(floats)
    return f"a + b > {v}", lambda r, v=v: _cmp(
        ">", None if r["a"] is None or r["b"] is None else r["a"] + r["b"], v
    )


def combine(children: st.SearchStrategy[Pred]) -> st.SearchStrategy[Pred]:
    def build(draw: st.DrawFn) -> Pred:
        kind = draw(st.sampled_from(["and", "or", "not"]))
        left = draw(children)
        if kind == "not":
            return f"NOT ({left[0]})", lambda r, f=left[1]: None if f(r) is None else not f(r)
        right = draw(children)
        if kind == "and":
            return f"({left[0]}) AND ({right[0]})", lambda r, f=left[1], g=right[1]: _and(
                f(r), g(r)
            )
        return f"({left[0]}) OR ({right[0]})", lambda r, f=left[1], g=right[1]: _or(f(r), g(r))

    return st.composite(build)()


predicates = st.recursive(leaf(), combine, max_leaves=5)


@st.composite
def datasets(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i,
                "a": draw(st.one_of(st.none(), ints)),
                "b": draw(
                    st.one_of(st.none(), floats, st.floats(-4, 4, allow_nan=False, width=32))
                ),
                "t": draw(st.one_of(st.none(), words)),
            }
        )
    return rows


def _build(rows: list[Row], cut: int, delete: list[int]) -> tuple[Any, list[Row]]:
    ds = lakefmt.create(
        f"mem://diff-{uuid.uuid4().hex}",
        schema={"id": "int64", "a": "int64", "b": "float64", "t": "text"},
    )
    ds.auto_compact = False
    for part in (rows[:cut], rows[cut:]):
        if part:
            ds.append({k: [r[k] for r in part] for k in ("id", "a", "b", "t")})
            ds.flush()
    delete = sorted({d % len(rows) for d in delete})
    if delete:
        ds.delete(delete)
    kept = [r for i, r in enumerate(rows) if i not in set(delete)]
    return ds, kept


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=datasets(),
    pred=predicates,
    cut=st.integers(0, 40),
    delete=st.lists(st.integers(0, 100), max_size=3),
)
def test_random_filters_match_python(
    rows: list[Row], pred: Pred, cut: int, delete: list[int]
) -> None:
    ds, kept = _build(rows, cut, delete)
    text, fn = pred
    got = [int(i) for i in ds.query(f"SELECT id WHERE {text}")["id"][:]]
    expected = [r["id"] for r in kept if fn(r) is True]
    assert got == expected, text


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=datasets(), pred=predicates, limit=st.integers(0, 10), desc=st.booleans())
def test_random_sorts_and_groups_match_python(
    rows: list[Row], pred: Pred, limit: int, desc: bool
) -> None:
    ds, kept = _build(rows, len(rows) // 2, [])
    text, fn = pred
    direction = "DESC" if desc else "ASC"
    view = ds.query(
        f"SELECT id, b WHERE {text} ORDER BY b {direction} NULLS LAST, id LIMIT {limit}"
    )
    matching = [r for r in kept if fn(r) is True]
    with_b = sorted(
        (r for r in matching if r["b"] is not None),
        key=lambda r: (-r["b"] if desc else r["b"], r["id"]),
    )
    ordered = with_b + sorted((r for r in matching if r["b"] is None), key=lambda r: r["id"])
    assert [int(i) for i in view["id"][:]] == [r["id"] for r in ordered[:limit]]
    groups = ds.query(f"SELECT t, COUNT(*) AS n, SUM(a) AS s WHERE {text} GROUP BY t")
    got = {
        k: (int(n), None if s is None else int(s))
        for k, n, s in zip(groups["t"][:], list(groups["n"][:]), list(groups["s"][:]), strict=True)
    }
    counts = Counter(r["t"] for r in matching)
    sums: dict[Any, int | None] = {}
    for r in matching:
        if r["a"] is not None:
            sums[r["t"]] = (sums.get(r["t"]) or 0) + r["a"]
    assert got == {k: (counts[k], sums.get(k)) for k in counts}


@pytest.mark.parametrize("seed", range(3))
def test_random_vector_top_k_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 200)), int(rng.integers(2, 40))
    matrix = rng.standard_normal((n, d)).astype(np.float32)
    ds = lakefmt.create(
        f"mem://diff-{uuid.uuid4().hex}", schema={"id": "int64", "v": lakefmt.types.Embedding(d)}
    )
    ds.append({"id": np.arange(n), "v": matrix})
    ds.flush()
    q = rng.standard_normal(d)
    literal = "ARRAY[" + ", ".join(repr(float(x)) for x in q) + "]"
    k = int(rng.integers(1, 10))
    view = ds.query(f"SELECT id, COSINE_SIMILARITY(v, {literal}) AS s ORDER BY s DESC LIMIT {k}")
    m = matrix.astype(np.float64)
    sims = m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    assert [int(i) for i in view["id"][:]] == np.argsort(-sims)[:k].tolist()
