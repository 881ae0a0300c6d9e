"""The TQL parser: long vector literals lifted out before tokenizing, SAMPLE BY cut out."""

from __future__ import annotations

import importlib

import pytest

from lakefmt import QueryError

parser = importlib.import_module("lakefmt.tql.parser")


@pytest.mark.parametrize(
    ("text", "lifted"),
    [
        ("SELECT [1, 2, 3, 4, 5, 6, 7, 8] AS v", 1),
        ("SELECT ARRAY [1e-3, -2, +3, 4., .5, 6, 7, 8] AS v", 1),
        ("SELECT [1, 2, 3] AS v", 0),  # short: parsed normally
        ("SELECT x[1, 2, 3, 4, 5, 6, 7, 8]", 0),  # a subscript
        ('SELECT "c"[1, 2, 3, 4, 5, 6, 7, 8]', 0),
        ("SELECT '[1, 2, 3, 4, 5, 6, 7, 8]' AS s", 0),  # inside a string
        ("SELECT 1 -- [1, 2, 3, 4, 5, 6, 7, 8]\n", 0),  # inside a comment
        ("SELECT 1 /* [1, 2, 3, 4, 5, 6, 7, 8] */", 0),
        ("SELECT [a, 2, 3, 4, 5, 6, 7, 8]", 0),  # not all numbers
    ],
)
def test_lift_vectors(text: str, lifted: int) -> None:
    out, vectors = parser.lift_vectors(text)
    assert len(vectors) == lifted
    assert len(out) == len(text)  # positions after a literal do not move
    if lifted:
        (values,) = vectors.values()
        assert len(values) == 8


def test_positions_after_a_lifted_vector_are_exact() -> None:
    text = "SELECT COSINE_SIMILARITY(e, ARRAY[" + ", ".join(["0.5"] * 16) + "]) AS s WHERE nope >"
    with pytest.raises(QueryError) as info:
        parser.parse(text)
    assert info.value.position == text.rindex(">")


def test_sample_by_clause() -> None:
    parsed = parser.parse("SELECT * WHERE x > 1 SAMPLE BY x * 2 REPLACE FALSE LIMIT 5")
    assert parsed.sample is not None and parsed.sample.replace is False
    assert parsed.tree.args["limit"] is not None
    assert parser.parse("SELECT * SAMPLE BY w").sample.replace is True  # Deep Lake's default
    weighted = parser.parse("SELECT * SAMPLE BY MAX_WEIGHT(a = 1: 2, b: 3) LIMIT 2").sample
    assert weighted is not None and "GREATEST" in weighted.weight.sql().upper()
