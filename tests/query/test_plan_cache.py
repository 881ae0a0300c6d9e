"""Plans of queries over a dataset version are reused; nothing stale is ever served."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt import tql
from lakefmt.tql.cache import VECTORS


@pytest.fixture
def ds(tmp_path: Path) -> lakefmt.Dataset:
    ds = lakefmt.create(str(tmp_path / f"pc-{uuid.uuid4().hex[:6]}"), schema={"x": "int64"})
    ds.append({"x": np.arange(10)})
    ds.commit("ten")
    return ds


def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every query the planner really plans (cache misses)."""
    calls: list[str] = []
    real = tql.Planner.plan

    def plan(self: tql.Planner) -> tql.Plan:
        calls.append(self.text)
        return real(self)

    monkeypatch.setattr(tql.Planner, "plan", plan)
    return calls


def test_a_repeated_query_is_planned_once(
    ds: lakefmt.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = planned(monkeypatch)
    q = "SELECT x WHERE x > 6 ORDER BY x"
    assert ds.query(q)["x"][:].tolist() == [7, 8, 9]
    assert ds.query(q)["x"][:].tolist() == [7, 8, 9]
    assert calls == [q]
    counts = "SELECT COUNT(*) AS n"
    assert ds.query(counts)["n"][0] == 10
    assert ds.query(counts)["n"][0] == 10
    assert calls == [q, counts]


def test_new_versions_deletions_and_updates_are_seen(
    ds: lakefmt.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = "SELECT x WHERE x > 6 ORDER BY x"
    assert ds.query(q)["x"][:].tolist() == [7, 8, 9]
    ds.append({"x": [100]})
    ds.commit("one more")
    assert ds.query(q)["x"][:].tolist() == [7, 8, 9, 100]
    ds.delete([8])  # the row holding 8
    ds.commit("delete")
    assert ds.query(q)["x"][:].tolist() == [7, 9, 100]
    ds["x"][0] = 50
    ds.commit("update")
    assert ds.query(q)["x"][:].tolist() == [7, 9, 50, 100]
    # an uncommitted append is part of what the handle queries
    ds.append({"x": [200]})
    assert ds.query(q)["x"][:].tolist() == [7, 9, 50, 100, 200]


def test_row_results_belong_to_the_handle_that_asked(ds: lakefmt.Dataset) -> None:
    q = "SELECT * WHERE x >= 8"
    first = ds.query(q)
    other = lakefmt.open_read_only(ds.url)
    again = other.query(q)
    assert first["x"][:].tolist() == again["x"][:].tolist() == [8, 9]
    ds.append({"x": [9]})
    ds.commit()
    assert ds.query(q)["x"][:].tolist() == [8, 9, 9]
    assert other.query(q)["x"][:].tolist() == [8, 9]  # the other handle's version


def test_queries_naming_datasets_are_planned_every_time(
    ds: lakefmt.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    q = f'SELECT COUNT(*) AS n FROM "{ds.url}@dev"'
    assert lakefmt.query(q)["n"][0] == 10
    dev.append({"x": [1, 2]})
    dev.commit("two on dev")
    assert lakefmt.query(q)["n"][0] == 12  # the branch moved
    calls = planned(monkeypatch)
    ds.query(f'SELECT COUNT(*) AS n FROM "{ds.url}@dev"')
    ds.query(f'SELECT COUNT(*) AS n FROM "{ds.url}@dev"')
    assert len(calls) == 2


def test_the_vector_cache_setting_is_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakefmt import types

    ds = lakefmt.create(str(tmp_path / "vec"), schema={"e": types.Embedding(8)})
    ds.append({"e": np.eye(8, dtype=np.float32)})
    ds.commit()
    q = "SELECT e ORDER BY DOT(e, ARRAY[0, 0, 1, 0, 0, 0, 0, 0]) DESC LIMIT 1"
    top = ds.query(q)
    assert np.asarray(top["e"][0]).tolist() == np.eye(8)[2].tolist()
    calls = planned(monkeypatch)
    monkeypatch.setattr(VECTORS, "max_bytes", 0)
    assert np.asarray(ds.query(q)["e"][0]).tolist() == np.eye(8)[2].tolist()
    assert calls == [q]


def test_plans_are_bounded_by_bytes(ds: lakefmt.Dataset) -> None:
    for i in range(50):
        ds.query(f"SELECT x WHERE x > {i}")
    assert 0 < tql.PLANS.nbytes <= tql.PLANS.max_bytes
