"""Merge semantics against a plain-Python model (hypothesis state machine).

Two branches, ``main`` and ``dev`` (forked at a random point, at a commit or a flush
version), take random appends, cell updates, deletes, column additions (with and without
defaults), drops, renames, flushes and commits, and are merged into each other in both
directions with every ``resolve``. The model knows rows and columns by identity (never by
id or position), keeps a snapshot per commit, and merges three-way against the base that
spec/format.md section 12.3 defines; after every step both branches must read exactly the
model's rows, a merge must conflict exactly when the model says so (changing nothing), and
must make a version exactly when the model says there is something to merge.

CI budget (the "ci" profile of tests/conftest.py): 25 sequences of up to 30 steps, about
20 s. Locally, thousands of sequences::

    HYPOTHESIS_PROFILE=dev MERGE_MODEL_EXAMPLES=3000 python -m pytest \
        tests/versioning/test_merge_model.py -q
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import uuid
from typing import Any

import hypothesis.strategies as st
from hypothesis import event, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import lakefmt
from lakefmt.errors import MergeConflictError

NAMES = ["a", "b", "c", "d"]
KINDS = ["int32", "text"]
RESOLVES = ["error", "ours", "theirs"]
BRANCHES = ["main", "dev"]


def _values(kind: str) -> st.SearchStrategy[Any]:
    # few distinct values, so both sides often set a cell to the same value
    return st.integers(-2, 2) if kind == "int32" else st.sampled_from(["", "x", "y"])


@dataclasses.dataclass
class Col:
    cid: int  # identity: never reused, the same on every branch
    name: str
    kind: str
    default: Any


@dataclasses.dataclass
class Row:
    rid: int  # identity
    cells: dict[int, Any]  # cid -> value; a missing cell reads the column's default
    deleted: bool = False


@dataclasses.dataclass
class State:
    cols: list[Col]
    rows: list[Row]
    merges: dict[str, tuple[int, int]]  # source -> (source commit seq, merge commit seq)

    def value(self, row: Row, col: Col) -> Any:
        return row.cells.get(col.cid, col.default)

    def visible(self) -> list[dict[str, Any]]:
        return [{c.name: self.value(r, c) for c in self.cols} for r in self.rows if not r.deleted]

    def live(self) -> list[Row]:
        return [r for r in self.rows if not r.deleted]


@dataclasses.dataclass
class Branch:
    state: State
    last_commit: tuple[int, State] | None = None  # newest commit this branch made


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


class Conflict(Exception):
    """The model expects a MergeConflictError."""


class MergeModel(RuleBasedStateMachine):
    """Two branches of one dataset against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"mem://merge-model-{uuid.uuid4().hex}"
        self.ids = itertools.count()
        self.seq = itertools.count(1)
        ds = lakefmt.create(self.url, schema={"a": "int32"})
        # automatic compaction on: it never rewrites rows the other branch shares (spec 11.1)
        self.handles: dict[str, lakefmt.Dataset] = {"main": ds}
        self.model: dict[str, Branch] = {
            "main": Branch(State([Col(next(self.ids), "a", "int32", None)], [], {}))
        }
        self.snapshots: dict[int, State] = {}
        self.fork: tuple[int, State] | None = None

    # -- helpers ----------------------------------------------------------------------------
    def branches(self) -> list[str]:
        return list(self.model)

    def pick(self, data: st.DataObject, what: str) -> str:
        return data.draw(st.sampled_from(self.branches()), label=what)

    # -- operations on one branch -----------------------------------------------------------
    @rule(data=st.data(), count=st.integers(1, 3))
    def append(self, data: st.DataObject, count: int) -> None:
        name = self.pick(data, "branch")
        state = self.model[name].state
        columns = {
            c.name: data.draw(st.lists(_values(c.kind), min_size=count, max_size=count))
            for c in state.cols
        }
        self.handles[name].append(columns)
        for i in range(count):
            cells = {c.cid: columns[c.name][i] for c in state.cols}
            state.rows.append(Row(next(self.ids), cells))

    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        name = self.pick(data, "branch")
        state = self.model[name].state
        live = state.live()
        if not live:
            return
        i = data.draw(st.integers(0, len(live) - 1), label="row")
        col = data.draw(st.sampled_from(state.cols), label="column")
        value = data.draw(_values(col.kind), label="value")
        self.handles[name][col.name][i] = value
        live[i].cells[col.cid] = value

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = self.pick(data, "branch")
        live = self.model[name].state.live()
        if not live:
            return
        i = data.draw(st.integers(0, len(live) - 1), label="row")
        self.handles[name].delete(i)
        live[i].deleted = True

    @rule(data=st.data(), kind=st.sampled_from(KINDS), has_default=st.booleans())
    def add_column(self, data: st.DataObject, kind: str, has_default: bool) -> None:
        name = self.pick(data, "branch")
        state = self.model[name].state
        free = [n for n in NAMES if n not in {c.name for c in state.cols}]
        if not free:
            return
        column = data.draw(st.sampled_from(free), label="name")
        default = data.draw(_values(kind), label="default") if has_default else None
        if has_default:
            self.handles[name].add_column(column, kind, default_value=default)
        else:
            self.handles[name].add_column(column, kind)
        state.cols.append(Col(next(self.ids), column, kind, default))

    @rule(data=st.data())
    def remove_column(self, data: st.DataObject) -> None:
        name = self.pick(data, "branch")
        state = self.model[name].state
        if len(state.cols) < 2:
            return  # zero-column versions are another matter (issue 14, defect 5)
        col = data.draw(st.sampled_from(state.cols), label="column")
        self.handles[name].remove_column(col.name)
        state.cols.remove(col)

    @rule(data=st.data())
    def rename_column(self, data: st.DataObject) -> None:
        name = self.pick(data, "branch")
        state = self.model[name].state
        free = [n for n in NAMES if n not in {c.name for c in state.cols}]
        if not free:
            return
        col = data.draw(st.sampled_from(state.cols), label="column")
        new = data.draw(st.sampled_from(free), label="new name")
        self.handles[name].rename_column(col.name, new)
        col.name = new

    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        self.handles[self.pick(data, "branch")].flush()

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        name = self.pick(data, "branch")
        handle = self.handles[name]
        before = handle.version
        handle.commit()
        if handle.version != before:  # an empty commit may make no version
            self._record_commit(name)

    def _record_commit(self, name: str) -> int:
        seq = next(self.seq)
        snapshot = copy.deepcopy(self.model[name].state)
        self.snapshots[seq] = snapshot
        self.model[name].last_commit = (seq, snapshot)
        return seq

    @initialize(
        first=st.lists(st.integers(-2, 2), min_size=1, max_size=4),
        then=st.sampled_from(["commit", "flush", "update+flush", "commit+append"]),
    )
    def start(self, first: list[int], then: str) -> None:
        """Rows on main, then the fork: at a commit, or at a flush version after one."""
        main, state = self.handles["main"], self.model["main"].state
        main.append({"a": first})
        state.rows += [Row(next(self.ids), {state.cols[0].cid: v}) for v in first]
        main.commit()
        self._record_commit("main")
        if then == "update+flush":
            main["a"][0] = 9
            state.rows[0].cells[state.cols[0].cid] = 9
        elif then == "commit+append":
            main.append({"a": [7]})
            state.rows.append(Row(next(self.ids), {state.cols[0].cid: 7}))
        if then != "commit":
            main.flush()
        self.branch()

    def branch(self) -> None:
        self.handles["main"].branch("dev")  # flushes: forks at a flush version or a commit
        dev = lakefmt.open(self.url, branch="dev")
        self.handles["dev"] = dev
        state = copy.deepcopy(self.model["main"].state)
        self.fork = (next(self.seq), state)
        self.model["dev"] = Branch(copy.deepcopy(state))

    # -- merge ------------------------------------------------------------------------------
    @precondition(lambda self: self.fork is not None)
    @rule(
        into_main=st.booleans(),
        resolve=st.sampled_from(RESOLVES),
        commit_source=st.sampled_from([True, True, False]),
    )
    def merge(self, into_main: bool, resolve: str, commit_source: bool) -> None:
        source, target = ("dev", "main") if into_main else ("main", "dev")
        if commit_source:  # most merges follow a commit of the source
            before = self.handles[source].version
            self.handles[source].commit()
            if self.handles[source].version != before:
                self._record_commit(source)
        handle = self.handles[target]
        before_rows = self.model[target].state.visible()
        try:
            expected = self._model_merge(source, target, resolve)
        except Conflict as why:
            event(f"merge: conflict ({why}, resolve={resolve})")
            handle.flush()  # what merge flushes is not the merge's doing
            version = handle.version
            try:
                handle.merge(source, resolve=resolve)
            except MergeConflictError:
                pass
            else:
                raise AssertionError("lakefmt merged what the model calls a conflict") from None
            assert handle.version == version
            assert lakefmt.open_read_only(self.url, branch=target).version == version
            assert handle.to_arrow().to_pylist() == before_rows
            return
        result = handle.merge(source, resolve=resolve)
        event(f"merge: {'nothing' if expected is None else 'applied'}")
        if expected is None:
            assert result is None, "lakefmt made a merge version with nothing to merge"
            return
        assert result is not None, "lakefmt merged nothing where the model has changes"
        state, source_seq = expected
        self.model[target].state = state
        seq = self._record_commit(target)
        state.merges[source] = (source_seq, seq)
        self.snapshots[seq].merges[source] = (source_seq, seq)

    def _model_merge(self, s_name: str, t_name: str, resolve: str) -> tuple[State, int] | None:
        assert self.fork is not None
        last = self.model[s_name].last_commit
        if last is None:
            return None
        src_seq, src = last
        tgt = copy.deepcopy(self.model[t_name].state)
        rec_t, rec_s = tgt.merges.get(s_name), src.merges.get(t_name)
        if rec_s is not None and (rec_t is None or rec_s[0] >= rec_t[1]):
            base, first_new = self.snapshots[rec_s[0]], rec_s[1]
        elif rec_t is not None:
            base, first_new = self.snapshots[rec_t[0]], rec_t[0] + 1
        else:
            base, first_new = self.fork[1], self.fork[0] + 1
        if src_seq < first_new:
            return None
        bcols = {c.cid: c for c in base.cols}
        scols = {c.cid: c for c in src.cols}
        tcols = {c.cid: c for c in tgt.cols}
        drops: set[int] = set()
        renames: dict[int, str] = {}
        for cid, bc in bcols.items():
            tc, sc = tcols.get(cid), scols.get(cid)
            if tc is None:
                continue
            if sc is None:
                drops.add(cid)
                continue
            if sc.name in (bc.name, tc.name):
                continue
            if tc.name == bc.name or resolve == "theirs":
                renames[cid] = sc.name
            elif resolve == "error":
                raise Conflict("rename/rename")
        new_cols = [copy.deepcopy(c) for c in src.cols if c.cid not in bcols | tcols]
        names = [renames.get(c.cid, c.name) for c in tgt.cols if c.cid not in drops]
        names += [c.name for c in new_cols]
        if len(set(names)) != len(names):
            raise Conflict("two columns, one name")
        new_ids = {c.cid for c in new_cols}
        brows = {r.rid: r for r in base.rows}
        srows = {r.rid: r for r in src.rows}
        trows = {r.rid: r for r in tgt.rows}
        deletes: list[Row] = []
        sets: list[tuple[Row, int, Any]] = []
        for rid, br in brows.items():
            sr, tr = srows[rid], trows[rid]
            if sr.deleted and not tr.deleted:
                deletes.append(tr)
            if sr.deleted or tr.deleted:
                continue
            for sc in src.cols:
                tc = tcols.get(sc.cid)
                if tc is None and sc.cid not in new_ids:
                    continue  # the target dropped it
                bval = base.value(br, bcols[sc.cid]) if sc.cid in bcols else sc.default
                sval = src.value(sr, sc)
                if _same(bval, sval):
                    continue
                if tc is not None:
                    tval = tgt.value(tr, tc)
                    if not _same(tval, bval) and not _same(tval, sval):
                        if resolve == "error":
                            raise Conflict("cell")
                        if resolve == "ours":
                            continue
                sets.append((tr, sc.cid, sval))
        appended = [r for r in src.rows if r.rid not in brows and r.rid not in trows]
        if not (drops or renames or new_cols or deletes or sets or appended):
            return None
        tgt.cols = [c for c in tgt.cols if c.cid not in drops]
        for c in tgt.cols:
            c.name = renames.get(c.cid, c.name)
        tgt.cols += new_cols
        for row in deletes:
            row.deleted = True
        for row, cid, value in sets:
            row.cells[cid] = value
        known = {c.cid for c in src.cols}
        for row in appended:
            cells = {cid: v for cid, v in row.cells.items() if cid in known}
            tgt.rows.append(Row(row.rid, cells, row.deleted))
        return tgt, src_seq

    # -- the check --------------------------------------------------------------------------
    @invariant()
    def branches_read_the_model(self) -> None:
        for name, branch in self.model.items():
            handle = self.handles[name]
            assert list(handle.schema) == [c.name for c in branch.state.cols], name
            assert handle.to_arrow().to_pylist() == branch.state.visible(), name


MergeModel.TestCase.settings = settings(
    settings(),
    max_examples=int(os.environ.get("MERGE_MODEL_EXAMPLES", settings().max_examples)),
    stateful_step_count=30,
    deadline=None,
)
test_merge_model = MergeModel.TestCase
