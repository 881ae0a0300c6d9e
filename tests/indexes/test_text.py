"""The full-text engine (lakefmt.indexes.text) against DuckDB and the exact BM25 path."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt.errors import FormatError, InvalidArgumentError
from lakefmt.indexes.text import (
    Bm25Stats,
    TextIndex,
    bm25_scores,
    build_text_index,
    query_terms,
    substring_terms,
    text_stats,
    tokens_sql,
)
from lakefmt.tql.models import Bm25Request
from lakefmt.tql.relations import _bm25_sql

WORDS = [
    "cat",
    "Dog",
    "bird",
    "İstanbul",
    "straße",
    "STRASSE",
    "ǅemal",
    "x1",
    "42",
    "ΣΟΦΙΑ",
    "日本",
]
SEPARATORS = [" ", "  ", ", ", "-", "_", "!", "\t", "…", "'"]


def _index(texts: list[str | None]) -> TextIndex:
    return TextIndex.from_files(build_text_index(pa.array(texts, pa.string())))


def _exact(
    texts: list[str | None],
    query: str,
    stats: Bm25Stats | None = None,
    rows: np.ndarray | None = None,
) -> dict[int, float]:
    """``key -> score`` of the exact path (``_bm25_sql``) over ``rows`` (all if None)."""
    keys = np.arange(len(texts)) if rows is None else rows
    table = pa.table(
        {"k": pa.array(keys, pa.int64()), "t": pa.array([texts[i] for i in keys], pa.string())}
    )
    req = Bm25Request("t", query_terms(query), "score", stats)
    con = duckdb.connect()
    con.register("docs", table)
    got = con.execute(
        f"SELECT k, score FROM ({_bm25_sql('SELECT * FROM docs', req, 0)})"
    ).fetchall()
    con.close()
    return {int(k): float(s) for k, s in got}


def _brute_postings(texts: list[str | None]) -> dict[str, dict[int, int]]:
    con = duckdb.connect()
    con.register("docs", pa.table({"t": pa.array(texts, pa.string())}))
    rows = con.execute(
        f"SELECT term, k, count(*) FROM (SELECT k, unnest(toks) AS term FROM "
        f"(SELECT row_number() OVER () - 1 AS k, {tokens_sql('t')} AS toks FROM docs)) "
        "GROUP BY term, k"
    ).fetchall()
    con.close()
    out: dict[str, dict[int, int]] = {}
    for term, k, tf in rows:
        out.setdefault(term, {})[int(k)] = int(tf)
    return out


# -- files ------------------------------------------------------------------------------------
def test_round_trip_and_postings_equal_duckdb_tokens() -> None:
    texts = [
        "The cat, the DOG!",
        None,
        "",
        "İstanbul straße STRASSE x_1 42",
        "ǅemal ΣΟΦΙΑ 日本 日本",
    ]
    files = build_text_index(pa.array(texts))
    assert set(files) == {"postings", "lengths"}
    index = TextIndex.from_files({k: bytes(v) for k, v in files.items()})
    assert index.count == len(texts)
    brute = _brute_postings(texts)
    assert index.term_count == len(brute)
    for term, by_key in brute.items():
        keys, tf = index.postings(term)
        assert keys.dtype == np.int64 and np.all(np.diff(keys) > 0)
        assert dict(zip(keys.tolist(), tf.tolist(), strict=True)) == by_key
    lengths = np.zeros(len(texts), np.int64)
    for by_key in brute.values():
        for k, tf in by_key.items():
            lengths[k] += tf
    assert index.lengths().tolist() == lengths.tolist()
    assert index.postings("absent")[0].size == 0
    # DuckDB's lower, not Python's: Python lower-cases 'İ' to 'i' + a combining dot
    assert index.postings("istanbul")[0].tolist() == [3]
    assert index.postings("İstanbul".lower())[0].size == 0


def test_empty_and_all_null_columns() -> None:
    for texts in ([], [None, None], ["", "!!"]):
        index = _index(texts)
        assert index.count == len(texts)
        assert index.lengths().tolist() == [0] * len(texts)
        stats = index.stats(["a"])
        assert bm25_scores([(index, None)], ["a"], stats, k=5)[0][0].size == 0


def test_chunked_and_large_string_input() -> None:
    texts = ["a b", "b c", None, "c c a"]
    chunked = pa.chunked_array(
        [pa.array(texts[:2], pa.large_string()), pa.array(texts[2:], pa.large_string())]
    )
    index = TextIndex.from_files(build_text_index(chunked))
    assert index.postings("c")[0].tolist() == [1, 3]
    assert index.postings("c")[1].tolist() == [1, 2]
    with pytest.raises(InvalidArgumentError):
        build_text_index(pa.array([1, 2]))
    with pytest.raises(InvalidArgumentError):
        build_text_index(["a"])  # type: ignore[arg-type]  # a list is refused


def test_corrupted_files_raise_format_error() -> None:
    files = build_text_index(pa.array(["red car", "blue car", "red red bus"] * 50))
    with pytest.raises(FormatError):
        TextIndex.from_files({"postings": files["postings"]})
    reference = TextIndex.from_files(files)
    for role in files:
        data = files[role]
        for at in range(len(data)):  # every byte: an error, or the same postings
            broken = bytearray(data)
            broken[at] ^= 0xFF
            try:
                index = TextIndex.from_files({**files, role: bytes(broken)})
            except FormatError:
                continue
            assert index.lengths().tolist() == reference.lengths().tolist(), at
            for term in ("red", "car", "blue", "bus"):
                assert all(
                    np.array_equal(a, b)
                    for a, b in zip(index.postings(term), reference.postings(term), strict=True)
                ), at
            assert index.term_count == reference.term_count
        with pytest.raises(FormatError):
            TextIndex.from_files({**files, role: data[: len(data) // 2]})
    # lengths of another segment
    other = build_text_index(pa.array(["red car"] * 150))
    with pytest.raises(FormatError):
        TextIndex.from_files({"postings": files["postings"], "lengths": other["lengths"]})
    # well-formed Parquet whose postings disagree with the lengths
    table = pq.read_table(pa.BufferReader(files["lengths"]))
    lengths = np.asarray(table["length"]).copy()
    lengths[0] += 1
    sink = io.BytesIO()
    pq.write_table(
        pa.table({"length": pa.array(lengths)}).replace_schema_metadata(table.schema.metadata), sink
    )
    with pytest.raises(FormatError, match="sums"):
        TextIndex.from_files({**files, "lengths": sink.getvalue()})


# -- stats in the exact path ------------------------------------------------------------------
def test_exact_path_with_stats_scores_a_subset_like_the_whole() -> None:
    rng = np.random.default_rng(3)
    texts = [" ".join(rng.choice(WORDS, int(rng.integers(0, 12)))) for _ in range(300)]
    query = "cat dog 42 nothere"
    full = _exact(texts, query)
    index = _index(texts)
    stats = index.stats(query_terms(query))
    assert stats == text_stats(pa.array(texts), query_terms(query))
    subset = np.sort(rng.choice(len(texts), 40, replace=False))
    part = _exact(texts, query, stats, subset)
    assert part == {int(k): full[int(k)] for k in subset}  # ==, not approx


def test_exact_path_stats_edge_cases() -> None:
    texts = ["", "", "a"]
    # avgdl 0: every length 0 (the rows given hold no token, stats say so too)
    got = _exact(["", ""], "a", Bm25Stats(2, 0, (0,)))
    assert got == _exact(["", ""], "a") == {0: 0.0, 1: 0.0}
    # count 0: no rows at all
    assert _exact([], "a", Bm25Stats(0, 0, (0,))) == {}
    # terms absent everywhere, and no terms
    assert _exact(texts, "zzz", Bm25Stats(3, 1, (0,))) == _exact(texts, "zzz")
    assert _exact(texts, "", Bm25Stats(3, 1, ())) == _exact(texts, "") == {0: 0.0, 1: 0.0, 2: 0.0}
    with pytest.raises(InvalidArgumentError):
        _exact(texts, "a b", Bm25Stats(3, 1, (1,)))
    for bad in ((-1, 0, ()), (1, 0, (2,)), (0, 3, ()), (2, 1, [1])):
        with pytest.raises(InvalidArgumentError):
            Bm25Stats(*bad)  # type: ignore[arg-type]  # bad on purpose


def test_mean_length_is_the_float64_quotient_in_both_paths() -> None:
    # 2663574 / 348512: DuckDB's windowed avg (long double) gives 7.642703838031402, the
    # float64 quotient 7.6427038380314025; both paths use the quotient
    stats = Bm25Stats(348512, 2663574, ())
    assert stats.average_length == 2663574 / 348512 == 7.6427038380314025
    q, r = divmod(2663574, 348512)
    texts = [" ".join(["w"] * (q + (i < r))) for i in range(348512)]
    index = _index(texts[:1000])
    full = _exact(texts, "w")  # the exact path over 348,512 rows
    big = Bm25Stats(348512, 2663574, (348512,))
    (top,) = bm25_scores([(index, None)], ["w"], big)
    assert dict(zip(top[0].tolist(), top[1].tolist(), strict=True)) == {
        i: full[i] for i in range(1000)
    }


# -- scores -----------------------------------------------------------------------------------
def _same_top(index_top: tuple[np.ndarray, np.ndarray], exact: dict[int, float], k: int) -> None:
    keys, scores = index_top
    for key, score in zip(keys.tolist(), scores.tolist(), strict=True):
        assert exact[key] == score  # every returned score is the exact one, bit for bit
    positive = sorted((s for s in exact.values() if s > 0), reverse=True)
    assert sorted(scores.tolist(), reverse=True) == positive[:k]  # ties: the same multiset


def _text(words: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    piece = st.tuples(words, st.sampled_from(SEPARATORS)).map("".join)
    return st.one_of(st.none(), st.just(""), st.lists(piece, max_size=12).map("".join))


def _zipf_words() -> st.SearchStrategy[str]:
    # small ranks far more often than large ones, like words of a language
    return st.integers(0, 2 ** len(WORDS) - 1).map(lambda n: WORDS[n.bit_length() - 1 if n else 0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    texts=st.lists(_text(_zipf_words()), min_size=1, max_size=40),
    query=st.lists(st.sampled_from([*WORDS, "zzz", "x_1", "CAT"]), min_size=1, max_size=4),
    k=st.integers(1, 8),
)
def test_top_k_equals_the_exact_path(data, texts, query, k) -> None:
    n = len(texts)
    live = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    allowed = live & np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    q = " ".join(query)
    terms = query_terms(q)
    index = _index(texts)
    stats = index.stats(terms, live)
    # the exact path over the live rows of the version
    rows = np.flatnonzero(live)
    exact = _exact(texts, q, rows=rows) if len(rows) else {}
    assert stats == text_stats(pa.array([texts[i] for i in rows], pa.string()), terms)
    (top,) = bm25_scores([(index, allowed)], terms, stats, k=k)
    _same_top(top, {key: s for key, s in exact.items() if allowed[key]}, k)
    (every,) = bm25_scores([(index, allowed)], terms, stats)
    want = {key: s for key, s in exact.items() if allowed[key] and s > 0}
    assert dict(zip(every[0].tolist(), every[1].tolist(), strict=True)) == want
    assert np.all(np.diff(every[0]) > 0)


def test_segments_and_uncovered_rows_merge_into_the_exact_top_k() -> None:
    rng = np.random.default_rng(11)
    texts = [" ".join(rng.choice(WORDS, int(rng.integers(1, 9)))) for _ in range(500)]
    q = "bird 42 straße"
    terms = query_terms(q)
    a, b = _index(texts[:200]), _index(texts[200:400])
    live_a = rng.random(200) > 0.1
    live_b = rng.random(200) > 0.1
    uncovered = texts[400:]
    stats = a.stats(terms, live_a) + b.stats(terms, live_b) + text_stats(pa.array(uncovered), terms)
    rows = np.r_[np.flatnonzero(live_a), 200 + np.flatnonzero(live_b), np.arange(400, 500)]
    exact = _exact(texts, q, rows=rows)
    assert _exact(texts, q, stats, rows[rows >= 400]) == {
        key: s for key, s in exact.items() if key >= 400
    }
    (ta, tb) = bm25_scores([(a, live_a), (b, live_b)], terms, stats, k=10)
    merged = sorted(
        [*ta[1].tolist(), *tb[1].tolist(), *(s for key, s in exact.items() if key >= 400)]
    )
    assert merged[::-1][:10] == sorted(exact.values(), reverse=True)[:10]


def test_scores_equal_ds_query(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p = 1.0 / (np.arange(len(WORDS)) + 1.0)
    texts = [
        " ".join(rng.choice(WORDS, int(rng.integers(0, 15)), p=p / p.sum())) for _ in range(400)
    ]
    texts[7] = None  # type: ignore[call-overload]  # a null document
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64", "t": "text"})
    ds.append({"id": np.arange(400, dtype=np.int64), "t": texts})
    ds.commit()
    index = _index(texts)
    for q in ("bird cat", "İstanbul x1 日本", "ΣΟΦΙΑ straße", "nothing"):
        got = ds.query(
            f"SELECT id, BM25_SIMILARITY(t, '{q}') AS s ORDER BY s DESC, id LIMIT 10"
        ).to_arrow()
        terms = query_terms(q)
        (top,) = bm25_scores([(index, None)], terms, index.stats(terms), k=10)
        positive = [
            (i, s)
            for i, s in zip(got["id"].to_pylist(), got["s"].to_pylist(), strict=True)
            if s > 0
        ]
        assert positive == list(zip(top[0].tolist(), top[1].tolist(), strict=True))


def test_contains_all_and_substring_terms() -> None:
    texts = ["red car parked", "a red car", "carpet red", None, "Red  Car!"]
    index = _index(texts)
    assert index.contains_all(["red", "car"]).tolist() == [0, 1, 4]
    mask = np.array([False, True, True, True, True])
    assert index.contains_all(["red", "car"], mask).tolist() == [1, 4]
    assert index.contains_all([], mask).tolist() == [1, 2, 3, 4]
    assert index.contains_all(["red", "absent"]).tolist() == []
    assert substring_terms("ed car pa") == ["car"]
    assert substring_terms("red car") == []
    assert substring_terms(" Red car ") == ["red", "car"]
    # the prefilter keeps every row containing the value
    for value in ("ed car pa", "d car", " red ", "Car!"):
        rows = index.contains_all(substring_terms(value)).tolist()
        assert {i for i, t in enumerate(texts) if t and value in t} <= set(rows)
    with pytest.raises(InvalidArgumentError):
        index.contains_all(["red"], np.ones(3, bool))


def test_bad_arguments() -> None:
    index = _index(["a b", "b"])
    stats = index.stats(["a"])
    with pytest.raises(InvalidArgumentError):
        bm25_scores([(index, None)], ["a", "b"], stats)
    with pytest.raises(InvalidArgumentError):
        bm25_scores([(index, None)], ["a"], stats, k=-1)
    with pytest.raises(InvalidArgumentError):
        bm25_scores([(index, np.ones(2, np.int8))], ["a"], stats)
    with pytest.raises(InvalidArgumentError):
        bm25_scores([(index, None)], ["a", "a"], Bm25Stats(2, 3, (1, 1)))
    assert bm25_scores([(index, None)], ["a"], stats, k=0)[0][0].size == 0


def test_tokenising_on_several_threads_and_after_substring_terms() -> None:
    """Each thread reuses its own DuckDB connection: concurrent builds and the CONTAINS
    helper in between give the same postings as one build alone."""
    texts = [f"w{i % 7} Straße w{i % 3}, İstanbul" for i in range(500)]
    want = build_text_index(pa.array(texts))

    def build(i: int) -> dict[str, bytes]:
        assert substring_terms("xa b cx") == ["b"]
        return build_text_index(pa.array(texts))

    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(build, range(12)):
            assert got == want
    holding = sum(1 for i in range(500) if 1 in (i % 7, i % 3))
    assert text_stats(pa.array(texts), ["w1"]) == Bm25Stats(500, 2000, (holding,))
