"""BM25 queries answered with a text index (``ORDER BY BM25_SIMILARITY(col, '...') DESC
LIMIT k``, see :class:`~lakefmt.tql.index_search.TextQuery`).

Every part of the version is searched with the version's exact collection statistics: each
index segment over its live keys, and each fragment holding rows no segment answers for
(uncovered fragments, rows updated since the build) through an in-memory index of the
fragment (cached). Each part proposes its best ``k`` allowed rows with their exact scores
(:func:`lakefmt.indexes.text.bm25_scores`), completed with rows scoring 0 when fewer rows
hold a term, so the union holds the exact answer. The caller then either runs the query over
those rows with those statistics, or, for a plain projection, builds the result from the
rows and scores directly (:func:`direct_result`).

What does not depend on the query (coverage, each part's live keys, their count and total
length) is computed once per version and index (a version never changes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.format.cache import LRUCache
from lakefmt.format.manifest import Field, Index
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes import text
from lakefmt.indexes.coverage import CoveredFragment, allowed_keys, coverage, keys_to_rows
from lakefmt.indexes.segments import Unusable, load_segment
from lakefmt.tql.index_search import (
    DirectColumn,
    TextQuery,
    _exact_rest,
    _masks,
    assemble_direct,
)
from lakefmt.tql.models import DatasetSource
from lakefmt.tql.parser import ParsedQuery
from lakefmt.tql.results import QueryResult

FragmentColumn = Callable[[Snapshot, int, Field], pa.Array]


@dataclasses.dataclass
class TextCandidates:
    """What a text index search proposes.

    Attributes:
        rows: Global row indices (ascending) containing the query's answer.
        scores: Each row's exact ``BM25_SIMILARITY`` score over the version.
        stats: The version's BM25 collection statistics for the query's terms.
        notes: What was searched how (for ``explain``).
    """

    rows: np.ndarray
    scores: np.ndarray
    stats: text.Bm25Stats
    notes: list[str]


@dataclasses.dataclass(frozen=True)
class _Part:
    """One searchable part of a version: an index segment, or a fragment's rows outside
    every segment.

    Attributes:
        segment: Position of the segment in the index, or None for a fragment.
        parts: The segment's covered fragments (None for a fragment).
        fragment: The fragment's index (-1 for a segment).
        live: The keys that are live rows of the version (None: every key).
        count: How many keys are live.
        total_length: Their tokens, added up.
    """

    segment: int | None
    parts: list[CoveredFragment] | None
    fragment: int
    live: np.ndarray | None
    count: int
    total_length: int


#: In-memory text indexes of fragments no segment covers, by the files their column is
#: read from (a fragment's values never change under the same files).
_FRAGMENT_TEXT: LRUCache[Any] = LRUCache(256)
#: The parts of a version searched for an index (by dataset, version id and index id).
_PARTS: LRUCache[list[_Part]] = LRUCache(64)


def _fragment_text_index(
    snapshot: Snapshot, k: int, field: Field, fragment_column: FragmentColumn
) -> Any:
    """A text index of every row of fragment ``k`` (cached), to score rows no segment
    covers with the same code, statistics and tokenizer as the segments."""
    fragment = snapshot.manifest.fragments[k]
    key = (
        snapshot.storage.url,
        field.id,
        fragment.rows,
        tuple(d.path for d in fragment.files if field.id in d.field_ids),
        tuple(u.path for u in fragment.updates if u.field_id == field.id),
    )

    def build() -> Any:
        return text.TextIndex.from_files(text.build_text_index(fragment_column(snapshot, k, field)))

    return _FRAGMENT_TEXT.get_or_load(key, build)


def _engine(
    snapshot: Snapshot,
    index: Index,
    part: _Part,
    field: Field,
    fragment_column: FragmentColumn,
) -> Any:
    if part.segment is None:
        return _fragment_text_index(snapshot, part.fragment, field, fragment_column)
    return load_segment(snapshot.storage, index, index.segments[part.segment])


def _parts(
    snapshot: Snapshot, index: Index, field: Field, fragment_column: FragmentColumn
) -> list[_Part]:
    """The version's parts for ``index`` (cached per version)."""

    def load() -> list[_Part]:
        cov = coverage(snapshot, index)
        out: list[_Part] = []
        for segment, parts in cov.segments:
            live = allowed_keys(snapshot, segment, parts)
            engine = load_segment(snapshot.storage, index, segment)
            lengths = engine.lengths()
            total = int(lengths[live].sum(dtype=np.int64))
            every = bool(live.all())
            out.append(
                _Part(
                    index.segments.index(segment),
                    parts,
                    -1,
                    None if every else live,
                    int(np.count_nonzero(live)),
                    total,
                )
            )
        exact: dict[int, list[np.ndarray]] = {}
        _exact_rest(snapshot, cov, None, exact)
        for k, chunks in sorted(exact.items()):
            positions = np.unique(np.concatenate(chunks))
            if not len(positions):
                continue
            mask = np.zeros(snapshot.manifest.fragments[k].rows, dtype=bool)
            mask[positions] = True
            engine = _fragment_text_index(snapshot, k, field, fragment_column)
            total = int(engine.lengths()[mask].sum(dtype=np.int64))
            out.append(_Part(None, None, k, mask, len(positions), total))
        return out

    manifest = snapshot.manifest
    key = (snapshot.storage.url, manifest.id, manifest.timestamp, index.id, field.id)
    return _PARTS.get_or_load(key, load)


def search_text(
    snapshot: Snapshot,
    query: TextQuery,
    index: Index,
    allowed: np.ndarray | None,
    fragment_column: FragmentColumn,
) -> TextCandidates | None:
    """Candidate rows, their exact scores and the exact collection statistics for a BM25
    query; None when a segment cannot be used (the caller then answers without the index).

    Args:
        allowed: Global rows matching the query's WHERE (None: every row).
    """
    try:
        parts = _parts(snapshot, index, query.field, fragment_column)
        engines = [_engine(snapshot, index, p, query.field, fragment_column) for p in parts]
    except Unusable:
        return None
    masks = _masks(snapshot, allowed)
    terms = list(query.terms)
    count = sum(p.count for p in parts)
    total = sum(p.total_length for p in parts)
    dfs = [0] * len(terms)
    for part, engine in zip(parts, engines, strict=True):
        for j, term in enumerate(terms):
            dfs[j] += engine.document_frequency(term, part.live)
    stats = text.Bm25Stats(count, total, tuple(dfs))
    rows: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for part, engine in zip(parts, engines, strict=True):
        mask = _allowed_mask(snapshot, index, part, masks)
        if mask is not None and not mask.any():
            continue
        ((keys, found),) = text.bm25_scores([(engine, mask)], terms, stats, query.k)
        if len(keys) < query.k:  # rows holding no term score 0: any allowed ones complete k
            zeros = _others(mask, engine.count, keys, query.k - len(keys))
            keys = np.concatenate([keys, zeros]).astype(np.int64)
            found = np.concatenate([found, np.zeros(len(zeros))])
        if not len(keys):
            continue
        if part.parts is None:
            frag = np.full(len(keys), part.fragment, dtype=np.int64)
            rows.append(snapshot.global_rows(frag, keys))
        else:
            rows.append(snapshot.global_rows(*keys_to_rows(part.parts, keys)))
        scores.append(found)
    outside = sum(p.count for p in parts if p.segment is None)
    notes = [
        f"index {index.id} ({index.kind}) on column '{query.column}'",
        f"{outside} rows outside the index scored from their fragments",
    ]
    if not rows:
        return TextCandidates(np.zeros(0, np.int64), np.zeros(0), stats, notes)
    found_rows, found_scores = np.concatenate(rows), np.concatenate(scores)
    order = np.argsort(found_rows, kind="stable")  # parts hold distinct rows
    return TextCandidates(found_rows[order], found_scores[order], stats, notes)


def _allowed_mask(
    snapshot: Snapshot, index: Index, part: _Part, masks: dict[int, np.ndarray] | None
) -> np.ndarray | None:
    """The keys of ``part`` a search may return (None: every key)."""
    if masks is None:
        return part.live
    if part.parts is None:
        assert part.live is not None
        fragment_rows = len(part.live)
        return part.live & masks.get(part.fragment, np.zeros(fragment_rows, dtype=bool))
    assert part.segment is not None
    return allowed_keys(snapshot, index.segments[part.segment], part.parts, masks)


def _others(mask: np.ndarray | None, count: int, keys: np.ndarray, need: int) -> np.ndarray:
    """Up to ``need`` allowed keys (ascending) that are not in ``keys``."""
    if mask is None:
        first = np.arange(min(count, need + len(keys)), dtype=np.int64)
        return first[~np.isin(first, keys)][:need]
    others = np.flatnonzero(mask)
    return others[~np.isin(others, keys)][:need].astype(np.int64)


def direct_result(
    parsed: ParsedQuery,
    source: DatasetSource,
    columns: list[DirectColumn],
    candidates: TextCandidates,
) -> QueryResult:
    """The query's result built from the candidates and their exact scores, without DuckDB
    (ties in score by smaller row; the exact path's tie order is DuckDB's)."""
    scores = pa.array(candidates.scores, pa.float64())
    order = np.lexsort((candidates.rows, -candidates.scores))
    return assemble_direct(
        parsed, source, columns, candidates.rows, scores, order, candidates.notes
    )
