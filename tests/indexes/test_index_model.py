"""Model-based test of vector and BM25 indexes through ``ds.query`` (issue 17).

A hypothesis ``RuleBasedStateMachine`` drives one dataset on local disk (columns ``id``,
``label``, ``emb`` = ``Embedding(8)`` with a vector index, ``text`` = ``Text`` with BM25)
through random sequences of: appends (1-40 rows; vectors from a few clusters, rounded so that
scores tie, exact duplicates of live rows, sometimes all-zero vectors), deletes, cell updates
of ``emb``, ``label`` and ``text``, commits, ``build_indexes``, ``optimize``, indexing modes
(``Always``/``Automatic``/``Off``), ``drop_index``/``create_index`` of ``emb``, an unrelated
column added, renamed and removed, branches and switching between them, tags and commits
reopened later (time travel), and ``cleanup(older_than=0)``. Beside it a plain-Python model
holds each branch's rows in order: id -> (label, vector, text).

After every step, and in the query rules, the dataset must answer as the model:

* ``SELECT id, COSINE_SIMILARITY(emb, q) AS s [WHERE label = x] ORDER BY ... DESC LIMIT k``
  with the default ``SearchConfig``, a high-effort one and ``SearchConfig(exact=True)``
  returns exactly ``min(k, matching live rows)`` distinct rows, every one live in the model
  (never a deleted row), matching the WHERE, with the score of the model's *current* vector
  (never a stale one) within 1e-5, best first (NaN, the cosine of a zero vector, first as
  DuckDB sorts it), and its scores are the model's top-k scores (ids equal up to ties at the
  k-th score). On these small datasets every config must be exact, the default one too.
* ``BM25_SIMILARITY(text, '...')`` likewise against a BM25 computed by the model (k1 = 1.2,
  b = 0.75, Lucene's idf, statistics over the live rows of the version).
* ``ds.explain`` names the index exactly when the version declares one; ``ds["emb"].indexes``
  is the model's.
* Tags and commits opened later answer as the model's snapshot taken then.

Budget: the CI run has ``Clustered`` run 18 sequences of up to 25 steps and the two
quantised kinds 5 each (about 60 s on the 2-core dev machine, shared); the ``slow`` variant
(``HYPOTHESIS_PROFILE=model-long`` only) runs 150 sequences of 40 steps of each kind, exploring
new examples each run (``INDEX_MODEL_EXAMPLES=N`` overrides the counts)::

    HYPOTHESIS_PROFILE=model-long PYTHONPATH=$PWD python -m pytest \
        tests/indexes/test_index_model.py -m slow \
        --hypothesis-show-statistics -o timeout=3600
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import lakefmt
from lakefmt import types

pytest.importorskip("faiss")

DIM = 8
LABELS = 4
WORDS = ["apple", "bee", "cat", "dog", "elm", "fig", "gnu", "hay", "ink", "jam", "kiwi", "lynx"]
#: Zipf-like word weights: a few words in most documents, most in few.
WORD_P = np.array([1 / (i + 1) for i in range(len(WORDS))]) / sum(
    1 / (i + 1) for i in range(len(WORDS))
)
CENTRES = np.random.default_rng(17).standard_normal((4, DIM))
CENTRES /= np.linalg.norm(CENTRES, axis=1, keepdims=True)
SCORE_TOL = 1e-5
BM25_TOL = 1e-9
EXACT = lakefmt.SearchConfig(exact=True)
SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@dataclasses.dataclass
class Row:
    id: int
    label: int
    vec: np.ndarray  # float32, as stored
    text: str


@dataclasses.dataclass
class State:
    """What one branch holds (or a version held)."""

    rows: list[Row]
    indexed: bool  # the emb column declares its vector index
    extra: str | None  # name of the unrelated column, if any
    built: bool = False  # a build over some rows happened since the index was declared

    def copy(self) -> State:
        return dataclasses.replace(self, rows=list(self.rows))


# -- the model's answers --------------------------------------------------------------------------
def cosine(rows: list[Row], q: np.ndarray) -> np.ndarray:
    """The exact cosine of each row's vector with ``q`` (NaN for a zero vector)."""
    if not rows:
        return np.zeros(0)
    m = np.stack([r.vec for r in rows]).astype(np.float64)
    q64 = q.astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m @ q64) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q64))


def tokens(text: str) -> list[str]:
    return [t for t in "".join(c if c.isalnum() else " " for c in text.lower()).split() if t]


def bm25(rows: list[Row], query: str) -> np.ndarray:
    """BM25 of each row over ``rows`` (the live rows of a version)."""
    terms = list(dict.fromkeys(tokens(query)))
    docs = [tokens(r.text) for r in rows]
    n = len(docs)
    if n == 0:
        return np.zeros(0)
    lengths = np.array([len(d) for d in docs], dtype=np.float64)
    avg = lengths.sum() / n
    scores = np.zeros(n)
    for term in terms:
        tf = np.array([d.count(term) for d in docs], dtype=np.float64)
        df = int((tf > 0).sum())
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        norm = 1 - 0.75 + 0.75 * (lengths / avg if avg > 0 else 0)
        scores += idf * tf * 2.2 / (tf + 1.2 * norm)
    return scores


def rank_key(scores: np.ndarray) -> np.ndarray:
    """Scores as DuckDB orders them descending: NaN above every number."""
    return np.where(np.isnan(scores), np.inf, scores)


def same_score(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def check_answer(
    what: str,
    table: Any,
    rows: list[Row],
    model_scores: np.ndarray,
    k: int,
    tol: float,
) -> None:
    """``table`` (id, s) is a correct top-``k`` of ``rows`` by ``model_scores``."""
    ids = table.column("id").to_pylist()
    got = np.asarray(table.column("s").to_numpy(zero_copy_only=False), dtype=np.float64)
    assert len(ids) == min(k, len(rows)), f"{what}: {len(ids)} rows, want {min(k, len(rows))}"
    assert len(set(ids)) == len(ids), f"{what}: repeated ids {ids}"
    by_id = {r.id: i for i, r in enumerate(rows)}
    for rid, s in zip(ids, got, strict=True):
        assert rid in by_id, f"{what}: id {rid} is not a live matching row"
        want = float(model_scores[by_id[rid]])
        assert same_score(float(s), want, tol), f"{what}: id {rid} scored {s}, its value {want}"
    key = rank_key(got)
    assert np.all(key[:-1] >= key[1:] - tol), f"{what}: not best first: {got}"
    top = np.sort(rank_key(model_scores))[::-1][:k]
    for i, (a, b) in enumerate(zip(key, top, strict=True)):
        assert a == b or abs(a - b) <= tol, (
            f"{what}: rank {i} scored {a}, the exact top-{k} has {b}: got ids {ids}"
        )


def vector_sql(q: np.ndarray, k: int, label: int | None) -> str:
    arr = ", ".join(repr(float(x)) for x in q.astype(np.float32))
    sim = f"COSINE_SIMILARITY(emb, ARRAY[{arr}])"
    where = "" if label is None else f" WHERE label = {label}"
    return f"SELECT id, {sim} AS s{where} ORDER BY {sim} DESC LIMIT {k}"


def high_effort(kind: str) -> lakefmt.SearchConfig:
    """A config under which a search of these small datasets visits every row."""
    if kind == "pooled_quantized":
        return lakefmt.SearchConfig(nprobe=4096, accuracy_factor=64)
    return lakefmt.SearchConfig(ef_search=512, accuracy_factor=64)


def check_vectors(
    handle: Any, state: State, q: np.ndarray, k: int, label: int | None, kind: str
) -> None:
    """The three configs answer a vector query as the model."""
    rows = [r for r in state.rows if label is None or r.label == label]
    scores = cosine(rows, q)
    tql = vector_sql(q, k, label)
    before = handle.query_config
    try:
        for name, config in (("default", before), ("high", high_effort(kind)), ("exact", EXACT)):
            handle.query_config = config
            table = handle.query(tql).to_arrow()
            check_answer(f"{name} k={k} label={label}", table, rows, scores, k, SCORE_TOL)
    finally:
        handle.query_config = before


def check_bm25(handle: Any, state: State, words: str, k: int, label: int | None) -> None:
    scores_all = bm25(state.rows, words)  # statistics over the whole version
    keep = [i for i, r in enumerate(state.rows) if label is None or r.label == label]
    rows = [state.rows[i] for i in keep]
    scores = scores_all[keep] if keep else np.zeros(0)
    sim = f"BM25_SIMILARITY(text, '{words}')"
    where = "" if label is None else f" WHERE label = {label}"
    tql = f"SELECT id, {sim} AS s{where} ORDER BY {sim} DESC LIMIT {k}"
    before = handle.query_config
    try:
        for name, config in (("default", before), ("exact", EXACT)):
            handle.query_config = config
            table = handle.query(tql).to_arrow()
            check_answer(f"bm25 {name} '{words}' k={k}", table, rows, scores, k, BM25_TOL)
    finally:
        handle.query_config = before


def check_explain(handle: Any, state: State, kind: str) -> None:
    tql = vector_sql(CENTRES[0], 5, None)
    text = handle.explain(tql)
    if state.indexed and state.built:
        assert "Index: none" not in text and f"({kind}" in text, text
    elif not state.indexed:
        assert "Index: none" in text, text


def check_version(handle: Any, state: State, kind: str, rng: np.random.Generator) -> None:
    """A quick full check of a handle against a state (used for reopened versions)."""
    assert len(handle) == len(state.rows)
    assert handle["id"][:].tolist() == [r.id for r in state.rows] if state.rows else True
    q = query_vector(rng, state)
    check_vectors(handle, state, q, int(rng.choice([1, 5, 20])), None, kind)
    check_vectors(handle, state, q, 5, int(rng.integers(0, LABELS)), kind)
    check_explain(handle, state, kind)


def query_vector(rng: np.random.Generator, state: State) -> np.ndarray:
    """Near a centre, or exactly a live row's (nonzero) vector: ties at the top."""
    live = [r.vec for r in state.rows if np.any(r.vec)]
    if live and rng.random() < 0.3:
        return live[int(rng.integers(0, len(live)))].astype(np.float64)
    q = CENTRES[int(rng.integers(0, len(CENTRES)))] + rng.standard_normal(DIM) * 0.2
    return np.round(q, 3)


def make_vectors(rng: np.random.Generator, n: int, pool: list[np.ndarray], zeros: bool) -> list:
    out: list[np.ndarray] = []
    for _ in range(n):
        roll = rng.random()
        if zeros and roll < 0.1:
            v = np.zeros(DIM)
        elif (pool or out) and roll < 0.35:
            choices = pool + out
            v = choices[int(rng.integers(0, len(choices)))]
        else:
            c = CENTRES[int(rng.integers(0, len(CENTRES)))]
            v = np.round(c + rng.standard_normal(DIM) * 0.15, 2)  # rounding: tied scores
        out.append(np.asarray(v, dtype=np.float32))
    return out


def make_text(rng: np.random.Generator) -> str:
    n = int(rng.integers(0, 9))
    words = rng.choice(WORDS, size=n, p=WORD_P)
    sep = ", " if rng.random() < 0.2 else " "
    text = sep.join(words)
    return text.upper() if rng.random() < 0.1 else text


# -- the machine ----------------------------------------------------------------------------------
class IndexMachine(RuleBasedStateMachine):
    """One dataset, one writable handle on the current branch, the model beside it."""

    kind: Any = types.Clustered
    kind_name = "clustered"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="lakefmt-index-model-", dir=SHM)
        self.url = os.path.join(self.tmp, "ds")
        self.ds = lakefmt.create(
            self.url,
            schema={
                "id": types.Int64(),
                "label": types.Int32(),
                "emb": types.Embedding(DIM, index_type=self._index_type()),
                "text": types.Text(index_type=types.BM25),
            },
        )
        self.state = State([], True, None)
        self.branches: dict[str, State] = {}  # the other branches, as left
        self.cur = "main"
        self.mode = lakefmt.IndexingMode.Automatic
        self.next_id = 0
        self.steps = 0
        self.tags: dict[str, State] = {}
        self.commits: list[tuple[str, State]] = []
        self.rng = np.random.default_rng(0)

    def _built(self) -> None:
        if self.state.indexed and self.state.rows:
            self.state.built = True

    def _index_type(self) -> Any:
        return types.EmbeddingIndex(self.kind)

    def teardown(self) -> None:
        self.ds = None  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- writes ---------------------------------------------------------------------------------
    @initialize(n=st.integers(1, 40), seed=st.integers(0, 2**16), build=st.booleans())
    def first_rows(self, n: int, seed: int, build: bool) -> None:
        """Every sequence starts with rows, indexed or not."""
        self.append(n, seed, zeros=True, as_rows=False)
        if build:
            self.build_indexes()
        else:
            self.commit()

    @rule(
        n=st.integers(1, 40),
        seed=st.integers(0, 2**16),
        zeros=st.booleans(),
        as_rows=st.booleans(),
    )
    def append(self, n: int, seed: int, zeros: bool, as_rows: bool) -> None:
        rng = np.random.default_rng(seed)
        vecs = make_vectors(rng, n, [r.vec for r in self.state.rows], zeros)
        new = [
            Row(self.next_id + i, int(rng.integers(0, LABELS)), vecs[i], make_text(rng))
            for i in range(n)
        ]
        self.next_id += n
        if as_rows:
            self.ds.append(
                [{"id": r.id, "label": r.label, "emb": r.vec, "text": r.text} for r in new]
            )
        else:
            self.ds.append(
                {
                    "id": np.array([r.id for r in new], dtype=np.int64),
                    "label": np.array([r.label for r in new], dtype=np.int32),
                    "emb": np.stack(vecs),
                    "text": [r.text for r in new],
                }
            )
        self.state.rows.extend(new)
        event("append")

    @precondition(lambda self: self.state.rows)
    @rule(picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
    def delete(self, picks: list[int]) -> None:
        idx = sorted({p % len(self.state.rows) for p in picks})
        self.ds.delete(idx)
        self.state.rows = [r for i, r in enumerate(self.state.rows) if i not in set(idx)]
        event("delete")

    @precondition(lambda self: self.state.rows)
    @rule(pick=st.integers(0, 10**6), seed=st.integers(0, 2**16), zero=st.booleans())
    def update_emb(self, pick: int, seed: int, zero: bool) -> None:
        i = pick % len(self.state.rows)
        rng = np.random.default_rng(seed)
        pool = [r.vec for r in self.state.rows]
        v = np.zeros(DIM, np.float32) if zero else make_vectors(rng, 1, pool, False)[0]
        self.ds["emb"][i] = v
        self.state.rows[i] = dataclasses.replace(self.state.rows[i], vec=v)
        event("update emb")

    @precondition(lambda self: self.state.rows)
    @rule(pick=st.integers(0, 10**6), label=st.integers(0, LABELS - 1))
    def update_label(self, pick: int, label: int) -> None:
        i = pick % len(self.state.rows)
        self.ds["label"][i] = label
        self.state.rows[i] = dataclasses.replace(self.state.rows[i], label=label)
        event("update label")

    @precondition(lambda self: self.state.rows)
    @rule(pick=st.integers(0, 10**6), seed=st.integers(0, 2**16))
    def update_text(self, pick: int, seed: int) -> None:
        i = pick % len(self.state.rows)
        text = make_text(np.random.default_rng(seed))
        self.ds["text"][i] = text
        self.state.rows[i] = dataclasses.replace(self.state.rows[i], text=text)
        event("update text")

    @rule()
    def commit(self) -> None:
        vid = self.ds.commit()
        if self.mode is lakefmt.IndexingMode.Always:
            self._built()
        self.commits.append((vid, self.state.copy()))
        event("commit")

    @rule()
    def build_indexes(self) -> None:
        self.ds.build_indexes()
        self._built()
        event("build_indexes")

    @rule()
    def optimize(self) -> None:
        self.ds.optimize()
        if self.mode is not lakefmt.IndexingMode.Off:
            self._built()
        event("optimize")

    @rule(mode=st.sampled_from(list(lakefmt.IndexingMode)))
    def set_mode(self, mode: lakefmt.IndexingMode) -> None:
        self.ds.indexing_mode = mode
        self.mode = mode

    @precondition(lambda self: self.state.indexed)
    @rule(by_name=st.booleans())
    def drop_index(self, by_name: bool) -> None:
        self.ds["emb"].drop_index(self.kind_name if by_name else self._index_type())
        self.state.indexed = False
        self.state.built = False
        event("drop_index")

    @precondition(lambda self: not self.state.indexed)
    @rule()
    def create_index(self) -> None:
        self.ds["emb"].create_index(self._index_type())
        self.state.indexed = True
        self._built()
        event("create_index")

    @precondition(lambda self: self.state.extra is None)
    @rule()
    def add_column(self) -> None:
        self.ds.add_column("extra", types.Int32(), default_value=7)
        self.state.extra = "extra"

    @precondition(lambda self: self.state.extra is not None)
    @rule()
    def rename_column(self) -> None:
        new = "extra2" if self.state.extra == "extra" else "extra"
        self.ds.rename_column(self.state.extra, new)
        self.state.extra = new

    @precondition(lambda self: self.state.extra is not None)
    @rule()
    def remove_column(self) -> None:
        self.ds.remove_column(self.state.extra)
        self.state.extra = None

    # -- versions -------------------------------------------------------------------------------
    def _switch(self, name: str) -> None:
        self.ds.commit()
        self.branches[self.cur] = self.state
        self.ds = self.ds.branches[name].open()
        self.ds.indexing_mode = self.mode
        self.state = self.branches.pop(name)
        self.cur = name

    @precondition(lambda self: len(self.branches) < 2)
    @rule()
    def new_branch(self) -> None:
        name = f"b{len(self.branches) + 1}"
        while name in self.branches or name == self.cur:
            name += "x"
        self.ds.branch(name)
        self.branches[name] = self.state.copy()
        self._switch(name)
        event("branch")

    @precondition(lambda self: self.branches)
    @rule(pick=st.integers(0, 10))
    def switch(self, pick: int) -> None:
        names = sorted(self.branches)
        self._switch(names[pick % len(names)])
        event("switch")

    @precondition(lambda self: len(self.tags) < 4)
    @rule()
    def tag(self) -> None:
        name = f"t{len(self.tags)}"
        self.ds.tag(name)
        self.tags[name] = self.state.copy()
        event("tag")

    @precondition(lambda self: self.tags)
    @rule(pick=st.integers(0, 10), seed=st.integers(0, 2**16))
    def open_tag(self, pick: int, seed: int) -> None:
        names = sorted(self.tags)
        name = names[pick % len(names)]
        handle = self.ds.tags[name].open()
        check_version(handle, self.tags[name], self.kind_name, np.random.default_rng(seed))
        event("open tag")

    @precondition(lambda self: self.commits)
    @rule(pick=st.integers(0, 100), seed=st.integers(0, 2**16))
    def open_commit(self, pick: int, seed: int) -> None:
        vid, state = self.commits[pick % len(self.commits)]
        handle = lakefmt.open_read_only(self.url, version=vid)
        check_version(handle, state, self.kind_name, np.random.default_rng(seed))
        event("open commit")

    @rule()
    def cleanup(self) -> None:
        self.ds.cleanup(older_than=0)
        event("cleanup")

    # -- queries --------------------------------------------------------------------------------
    @rule(
        seed=st.integers(0, 2**16),
        k=st.sampled_from([1, 5, 20]),
        label=st.one_of(st.none(), st.integers(0, LABELS - 1)),
    )
    def query_vectors(self, seed: int, k: int, label: int | None) -> None:
        q = query_vector(np.random.default_rng(seed), self.state)
        check_vectors(self.ds, self.state, q, k, label, self.kind_name)

    @rule(
        words=st.lists(st.sampled_from([*WORDS, "zebra"]), min_size=1, max_size=3),
        k=st.sampled_from([1, 5, 20]),
        label=st.one_of(st.none(), st.integers(0, LABELS - 1)),
    )
    def query_bm25(self, words: list[str], k: int, label: int | None) -> None:
        check_bm25(self.ds, self.state, " ".join(words), k, label)

    @invariant()
    def answers_as_the_model(self) -> None:
        self.steps += 1
        assert len(self.ds) == len(self.state.rows)
        want = [self.kind_name] if self.state.indexed else []
        assert self.ds["emb"].indexes == want
        q = query_vector(self.rng, self.state)
        check_vectors(self.ds, self.state, q, [1, 5, 20][self.steps % 3], None, self.kind_name)
        check_explain(self.ds, self.state, self.kind_name)


class QuantizedMachine(IndexMachine):
    kind = types.ClusteredQuantized
    kind_name = "clustered_quantized"


class PooledMachine(IndexMachine):
    kind = types.PooledQuantized
    kind_name = "pooled_quantized"


def _examples(ci: int) -> int:
    return int(os.environ.get("INDEX_MODEL_EXAMPLES", ci))


_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def _settings(examples: int, steps: int = 25) -> settings:
    return settings(
        max_examples=_examples(examples),
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=_SUPPRESS,
    )


TestClustered = IndexMachine.TestCase
TestClustered.settings = _settings(18)
TestQuantized = QuantizedMachine.TestCase
TestQuantized.settings = _settings(5)
TestPooled = PooledMachine.TestCase
TestPooled.settings = _settings(5)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "model-long",
    reason="the long model run is local (HYPOTHESIS_PROFILE=model-long)",
)
@pytest.mark.parametrize("machine", [IndexMachine, QuantizedMachine, PooledMachine])
def test_long_run(machine: type[IndexMachine]) -> None:
    """More and longer sequences of every kind, exploring new examples each run."""
    run_state_machine_as_test(
        machine, settings=settings(_settings(150, steps=40), derandomize=False)
    )
