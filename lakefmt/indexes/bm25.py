"""BM25's arithmetic, bit for bit as the exact SQL path computes it, and an exact top-k that
skips documents which cannot enter it (MaxScore).

A term's contribution to a key's score is ``idf * tf * (k1 + 1) / (tf + norm)`` with
``norm = k1 * (1 - b + b * dl / avgdl)``, in float64 and in that order of operations
(:func:`contributions`); a score is the contributions added in the query's order, starting
from ``0.0`` (adding a missing term's ``0.0`` changes nothing, so a key holding only some
terms gets the same bits as the SQL's sum over every term).

:func:`top_k` returns exactly what scoring every posting and sorting would (the best ``k``
by score descending, ties by smaller key) while reading far fewer postings:

1. each term's *upper bound* (:class:`TermBounds`: over its postings, the largest
   contribution any of them can have under a given avgdl; exact per ``tf == 1`` and a
   bound for larger counts);
2. a *threshold* ``theta``: the exact scores of ``k`` allowed keys of the term with the
   fewest postings (the best ``k`` by that term alone) are ``k`` real scores, so the final
   ``k``-th score is at least their minimum;
3. the *non-essential* terms, the most terms of smallest upper bound whose bounds add up
   to less than ``theta``: a key holding only those cannot reach ``theta``, so the
   candidates are the allowed keys of the other (essential) terms;
4. the candidates' essential contributions, added up, raise ``theta`` (the ``k``-th best
   partial sum is a lower bound of the ``k``-th final score) and drop every candidate whose
   partial sum plus the non-essential bounds is below it;
5. the survivors are scored exactly (every term looked up, added in the query's order).

Every comparison with a bound keeps a relative margin (:data:`_MARGIN`) far above float
rounding, so a key is dropped only when its exact score is certainly below the ``k``-th:
every key scoring at least the ``k``-th score survives, ties included, and the tie order
(smaller key first) is the unpruned one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "BM25_B",
    "BM25_K1",
    "Term",
    "TermBounds",
    "contributions",
    "idf",
    "norms",
    "top_k",
]

#: BM25 parameters (Lucene's defaults).
BM25_K1 = 1.2
BM25_B = 0.75
#: The SQL literals of the score expression, as DuckDB reads them (``DECIMAL`` then DOUBLE).
_K1 = float(f"{BM25_K1}")
_K1_PLUS_1 = float(f"{BM25_K1 + 1}")
_B = float(f"{BM25_B}")
_ONE_MINUS_B = 1 - BM25_B  # DuckDB folds ``1 - 0.75`` exactly, as a decimal
#: Relative slack of every bound comparison (float sums of a few terms err by ~1e-15).
_MARGIN = 1e-9
_NO_LENGTH = np.iinfo(np.uint32).max
#: Below this many postings in every term, scoring them all costs less than pruning.
PRUNE_FROM = 4096


def idf(count: int, df: int) -> float:
    """Lucene's idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))``, as the SQL computes it."""
    return math.log(1 + (count - df + 0.5) / (df + 0.5))


def norms(lengths: np.ndarray, average: float | None) -> np.ndarray:
    """``k1 * (1 - b + b * dl / avgdl)`` per key, as the SQL computes it (``0`` ratio when
    there is no positive mean length)."""
    positive = average is not None and average > 0
    ratio = lengths / average if positive else np.zeros(len(lengths))
    return _K1 * (_ONE_MINUS_B + _B * ratio)


def contributions(
    term_idf: float | np.ndarray, tf: np.ndarray, key_norms: np.ndarray
) -> np.ndarray:
    """A term's contribution to each key's score, given its counts and the keys' norms
    (``term_idf`` may also be one idf per count)."""
    part = np.multiply(term_idf, tf, dtype=np.float64)  # counts convert to float64 exactly
    part *= _K1_PLUS_1
    denominator = np.add(tf, key_norms, dtype=np.float64)
    part /= denominator
    return part


@dataclasses.dataclass(frozen=True)
class TermBounds:
    """What bounds each term's contribution, independent of avgdl (computed once per
    segment from its postings).

    Attributes:
        min_length_tf1: Per term, the shortest key holding it once (``2**32 - 1``: none).
        max_tf: Per term, its largest count in a key.
        min_length_more: Per term, the shortest key holding it more than once (``2**32 - 1``:
            none).
    """

    min_length_tf1: np.ndarray
    max_tf: np.ndarray
    min_length_more: np.ndarray

    @classmethod
    def of(
        cls, offsets: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray
    ) -> TermBounds:
        """The bounds of a segment's postings (CSR ``offsets`` over ``docs`` and ``tf``)."""
        terms = len(offsets) - 1
        if terms == 0 or not len(docs):
            empty = np.zeros(terms, np.uint32)
            return cls(empty, empty, empty)
        starts = offsets[:-1]
        key_lengths = lengths[docs]
        once = tf == 1
        return cls(
            min_length_tf1=np.minimum.reduceat(np.where(once, key_lengths, _NO_LENGTH), starts),
            max_tf=np.maximum.reduceat(tf, starts),
            min_length_more=np.minimum.reduceat(np.where(once, _NO_LENGTH, key_lengths), starts),
        )

    def upper_bound(self, term: int, term_idf: float, average: float | None) -> float:
        """The largest contribution term ``term`` can make to any key's score (inflated
        by the margin): contributions grow with ``tf`` and shrink with the key's length."""
        best = 0.0
        pairs = ((1, self.min_length_tf1[term]), (self.max_tf[term], self.min_length_more[term]))
        for tf, length in pairs:
            if length == _NO_LENGTH:
                continue
            ratio = float(length) / average if average is not None and average > 0 else 0.0
            norm = _K1 * (_ONE_MINUS_B + _B * ratio)
            best = max(best, term_idf * float(tf) * _K1_PLUS_1 / (float(tf) + norm))
        return best * (1 + _MARGIN)


class Term(NamedTuple):
    """One query term's postings in a segment, for :func:`top_k`.

    Attributes:
        docs: Keys holding it, ascending.
        tf: Its count in each.
        idf: Its idf under the version's statistics.
        bound: Its upper bound (:meth:`TermBounds.upper_bound`).
    """

    docs: np.ndarray
    tf: np.ndarray
    idf: float
    bound: float


def _exact_scores(keys: np.ndarray, terms: list[Term], key_norms: np.ndarray) -> np.ndarray:
    """Exact scores of sorted distinct ``keys``: every term looked up, in the query's order."""
    acc = np.zeros(len(keys))
    norm = key_norms[keys]
    for term in terms:
        at = np.searchsorted(term.docs, keys)
        at[at == len(term.docs)] = 0
        hit = term.docs[at] == keys
        if not hit.any():
            continue
        acc[hit] += contributions(term.idf, term.tf[at[hit]], norm[hit])
    return acc


def _best(keys: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` by score (descending), ties by smaller key."""
    n = len(scores)
    if n > 64 and n > 4 * k:
        # the k-th best of a sample is at most the k-th best of all: a cheap cut, far
        # below a full selection's cost, that keeps every key the answer can hold
        sample = scores[:: max(1, n // (8 * k))]
        floor = np.partition(sample, len(sample) - k)[len(sample) - k]
        keep = scores >= floor
        keys, scores = keys[keep], scores[keep]
    order = np.lexsort((keys, -scores))[:k]
    return keys[order], scores[order]


def top_k(
    terms: list[Term],
    key_norms: np.ndarray,
    allowed: np.ndarray | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` allowed keys holding at least one term, exactly (see the module).

    Args:
        terms: The query's terms present in the segment (each with postings), in the
            query's order.
        key_norms: :func:`norms` of every key.
        allowed: Boolean mask over the keys, or None for every key.
        k: Keys wanted (> 0).

    Returns:
        ``(keys int64, scores float64)``, best first, ties by smaller key.
    """
    if not prunes(terms):  # short postings: scoring them all costs less than pruning
        parts = [t for t in (_allowed(t, allowed) for t in terms) if len(t.docs)]
        if not parts:
            return np.empty(0, np.int64), np.empty(0)
        return _best(*_merged_sums(parts, key_norms), k)
    # the threshold: exact scores of the best k allowed keys of the shortest term
    theta = 0.0
    seed = _allowed(min(terms, key=lambda t: len(t.docs)), allowed)
    if len(seed.docs) >= k:
        alone = contributions(seed.idf, seed.tf, key_norms[seed.docs])
        best = np.argpartition(alone, len(alone) - k)[len(alone) - k :]
        keys = np.sort(seed.docs[best].astype(np.int64))
        theta = float(_exact_scores(keys, terms, key_norms).min()) * (1 - _MARGIN)
    # non-essential terms: the smallest bounds adding up to less than theta
    by_bound = sorted(range(len(terms)), key=lambda j: terms[j].bound)
    rest, essential = 0.0, by_bound
    for at, j in enumerate(by_bound):
        if rest + terms[j].bound >= theta:
            essential = sorted(by_bound[at:])
            break
        rest += terms[j].bound
    # the essential terms' partial sums, in the query's order
    parts = [t for t in (_allowed(terms[j], allowed) for j in essential) if len(t.docs)]
    if not parts:
        return np.empty(0, np.int64), np.empty(0)
    keys, partial = _merged_sums(parts, key_norms)
    if rest == 0.0:  # every term is essential: the partial sums are the exact scores
        return _best(keys, partial, k)
    if len(keys) > k:  # the k-th best partial sum is a lower bound of the k-th final score
        floor = float(np.partition(partial, len(partial) - k)[len(partial) - k])
        theta = max(theta, floor * (1 - _MARGIN))
    keys = keys[(partial + rest) * (1 + _MARGIN) >= theta]
    skipped = sum(len(terms[j].docs) for j in range(len(terms)) if j not in essential)
    if len(keys) * len(terms) * 4 > skipped:  # lookups would cost more than merging all
        every = [t for t in (_allowed(t, allowed) for t in terms) if len(t.docs)]
        keys, exact = _merged_sums(every, key_norms)
        return _best(keys, exact, k)
    return _best(keys, _exact_scores(keys, terms, key_norms), k)


def prunes(terms: list[Term] | list[int]) -> bool:
    """Whether :func:`top_k` prunes a query with these terms (or these postings lengths):
    only then are the terms' bounds used (:attr:`Term.bound` may be 0 otherwise)."""
    sizes = [t if isinstance(t, int) else len(t.docs) for t in terms]
    return len(sizes) > 1 and max(sizes) > PRUNE_FROM


def _merged_sums(terms: list[Term], key_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (ascending) holding any of ``terms`` and the sums of those terms'
    contributions, added in the terms' order (a stable merge of the sorted postings)."""
    if len(terms) == 1:
        (t,) = terms
        return t.docs.astype(np.int64), contributions(t.idf, t.tf, key_norms[t.docs])
    keys = np.concatenate([t.docs for t in terms])
    idfs = np.empty(len(keys))
    at = 0
    for t in terms:
        idfs[at : at + len(t.docs)] = t.idf
        at += len(t.docs)
    # elementwise, so one pass over every term gives each term's own contributions
    values = contributions(idfs, np.concatenate([t.tf for t in terms]), key_norms[keys])
    # sorted runs, one per term: a stable sort merges them, keeping the terms' order per key
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    first = np.empty(len(keys), bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    # a key's entries are adjacent, in the terms' order: add the next ones in turn
    sums = values.copy()
    for extra in range(1, len(terms)):
        same = ~first[1:] if extra == 1 else keys[extra:] == keys[:-extra]
        if extra > 1 and not same.any():
            break
        head = sums[:-extra]
        np.add(head, values[extra:], out=head, where=same)
    return keys[first].astype(np.int64), sums[first]


def _allowed(term: Term, allowed: np.ndarray | None) -> Term:
    if allowed is None:
        return term
    keep = allowed[term.docs]
    return Term(term.docs[keep], term.tf[keep], term.idf, term.bound)
