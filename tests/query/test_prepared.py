"""Parsed query templates (lakefmt.tql.prepared) reused across literals.

A query parsed through its template must be the query parsed as written (tree, positions,
errors), and a history of writes, schema changes and index changes must give every query
the same answer with the caches as without them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types
from lakefmt.errors import QueryError
from lakefmt.tql import PLANS, parser, prepared


def positions(tree: Any) -> list[tuple[object, object]]:
    return [(n._meta.get("start"), n._meta.get("end")) for n in tree.walk() if n._meta]


def same_parse(text: str) -> None:
    want = parser.parse(text)
    got = prepared.parse(text)
    assert got.text == text
    assert got.tree == want.tree
    assert got.tree.sql() == want.tree.sql()
    assert positions(got.tree) == positions(want.tree)
    assert got.vectors == want.vectors
    assert (got.sample is None) == (want.sample is None)


def test_literal_slots_and_what_is_never_a_slot() -> None:
    t = prepared.template_of("SELECT * WHERE id = 12 AND name = 'it''s' AND x > 2.5")
    assert t is not None
    assert t.kinds == ("int", "string", "decimal")
    assert t.literals == ("12", "'it''s'", "2.5")
    assert t.pieces[0] == "SELECT * WHERE id = "
    # typed literals, identifiers holding digits, exponents, format strings
    t = prepared.template_of(
        "SELECT x1, DATE '2020-01-01' AS d, INTERVAL '1 day' AS i WHERE y = 1e3 OR z LIKE 'a%'"
    )
    assert t is None
    t = prepared.template_of("SELECT \"c 3\" WHERE c4 = 4 -- '5'\n")
    assert t is not None and t.literals == ("4",)
    for text in (
        "SELECT * WHERE s = E'a\\'b'",
        "SELECT * WHERE a = $$x$$",
        "SELECT * WHERE x > 2 SAMPLE BY 1 LIMIT 3",
    ):
        assert prepared.template_of(text) is None


@pytest.mark.parametrize(
    "shape",
    [
        "SELECT * WHERE id = {i}",
        "SELECT id, BM25_SIMILARITY(t, {s}) AS s ORDER BY s DESC LIMIT {i}",
        "SELECT a,   b WHERE name = {s} AND x BETWEEN {i} AND {d} LIMIT {i} OFFSET {i}",
        "SELECT [{i}, {d}][{i}] AS v, {s} || {s} AS w WHERE x IN ({i}, {d}, -{i})",
        "SELECT CAST(x AS DECIMAL({i}, {i})) AS c, CASE WHEN x > {i} THEN {s} ELSE {s} END AS e",
        "SELECT * FROM (SELECT * WHERE x < {d}) WHERE y = {i}",
        "SELECT emb ORDER BY COSINE_SIMILARITY(emb, ARRAY[{v}]) DESC LIMIT {i}",
        "SELECT strftime(ts, '%Y') AS y WHERE n = {i}",
    ],
)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_template_parses_every_query_as_written(shape: str, data: st.DataObject) -> None:
    ints = st.integers(0, 10**12).map(str)
    decimals = st.decimals(0, 10**6, places=3, allow_nan=False).map(str)
    strings = st.text(st.sampled_from("ab ;'\"()-_é%"), max_size=12)
    vector = ", ".join(str(x) for x in data.draw(st.lists(st.floats(-2, 2), min_size=8)))

    text = shape
    for name, values in (("{i}", ints), ("{d}", decimals)):
        while name in text:
            text = text.replace(name, data.draw(values), 1)
    while "{s}" in text:
        value = data.draw(strings)
        text = text.replace("{s}", "'" + value.replace("'", "''") + "'", 1)
    text = text.replace("{v}", vector)
    same_parse(text)
    same_parse(text)  # the second time from the template


def test_errors_and_positions_are_those_of_the_query_as_written(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "e"), schema={"id": "int64"})
    ds.append({"id": np.arange(5)})
    ds.commit()
    first = "SELECT * WHERE id = 1 AND nope = 2"
    longer = "SELECT * WHERE id = 123456789 AND nope = 2"
    messages = []
    for text in (first, longer, longer):
        with pytest.raises(QueryError) as caught:
            ds.query(text)
        messages.append((str(caught.value), caught.value.position))
    prepared.ENABLED = False
    try:
        with pytest.raises(QueryError) as caught:
            ds.query(longer)
    finally:
        prepared.ENABLED = True
    assert messages[1] == messages[2] == (str(caught.value), caught.value.position)
    assert caught.value.position == longer.index("nope")
    with pytest.raises(QueryError, match="syntax error"):
        prepared.parse("SELECT * WHERE id = 1 AND")


def test_a_template_that_binds_differently_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # the template's pieces hold a literal equal to slot 0's sentinel: binding would
    # overwrite it, so the check refuses the template and each query is parsed as written
    sentinel = prepared._sentinel("int", 0)
    text = f"SELECT x AS b WHERE x = 5 ORDER BY {sentinel}"
    template = prepared.template_of(text)
    assert template is not None and template.literals == ("5",)
    prepared.clear()
    same_parse(text)
    assert prepared._PREPARED._data[template.key] is None
    same_parse(text.replace("= 5", "= 6"))


# -- a history of writes against the same queries with every cache off ---------------------------

WORDS = ["ant", "bee", "cat", "dog", "eel"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 30)),
        st.tuples(st.just("delete"), st.integers(0, 10**6)),
        st.tuples(st.just("update"), st.integers(0, 10**6)),
        st.tuples(st.just("commit"), st.just(0)),
        st.tuples(st.just("add_column"), st.integers(-3, 3)),
        st.tuples(st.just("rename"), st.just(0)),
        st.tuples(st.just("drop_index"), st.just(0)),
        st.tuples(st.just("create_index"), st.just(0)),
        st.tuples(st.just("optimize"), st.just(0)),
        st.tuples(st.just("query"), st.integers(0, 10**6)),
    ),
    min_size=3,
    max_size=14,
)

SHAPES = [
    "SELECT * WHERE id = {i}",
    "SELECT id, name WHERE name = '{w}'",
    "SELECT id WHERE id IN ({i}, {j}) ORDER BY id",
    "SELECT COUNT(*) AS n WHERE id < {i}",
    "SELECT id, x WHERE x = {i} ORDER BY id",
    "SELECT id WHERE id > {i} ORDER BY id LIMIT {k}",
    "SELECT id, BM25_SIMILARITY(name, '{w} {v}') AS s ORDER BY s DESC, id LIMIT {k}",
    "SELECT * WHERE id = {i}.0",
    "SELECT * WHERE id = '{i}'",
]


def answer(ds: Any, text: str) -> tuple[str, Any]:
    try:
        table = ds.query(text).to_arrow()
    except QueryError as exc:
        return ("error", (str(exc), exc.position))
    return ("rows", table.to_pylist())


def uncached(ds: Any, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    with monkeypatch.context() as m:
        m.setattr(prepared, "ENABLED", False)
        m.setattr("lakefmt.tql._plan_key", lambda tql, default: None)
        return answer(ds, text)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_cached_queries_answer_as_uncached_ones_whatever_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ops: list[tuple[str, int]]
) -> None:
    ds = lakefmt.create(
        str(tmp_path / f"h-{uuid.uuid4().hex[:8]}"),
        schema={
            "id": types.Int64(index_type=types.NumericIndex()),
            "name": types.Text(index_type="inverted"),
        },
    )
    ds.add_column("x", "int64", default_value=1)
    rng = np.random.default_rng(len(ops))
    next_id = 0
    x_name = "x"
    for step, (op, arg) in enumerate(ops):
        if op == "append":
            ids = np.arange(next_id, next_id + arg)
            next_id += arg
            names = [" ".join(rng.choice(WORDS, 2)) for _ in range(arg)]
            ds.append({"id": ids, "name": names, x_name: ids % 4})
        elif op == "delete" and len(ds):
            ds.delete([arg % len(ds)])
        elif op == "update" and len(ds):
            ds["id"][arg % len(ds)] = int(arg % 50)
            ds["name"][arg % len(ds)] = WORDS[arg % 5]
        elif op == "commit":
            ds.commit()
        elif op == "add_column":
            ds.add_column(f"c{step}", "int64", default_value=arg)
        elif op == "rename":
            new = "y" if x_name == "x" else "x"
            ds.rename_column(x_name, new)
            x_name = new
        elif op == "drop_index" and ds["id"].indexes:
            ds["id"].drop_index(types.NumericIndex())
        elif op == "create_index" and not ds["id"].indexes:
            ds["id"].create_index(types.NumericIndex())
        elif op == "optimize":
            ds.commit()
            ds.optimize()
        elif op == "query":
            shape = SHAPES[arg % len(SHAPES)]
            for seed in range(3):  # the same template with other literals, hits after misses
                r = np.random.default_rng(arg + seed)
                text = shape.format(
                    i=int(r.integers(0, max(next_id, 1) + 2)),
                    j=int(r.integers(0, 60)),
                    k=int(r.integers(1, 5)),
                    w=WORDS[int(r.integers(0, 5))],
                    v=WORDS[int(r.integers(0, 5))],
                )
                assert answer(ds, text) == uncached(ds, text, monkeypatch), text
    PLANS.clear()
