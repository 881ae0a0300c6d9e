"""BM25 side by side: lakefmt's text index, tantivy-py and Lance's FTS on the same documents,
in one run.

    cd benchmarks && nice -n 10 python index_text.py --docs 1000000 --queries 200

Generates short documents (5 to 30 words drawn from a Zipf-like vocabulary, like titles or
captions) and queries of 2 or 3 mid-frequency words (OR semantics). All sides tokenize alike
on this ASCII vocabulary: lowercase, split on anything that is not a letter or digit.

* lakefmt: :mod:`lakefmt.indexes.text`, one segment built from the Arrow column (DuckDB
  tokenises, Parquet bytes reported), searched with :func:`~lakefmt.indexes.text.bm25_scores`
  under the collection's statistics; timed from the query string (terms, document
  frequencies, scores, top-10).
* tantivy: one segment built by one writer thread; ``searcher.search(query, 10)``.
* Lance: ``create_scalar_index(col, "INVERTED")`` (no stemming, stop words, folding or
  positions), ``to_table(full_text_query=q, limit=10)``.

All are checked against a brute-force BM25 over every document's tokens: ``exact top-10`` is,
for lakefmt, the share of queries whose top-10 scores equal the brute force's (ties broken by
document id, a tie at the 10th place counts as equal); for tantivy (which stores each length as
a lossy one-byte "fieldnorm") and Lance, the share whose top-10 ids equal it. lakefmt's scores
are also compared bit for bit with lakefmt's exact SQL path on ``--check-sql`` queries.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _common import machine, table

from lakefmt.indexes.text import (
    Bm25Stats,
    TextIndex,
    bm25_scores,
    build_text_index,
    query_terms,
)
from lakefmt.tql.models import Bm25Request
from lakefmt.tql.relations import _bm25_sql

K = 10
K1, B = 1.2, 0.75
_TOKEN = re.compile(r"[a-z0-9]+")


def make_docs(n: int, vocab: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``n`` documents and the vocabulary (rank order: word 0 is the most frequent)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = sorted({"".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(vocab * 2)})
    words = [words[i] for i in rng.permutation(len(words))[:vocab]]
    p = 1.0 / (np.arange(vocab) + 10.0)
    p /= p.sum()
    lengths = rng.integers(5, 31, n)
    ids = rng.choice(vocab, int(lengths.sum()), p=p)
    arr = np.array(words, dtype=object)[ids]
    ends = np.cumsum(lengths)
    return [" ".join(arr[e - m : e]) for e, m in zip(ends, lengths, strict=True)], words


def tokens_of(docs: pa.Array) -> pa.ListArray:
    return pc.split_pattern_regex(pc.utf8_lower(docs), r"[^a-z0-9]+")


class LakefmtText:
    """lakefmt's engine: one segment built from the column, searched with the version's stats."""

    def __init__(self, docs: pa.Array) -> None:
        self.files = build_text_index(docs)
        self.index = TextIndex.from_files(self.files)
        lengths = self.index.lengths()
        # per version, not per query: the live rows' count and tokens
        self.count, self.total = len(lengths), int(lengths.sum(dtype=np.int64))

    def search(self, query: str, k: int = K) -> tuple[np.ndarray, np.ndarray]:
        terms = query_terms(query)
        dfs = tuple(self.index.document_frequency(t) for t in terms)
        stats = Bm25Stats(self.count, self.total, dfs)
        ((ids, scores),) = bm25_scores([(self.index, None)], terms, stats, k=k)
        return ids, scores


def exact_path(docs: pa.Array, query: str, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """lakefmt's exact BM25 (the SQL ``BM25_SIMILARITY`` runs) over every document."""
    req = Bm25Request("t", query_terms(query), "score")
    con = duckdb.connect()
    con.register("docs", pa.table({"k": pa.array(np.arange(len(docs))), "t": docs}))
    sql = _bm25_sql("SELECT * FROM docs", req, 0)
    got = con.execute(
        f"SELECT k, score FROM ({sql}) WHERE score > 0 ORDER BY score DESC, k LIMIT {k}"
    ).fetchall()
    con.close()
    return np.array([r[0] for r in got], np.int64), np.array([r[1] for r in got])


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` by score, ties by smaller id."""
    if len(ids) > k:
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= cut
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


def brute_force(term_ids, parent, doc_len, query_terms, n_docs) -> tuple[np.ndarray, np.ndarray]:
    """Exact BM25 over every document, from the flat token stream."""
    norm = K1 * (1 - B + B * doc_len / doc_len.mean())
    total = np.zeros(n_docs)
    for t in set(query_terms):
        tf = np.bincount(parent[term_ids == t], minlength=n_docs).astype(np.float64)
        n = int((tf > 0).sum())
        if n:
            idf = math.log(1 + (n_docs - n + 0.5) / (n + 0.5))
            total += idf * tf * (K1 + 1) / (tf + norm)
    hit = np.flatnonzero(total > 0)
    return top_k(hit, total[hit], K)


def same_top(a_ids, a_scores, b_ids, b_scores) -> bool:
    """Equal top-k, allowing a different choice among ties at the last place."""
    if len(a_ids) != len(b_ids):
        return False
    if np.array_equal(a_ids, b_ids):
        return True
    return bool(np.allclose(np.sort(a_scores), np.sort(b_scores), rtol=1e-9, atol=0))


def build_tantivy(tantivy: Any, docs: list[str], folder: Path) -> Any:
    """A one-segment tantivy index of ``docs`` (field ``body``; doc ids are row ids)."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=False, tokenizer_name="default")
    folder.mkdir()
    index = tantivy.Index(sb.build(), path=str(folder))
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    for text in docs:
        writer.add_document(tantivy.Document(body=text))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--vocab", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--check", type=int, default=50, help="queries checked by brute force")
    parser.add_argument(
        "--check-sql", type=int, default=10, help="queries compared bit for bit with lakefmt's SQL"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(17)
    docs, words = make_docs(args.docs, args.vocab, rng)
    queries = [
        " ".join(words[i] for i in rng.integers(50, 5000, rng.integers(2, 4)))
        for _ in range(args.queries)
    ]
    print(f"# {args.docs:,} documents, {args.queries} queries; {machine()}\n")
    work = Path(tempfile.mkdtemp(prefix="lakefmt-text-bench-"))
    rows = []
    try:
        arrow_docs = pa.array(docs)
        start = time.perf_counter()
        engine = LakefmtText(arrow_docs)
        lakefmt_build = time.perf_counter() - start
        lakefmt_bytes = sum(len(b) for b in engine.files.values())

        # Brute force for the check, from an independent flat token stream.
        lists = tokens_of(arrow_docs)
        flat = pc.dictionary_encode(lists.flatten())
        vocab_ids = {w: i for i, w in enumerate(flat.dictionary.to_pylist())}
        term_ids = flat.indices.to_numpy()
        parent = pc.list_parent_indices(lists).to_numpy()
        doc_len = np.bincount(parent, minlength=args.docs).astype(np.float64)
        truth = [
            brute_force(
                term_ids,
                parent,
                doc_len,
                [vocab_ids[w] for w in _TOKEN.findall(q) if w in vocab_ids],
                args.docs,
            )
            for q in queries[: args.check]
        ]
        # lakefmt's engine against lakefmt's exact SQL path: the same scores, bit for bit
        bit_exact = np.mean(
            [
                np.array_equal(engine.search(q)[1], exact_path(arrow_docs, q)[1])
                for q in queries[: args.check_sql]
            ]
        )

        def measure(search) -> tuple[float, float]:
            for q in queries[:3]:
                search(q)
            times, exact = [], 0
            for i, q in enumerate(queries):
                start = time.perf_counter()
                ids, scores = search(q)
                times.append(time.perf_counter() - start)
                if i < args.check:
                    exact += same_top(ids, scores, *truth[i])
            return float(np.median(times)), exact / min(args.check, len(queries))

        def id_sets(search) -> float:
            """Share of queries whose top-10 ids are the brute force's (lossy scores)."""
            return float(
                np.mean(
                    [
                        set(search(q)[0].tolist()) == set(t[0].tolist())
                        for q, t in zip(queries[: args.check], truth, strict=False)
                    ]
                )
            )

        p50, exact = measure(engine.search)
        rows.append(["lakefmt.indexes.text", p50, exact, lakefmt_build, lakefmt_bytes])

        try:
            import tantivy
        except ImportError:
            print("skipped: tantivy (not installed)")
        else:
            start = time.perf_counter()
            index = build_tantivy(tantivy, docs, work / "tantivy")
            tantivy_build = time.perf_counter() - start
            searcher = index.searcher()
            assert searcher.num_segments == 1, "doc ids are row ids only in one segment"
            tantivy_bytes = sum(
                p.stat().st_size for p in (work / "tantivy").rglob("*") if p.is_file()
            )

            def tsearch(q: str) -> tuple[np.ndarray, np.ndarray]:
                hits = searcher.search(index.parse_query(q, ["body"]), K, count=False).hits
                ids = np.array([a.doc for _, a in hits], dtype=np.int64)
                return ids, np.array([s for s, _ in hits])

            p50, _ = measure(tsearch)
            # tantivy's scores are float32 over quantized lengths: compare the ids only.
            rows.append(["tantivy-py", p50, id_sets(tsearch), tantivy_build, tantivy_bytes])

        try:
            import lance
        except ImportError:
            print("skipped: lance (not installed)")
        else:
            start = time.perf_counter()
            lds = lance.write_dataset(
                pa.table({"id": pa.array(np.arange(args.docs)), "body": arrow_docs}),
                str(work / "lance"),
            )
            lds.create_scalar_index(
                "body",
                "INVERTED",
                with_position=False,
                stem=False,
                remove_stop_words=False,
                ascii_folding=False,
            )
            lance_build = time.perf_counter() - start
            index_dir = work / "lance" / "_indices"
            lance_bytes = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())

            def lsearch(q: str) -> tuple[np.ndarray, np.ndarray]:
                got = lds.to_table(full_text_query=q, columns=["id", "_score"], limit=K)
                return got["id"].to_numpy(), got["_score"].to_numpy()

            p50, _ = measure(lsearch)
            rows.append(["Lance FTS (INVERTED)", p50, id_sets(lsearch), lance_build, lance_bytes])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = next((r[1] for r in rows if r[0] == "tantivy-py"), rows[0][1])
    out = [
        [
            name,
            f"{p50 * 1000:.3f}",
            f"{p50 / base:.2f}",
            f"{exact:.2f}",
            f"{build:.1f}",
            f"{nbytes / 1e6:.1f}",
        ]
        for name, p50, exact, build, nbytes in rows
    ]
    header = ["index", "p50 ms", "ratio to tantivy", "exact top-10", "build s", "MB"]
    print(table(out, header))
    print(
        f"\nlakefmt engine == lakefmt's exact SQL path (scores bit for bit, top-10): "
        f"{bit_exact:.2f} of {args.check_sql} queries"
    )


if __name__ == "__main__":
    main()
