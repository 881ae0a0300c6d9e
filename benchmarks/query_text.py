"""BM25 through ``ds.query`` end to end: lakefmt with its text index, lakefmt exact, Lance's
FTS index through its own API and tantivy-py, on the same documents, in one run.

    cd benchmarks && nice -n 10 python query_text.py --docs 1000000 --queries 100

Documents are :mod:`index_text`'s (5 to 30 Zipf words from a 30,000-word vocabulary), with
``id`` and ``label = id % 100``; queries are 2 or 3 mid-frequency words (OR semantics).
Timed, per query, from the query text to the result's columns in memory:

* lakefmt: ``ds.query("SELECT id, BM25_SIMILARITY(t, 'q') AS s [WHERE ...] ORDER BY s DESC
  LIMIT 10")`` over a dataset whose ``t`` is ``Text(index_type=types.BM25)`` (one segment,
  built at commit), ``.to_arrow()`` of the result; no WHERE, ``label < 50`` (50% of the rows)
  and ``label = 7`` (1%);
* lakefmt exact: the same queries with ``SearchConfig(exact=True)`` (a few; every score of
  the indexed answers is checked against them bit for bit, and the row counts);
* Lance: ``to_table(full_text_query=q, columns=["id", "_score"], limit=10[, filter=...,
  prefilter=True])`` over an ``INVERTED`` index (no stemming, stop words, folding or
  positions);
* tantivy-py: ``searcher.search(query, 10)`` (no filter: tantivy-py has no cheap
  equivalent of a SQL WHERE, so its column shows ``-`` there).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import machine, table
from index_text import build_tantivy, make_docs

import lakefmt
from lakefmt import types

K = 10
WHERES = {"none": "", "50%": "label < 50", "1%": "label = 7"}


def _sql(query: str, where: str) -> str:
    w = f" WHERE {where}" if where else ""
    return f"SELECT id, BM25_SIMILARITY(t, '{query}') AS s{w} ORDER BY s DESC LIMIT {K}"


def _p50(search, queries: list[str]) -> float:
    for q in queries[:3]:
        search(q)
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--exact", type=int, default=3, help="queries run exactly per WHERE")
    args = parser.parse_args()
    rng = np.random.default_rng(17)
    docs, words = make_docs(args.docs, 30_000, rng)
    queries = [
        " ".join(words[i] for i in rng.integers(50, 5000, rng.integers(2, 4)))
        for _ in range(args.queries)
    ]
    print(f"# {args.docs:,} documents, {args.queries} queries; {machine()}\n")
    work = Path(tempfile.mkdtemp(prefix="lakefmt-query-text-"))
    ids = np.arange(args.docs)
    labels = (ids % 100).astype(np.int32)
    results: dict[str, dict[str, float]] = {}
    builds: dict[str, float] = {}
    try:
        start = time.perf_counter()
        ds = lakefmt.create(str(work / "lakefmt"))
        ds.add_column("id", types.Int64())
        ds.add_column("label", types.Int32())
        ds.add_column("t", types.Text(index_type=types.BM25))
        ds.append({"id": ids, "label": labels, "t": docs})
        ds.commit()
        builds["lakefmt (BM25 index)"] = time.perf_counter() - start
        indexed = lakefmt.SearchConfig()
        exact_config = lakefmt.SearchConfig(exact=True)
        checked = equal = 0
        results["lakefmt (BM25 index)"] = {}
        results["lakefmt exact"] = {}
        for name, where in WHERES.items():
            ds.query_config = indexed

            def search(q: str, where: str = where) -> pa.Table:
                return ds.query(_sql(q, where)).to_arrow()

            results["lakefmt (BM25 index)"][name] = _p50(search, queries)
            got = [search(q) for q in queries[: args.exact]]
            ds.query_config = exact_config
            results["lakefmt exact"][name] = _p50(search, queries[: args.exact])
            for q, g in zip(queries, got, strict=False):
                want = search(q)
                checked += 1
                equal += g["s"].to_pylist() == want["s"].to_pylist() and len(g) == len(want)
        ds.query_config = indexed

        try:
            import tantivy
        except ImportError:
            print("skipped: tantivy (not installed)")
        else:
            start = time.perf_counter()
            index = build_tantivy(tantivy, docs, work / "tantivy")
            builds["tantivy-py"] = time.perf_counter() - start
            searcher = index.searcher()

            def tsearch(q: str) -> list:
                return searcher.search(index.parse_query(q, ["body"]), K, count=False).hits

            results["tantivy-py"] = {"none": _p50(tsearch, queries)}

        try:
            import lance
        except ImportError:
            print("skipped: lance (not installed)")
        else:
            start = time.perf_counter()
            lds = lance.write_dataset(
                pa.table({"id": pa.array(ids), "label": pa.array(labels), "body": docs}),
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
            builds["Lance FTS (INVERTED)"] = time.perf_counter() - start
            results["Lance FTS (INVERTED)"] = {}
            short = 0
            for name, where in WHERES.items():

                def lsearch(q: str, where: str = where) -> pa.Table:
                    extra = {"filter": where, "prefilter": True} if where else {}
                    return lds.to_table(
                        full_text_query=q, columns=["id", "_score"], limit=K, **extra
                    )

                results["Lance FTS (INVERTED)"][name] = _p50(lsearch, queries)
                short += sum(len(lsearch(q)) < K for q in queries[:20])
            print(f"Lance: {short} of {20 * len(WHERES)} answers had fewer than {K} rows")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = results["lakefmt (BM25 index)"]
    rows = []
    for system, by_where in results.items():
        cells = [system]
        for name in WHERES:
            p50 = by_where.get(name)
            cells.append("-" if p50 is None else f"{p50 * 1000:.2f}")
            cells.append("-" if p50 is None else f"{p50 / base[name]:.2f}")
        build = builds.get(system)
        cells.append("-" if build is None else f"{build:.1f}")
        rows.append(cells)
    header = ["system"]
    for name in WHERES:
        header += [f"p50 ms, WHERE {name}", "x lakefmt"]
    header.append("build s")
    print(table(rows, header))
    print(
        f"\nlakefmt indexed == exact (scores bit for bit, row counts): {equal} of {checked} "
        f"queries; exact timed on {args.exact} queries per WHERE"
    )


if __name__ == "__main__":
    main()
