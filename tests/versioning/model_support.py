"""The plain-Python model of a lakefmt dataset's versions, used by ``test_model.py``.

Nothing here imports lakefmt's implementation: a branch is a list of columns and a list of
rows (dicts keyed by a column's *model id*), every commit and tag keeps a deep copy of that
state, and a merge is computed from spec/format.md section 12 on those copies alone.

Identity: every column and every row gets a model id when it is created (``add_column``,
``append``). A rename keeps the column's id; a merge copies the source's new rows and columns
to the target under the same ids, so a later merge recognises them. These ids are the model's
own bookkeeping; lakefmt's field and fragment ids never appear here.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

# -- column types the machine uses ----------

#: Floats that float32 stores exactly, so a round trip compares equal.
F32 = [0.0, 1.5, -2.25, 1024.0, 2.0**127, math.nan, math.inf, -math.inf]
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=5)


def _type_spec(key: str) -> Any:
    """The ``dtype`` argument the API is given for a model type key."""
    from lakefmt import types as T

    return {
        "int32": "int32",
        "int64": "int64",
        "float32": "float32",
        "float64": "float64",
        "text": "text",
        "bytes": "bytes",
        "bool": "bool",
        "embedding": T.Embedding(2),
        "sequence": T.Sequence("int32"),
        "struct": T.Struct({"p": "int32", "q": "bytes"}),
        "dict": T.Dict(),
    }[key]


TYPE_KEYS = [
    "int32",
    "int64",
    "float32",
    "float64",
    "text",
    "bytes",
    "bool",
    "embedding",
    "sequence",
    "struct",
    "dict",
]
SCALAR_KEYS = {"int32", "int64", "float32", "float64", "text", "bytes", "bool"}


def type_spec(key: str) -> Any:
    """The ``dtype`` to pass to ``create``/``add_column`` for model type ``key``."""
    return _type_spec(key)


def values(key: str) -> st.SearchStrategy[Any]:
    """Non-null values of model type ``key``, as plain Python values (for cells and for
    defaults alike: NaN and infinities in vectors, bytes in structs, ``$``-keys in dicts)."""
    f32 = st.sampled_from(F32)
    if key == "int32":
        return INT32
    if key == "int64":
        return st.integers(-(2**63), 2**63 - 1)
    if key == "float32":
        return st.sampled_from(F32)
    if key == "float64":
        return st.floats(allow_nan=True, allow_infinity=True)
    if key == "text":
        return TEXT
    if key == "bytes":
        return st.binary(max_size=6)
    if key == "bool":
        return st.booleans()
    if key == "embedding":
        return st.lists(f32, min_size=2, max_size=2)
    if key == "sequence":
        return st.lists(st.integers(-5, 5), max_size=3)
    if key == "struct":
        return st.fixed_dictionaries({"p": INT32, "q": st.binary(max_size=3)})
    if key == "dict":
        return st.dictionaries(
            st.sampled_from(["k", "x", "$base64", "$float"]),
            st.one_of(st.integers(-5, 5), st.text("ab", max_size=2)),
            max_size=2,
        )
    raise AssertionError(key)


def same(a: Any, b: Any) -> bool:
    """Equality of model values: NaN equals NaN, bytes never equal text, bools never ints."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return False
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, bytes | str) or isinstance(b, bytes | str):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def from_storage(key: str, value: Any) -> Any:
    """A value read from a column's Arrow *storage* (``to_pylist``) in the model's form."""
    if value is None:
        return None
    if key == "dict":
        return json.loads(value) if isinstance(value, str) else value
    return value


# -- the model ----------


@dataclass
class Col:
    """A column: model id, name, type key and default."""

    uid: int
    name: str
    key: str
    has_default: bool = False
    default: Any = None

    def fill(self) -> Any:
        """What a row that was never given this column reads."""
        return copy.deepcopy(self.default) if self.has_default else None


@dataclass
class State:
    """The logical contents of one version: columns in order, rows in order."""

    cols: list[Col] = field(default_factory=list)
    rows: list[tuple[int, dict[int, Any]]] = field(default_factory=list)

    def copy(self) -> State:
        """A deep copy (snapshots never share mutable values with the live state)."""
        return copy.deepcopy(self)

    def col(self, name: str) -> Col:
        """The column named ``name``."""
        return next(c for c in self.cols if c.name == name)

    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.cols]

    def table(self) -> dict[str, list[Any]]:
        """``{name: [value per row]}``, the form both readers are compared in."""
        return {c.name: [vals[c.uid] for _, vals in self.rows] for c in self.cols}


def same_state(a: State, b: State) -> bool:
    """Same columns (ids, names, types, defaults) and same rows (ids and values)."""
    if [(c.uid, c.name, c.key, c.has_default) for c in a.cols] != [
        (c.uid, c.name, c.key, c.has_default) for c in b.cols
    ]:
        return False
    if not all(same(x.default, y.default) for x, y in zip(a.cols, b.cols, strict=True)):
        return False
    if [u for u, _ in a.rows] != [u for u, _ in b.rows]:
        return False
    return all(same(x, y) for (_, x), (_, y) in zip(a.rows, b.rows, strict=True))


@dataclass
class MergeRecord:
    """What the last merge of a source into a target recorded (spec 12.4 step 5)."""

    source_state: State  # the merged source commit (the next merge's base, spec 12.3)
    source_time: int  # the model clock when that source commit was made
    made_time: int  # the model clock of the merge commit on the target
    made_on: str = ""  # key of the branch whose merge wrote it (a fork inherits it, spec 6.8)


@dataclass
class Branch:
    """One branch: its live state and what the spec's merge rules need about its past."""

    name: str
    state: State
    parent: str | None  # branch it was forked from
    fork: State | None  # the state it was forked at
    fork_time: int
    inherited: list[tuple[str, str | None, str]]  # history before the fork: (id, message, branch)
    commits: list[tuple[str, str | None, str]] = field(default_factory=list)
    last_commit: tuple[State, int] | None = None  # own latest commit: (state, model clock)
    optimized_at: int = -1  # model clock of its latest optimize
    merges: dict[str, MergeRecord] = field(default_factory=dict)  # by source branch key
    key: str = ""  # name#incarnation: a branch deleted and made again is another branch
    fork_version: str | None = None  # the id it read as at its fork (its parent's version)
    known_rows: set[int] = field(default_factory=set)  # every row id this branch ever had
    known_cols: set[int] = field(default_factory=set)

    def history(self) -> list[tuple[str, str | None, str]]:
        """``(id, message, branch)`` of every commit leading here, oldest first."""
        return [*self.inherited, *self.commits]


class Conflict(Exception):
    """The model predicts ``MergeConflictError``; ``kind`` says which rule of spec 12.5."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class MergePlan:
    """The model's prediction of a merge: the target's new state, or nothing to merge."""

    result: State | None  # None: nothing to merge, no version
    source: State | None = None
    source_time: int = -1
    empty: bool = False  # the source committed, but its changes cancel out (None or commit)
    may_conflict: bool = False  # compaction may make it a MergeConflictError (spec 12.5)
    base: str = "fork"  # where the base came from: 'fork', 'merge here', 'merge back'
    criss_cross: bool = False  # the source brings rows/columns the target already had
    dropped_added: bool = False  # the source added and dropped a column since the base
    name_clash: str | None = None  # 'both_added', 'both_renamed' or 'other' (see Conflict)
    deletes_vs_updates: bool = False  # deletions on one side, cell updates on the other


def plan_merge(target: Branch, source: Branch, resolve: str, created: dict[int, int]) -> MergePlan:
    """What merging ``source`` into ``target`` must do, by spec/format.md section 12.

    ``created`` maps a column's model id to the model clock of its ``add_column``.

    Raises:
        Conflict: The merge must raise ``MergeConflictError`` and change nothing.
    """
    # 12.3: only a direct parent relation merges; then the base
    if source.parent != target.name and target.parent != source.name:
        raise Conflict("unrelated", f"{source.name} and {target.name} have no direct fork point")
    # Records count only for the branch they were written for: keys are name#incarnation
    # (the spec's branch_id), so a re-created branch's inherited records are absent.
    r_t = target.merges.get(source.key)  # the last merge of source into target
    r_s = source.merges.get(target.key)  # the last merge of target into source
    if r_s is not None and (r_t is None or r_s.source_time >= r_t.made_time):
        base, base_time = r_s.source_state, r_s.made_time  # the merge went target -> source
        nothing_before = r_s.made_time  # that merge commit holds the source's own changes
        base_kind = "merge back"
    elif r_t is not None and (r_s is None or r_t.source_time >= r_s.made_time):
        base, base_time = r_t.source_state, r_t.source_time
        nothing_before = r_t.source_time + 1
        base_kind = "merge here"
    elif r_t is None and r_s is None:
        fork = source.fork if source.parent == target.name else target.fork
        base = fork  # type: ignore[assignment]
        base_time = source.fork_time if source.parent == target.name else target.fork_time
        nothing_before = base_time + 1
        base_kind = "fork"
    else:
        raise Conflict("criss_cross", "each branch merged into the other concurrently")
    assert base is not None
    source_base = target_base = base
    # 'changes up to the source's latest commit': none since the base means nothing to merge
    if source.last_commit is None or source.last_commit[1] < nothing_before:
        return MergePlan(result=None)
    src = source.last_commit[0]
    plan = MergePlan(result=None, source=src, source_time=source.last_commit[1], base=base_kind)
    # Compaction rewrites fragments the two branches share from their fork on (spec 12.5):
    # any optimize since the fork may turn the merge into a conflict.
    if source.parent == target.name:
        fork_time = source.fork_time
    elif target.parent == source.name:
        fork_time = target.fork_time
    else:
        fork_time = -1
    plan.may_conflict = source.optimized_at > fork_time or target.optimized_at > fork_time
    tgt = target.state

    # 12.4 step 1: schema
    base_cols = {c.uid: c for c in source_base.cols}
    src_cols = {c.uid: c for c in src.cols}
    tbase_cols = {c.uid: c for c in target_base.cols}
    new_cols = [copy.deepcopy(c) for c in src.cols if c.uid not in base_cols]
    if any(c.uid in target.known_cols for c in new_cols):
        plan.criss_cross = True
    new_cols = [c for c in new_cols if c.uid not in target.known_cols]
    plan.dropped_added = any(
        uid not in src_cols and uid not in base_cols and t > base_time
        for uid, t in created.items()
        if uid in source.known_cols
    )
    dropped = {uid for uid in base_cols if uid not in src_cols}
    cols: list[Col] = []
    for c in tgt.cols:
        if c.uid in dropped:
            continue
        c = copy.deepcopy(c)
        if (
            c.uid in src_cols
            and c.uid in base_cols
            and src_cols[c.uid].name != base_cols[c.uid].name
        ):
            new_name = src_cols[c.uid].name
            t_renamed = c.uid in tbase_cols and c.name != tbase_cols[c.uid].name
            if t_renamed and c.name != new_name:
                # both renamed it: resolve= picks a name (spec 12.5)
                if resolve == "error":
                    plan.name_clash = "both_renamed"
                    detail = f"{base_cols[c.uid].name} -> {new_name} / {c.name}"
                    raise Conflict("both_renamed", detail)
                if resolve == "theirs":
                    c.name = new_name
            else:
                c.name = new_name
        cols.append(c)
    cols.extend(new_cols)
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        new_ids = {c.uid for c in new_cols}
        # spec 12.5 names one clash: a column each side added under the same name
        both_added = all(
            any(c.name == n and c.uid in new_ids for c in cols)
            and any(c.name == n and c.uid not in tbase_cols and c.uid not in new_ids for c in cols)
            for n in dup
        )
        plan.name_clash = "both_added" if both_added else "other"
        raise Conflict(plan.name_clash, f"duplicate column names {dup}")

    # 12.4 steps 2-4: rows
    base_rows = dict(source_base.rows)
    src_rows = dict(src.rows)
    tbase_rows = dict(target_base.rows)
    appended = [(u, v) for u, v in src.rows if u not in base_rows]
    if any(u in target.known_rows for u, _ in appended):
        plan.criss_cross = True
    appended = [(u, v) for u, v in appended if u not in target.known_rows]
    deleted = {u for u in base_rows if u not in src_rows}
    changes: dict[tuple[int, int], Any] = {}
    for u, before_vals in base_rows.items():
        if u not in src_rows:
            continue
        for c in src.cols:
            before = before_vals[c.uid] if c.uid in base_cols else src_cols[c.uid].fill()
            after = src_rows[u][c.uid]
            if not same(before, after):
                changes[(u, c.uid)] = after
    t_changed_any = False
    t_deleted_any = any(u not in dict(tgt.rows) for u in tbase_rows)
    tgt_rows = dict(tgt.rows)
    conflicts = []
    for (u, cuid), after in list(changes.items()):
        if u not in tgt_rows or cuid not in {c.uid for c in tgt.cols}:
            continue
        if u in tbase_rows and cuid in tbase_cols:
            t_before, t_now = tbase_rows[u][cuid], tgt_rows[u][cuid]
            if not same(t_before, t_now) and not same(t_now, after):
                if resolve == "error":
                    conflicts.append((u, cuid))
                elif resolve == "ours":
                    del changes[(u, cuid)]
    for u, vals in tgt.rows:
        if u in tbase_rows and any(
            not same(tbase_rows[u].get(c.uid), vals.get(c.uid))
            for c in tgt.cols
            if c.uid in tbase_cols
        ):
            t_changed_any = True
    plan.deletes_vs_updates = (bool(deleted) and t_changed_any) or (t_deleted_any and bool(changes))
    if conflicts:
        raise Conflict("cells", f"{len(conflicts)} cells changed on both sides")

    new_col_ids = {c.uid for c in new_cols}
    out = State(cols=cols)
    for u, vals in tgt.rows:
        if u in deleted:
            continue
        row = {}
        for c in cols:
            if c.uid in new_col_ids:
                row[c.uid] = c.fill()
            else:
                row[c.uid] = vals[c.uid]
            if (u, c.uid) in changes:
                row[c.uid] = copy.deepcopy(changes[(u, c.uid)])
        out.rows.append((u, row))
    for u, vals in appended:
        out.rows.append(
            (u, {c.uid: copy.deepcopy(vals[c.uid]) if c.uid in vals else c.fill() for c in cols})
        )
    plan.result = out
    # nothing changes (the source's changes cancel out, or the target has them all): no
    # version (spec 12.4)
    plan.empty = same_state(src, source_base) or same_state(out, tgt)
    return plan


# -- the reference reader of spec/format.md, Appendix B ----------

FORMAT_MD = Path(__file__).resolve().parents[2] / "spec" / "format.md"
BEGIN_MARK = "<!-- BEGIN reference-reader -->"
END_MARK = "<!-- END reference-reader -->"


def reference_reader() -> dict[str, Any]:
    """The namespace of the spec's reference reader, extracted as tests/spec/conftest.py does."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    block = text[text.index(BEGIN_MARK) + len(BEGIN_MARK) : text.index(END_MARK)]
    code = block.partition("```python\n")[2].rpartition("```")[0]
    namespace: dict[str, Any] = {"__name__": "lakefmt_reference_reader"}
    exec(compile(code, f"{FORMAT_MD}#reference-reader", "exec"), namespace)
    return namespace


def plan_reader() -> dict[str, Any]:
    """The namespace of the spec's reader of read plans (section 15.1)."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN plan-reader -->", "<!-- END plan-reader -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    code = block.partition("```python\n")[2].rpartition("```")[0]
    namespace: dict[str, Any] = {"__name__": "lakefmt_plan_reader"}
    exec(compile(code, f"{FORMAT_MD}#plan-reader", "exec"), namespace)
    return namespace


def plan_table(reader: dict[str, Any], ds: Any) -> pa.Table:
    """``ds``'s version read from its read plan (as JSON) by the spec's plan reader."""
    plan = json.loads(ds.read_plan().model_dump_json())
    types = [ds.schema[c["name"]].storage_type for c in plan["columns"]]
    schema = pa.schema([(c["name"], t) for c, t in zip(plan["columns"], types, strict=True)])
    return reader["read_plan_table"](plan, schema)


def reference_table(reader: dict[str, Any], root: str, branch: str) -> pa.Table:
    """The head of ``branch`` read by the reference reader (every column, every default)."""
    return reader["read_table"](root, branch)


def storage_columns(table: pa.Table) -> dict[str, list[Any]]:
    """``{name: values}`` of a table, extension columns read as their storage type."""
    out = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array(
                [c.storage for c in column.chunks], type=column.type.storage_type
            )
        out[name] = column.to_pylist()
    return out


def describe(value: Any) -> str:
    """A short, exact text of a value for assertion messages (bytes in base64)."""
    if isinstance(value, bytes):
        return "b64:" + base64.b64encode(value).decode()
    return repr(value)
