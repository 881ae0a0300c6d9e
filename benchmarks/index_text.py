"""BM25 side by side: tantivy-py against an inverted index kept in Arrow arrays, on the same
documents, in one run.

    python benchmarks/index_text.py --docs 200000 --queries 200

Generates short documents (5 to 30 words drawn from a Zipf-like vocabulary, like titles or
captions) and queries of 2 or 3 mid-frequency words (OR semantics). Both sides tokenize alike:
lowercase, split on anything that is not an ASCII letter or digit (tantivy's ``default``
tokenizer on this ASCII vocabulary).

* tantivy: one segment built by one writer thread; ``searcher.search(query, 10)``.
* Arrow inverted index: terms sorted, a CSR of postings (doc id ``uint32``, term frequency
  ``uint16``) and the document lengths, all built with pyarrow compute and numpy, stored as a
  Parquet table of one row per term (its bytes are reported); a query gathers the postings of
  its terms and scores them with exact BM25 (k1 = 1.2, b = 0.75, Lucene's idf
  ``ln(1 + (N - n + 0.5) / (n + 0.5))``) in float64.

Both are checked against a brute-force BM25 over every document's tokens: ``exact top-10`` is
the share of queries whose top-10 equals the brute force's (same scores: ties are broken by
document id, and a tie at the 10th place counts as equal). tantivy stores each document length
as one byte (a lossy "fieldnorm"), so its scores are close to but not exactly BM25.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import machine, table

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


class ArrowInverted:
    """Postings in CSR form: ``offsets[t]:offsets[t+1]`` of ``doc``/``tf`` belong to term ``t``."""

    def __init__(self, docs: pa.Array) -> None:
        lists = tokens_of(docs)
        flat = lists.flatten()
        parent = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
        keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
        encoded = pc.dictionary_encode(flat.filter(pa.array(keep)))
        parent = parent[keep]
        # Sort the dictionary so terms are in lexical order (ranged reads by term later).
        order = pc.sort_indices(encoded.dictionary).to_numpy()
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        term = rank[encoded.indices.to_numpy()]
        self.terms = encoded.dictionary.take(pa.array(order))
        self.n_docs = len(docs)
        self.doc_len = np.bincount(parent, minlength=self.n_docs).astype(np.uint16)
        key = term.astype(np.int64) * self.n_docs + parent
        uniq, tf = np.unique(key, return_counts=True)
        uterm = uniq // self.n_docs
        self.doc = (uniq % self.n_docs).astype(np.uint32)
        self.tf = tf.astype(np.uint16)
        self.offsets = np.searchsorted(uterm, np.arange(len(self.terms) + 1))
        self.lookup = {t: i for i, t in enumerate(self.terms.to_pylist())}
        avg = self.doc_len.mean()
        self.norm = (K1 * (1 - B + B * self.doc_len / avg)).astype(np.float64)
        self.acc = np.zeros(self.n_docs)

    def to_table(self) -> pa.Table:
        """One row per term: its postings as two lists, plus the document lengths apart."""
        offsets = pa.array(self.offsets.astype(np.int32))
        return pa.table(
            {
                "term": self.terms,
                "doc": pa.ListArray.from_arrays(offsets, pa.array(self.doc)),
                "tf": pa.ListArray.from_arrays(offsets, pa.array(self.tf)),
            }
        )

    def search(self, query: str, k: int = K) -> tuple[np.ndarray, np.ndarray]:
        # A term's postings name each document once, so ``acc[d] += part`` adds without
        # collisions; ``acc`` (one float64 per document) is zeroed again before returning.
        acc, found = self.acc, []
        for word in set(_TOKEN.findall(query.lower())):
            t = self.lookup.get(word)
            if t is None:
                continue
            s, e = self.offsets[t], self.offsets[t + 1]
            d, tf = self.doc[s:e], self.tf[s:e].astype(np.float64)
            idf = math.log(1 + (self.n_docs - (e - s) + 0.5) / (e - s + 0.5))
            acc[d] += idf * tf * (K1 + 1) / (tf + self.norm[d])
            found.append(d)
        if not found:
            return np.empty(0, np.int64), np.empty(0)
        cand = np.concatenate(found).astype(np.int64)
        vals = acc[cand]
        # A document occurs once per matching term: the best k x terms entries hold k documents.
        want = k * len(found)
        if len(cand) > want:
            cut = np.partition(vals, len(vals) - want)[len(vals) - want]
            keep = vals >= cut
            cand, vals = cand[keep], vals[keep]
        cand, first = np.unique(cand, return_index=True)
        ids, scores = top_k(cand, vals[first], k)
        acc[np.concatenate(found)] = 0.0
        return ids, scores


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--vocab", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--check", type=int, default=50, help="queries checked by brute force")
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
        inv = ArrowInverted(arrow_docs)
        arrow_build = time.perf_counter() - start
        pq.write_table(inv.to_table(), work / "postings.parquet", compression="zstd")
        pq.write_table(pa.table({"len": inv.doc_len}), work / "lengths.parquet")
        arrow_bytes = sum(p.stat().st_size for p in work.glob("*.parquet"))

        # Brute force for the check, from an independent flat token stream.
        lists = tokens_of(arrow_docs)
        flat = lists.flatten().to_pylist()
        vocab_ids = {w: i for i, w in enumerate(sorted(set(flat)))}
        term_ids = np.array([vocab_ids[w] for w in flat])
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

        p50, exact = measure(inv.search)
        rows.append(["Arrow inverted (numpy)", p50, exact, arrow_build, arrow_bytes])

        try:
            import tantivy
        except ImportError:
            print("skipped: tantivy (not installed)")
        else:
            sb = tantivy.SchemaBuilder()
            sb.add_text_field("body", stored=False, tokenizer_name="default")
            schema = sb.build()
            (work / "tantivy").mkdir()
            start = time.perf_counter()
            index = tantivy.Index(schema, path=str(work / "tantivy"))
            writer = index.writer(heap_size=256_000_000, num_threads=1)
            for text in docs:
                writer.add_document(tantivy.Document(body=text))
            writer.commit()
            writer.wait_merging_threads()
            index.reload()
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
            agree = np.mean(
                [
                    len(set(tsearch(q)[0].tolist()) & set(t[0].tolist())) / max(len(t[0]), 1)
                    for q, t in zip(queries[: args.check], truth, strict=False)
                ]
            )
            exact_sets = np.mean(
                [
                    set(tsearch(q)[0].tolist()) == set(t[0].tolist())
                    for q, t in zip(queries[: args.check], truth, strict=False)
                ]
            )
            rows.append(["tantivy-py", p50, float(exact_sets), tantivy_build, tantivy_bytes])
            print(f"tantivy top-10 overlap with exact BM25: {agree:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[-1][1]
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
    header = ["index", "p50 ms", "ratio to last", "exact top-10", "build s", "MB"]
    print(table(out, header))


if __name__ == "__main__":
    main()
