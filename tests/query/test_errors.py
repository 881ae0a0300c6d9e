"""Query errors: QueryError with the position and a reason in TQL terms."""

from __future__ import annotations

import pytest
from qhelpers import Built

import lakefmt
from lakefmt import QueryError


@pytest.mark.parametrize(
    ("tql", "position", "reason"),
    [
        ("SELECT * WHERE score >", 21, "syntax error"),
        ("SELECT * WHERE (score > 1", None, "syntax error"),
        ("SELECT * WHERE title = 'unterminated", 23, "syntax error"),
        ("SELECT * ORDER BY", None, "syntax error"),
        ("SELEC * WHERE x", 0, "only SELECT"),
        ("SELECT * WHERE nosuch > 3", 15, "unknown column 'nosuch'"),
        ("SELECT id, nosuch", 11, "unknown column 'nosuch'"),
        ("SELECT * ORDER BY nosuch", 18, "unknown column 'nosuch'"),
        ("SELECT nosuchfn(score)", 7, "unknown function 'nosuchfn'"),
        ("SELECT * WHERE label = 'horse'", 23, "not a class"),
        ("SELECT * SAMPLE BY score REPLACE maybe", 25, "REPLACE"),
        ("SELECT * SAMPLE BY MAX_WEIGHT(score) LIMIT 3", None, "condition: weight"),
        ("SELECT * WHERE DATA(score, 100000) > 1", None, "out of range"),
        ("SELECT L2_NORM(title)", None, "array"),
    ],
)
def test_error_position_and_reason(
    rich_mem: Built, tql: str, position: int | None, reason: str
) -> None:
    with pytest.raises(QueryError) as info:
        rich_mem.ds.query(tql)
    assert reason in str(info.value)
    if position is not None:
        assert info.value.position == position, str(info.value)
        assert f"position {position}" in str(info.value)


def test_unknown_column_lists_the_columns(rich_mem: Built) -> None:
    with pytest.raises(QueryError) as info:
        rich_mem.ds.query("SELECT * WHERE scroe > 1")
    message = str(info.value)
    for name in ("id", "score", "title", "emb", "extra"):
        assert name in message
    # the old name of a renamed column is unknown too
    with pytest.raises(QueryError, match="unknown column 'name'"):
        rich_mem.ds.query("SELECT name")


def test_query_error_is_a_lakefmt_error_and_value_error(rich_mem: Built) -> None:
    with pytest.raises(lakefmt.LakefmtError):
        rich_mem.ds.query("SELECT * WHERE")
    with pytest.raises(ValueError):
        rich_mem.ds.query("SELECT * WHERE")


def test_unknown_datasets_and_versions(rich_mem: Built) -> None:
    with pytest.raises(QueryError, match="no dataset") as info:
        lakefmt.query('SELECT * FROM "mem://no-such-dataset-here"')
    assert info.value.position == 14
    with pytest.raises(QueryError, match="neither a version id, a tag nor a branch"):
        lakefmt.query(f'SELECT * FROM "{rich_mem.ds.url}@nope"')
    with pytest.raises(QueryError, match="no dataset to query"):
        lakefmt.query("SELECT * WHERE id > 1")


def test_type_errors_are_query_errors(rich_mem: Built) -> None:
    with pytest.raises(QueryError, match="query failed"):
        rich_mem.ds.query("SELECT * WHERE score > 'abc'")
    with pytest.raises(QueryError):
        rich_mem.ds.query("SELECT COSINE_SIMILARITY(emb, ARRAY[1, 2])")
    with pytest.raises(QueryError, match="empty query"):
        rich_mem.ds.query("   ")


def test_duckdb_errors_are_told_apart_by_class_first() -> None:
    duckdb = pytest.importorskip("duckdb")
    from lakefmt.tql.duckdb_errors import query_error

    tql = "SELECT nosuch FROM t"
    binder = query_error(duckdb.BinderException('Referenced column "nosuch" not found'), tql)
    assert str(binder) == "unknown column 'nosuch' at position 7" and binder.position == 7
    catalog = query_error(
        duckdb.CatalogException("Catalog Error: Scalar Function with name nosuch does not exist!"),
        tql,
    )
    assert str(catalog).startswith("unknown function 'nosuch'")
    # the same words in an error of another class are that error's text, not a name
    other = query_error(duckdb.InvalidInputException('Referenced column "nosuch" not found'), tql)
    assert str(other) == 'query failed: Referenced column "nosuch" not found'
    denied = query_error(duckdb.PermissionException("Permission Error: no"), tql)
    assert str(denied) == "the query tried to reach something outside the dataset: no"
