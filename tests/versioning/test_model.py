"""Model-based test of lakefmt's whole versioning API (issue 14).

A hypothesis ``RuleBasedStateMachine`` drives one dataset on local disk through random
sequences of: appends (a dict of columns and a list of row dicts), cell updates (one cell,
slices), deletes (one row, several, slices), ``add_column`` with defaults of every type the
machine knows (int, float with NaN/inf, text, bytes, bool, Embedding, Sequence, Struct, Dict),
``remove_column``, ``rename_column``, commits, flushes, reopening, opening old commits and tags,
tags and their deletion, branches, switching, merges with schema changes on both sides,
branch deletion, ``optimize`` and ``cleanup(older_than=0)``, and runs the same operations on
a plain-Python model (``model_support.py``). Expected errors (``ColumnExistsError``,
``MergeConflictError``, ...) are part of the model: it predicts when an operation must fail,
and the machine then checks that nothing changed.

After every step: the handle's rows equal the model's (column names in order, types, every
cell, NaN-aware, bytes exact), ``len(ds)`` matches, ``history`` lists the model's commits of
that branch, and the spec's Appendix B reference reader reads the same rows from disk. Every
third state, the version is also read as other engines read it (spec section 15): the
spec's reader of ``ds.read_plan()``, ``ds.to_duckdb()`` and ``lakefmt.scan_polars()`` must
return the model's rows, in order.

Merge semantics are those of spec/format.md section 12, computed on the model's states:
only branches with a direct fork point merge; three-way from the merge base (the fork point,
or the source commit of the newest merge between the two branches, in either direction,
12.3); merge records count only for the branch incarnation that wrote them (a branch deleted
and made again is another source); the source's changes up to its latest commit (none since
the base: nothing to merge; changes that leave the target as it is: no version); deletions
never conflict; a cell both sides changed to different values, or a column both renamed
differently, raises ``MergeConflictError`` unless ``resolve=``; column name clashes always
raise it. Compaction may turn a merge into a ``MergeConflictError`` (spec 12.5); the machine
accepts that outcome only when a side ran ``optimize`` since their fork, and turns automatic
compaction off on its handles so that this stays predictable. Deleting a branch that tags or
forks still need raises ``BranchInUseError`` (naming them) and changes nothing; an empty
commit makes no version and returns the last commit's id; version ids are opaque.

Every sequence starts with ``work_then_merge`` (changes on both branches, maybe one cell set
on both, then a merge in either direction). ``--hypothesis-show-statistics`` lists how many
sequences merged and changed the schema, and which merge outcomes occurred.

Budget: the CI run (any ``HYPOTHESIS_PROFILE`` but ``model-long``) runs 350 sequences of up to
25 steps: 90 s on the 2-core dev machine when quiet (December 2026); about 61% of the
sequences (about 240) apply a merge and change the schema, about 29% apply a merge that
itself changes the schema. Locally, 3,000 sequences (1,000 took 290 s on that machine)::

    HYPOTHESIS_PROFILE=model-long python -m pytest tests/versioning/test_model.py \
        --hypothesis-show-statistics -o timeout=3600

(``MODEL_EXAMPLES=N`` overrides the count in either profile.) The minimal reproductions of
the defects this machine found are in ``test_model_found.py``.
"""

from __future__ import annotations

import collections
import copy
import os
import shutil
import sys
import tempfile
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import lakefmt
from lakefmt.errors import (
    BranchExistsError,
    BranchInUseError,
    ColumnExistsError,
    ColumnNotFoundError,
    LakefmtError,
    MergeConflictError,
    TagExistsError,
    VersionNotFoundError,
)
from lakefmt.types import resolve_type

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model_support import (
    TYPE_KEYS,
    Branch,
    Col,
    Conflict,
    MergeRecord,
    State,
    describe,
    from_storage,
    plan_merge,
    plan_reader,
    plan_table,
    reference_reader,
    reference_table,
    same,
    storage_columns,
    type_spec,
    values,
)

COLUMN_NAMES = ["a", "s", "b", "c", "z"]
BRANCH_NAMES = ["dev", "exp", "dev2"]
TAG_NAMES = ["v1", "v1.0", "release", "t2"]
RESOLVES = ["error", "ours", "theirs"]
MUTATIONS = [
    "append_columns",
    "append_rows",
    "update_cell",
    "update_slice",
    "delete_rows",
    "add_column",
    "remove_column",
    "rename_column",
]
NEEDS_COLUMNS = {"append_columns", "append_rows", "update_cell", "update_slice", "rename_column"}
NEEDS_ROWS = {"update_cell", "update_slice", "delete_rows"}
SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
READER = reference_reader()
PLAN_READER = plan_reader()
#: How often each kind of step ran to its end (for tuning; ``--hypothesis-show-statistics``).
STATS: collections.Counter[str] = collections.Counter()


def _examples() -> int:
    if "MODEL_EXAMPLES" in os.environ:
        return int(os.environ["MODEL_EXAMPLES"])
    if os.environ.get("HYPOTHESIS_PROFILE") == "model-long":
        return settings().max_examples
    return 350


def _event(name: str) -> None:
    STATS[name] += 1
    event(name)


class VersioningMachine(RuleBasedStateMachine):
    """One dataset, one writable handle on the current branch, and the model beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="lakefmt-model-", dir=SHM)
        self.url = os.path.join(self.tmp, "ds")
        self.clock = 0
        self.uid = 0
        self.created: dict[int, int] = {}  # column model id -> clock of its add_column
        cols = [Col(self._uid(), "a", "int32"), Col(self._uid(), "s", "text")]
        self.ds = lakefmt.create(self.url, schema={c.name: type_spec(c.key) for c in cols})
        self.ds.auto_compact = False
        state = State(cols=cols)
        main = Branch("main", state, None, None, 0, [], key="main#0")
        main.commits.append((self.ds.version, None, "main#0"))
        main.last_commit = (state.copy(), 0)
        main.known_cols = {c.uid for c in cols}
        self.branches: dict[str, Branch] = {"main": main}
        self.incarnation: dict[str, int] = {"main": 0}
        self.alive_keys = {"main#0"}
        self.dirty: dict[str, bool] = {"main": False}
        self.cur = "main"
        # every commit: (id, branch key, state); tags: name -> (state, branch key)
        self.commits: list[tuple[str, str, State]] = [(self.ds.version, "main#0", state.copy())]
        self.tags: dict[str, tuple[State, str]] = {}
        self.disk: State | None = None  # what the reader must see when the handle buffers
        self.did: set[str] = set()  # what this sequence did, for the statistics
        self.duck = duckdb.connect()  # reads the versions' files as another engine would
        self.steps = 0

    def teardown(self) -> None:
        """Count what the sequence did (``--hypothesis-show-statistics``), drop the handle
        and the dataset's folder."""
        if {"merge", "schema change"} <= self.did:
            _event("sequence: merged and changed the schema")
        if "merge with schema change" in self.did:
            _event("sequence: a merge changed the schema")
        STATS["sequences"] += 1
        self.duck.close()
        self.ds = None  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ----------
    def _uid(self) -> int:
        self.uid += 1
        return self.uid

    def _tick(self) -> None:
        self.clock += 1
        STATS["step: " + sys._getframe(1).f_code.co_name] += 1

    @property
    def model(self) -> Branch:
        return self.branches[self.cur]

    @property
    def state(self) -> State:
        return self.model.state

    def _key(self, branch: str) -> str:
        return f"{branch}#{self.incarnation[branch]}"

    def _open(self, branch: str) -> lakefmt.Dataset:
        ds = lakefmt.open(self.url, branch=branch)
        ds.auto_compact = False
        return ds

    def _changed(self) -> None:
        self.dirty[self.cur] = True

    def _record_commit(self, version: str, message: str | None) -> None:
        self.clock += 1  # every commit has its own time: merge bases are ordered by it
        b = self.model
        key = self._key(self.cur)
        b.commits.append((version, message, key))
        b.last_commit = (b.state.copy(), self.clock)
        self.commits.append((version, key, b.state.copy()))
        self.dirty[self.cur] = False

    def _compare(self, table: Any, state: State, who: str) -> None:
        """``table`` (a pyarrow Table) holds exactly ``state``'s rows."""
        want = state.cols
        names = [c.name for c in want]
        assert table.column_names == names, f"{who}: columns {table.column_names} != {names}"
        assert table.num_rows == len(state.rows), (
            f"{who}: {table.num_rows} rows, model has {len(state.rows)} (columns {names})"
        )
        got = storage_columns(table)
        expected = state.table()
        for c in want:
            for i, (g, e) in enumerate(zip(got[c.name], expected[c.name], strict=True)):
                g = from_storage(c.key, g)
                assert same(g, e), (
                    f"{who}: column {c.name!r} ({c.key}) row {i}: read {describe(g)}, "
                    f"model {describe(e)}"
                )

    def _check_reference(self, branch: str, state: State) -> None:
        table = reference_table(READER, self.url, branch)
        self._compare(table, state, f"reference reader of {branch!r}")

    def _check_other_engines(self, state: State) -> None:
        """The read plan (read by the spec's plan reader) and the DuckDB statement over the
        version's files give the model's rows, in order (spec section 15)."""
        self._compare(plan_table(PLAN_READER, self.ds), state, "spec's plan reader")
        if state.cols:  # DuckDB and polars have no tables without columns
            table = self.ds.to_duckdb(self.duck).to_arrow_table()
            self._compare(table, state, "ds.to_duckdb()")
            frame = lakefmt.scan_polars(self.url, version=self.ds.version).collect()
            self._compare(frame.to_arrow(), state, "lakefmt.scan_polars()")

    def _check_history(self, ds: Any, branch: Branch) -> None:
        got = [(v.id, v.message) for v in ds.history]
        want = branch.history()
        gone = [i for i, (_, _, key) in enumerate(want) if key not in self.alive_keys]
        if gone:  # commits of a deleted branch may be gone: compare what comes after them
            want = want[gone[-1] + 1 :]
            got = got[len(got) - len(want) :] if len(want) <= len(got) else got
        ok = len(got) == len(want) and all(
            gm == wm and (gi == wi or self._names_commit(gi, wi))
            for (gi, gm), (wi, wm, _) in zip(got, want, strict=False)
        )
        assert ok, f"history of {branch.name!r}: {got} != {[(i, m) for i, m, _ in want]}"

    def _names_commit(self, got_id: str, want_id: str) -> bool:
        """Whether ``got_id`` opens the commit the model knows as ``want_id``.

        A branch's history may name a commit it inherited by another id (spec 8.3 reads the
        fork point as a version of the branch), as long as that id opens the same rows.
        """
        state = next((s for v, _, s in self.commits if v == want_id), None)
        if state is None:
            return False
        try:
            self._compare(lakefmt.open_read_only(self.url, version=got_id).to_arrow(), state, "")
        except (AssertionError, LakefmtError):
            return False
        return True

    def _check_all_versions(self) -> None:
        """Every commit of a living branch, every tag and every branch head reads as modelled."""
        for version, key, state in self.commits:
            if key in self.alive_keys:
                old = lakefmt.open_read_only(self.url, version=version)
                self._compare(old.to_arrow(), state, f"commit {version}")
        for name, (state, _) in self.tags.items():
            self._compare(
                lakefmt.open_read_only(self.url, version=name).to_arrow(), state, f"tag {name!r}"
            )
        for name, b in self.branches.items():
            head = lakefmt.open_read_only(self.url, branch=name)
            self._compare(head.to_arrow(), b.state, f"head of {name!r}")
            self._check_reference(name, b.state)
            self._check_history(head, b)

    def _expect_unchanged(self, error: type[BaseException], call: Any) -> None:
        """``call()`` must raise ``error``; the invariant then checks that nothing changed."""
        with pytest.raises(error):
            call()

    # -- invariant ----------
    @invariant()
    def agrees_with_model(self) -> None:
        state = self.state
        assert len(self.ds) == len(state.rows), f"len(ds) {len(self.ds)} != {len(state.rows)}"
        if self.disk is not None:  # buffered rows or updates: disk still has the state before
            self._check_reference(self.cur, self.disk)
        for c in state.cols:
            assert self.ds.schema[c.name] == resolve_type(type_spec(c.key)), c.name
        self._compare(self.ds.to_arrow(), state, f"handle on {self.cur!r}")  # flushes
        self.disk = None
        self._check_reference(self.cur, state)
        self.steps += 1
        if self.steps % 3 == 0:  # a third of the states: the check doubles a step's cost
            self._check_other_engines(state)
        self._check_history(self.ds, self.model)

    # -- appends ----------
    def _row_values(self, data: Any, omit: bool) -> dict[str, Any]:
        row = {}
        for c in self.state.cols:
            if c.has_default and omit and data.draw(st.booleans(), label=f"omit {c.name}"):
                continue
            row[c.name] = data.draw(values(c.key), label=c.name)
        return row

    def _append_model(self, rows: list[dict[str, Any]]) -> None:
        for given in rows:
            self.state.rows.append(
                (
                    self._uid(),
                    {
                        c.uid: copy.deepcopy(given[c.name]) if c.name in given else c.fill()
                        for c in self.state.cols
                    },
                )
            )
        self.model.known_rows.update(u for u, _ in self.state.rows)

    @precondition(lambda self: self.state.cols)
    @rule(data=st.data())
    def append_columns(self, data: Any) -> None:
        self._tick()
        n = data.draw(st.integers(1, 3), label="rows")
        columns: dict[str, list[Any]] = {}
        for c in self.state.cols:
            if c.has_default and data.draw(st.booleans(), label=f"omit {c.name}"):
                continue
            columns[c.name] = [data.draw(values(c.key), label=c.name) for _ in range(n)]
        if not columns:
            c = self.state.cols[0]
            columns[c.name] = [data.draw(values(c.key), label=c.name) for _ in range(n)]
        self.disk = self.state.copy()
        self.ds.append(columns)
        self._append_model([{k: v[i] for k, v in columns.items()} for i in range(n)])
        self._changed()

    @precondition(lambda self: self.state.cols)
    @rule(data=st.data())
    def append_rows(self, data: Any) -> None:
        self._tick()
        rows = []
        for _ in range(data.draw(st.integers(1, 3), label="rows")):
            row = self._row_values(data, omit=True)
            if not row:
                c = self.state.cols[0]
                row[c.name] = data.draw(values(c.key), label=c.name)
            rows.append(row)
        self.disk = self.state.copy()
        self.ds.append(rows)
        self._append_model(rows)
        self._changed()

    # -- updates and deletes ----------
    @precondition(lambda self: self.state.cols and self.state.rows)
    @rule(data=st.data())
    def update_cell(self, data: Any) -> None:
        self._tick()
        n = len(self.state.rows)
        c = self.state.col(data.draw(st.sampled_from(self.state.names()), label="column"))
        i = data.draw(st.integers(-n, n - 1), label="row")
        v = data.draw(values(c.key), label="value")
        self.disk = self.state.copy()
        self.ds[c.name][i] = v
        self.state.rows[i][1][c.uid] = copy.deepcopy(v)
        self._changed()

    @precondition(lambda self: self.state.cols and self.state.rows)
    @rule(data=st.data())
    def update_slice(self, data: Any) -> None:
        self._tick()
        n = len(self.state.rows)
        c = self.state.col(data.draw(st.sampled_from(self.state.names()), label="column"))
        a = data.draw(st.integers(0, n - 1), label="start")
        b = data.draw(st.integers(a + 1, n), label="stop")
        vs = [data.draw(values(c.key), label="value") for _ in range(b - a)]
        self.disk = self.state.copy()
        self.ds[c.name][a:b] = vs
        for i, v in zip(range(a, b), vs, strict=True):
            self.state.rows[i][1][c.uid] = copy.deepcopy(v)
        self._changed()

    @precondition(lambda self: self.state.rows)
    @rule(data=st.data())
    def delete_rows(self, data: Any) -> None:
        self._tick()
        n = len(self.state.rows)
        form = data.draw(st.sampled_from(["one", "several", "slice"]), label="form")
        if form == "one":
            i = data.draw(st.integers(-n, n - 1), label="row")
            self.ds.delete(i)
            gone = {i % n}
        elif form == "several":
            idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
            self.ds.delete(idx)
            gone = set(idx)
        else:
            a = data.draw(st.integers(0, n - 1), label="start")
            b = data.draw(st.integers(a + 1, n), label="stop")
            self.ds.delete(slice(a, b))
            gone = set(range(a, b))
        self.state.rows[:] = [r for i, r in enumerate(self.state.rows) if i not in gone]
        self._changed()

    # -- schema ----------
    @rule(data=st.data())
    def add_column(self, data: Any) -> None:
        self._tick()
        free = [n for n in COLUMN_NAMES if n not in self.state.names()]
        # mostly a free name (a taken one only checks ColumnExistsError)
        names = free if free and data.draw(st.integers(0, 4), label="free name") else COLUMN_NAMES
        name = data.draw(st.sampled_from(names), label="name")
        key = data.draw(st.sampled_from(TYPE_KEYS), label="type")
        default = data.draw(st.one_of(st.none(), values(key)), label="default")
        if name in self.state.names():
            self._expect_unchanged(
                ColumnExistsError,
                lambda: self.ds.add_column(name, type_spec(key), default_value=default),
            )
            return
        self.ds.add_column(name, type_spec(key), default_value=default)
        col = Col(self._uid(), name, key, default is not None, copy.deepcopy(default))
        self.created[col.uid] = self.clock
        self.state.cols.append(col)
        for _, vals in self.state.rows:
            vals[col.uid] = col.fill()
        self.model.known_cols.add(col.uid)
        self.did.add("schema change")
        self._changed()

    @rule(data=st.data())
    def remove_column(self, data: Any) -> None:
        self._tick()
        name = data.draw(st.sampled_from(COLUMN_NAMES), label="name")
        if name not in self.state.names():
            self._expect_unchanged(ColumnNotFoundError, lambda: self.ds.remove_column(name))
            return
        self.ds.remove_column(name)
        col = self.state.col(name)
        self.state.cols.remove(col)
        for _, vals in self.state.rows:
            del vals[col.uid]
        self.did.add("schema change")
        self._changed()

    @precondition(lambda self: self.state.cols)
    @rule(data=st.data())
    def rename_column(self, data: Any) -> None:
        self._tick()
        old = data.draw(st.sampled_from(self.state.names()), label="old")
        new = data.draw(st.sampled_from(COLUMN_NAMES), label="new")
        if new in self.state.names():
            self._expect_unchanged(ColumnExistsError, lambda: self.ds.rename_column(old, new))
            return
        self.ds.rename_column(old, new)
        self.state.col(old).name = new
        self.did.add("schema change")
        self._changed()

    # -- versions ----------
    @rule(
        message=st.one_of(
            st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
        )
    )
    def commit(self, message: str | None) -> None:
        """A commit; with nothing changed since the last commit it makes no version and
        returns that commit's id (issue 14.9; a fresh branch's is its fork point's)."""
        self._tick()
        version = self.ds.commit(message)
        if self.dirty[self.cur]:
            self._record_commit(version, message)
            return
        last = self.model.history()[-1][0]
        assert version == last or self._names_commit(version, last), (
            f"empty commit on {self.cur!r} returned {version}, the last commit is {last}"
        )
        _event("commit: nothing to commit")

    @rule(data=st.data())
    def flush(self, data: Any) -> None:
        """An update (when there is a cell) made durable by an explicit flush."""
        self._tick()
        if self.state.cols and self.state.rows:
            c = self.state.col(data.draw(st.sampled_from(self.state.names()), label="column"))
            i = data.draw(st.integers(0, len(self.state.rows) - 1), label="row")
            v = data.draw(values(c.key), label="value")
            self.ds[c.name][i] = v
            self.state.rows[i][1][c.uid] = copy.deepcopy(v)
            self._changed()
        self.ds.flush()
        self._check_reference(self.cur, self.state)

    @rule(data=st.data())
    def reopen_or_maintain(self, data: Any) -> None:
        """Reopen the branch in a fresh handle, ``optimize``, or ``cleanup(older_than=0)``."""
        what = data.draw(st.sampled_from(["reopen", "reopen", "optimize", "cleanup"]))
        getattr(self, "_" + what)()

    def _reopen(self) -> None:
        self._tick()
        self.ds = self._open(self.cur)

    @precondition(lambda self: any(k in self.alive_keys for _, k, _ in self.commits))
    @rule(data=st.data())
    def open_commit(self, data: Any) -> None:
        self._tick()
        alive = [c for c in self.commits if c[1] in self.alive_keys]
        version = data.draw(st.sampled_from([v for v, _, _ in alive]), label="commit")
        state = next(s for v, _, s in alive if v == version)
        old = lakefmt.open_read_only(self.url, version=version)
        assert len(old) == len(state.rows), f"commit {version}: len {len(old)}"
        self._compare(old.to_arrow(), state, f"commit {version}")

    @rule(data=st.data())
    def tag(self, data: Any) -> None:
        self._tick()
        name = data.draw(st.sampled_from(TAG_NAMES), label="tag")
        if name in self.tags:
            self._expect_unchanged(TagExistsError, lambda: self.ds.tag(name))
            return
        self.ds.tag(name)  # flushes first: the tagged version is the handle's now
        self.tags[name] = (self.state.copy(), self._stored_on(self.cur, self.ds.version))

    def _stored_on(self, branch: str, version: str) -> str:
        """Key of the branch whose folder holds ``version`` of ``branch`` (spec 6.6, 12.2).

        A branch that wrote no manifest since its fork reads as its fork point (spec 8.2),
        which is stored on its parent (recursively).
        """
        b = self.branches[branch]
        while b.parent is not None and version == b.fork_version:
            b = self.branches[b.parent]  # a branch with forks cannot be deleted (12.2)
        return b.key

    @precondition(lambda self: self.tags)
    @rule(data=st.data())
    def open_or_delete_tag(self, data: Any) -> None:
        self._tick()
        name = data.draw(st.sampled_from(sorted(self.tags)), label="tag")
        if data.draw(st.booleans(), label="delete"):
            self.ds.tags[name].delete()
            del self.tags[name]
            with pytest.raises(VersionNotFoundError):
                lakefmt.open_read_only(self.url, version=name)
            return
        state = self.tags[name][0]
        self._compare(lakefmt.open_read_only(self.url, version=name).to_arrow(), state, name)
        self._compare(self.ds.tags[name].open().to_arrow(), state, f"tags[{name!r}].open()")

    @rule(data=st.data())
    def branch(self, data: Any) -> None:
        self._tick()
        name = data.draw(st.sampled_from(BRANCH_NAMES), label="branch")
        if name in self.branches:
            self._expect_unchanged(BranchExistsError, lambda: self.ds.branch(name))
            return
        self.ds.branch(name)  # flushes first: the fork point is the handle's version now
        parent = self.model
        child = Branch(
            name,
            parent.state.copy(),
            parent=self.cur,
            fork=parent.state.copy(),
            fork_time=self.clock,
            inherited=parent.history(),
        )
        child.fork_version = self.ds.version
        child.merges = copy.deepcopy(parent.merges)  # manifests carry records on (spec 6.8)
        child.known_rows = set(parent.known_rows)
        child.known_cols = set(parent.known_cols)
        self.incarnation[name] = self.incarnation.get(name, -1) + 1
        self.alive_keys.add(self._key(name))
        child.key = self._key(name)
        self.branches[name] = child
        # a fork of a flush version has changes since its last commit (its parent's)
        self.dirty[name] = self.dirty[self.cur]

    @precondition(lambda self: len(self.branches) > 1)
    @rule(data=st.data())
    def switch(self, data: Any) -> None:
        self._tick()
        name = data.draw(st.sampled_from(sorted(set(self.branches) - {self.cur})), label="branch")
        if data.draw(st.booleans(), label="via branches[name].open()"):
            self.ds = self.ds.branches[name].open()
            self.ds.auto_compact = False
        else:
            self.ds = self._open(name)
        self.cur = name

    @precondition(lambda self: len(self.branches) > 1)
    @rule(data=st.data())
    def merge(self, data: Any) -> None:
        self._tick()
        source = data.draw(st.sampled_from(sorted(set(self.branches) - {self.cur})), label="src")
        resolve = data.draw(st.sampled_from(RESOLVES), label="resolve")
        self._merge(source, resolve)

    @rule(data=st.data())
    def work_then_merge(self, data: Any) -> None:
        """Change this branch (maybe), change and commit another branch (made here if there
        is none), then merge it here, or this branch into it: the sequences that give merges
        with changes on both sides, including one cell both sides set (a conflict unless
        ``resolve=``, or not one if they set the same value)."""
        self._tick()
        home = self.cur
        if len(self.branches) == 1:
            self.branch(data)
        other = data.draw(st.sampled_from(sorted(set(self.branches) - {home})), label="other")
        for _ in range(data.draw(st.integers(0, 2), label="changes here first")):
            self._mutate(data)
        cell = self._same_cell(data, other)
        if self.dirty[self.cur] and data.draw(st.booleans(), label="commit here first"):
            self._record_commit(self.ds.commit("here"), "here")
        self._switch(other)
        if cell is not None:
            self._set_cell(data, *cell)
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            self._mutate(data)
        if self.dirty[self.cur]:
            self._record_commit(self.ds.commit("work"), "work")
        resolve = data.draw(st.sampled_from(RESOLVES), label="resolve")
        if data.draw(st.booleans(), label="merge into the other branch"):
            self._merge(home, resolve)
        else:
            self._switch(home)
            self._merge(other, resolve)

    def _mutate(self, data: Any) -> None:
        """One change of the current branch, flushed."""
        op = data.draw(st.sampled_from(MUTATIONS), label="change")
        if op in NEEDS_COLUMNS and not self.state.cols:
            op = "add_column"
        if op in NEEDS_ROWS and not self.state.rows:
            op = "append_rows" if self.state.cols else "add_column"
        getattr(self, op)(data)
        self.ds.flush()
        self.disk = None

    def _same_cell(self, data: Any, other: str) -> tuple[int, int, Any] | None:
        """Maybe set a cell here that ``other`` also has; (row id, column id, value) set."""
        there = self.branches[other].state
        rows, cols = {u for u, _ in there.rows}, {c.uid for c in there.cols}
        cells = [
            (u, c.uid)
            for u, _ in self.state.rows
            for c in self.state.cols
            if u in rows and c.uid in cols
        ]
        if not cells or not data.draw(st.booleans(), label="both sides set one cell"):
            return None
        row, col = data.draw(st.sampled_from(cells), label="cell")
        value = self._set_cell(data, row, col, None)
        return row, col, value

    def _set_cell(self, data: Any, row: int, col: int, other_value: Any) -> Any:
        """Set the cell (row id, column id) on this branch to a drawn value (maybe the value
        the other side set) and flush."""
        c = next(c for c in self.state.cols if c.uid == col)
        i = next(k for k, (u, _) in enumerate(self.state.rows) if u == row)
        if other_value is not None and data.draw(st.booleans(), label="the same value"):
            value = copy.deepcopy(other_value)
        else:
            value = data.draw(values(c.key), label="value")
        self.ds[c.name][i] = value
        self.state.rows[i][1][col] = copy.deepcopy(value)
        self._changed()
        self.ds.flush()
        return value

    @rule(data=st.data())
    def work_then_merge_again(self, data: Any) -> None:
        """The same as ``work_then_merge`` (more rules, so merges are drawn more often)."""
        self.work_then_merge(data)

    @initialize(data=st.data())
    def start_with_a_merge(self, data: Any) -> None:
        """Every sequence starts with ``work_then_merge`` (so most have merges with schema
        changes; the random steps that follow may merge again)."""
        self.work_then_merge(data)

    def _switch(self, name: str) -> None:
        self.ds = self._open(name)
        self.cur = name

    def _merge(self, source: str, resolve: str) -> None:
        target, src = self.model, self.branches[source]
        try:
            plan = plan_merge(target, src, resolve, self.created)
        except Conflict as conflict:
            self._expect_unchanged(
                MergeConflictError, lambda: self.ds.merge(source, resolve=resolve)
            )
            _event(f"merge conflict: {conflict.kind}")
            return
        for flag in ("criss_cross", "dropped_added", "deletes_vs_updates"):
            if getattr(plan, flag):
                _event(f"merge: {flag.replace('_', ' ')}")
        if plan.result is not None and not plan.result.cols:
            _event("merge: zero columns")
        before = self.ds.version
        try:
            version = self.ds.merge(source, resolve=resolve)
        except MergeConflictError:
            if plan.may_conflict:  # a side compacted since the base (spec 12.5)
                _event("merge conflict: compaction")
                return
            raise
        if plan.result is None:
            assert version is None, f"merge of unchanged {source!r} made version {version}"
            assert self.ds.version == before
            _event("merge: nothing to merge")
            return
        if version is None:
            assert plan.empty, f"merge of {source!r} into {self.cur!r} did nothing"
            assert self.ds.version == before
            _event("merge: nothing changes")
            return
        assert plan.source is not None
        target_before = target.state
        target.state = plan.result
        target.known_rows.update(u for u, _ in plan.result.rows)
        target.known_cols.update(c.uid for c in plan.result.cols)
        self._record_commit(version, f"merge {source}")
        schema_changed = [c.uid for c in plan.result.cols] != [c.uid for c in target_before.cols]
        _event("merge: applied" + (" with schema change" if schema_changed else ""))
        self.did.update({"merge", "merge with schema change"} if schema_changed else {"merge"})
        _event(f"merge: applied, base from the {plan.base}")
        target.merges[src.key] = MergeRecord(
            plan.source.copy(), plan.source_time, made_time=self.clock, made_on=target.key
        )

    @precondition(lambda self: len(self.branches) > 1)
    @rule(data=st.data())
    def delete_branch(self, data: Any) -> None:
        self._tick()
        choices = sorted(set(self.branches) - {self.cur, "main"})
        if not choices:
            return
        name = data.draw(st.sampled_from(choices), label="branch")
        key = self._key(name)
        # forks of it, and forks whose fork point is stored on it: a fork of a branch that
        # wrote nothing since its own fork starts at a version in this branch's folder
        forks = sorted(
            b.name
            for b in self.branches.values()
            if b.parent is not None
            and b.name != name
            and (b.parent == name or self._stored_on(b.parent, b.fork_version or "") == key)
        )
        tags = sorted(t for t, (_, k) in self.tags.items() if k == key)
        if forks or tags:  # refused: they still need its versions (spec 12.2 step 1)
            with pytest.raises(BranchInUseError) as refused:
                self.ds.branches[name].delete()
            assert refused.value.branches == forks and sorted(refused.value.tags) == tags, (
                f"deleting {name!r}: refused for {refused.value.branches} and "
                f"{refused.value.tags}, the model has forks {forks} and tags {tags}"
            )
            assert name in self.ds.branches.names()
            _event("delete_branch: refused")
        else:
            self.ds.branches[name].delete()
            del self.branches[name]
            self.alive_keys.discard(key)
            assert name not in self.ds.branches.names()
            _event("delete_branch: deleted")
        self._check_all_versions()

    def _optimize(self) -> None:
        self._tick()
        version = self.ds.optimize()
        self._record_commit(version, "optimize")
        self.model.optimized_at = self.clock

    def _cleanup(self) -> None:
        self._tick()
        self.ds.cleanup(older_than=0)
        self._check_all_versions()
        _event("cleanup")


VersioningMachine.TestCase.settings = settings(
    max_examples=_examples(),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
TestVersioningModel = VersioningMachine.TestCase
