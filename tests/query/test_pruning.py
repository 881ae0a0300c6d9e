"""Fragment pruning by column statistics never changes a query's rows.

A random history (appends with nulls and NaN, deletes, cell updates, columns added with a
default, renames, optimize) is mirrored by a plain Python model; random point and range
predicates must give the same rows with pruning, without it, and in the model.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt.format.manifest import dump_manifest, parse_manifest
from lakefmt.tql import PLANS, pruning

Row = dict[str, Any]

ints = st.one_of(st.none(), st.integers(-6, 6))
floats = st.one_of(st.none(), st.sampled_from([-2.5, 0.0, 1.0, 3.75, math.nan]))
words = st.one_of(st.none(), st.sampled_from(["ant", "bee", "cat", "", "zz", "é"]))
bools = st.one_of(st.none(), st.booleans())


VALUES = {"int": ints, "float": floats, "text": words, "bool": bools}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 12)),
        st.tuples(st.just("delete"), st.floats(0, 1)),
        st.tuples(st.just("update"), st.floats(0, 1)),
        st.tuples(st.just("add_column"), st.integers(-3, 3)),
        st.tuples(st.just("rename"), st.just(0)),
        st.tuples(st.just("optimize"), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


def _key(v: Any) -> tuple[int, Any]:
    """DuckDB's order of doubles: NaN above every number (and equal to itself)."""
    return (1, 0) if isinstance(v, float) and math.isnan(v) else (0, v)


def _cmp(op: str, x: Any, y: Any) -> bool:
    if x is None:
        return False
    kx, ky = _key(x), _key(y)
    return {"=": kx == ky, "<": kx < ky, "<=": kx <= ky, ">": kx > ky, ">=": kx >= ky}[op]


@st.composite
def predicates(draw: st.DrawFn, columns: dict[str, str]) -> tuple[str, Any]:
    """A point/range predicate (or an AND of two) over the current columns: TQL, model."""
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(sorted(columns)))
        kind = columns[name]
        if kind == "int":
            value: Any = draw(st.one_of(st.integers(-7, 7), st.sampled_from([2.5, -0.5, 3.0])))
        elif kind == "float":
            value = draw(st.sampled_from([-2.5, 0.0, 1, 3.75, 2.0, 10]))
        elif kind == "text":
            value = draw(st.sampled_from(["ant", "bee", "cat", "", "zz", "b", "é"]))
        else:
            value = draw(st.booleans())
        lit = (
            "'" + value + "'"
            if isinstance(value, str)
            else ("TRUE" if value else "FALSE")
            if isinstance(value, bool)
            else repr(value)
        )
        shape = draw(st.sampled_from(["=", "<", "<=", ">", ">=", "in", "between", "flip"]))
        if shape == "in":
            other = value if kind in ("text", "bool") else draw(st.integers(-7, 7))
            other_lit = lit if kind in ("text", "bool") else str(other)
            terms.append(
                (
                    f'"{name}" IN ({lit}, {other_lit})',
                    lambda r, n=name, vs=(value, other): any(_cmp("=", r[n], v) for v in vs),
                )
            )
        elif shape == "between" and kind in ("int", "float"):
            high = draw(st.integers(-7, 7))
            terms.append(
                (
                    f'"{name}" BETWEEN {lit} AND {high}',
                    lambda r, n=name, lo=value, hi=high: (
                        _cmp(">=", r[n], lo) and _cmp("<=", r[n], hi)
                    ),
                )
            )
        elif shape == "flip":
            terms.append((f'{lit} < "{name}"', lambda r, n=name, v=value: _cmp(">", r[n], v)))
        else:
            op = shape if shape != "between" else "="
            terms.append(
                (f'"{name}" {op} {lit}', lambda r, n=name, v=value, o=op: _cmp(o, r[n], v))
            )
    text = " AND ".join(t for t, _ in terms)
    return text, lambda r: all(f(r) for _, f in terms)


def _query_ids(ds: Any, where: str, *, prune: bool) -> list[int]:
    pruning.ENABLED = prune
    try:
        view = ds.query(f"SELECT * WHERE {where}")
        return sorted(int(i) for i in view["id"][:]) if len(view) else []
    finally:
        pruning.ENABLED = True


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, data=st.data())
def test_pruning_never_changes_rows(tmp_path: Any, ops: list[Any], data: st.DataObject) -> None:
    ds = lakefmt.create(
        str(tmp_path / uuid.uuid4().hex),
        schema={"id": "int64", "a": "int64", "b": "float64", "t": "text", "f": "bool"},
    )
    ds.auto_compact = False
    model: list[Row] = []
    columns = {"a": "int", "b": "float", "t": "text", "f": "bool"}
    next_id = 0
    for op, arg in [("append", 3), *ops]:
        if op == "append":
            rows = [
                {"id": next_id + i, **{n: data.draw(VALUES[k]) for n, k in columns.items()}}
                for i in range(arg)
            ]
            next_id += arg
            ds.append({n: [r[n] for r in rows] for n in ["id", *columns]})
            model.extend(rows)
        elif op == "delete" and model:
            i = min(int(arg * len(model)), len(model) - 1)
            ds.delete([i])
            del model[i]
        elif op == "update" and model:
            i = min(int(arg * len(model)), len(model) - 1)
            name = data.draw(st.sampled_from(sorted(columns)))
            value = data.draw(VALUES[columns[name]])
            ds[name][i] = value
            model[i][name] = value
        elif op == "add_column":
            name = f"c{len(columns)}"
            ds.add_column(name, "int64", default_value=arg)
            columns[name] = "int"
            for r in model:
                r[name] = arg
        elif op == "rename":
            old, new = ("a", "a2") if "a" in columns else ("a2", "a")
            ds.rename_column(old, new)
            columns = {(new if k == old else k): v for k, v in columns.items()}
            for r in model:
                r[new] = r.pop(old)
        elif op == "optimize":
            ds.commit()
            ds.optimize()
        ds.commit()
    for _ in range(4):
        where, holds = data.draw(predicates(columns))
        expected = sorted(r["id"] for r in model if holds(r))
        assert _query_ids(ds, where, prune=True) == expected, where
        assert _query_ids(ds, where, prune=False) == expected, where


def _three_fragments(url: str) -> Any:
    ds = lakefmt.create(url, schema={"id": "int64", "name": "text", "x": "float64"})
    ds.auto_compact = False
    for k in range(3):
        ds.append(
            {
                "id": np.arange(k * 10, k * 10 + 10),
                "name": [f"n{k}{i}" for i in range(10)],
                "x": np.arange(10, dtype=np.float64) + 100 * k,
            }
        )
        ds.commit()
    return ds


def test_explain_reports_skipped_fragments(tmp_path: Any) -> None:
    ds = _three_fragments(str(tmp_path / "d"))
    text = ds.explain("SELECT * WHERE id = 15")
    assert "column statistics skip 2 of 3 fragments" in text
    assert "column statistics skip 1 of 3 fragments" in ds.explain(
        "SELECT * WHERE name IN ('n00', 'n29')"
    )
    assert "skip 0 of 3" in ds.explain("SELECT * WHERE x >= 0")
    # not decidable: a computed value, a string against a number column
    assert "Fragment pruning:\nnone" in ds.explain("SELECT * WHERE id + 1 = 15")
    assert "Fragment pruning:\nnone" in ds.explain("SELECT * WHERE name = 15")


def test_pruning_on_views_updates_and_old_versions(tmp_path: Any) -> None:
    url = str(tmp_path / "d")
    ds = _three_fragments(url)
    old = ds.version
    view = ds[5:25]
    assert [int(i) for i in view.query("SELECT * WHERE id = 21")["id"][:]] == [21]
    assert len(view.query("SELECT * WHERE id = 2")) == 0
    ds["id"][[15]] = [1000]  # an update file: the data file's stats no longer bound it
    ds.commit()
    assert [int(i) for i in ds.query("SELECT * WHERE id = 1000")["id"][:]] == [1000]
    assert len(ds.query("SELECT * WHERE id = 15")) == 0
    past = lakefmt.open(url, version=old)
    assert [int(i) for i in past.query("SELECT * WHERE id = 15")["id"][:]] == [15]
    assert len(past.query("SELECT * WHERE id = 1000")) == 0


def test_branch_reads_its_own_stats(tmp_path: Any) -> None:
    url = str(tmp_path / "d")
    ds = _three_fragments(url)
    ds.branch("side")
    side = lakefmt.open(url, branch="side")
    side.append({"id": [500], "name": ["side"], "x": [1.5]})
    side.commit()
    assert [int(i) for i in side.query("SELECT * WHERE id = 500")["id"][:]] == [500]
    assert len(lakefmt.open(url).query("SELECT * WHERE id = 500")) == 0


def test_manifests_without_stats_still_read(tmp_path: Any) -> None:
    """A manifest written before statistics existed (no ``stats`` member) reads the same."""
    url = tmp_path / "d"
    _three_fragments(str(url))
    path = sorted((url / "_versions").glob("*.json"))[-1]
    manifest = parse_manifest(path.read_bytes(), location=str(path))
    assert all(d.stats for f in manifest.fragments for d in f.files)
    stripped = manifest.model_copy(
        update={
            "fragments": [
                f.model_copy(
                    update={"files": [d.model_copy(update={"stats": None}) for d in f.files]}
                )
                for f in manifest.fragments
            ]
        }
    )
    raw = dump_manifest(stripped)
    assert b'"stats"' not in raw
    path.write_bytes(raw)
    PLANS.clear()
    ds = lakefmt.open(str(url))
    assert [int(i) for i in ds.query("SELECT * WHERE id = 15")["id"][:]] == [15]
    assert "skip 0 of 3" in ds.explain("SELECT * WHERE id = 15")


def test_nan_rows_never_match_a_range(tmp_path: Any) -> None:
    """DuckDB drops a filter that a row group's min/max says always holds: float columns
    with NaN are written without Parquet statistics, so NaN rows never leak in."""
    ds = lakefmt.create(str(tmp_path / "d"), schema={"id": "int64", "b": "float64"})
    ds.append({"id": [0, 1, 2], "b": [None, -2.5, math.nan]})
    ds.commit()
    assert [int(i) for i in ds.query("SELECT * WHERE b <= -2.5")["id"][:]] == [1]
    assert [int(i) for i in ds.query("SELECT * WHERE b > 100")["id"][:]] == [2]
