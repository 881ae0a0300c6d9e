"""``Dataset.merge_insert``: a hypothesis state machine against a list of dicts, and the
errors, conflicts and partial-column cases around it."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import lakefmt
from lakefmt.errors import (
    ColumnMissingValueError,
    ColumnNotFoundError,
    CommitConflictError,
    InvalidArgumentError,
)

KEYS = st.none() | st.integers(0, 12)
SCHEMA = {"id": "int64", "name": "text", "score": "int32"}


def _model_merge(
    rows: list[dict[str, Any]], data: list[dict[str, Any]], columns: list[str], delete: bool
) -> list[dict[str, Any]]:
    """SQL MERGE on a list of dicts: null keys never match."""
    by_key = {r["id"]: r for r in data if r["id"] is not None}
    out = []
    for row in rows:
        src = by_key.get(row["id"]) if row["id"] is not None else None
        if src is None:
            if not delete:
                out.append(row)
            continue
        out.append({**row, **{c: src[c] for c in columns}})
    matched = {r["id"] for r in rows if r["id"] is not None}
    out += [dict(r) for r in data if r["id"] is None or r["id"] not in matched]
    return out


class MergeInsertMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="lakefmt-upsert-")
        self.ds = lakefmt.create(f"{self.tmp}/ds", schema=SCHEMA)
        self.rows: list[dict[str, Any]] = []
        self.committed: list[tuple[str, list[dict[str, Any]]]] = []

    def teardown(self) -> None:
        self.ds = None  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(keys=st.lists(KEYS, max_size=5))
    def append(self, keys: list[int | None]) -> None:
        new = [{"id": k, "name": f"a{k}", "score": 0} for k in keys]
        if new:
            self.ds.append(new)
            self.rows += new

    @rule(
        keys=st.lists(KEYS, max_size=6),
        scores=st.data(),
        partial=st.booleans(),
        delete=st.booleans(),
    )
    def merge_insert(
        self, keys: list[int | None], scores: Any, partial: bool, delete: bool
    ) -> None:
        seen: set[int] = set()
        unique = [k for k in keys if k is None or not (k in seen or seen.add(k))]
        data = [
            {"id": k, "name": f"m{k}", "score": scores.draw(st.integers(-5, 5))} for k in unique
        ]
        matched = {r["id"] for r in self.rows if r["id"] is not None}
        inserts = [r for r in data if r["id"] is None or r["id"] not in matched]
        columns = ["name"] if partial else ["name", "score"]
        given = [{"id": r["id"], "name": r["name"]} for r in data] if partial else data
        if partial and inserts:  # an inserted row would lack score (no default)
            with pytest.raises(ColumnMissingValueError):
                self.ds.merge_insert(given, on="id")
            return
        result = self.ds.merge_insert(
            given, on="id", when_not_matched_by_source="delete" if delete else None
        )
        want = _model_merge(self.rows, data, columns, delete)
        assert result.inserted == len(inserts)
        assert result.deleted == (len(self.rows) - (len(want) - len(inserts)) if delete else 0)
        self.rows = want
        self.committed.append((result.version, [dict(r) for r in want]))

    @rule(keys=st.lists(st.integers(0, 12), min_size=2, max_size=4))
    def duplicate_keys_change_nothing(self, keys: list[int]) -> None:
        data = [{"id": keys[0], "name": "x", "score": 1}] * 2 + [
            {"id": k, "name": "y", "score": 2} for k in keys[1:]
        ]
        with pytest.raises(InvalidArgumentError, match="more than once"):
            self.ds.merge_insert(data, on="id")

    @rule(data=st.data())
    def update_or_delete(self, data: Any) -> None:
        if not self.rows:
            return
        i = data.draw(st.integers(0, len(self.rows) - 1))
        if data.draw(st.booleans()):
            self.ds["score"][i] = 99
            self.rows[i] = {**self.rows[i], "score": 99}
        else:
            self.ds.delete(i)
            del self.rows[i]

    @rule()
    def commit(self) -> None:
        version = self.ds.commit()
        self.committed.append((version, [dict(r) for r in self.rows]))

    @rule()
    def reopen(self) -> None:
        self.ds.commit()
        self.ds = lakefmt.open(f"{self.tmp}/ds")

    @invariant()
    def rows_agree(self) -> None:
        assert self.ds.to_arrow().to_pylist() == self.rows

    @invariant()
    def commits_keep_their_rows(self) -> None:
        if self.committed:
            version, rows = self.committed[-1]
            assert (
                lakefmt.open_read_only(f"{self.tmp}/ds", version=version).to_arrow().to_pylist()
                == rows
            )


MergeInsertMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMergeInsert = MergeInsertMachine.TestCase


def _small(tmp_path) -> lakefmt.Dataset:
    ds = lakefmt.create(str(tmp_path / "ds"), schema=SCHEMA)
    ds.append({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [1, 2, 3]})
    ds.commit("first")
    return ds


def test_one_commit_and_counts(tmp_path) -> None:
    ds = _small(tmp_path)
    before = len(ds.history)
    result = ds.merge_insert(
        {"id": [2, 4], "name": ["B", "D"], "score": [20, 40]}, on="id", message="sync"
    )
    assert (result.updated, result.inserted, result.deleted) == (1, 1, 0)
    assert len(ds.history) == before + 1 and ds.history[-1].message == "sync"
    assert result.version == ds.version
    assert ds.to_arrow().to_pylist() == [
        {"id": 1, "name": "a", "score": 1},
        {"id": 2, "name": "B", "score": 20},
        {"id": 3, "name": "c", "score": 3},
        {"id": 4, "name": "D", "score": 40},
    ]


def test_bad_input_changes_nothing(tmp_path) -> None:
    ds = _small(tmp_path)
    version = ds.version
    with pytest.raises(ColumnNotFoundError):
        ds.merge_insert({"id": [1], "nope": [1]}, on="id")
    with pytest.raises(ColumnNotFoundError):
        ds.merge_insert({"name": ["z"], "score": [1]}, on="id")
    with pytest.raises(InvalidArgumentError, match="when_not_matched_by_source"):
        ds.merge_insert(
            {"id": [1], "name": ["z"], "score": [1]}, on="id", when_not_matched_by_source="drop"
        )
    emb = lakefmt.create(str(tmp_path / "emb"), schema={"v": lakefmt.types.Embedding(2)})
    with pytest.raises(InvalidArgumentError, match="cannot be a key"):
        emb.merge_insert({"v": [[1.0, 2.0]]}, on="v")
    assert ds.version == version and ds.commit() == version  # nothing pending either
    with pytest.raises(lakefmt.ReadOnlyError):
        lakefmt.open_read_only(str(tmp_path / "ds")).merge_insert({"id": [1]}, on="id")


def test_a_conflict_applies_nothing(tmp_path) -> None:
    ds = _small(tmp_path)
    other = lakefmt.open(str(tmp_path / "ds"))
    other["name"][1] = "theirs"
    other.commit("theirs")
    with pytest.raises(CommitConflictError):
        ds.merge_insert({"id": [2, 7], "name": ["ours", "new"], "score": [0, 0]}, on="id")
    fresh = lakefmt.open(str(tmp_path / "ds"))
    assert fresh.to_arrow().column("name").to_pylist() == ["a", "theirs", "c"]
    ds = lakefmt.open(str(tmp_path / "ds"))  # retried on the new version
    ds.merge_insert({"id": [2, 7], "name": ["ours", "new"], "score": [0, 0]}, on="id")
    assert ds.to_arrow().column("name").to_pylist() == ["a", "ours", "c", "new"]


def test_concurrent_appends_rebase(tmp_path) -> None:
    ds = _small(tmp_path)
    other = lakefmt.open(str(tmp_path / "ds"))
    other.append({"id": [10], "name": ["j"], "score": [10]})
    other.commit("append")
    ds.merge_insert({"id": [1], "name": ["A"], "score": [100]}, on="id")
    rows = lakefmt.open_read_only(str(tmp_path / "ds")).to_arrow().to_pylist()
    assert {r["id"]: r["name"] for r in rows} == {1: "A", 2: "b", 3: "c", 10: "j"}
