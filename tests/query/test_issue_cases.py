"""Regression tests for the query defects of issue 14 (defects 9, 16 and 17, TQL part)."""

from __future__ import annotations

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
