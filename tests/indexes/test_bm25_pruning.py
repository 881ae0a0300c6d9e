"""MaxScore pruning (lakefmt.indexes.bm25.top_k) returns exactly what scoring every posting
returns: the same keys, the same scores bit for bit, ties by smaller key."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakefmt.indexes import bm25
from lakefmt.indexes.text import Bm25Stats, TextIndex, bm25_scores, build_text_index


def _brute(terms: list[bm25.Term], norms: np.ndarray, allowed, k: int):
    """Every posting scored, added in the query's order, best k (ties by smaller key)."""
    acc = np.zeros(len(norms))
    hit = np.zeros(len(norms), bool)
    for t in terms:
        acc[t.docs] += bm25.contributions(t.idf, t.tf, norms[t.docs])
        hit[t.docs] = True
    if allowed is not None:
        hit &= allowed
    keys = np.flatnonzero(hit)
    order = np.lexsort((keys, -acc[keys]))[:k]
    return keys[order], acc[keys][order]


@st.composite
def _corpus(draw):
    """Postings of a few terms over up to 300 keys, shaped to be hard for pruning: ties
    (equal lengths and counts), one very long key, a term in every key."""
    n = draw(st.integers(1, 300))
    shape = draw(st.sampled_from(["random", "ties", "long", "everywhere"]))
    if shape == "ties":
        lengths = np.full(n, draw(st.integers(1, 5)), np.uint32)
    else:
        lengths = np.array(draw(st.lists(st.integers(1, 40), min_size=n, max_size=n)), np.uint32)
    if shape == "long":
        lengths[draw(st.integers(0, n - 1))] = 100_000
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    terms = []
    for j in range(draw(st.integers(1, 5))):
        share = 1.0 if (shape == "everywhere" and j == 0) else draw(st.floats(0.0, 1.0))
        docs = np.flatnonzero(rng.random(n) < share).astype(np.uint32)
        if not len(docs):
            continue
        top = 1 if shape == "ties" else draw(st.integers(1, 4))
        tf = rng.integers(1, top + 1, len(docs)).astype(np.uint16)
        tf = np.minimum(tf, lengths[docs]).astype(np.uint16)
        terms.append((docs, tf))
    return lengths, terms


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=_corpus(),
    k=st.integers(1, 400),
    filtered=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    prune_from=st.sampled_from([0, 8, bm25.PRUNE_FROM]),
)
def test_pruned_top_k_equals_scoring_every_posting(corpus, k, filtered, seed, prune_from):
    lengths, postings = corpus
    n = len(lengths)
    rng = np.random.default_rng(seed)
    allowed = rng.random(n) < rng.random() if filtered else None
    offsets = np.cumsum([0, *(len(d) for d, _ in postings)]).astype(np.int64)
    docs = np.concatenate([d for d, _ in postings]) if postings else np.empty(0, np.uint32)
    tf = np.concatenate([t for _, t in postings]) if postings else np.empty(0, np.uint16)
    bounds = bm25.TermBounds.of(offsets, docs, tf, lengths)
    count = n + int(rng.integers(0, 1000))  # the version may hold more rows than this segment
    average = float(lengths.sum()) / n
    norms = bm25.norms(lengths, average)
    terms = []
    for j, (d, t) in enumerate(postings):
        idf = bm25.idf(count, int(rng.integers(len(d), count + 1)))
        terms.append(bm25.Term(d, t, idf, bounds.upper_bound(j, idf, average)))
    saved = bm25.PRUNE_FROM
    bm25.PRUNE_FROM = prune_from
    try:
        got = bm25.top_k(terms, norms, allowed, k)
    finally:
        bm25.PRUNE_FROM = saved
    want = _brute(terms, norms, allowed, k)
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])  # bit for bit


def test_bounds_are_upper_bounds_of_every_contribution():
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 50, 2000).astype(np.uint32)
    docs = np.sort(rng.choice(2000, 700, replace=False)).astype(np.uint32)
    tf = np.minimum(rng.integers(1, 6, 700), lengths[docs]).astype(np.uint16)
    bounds = bm25.TermBounds.of(np.array([0, 700]), docs, tf, lengths)
    for average in (float(lengths.mean()), 3.0, None):
        norms = bm25.norms(lengths, average)
        part = bm25.contributions(2.5, tf, norms[docs])
        assert part.max() <= bounds.upper_bound(0, 2.5, average)
        once = np.ones(700, np.uint16)  # every count 1: the bound is the largest contribution
        exact = bm25.contributions(2.5, once, norms[docs]).max()
        tight = bm25.TermBounds.of(np.array([0, 700]), docs, once, lengths)
        assert exact <= tight.upper_bound(0, 2.5, average) <= exact * (1 + 1e-8)


@pytest.mark.parametrize("prune_from", [0, bm25.PRUNE_FROM])
def test_segment_search_prunes_exactly_on_adversarial_texts(monkeypatch, prune_from):
    """Through TextIndex: many equal documents, one very long one, a word in every one."""
    rng = np.random.default_rng(11)
    words = ["common", "rare", "mid", "other"]
    texts = []
    for i in range(3000):
        if i % 3 == 0:
            texts.append("common mid")  # many ties
        else:
            picked = rng.choice(words, rng.integers(1, 6), p=[0.5, 0.05, 0.25, 0.2])
            texts.append("common " + " ".join(picked))
    texts[1234] = " ".join(["rare mid"] * 5000)  # one very long document
    index = TextIndex.from_files(build_text_index(pa.array(texts)))
    monkeypatch.setattr(bm25, "PRUNE_FROM", prune_from)
    lengths = index.lengths()
    for query in (["common"], ["rare", "common"], ["mid", "rare", "common"], ["other", "mid"]):
        stats = Bm25Stats(
            index.count,
            int(lengths.sum()),
            tuple(index.document_frequency(t) for t in query),
        )
        for k in (1, 10, 1000, 5000):
            for allowed in (None, rng.random(index.count) < 0.3):
                ((keys, scores),) = bm25_scores([(index, allowed)], query, stats, k)
                ((all_keys, all_scores),) = bm25_scores([(index, allowed)], query, stats)
                order = np.lexsort((all_keys, -all_scores))[:k]
                assert np.array_equal(keys, all_keys[order])
                assert np.array_equal(scores, all_scores[order])
