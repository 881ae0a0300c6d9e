"""The full-text engine: an inverted index stored as Parquet, scored with exact BM25.

A segment of a text index is built from one Arrow column (:func:`build_text_index`); the key
of row ``i`` is ``i``. It is two Parquet files (``spec/proposals/indexes.md``, section 8):

* ``postings``: one row per term, terms in ascending (UTF-8 byte) order, with ``doc``
  (``list<uint32>``: the keys holding the term, ascending) and ``tf`` (``list<uint16>``, or
  ``list<uint32>`` when a count passes 65,535: the term's count in each of those keys); row
  groups of :data:`TERMS_PER_ROW_GROUP` terms;
* ``lengths``: one row per key, ``length`` (``uint32``: its number of tokens).

Both carry the key-value metadata ``lakefmt.text`` (:data:`ENGINE_VERSION`, the tokenizer
and the key count), and page checksums, so a damaged file gives :class:`FormatError`.

**Tokenizer** (:data:`TOKENIZER`, the one ``BM25_SIMILARITY`` has always used): a document is
``coalesce(CAST(text AS VARCHAR), '')`` (a null is an empty document), lower-cased by DuckDB's
``lower`` and split by DuckDB's ``string_split_regex`` on :data:`TOKEN_PATTERN` (runs of
anything that is not a Unicode letter or number), empty strings dropped. The index is built by
DuckDB itself running exactly that expression (:func:`tokens_sql`, which the exact query path
also uses), never by Python's ``str.lower``, which lower-cases some letters differently (``İ``).
A query's terms are :func:`query_terms`: Python's ``re.findall(r"[^\\W_]+", q)``, lower-cased,
first occurrence kept, in order.

**Scores** (:func:`bm25_scores`) are the exact path's (``lakefmt.tql.relations``), bit for bit:
k1 = :data:`BM25_K1`, b = :data:`BM25_B`, idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``, with
the collection statistics (:class:`Bm25Stats`) of the live rows of the whole version, passed
in, so scores of several segments and of rows searched exactly merge into a plain top-k. The
arithmetic follows the SQL expression's order of operations in float64; the mean length is
``total_length / count`` (:attr:`Bm25Stats.average_length`), computed alike by the SQL.
The arithmetic lives in :mod:`lakefmt.indexes.bm25`, which also finds a segment's top-k
without scoring every posting (MaxScore over per-term upper bounds computed in memory from
the postings: the files are unchanged), returning exactly the unpruned answer.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakefmt import _pool
from lakefmt._duckdb import SANDBOX_CONFIG
from lakefmt.errors import FormatError, InvalidArgumentError
from lakefmt.indexes import bm25
from lakefmt.indexes.bm25 import BM25_B, BM25_K1

__all__ = [
    "BM25_B",
    "BM25_K1",
    "ENGINE_VERSION",
    "TOKENIZER",
    "TOKEN_PATTERN",
    "Bm25Stats",
    "TextIndex",
    "bm25_scores",
    "build_text_index",
    "query_terms",
    "substring_terms",
    "text_stats",
    "tokens_sql",
]

#: What separates tokens (RE2 syntax, DuckDB's ``string_split_regex``).
TOKEN_PATTERN = r"[^\p{L}\p{N}]+"
#: The tokenizer's name, recorded in every file (a later tokenizer never reads old postings).
TOKENIZER = "duckdb-lower-split-v1"
#: Version of this engine's file layout.
ENGINE_VERSION = "1"
#: Terms per row group of ``postings``: a term's postings are one ranged read.
TERMS_PER_ROW_GROUP = 65_536

_QUERY_TOKEN = re.compile(r"[^\W_]+")
_META_KEY = b"lakefmt.text"


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tokens_sql(expr: str, var: str = "__lf_t") -> str:
    """The DuckDB expression of a text's token list (the tokenizer, see the module).

    Args:
        expr: SQL of the text value (any type DuckDB casts to ``VARCHAR``).
        var: The lambda variable's name (must not clash with a column of the query).
    """
    return (
        f"list_filter(string_split_regex(lower(coalesce(CAST({expr} AS VARCHAR), '')), "
        f"{_sql_str(TOKEN_PATTERN)}), lambda {var}: {var} <> '')"
    )


def query_terms(query: str) -> list[str]:
    """The distinct terms of a BM25 query, in order of first occurrence (see the module)."""
    return list(dict.fromkeys(t.lower() for t in _QUERY_TOKEN.findall(query)))


_CONNECTIONS = threading.local()


def _connection() -> Any:
    """This thread's private in-memory DuckDB connection (opened once per thread: opening
    one costs milliseconds, tens under load), which reads nothing outside this process."""
    con = getattr(_CONNECTIONS, "con", None)
    if con is not None:
        return con
    import duckdb  # heavy: only when an index is built or a CONTAINS is planned

    con = duckdb.connect(":memory:", config=dict(SANDBOX_CONFIG))
    threads = max(1, min(os.cpu_count() or 1, _pool.pool_size("decode")))
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_external_access = false")
    _CONNECTIONS.con = con
    return con


def _text_table(texts: pa.Array | pa.ChunkedArray) -> pa.Table:
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        raise InvalidArgumentError(
            f"texts must be a pyarrow Array or ChunkedArray of strings, not {type(texts).__name__}"
        )
    kind = texts.type
    if pa.types.is_dictionary(kind):
        texts = pc.cast(texts, kind.value_type)
        kind = texts.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        if pa.types.is_string_view(kind):
            texts = pc.cast(texts, pa.large_string())
        else:
            raise InvalidArgumentError(f"texts must hold strings, not {kind}")
    return pa.table({"t": texts})


def _token_lists(texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Each text's tokens, by DuckDB (the tokenizer), as one list array in row order."""
    table = _text_table(texts)
    con = _connection()
    try:
        con.register("__lf_texts", table)
        # preserve_insertion_order (set by _connection) keeps the rows in the table's order
        result = con.sql(f"SELECT {tokens_sql('t')} AS toks FROM __lf_texts").to_arrow_table()
    finally:
        con.unregister("__lf_texts")
    lists = result["toks"].combine_chunks()
    if len(lists) != len(table):
        raise AssertionError("DuckDB returned another number of rows")  # pragma: no cover
    return lists


def _file_metadata(count: int) -> dict[bytes, bytes]:
    doc = {"engine_version": ENGINE_VERSION, "tokenizer": TOKENIZER, "count": count}
    return {_META_KEY: json.dumps(doc, sort_keys=True).encode()}


def _parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        row_group_size=max(1, row_group_size),
        write_page_checksum=True,
    )
    return sink.getvalue()


def build_text_index(texts: pa.Array | pa.ChunkedArray) -> dict[str, bytes]:
    """Build one segment over ``texts`` (key of row ``i`` is ``i``; nulls are empty documents).

    Returns:
        The segment's files by role: ``{"postings": ..., "lengths": ...}``, Parquet bytes
        (layout in the module docstring); :meth:`TextIndex.from_files` reads them.

    Raises:
        InvalidArgumentError: ``texts`` is not an Arrow array of strings, or has more rows
            than a ``uint32`` key can name.
    """
    lists = _token_lists(texts)
    count = len(lists)
    if count >= 2**32:
        raise InvalidArgumentError(f"a text index segment holds < 2**32 rows, not {count:,}")
    flat = lists.flatten()
    parent = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    lengths = np.bincount(parent, minlength=count).astype(np.uint32)
    if len(flat):
        encoded = (
            pc.dictionary_encode(flat).combine_chunks()
            if isinstance(flat, pa.ChunkedArray)
            else pc.dictionary_encode(flat)
        )
        # terms in byte order: a term's rank is its id
        order = pc.sort_indices(encoded.dictionary).to_numpy()
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        terms = encoded.dictionary.take(pa.array(order))
        pair = rank[encoded.indices.to_numpy()] * max(count, 1) + parent
        pair.sort()
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        tf = np.diff(np.r_[starts, len(pair)])
        pair = pair[starts]
        term_of = pair // max(count, 1)
        docs = (pair % max(count, 1)).astype(np.uint32)
        offsets = np.searchsorted(term_of, np.arange(len(terms) + 1)).astype(np.int64)
    else:
        terms = pa.array([], pa.string())
        tf = np.empty(0, np.int64)
        docs = np.empty(0, np.uint32)
        offsets = np.zeros(1, np.int64)
    tf_type = pa.uint16() if (len(tf) == 0 or tf.max() <= 0xFFFF) else pa.uint32()
    arrow_offsets = pa.array(offsets, pa.int64())
    postings = pa.table(
        {
            "term": pc.cast(terms, pa.large_string()),
            "doc": pa.LargeListArray.from_arrays(arrow_offsets, pa.array(docs, pa.uint32())),
            "tf": pa.LargeListArray.from_arrays(arrow_offsets, pa.array(tf, tf_type)),
        }
    ).replace_schema_metadata(_file_metadata(count))
    length_table = pa.table({"length": pa.array(lengths, pa.uint32())}).replace_schema_metadata(
        _file_metadata(count)
    )
    return {
        "postings": _parquet_bytes(postings, TERMS_PER_ROW_GROUP),
        "lengths": _parquet_bytes(length_table, 1 << 20),
    }


def _read(files: dict[str, bytes], role: str) -> pa.Table:
    data = files.get(role)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"text index: no {role!r} file (roles: {sorted(files)})")
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FormatError(f"text index: the {role!r} file is not readable Parquet: {exc}") from exc
    meta = (table.schema.metadata or {}).get(_META_KEY)
    try:
        doc = json.loads(meta) if meta is not None else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise FormatError(f"text index: the {role!r} file has no lakefmt.text metadata")
    if doc.get("engine_version") != ENGINE_VERSION or doc.get("tokenizer") != TOKENIZER:
        raise FormatError(
            f"text index: the {role!r} file is engine version {doc.get('engine_version')!r}, "
            f"tokenizer {doc.get('tokenizer')!r}; this lakefmt reads version {ENGINE_VERSION!r}, "
            f"tokenizer {TOKENIZER!r}"
        )
    if doc.get("count") != _count_of(table, role):
        raise FormatError(f"text index: the {role!r} file's key count does not match its rows")
    return table


def _count_of(table: pa.Table, role: str) -> int | None:
    if role == "lengths":
        return table.num_rows
    meta = json.loads((table.schema.metadata or {})[_META_KEY])
    count = meta.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _list_parts(
    column: pa.ChunkedArray, value_types: tuple[pa.DataType, ...], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64) and values (numpy) of a list column; FormatError if not of that shape."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not any(
        kind.value_type.equals(t) for t in value_types
    ):
        raise FormatError(f"text index: postings column {what!r} has type {kind}")
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if arr.null_count or arr.values.null_count:
        raise FormatError(f"text index: postings column {what!r} has nulls")
    arr = pc.cast(arr, pa.large_list(arr.type.value_type)) if pa.types.is_list(kind) else arr
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy()
    start = offsets[0]
    return offsets - start, values[start : offsets[-1]]


class TextIndex:
    """One segment of a text index, in memory: postings in CSR form and the key lengths.

    Read it with :meth:`from_files`. Thread-safe: queries may run on several threads.
    """

    def __init__(
        self,
        terms: pa.Array,
        offsets: np.ndarray,
        docs: np.ndarray,
        tf: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self._terms = terms
        self._offsets = offsets
        self._docs = docs
        self._tf = tf
        self._lengths = lengths
        self._lookup: dict[str, int] | None = None
        self._norm_cache: tuple[float | None, np.ndarray] | None = None
        self._term_bounds: bm25.TermBounds | None = None
        self._local = threading.local()
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> TextIndex:
        """Read a segment from the files :func:`build_text_index` wrote (role -> bytes).

        Raises:
            FormatError: A file is missing, damaged, of another engine version or
                tokenizer, or its contents are inconsistent (keys out of range or out of
                order, terms out of order, lengths that are not the postings' sums).
        """
        try:
            return cls._from_files(files)
        except FormatError:
            raise
        except (pa.ArrowException, ValueError, KeyError, TypeError, IndexError) as exc:
            # a damaged footer can decode to names or metadata that are not UTF-8
            raise FormatError(f"text index: damaged files ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def _from_files(cls, files: dict[str, bytes]) -> TextIndex:
        if not isinstance(files, dict):
            raise FormatError(f"text index: files must be a dict of role -> bytes, not {files!r}")
        postings = _read(files, "postings")
        length_table = _read(files, "lengths")
        if postings.schema.names != ["term", "doc", "tf"] or length_table.schema.names != [
            "length"
        ]:
            raise FormatError("text index: unexpected columns in its files")
        count = length_table.num_rows
        if _count_of(postings, "postings") != count:
            raise FormatError("text index: postings and lengths are of different segments")
        lengths_col = length_table["length"]
        if not lengths_col.type.equals(pa.uint32()) or lengths_col.null_count:
            raise FormatError(f"text index: lengths have type {lengths_col.type} or nulls")
        lengths = lengths_col.to_numpy()
        terms_col = postings["term"]
        if not (pa.types.is_string(terms_col.type) or pa.types.is_large_string(terms_col.type)):
            raise FormatError(f"text index: terms have type {terms_col.type}")
        terms = terms_col.combine_chunks() if terms_col.num_chunks != 1 else terms_col.chunk(0)
        if terms.null_count:
            raise FormatError("text index: a term is null")
        offsets, docs = _list_parts(postings["doc"], (pa.uint32(),), "doc")
        tf_offsets, tf = _list_parts(postings["tf"], (pa.uint16(), pa.uint32()), "tf")
        if not np.array_equal(offsets, tf_offsets):
            raise FormatError("text index: doc and tf lists differ in length")
        _check_postings(terms, offsets, docs, tf, lengths)
        index = cls(terms, offsets, docs, tf, lengths)
        index._bounds()  # at load, not in the first query that prunes
        return index

    @property
    def count(self) -> int:
        """Number of keys (rows the segment was built from)."""
        return len(self._lengths)

    @property
    def term_count(self) -> int:
        """Number of distinct terms."""
        return len(self._terms)

    def lengths(self) -> np.ndarray:
        """Token count of each key (``uint32``, read-only)."""
        view = self._lengths.view()
        view.flags.writeable = False
        return view

    def _term_id(self, term: str) -> int | None:
        lookup = self._lookup
        if lookup is None:
            with self._lock:
                if self._lookup is None:
                    self._lookup = {t: i for i, t in enumerate(self._terms.to_pylist())}
                lookup = self._lookup
        return lookup.get(term)

    def _slice(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        t = self._term_id(term)
        if t is None:
            return self._docs[:0], self._tf[:0]
        s, e = self._offsets[t], self._offsets[t + 1]
        return self._docs[s:e], self._tf[s:e]

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The keys holding ``term`` (``int64``, ascending) and its count in each.

        Both are empty when no key holds it. ``term`` is matched as stored (tokens are lower
        case; see :func:`query_terms`).
        """
        docs, tf = self._slice(term)
        return docs.astype(np.int64), tf.astype(np.int64)

    def document_frequency(self, term: str, live: np.ndarray | None = None) -> int:
        """Keys holding ``term``, counting only keys where ``live`` is true (if given)."""
        docs, _ = self._slice(term)
        return int(len(docs) if live is None else np.count_nonzero(live[docs]))

    def contains_all(self, terms: Sequence[str], allowed: np.ndarray | None = None) -> np.ndarray:
        """Keys (``int64``, ascending) holding every one of ``terms``, among ``allowed``.

        With no terms, every allowed key. For a ``CONTAINS(text, 'value')`` prefilter pass
        :func:`substring_terms` of the value: the keys returned are a superset of the rows
        containing the value, to be checked exactly.

        Args:
            terms: Tokens (lower case).
            allowed: A boolean mask over the keys, or None for all keys.
        """
        allowed = self._mask(allowed, "allowed")
        lists = sorted((self._slice(t)[0] for t in dict.fromkeys(terms)), key=len)
        if not lists:
            keys = np.arange(self.count, dtype=np.int64)
            return keys if allowed is None else keys[allowed]
        keys = lists[0]
        if allowed is not None:
            keys = keys[allowed[keys]]
        for other in lists[1:]:
            if not len(keys):
                break
            at = np.searchsorted(other, keys)
            at[at == len(other)] = 0
            keys = keys[other[at] == keys] if len(other) else keys[:0]
        return keys.astype(np.int64)

    def stats(self, terms: Sequence[str], live: np.ndarray | None = None) -> Bm25Stats:
        """The collection statistics of this segment's ``live`` keys (all if None)."""
        live = self._mask(live, "live")
        lengths = self._lengths if live is None else self._lengths[live]
        return Bm25Stats(
            count=len(lengths),
            total_length=int(lengths.sum(dtype=np.int64)),
            document_frequencies=tuple(self.document_frequency(t, live) for t in terms),
        )

    def _mask(self, mask: np.ndarray | None, what: str) -> np.ndarray | None:
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.count,):
            raise InvalidArgumentError(
                f"{what} must be a boolean mask of shape ({self.count},), not "
                f"{mask.dtype} {mask.shape}"
            )
        return mask

    def _norms(self, average: float | None) -> np.ndarray:
        """``k1 * (1 - b + b * dl / avgdl)`` per key, as the SQL computes it (cached)."""
        cached = self._norm_cache
        if cached is not None and cached[0] == average:
            return cached[1]
        norm = bm25.norms(self._lengths, average)
        self._norm_cache = (average, norm)
        return norm

    def _bounds(self) -> bm25.TermBounds:
        bounds = self._term_bounds
        if bounds is None:
            with self._lock:
                if self._term_bounds is None:
                    self._term_bounds = bm25.TermBounds.of(
                        self._offsets, self._docs, self._tf, self._lengths
                    )
                bounds = self._term_bounds
        return bounds

    def _accumulator(self) -> np.ndarray:
        acc = getattr(self._local, "acc", None)
        if acc is None:
            acc = np.zeros(self.count)
            self._local.acc = acc
        return acc

    def _search(
        self,
        terms: Sequence[str],
        stats: Bm25Stats,
        allowed: np.ndarray | None,
        k: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        allowed = self._mask(allowed, "allowed")
        norms = self._norms(stats.average_length)
        if k is not None:
            return self._top_k(terms, stats, allowed, k, norms)
        # score terms in the query's order: float additions must happen in the SQL's order
        acc, found = self._accumulator(), []
        try:
            for term, df in zip(terms, stats.document_frequencies, strict=True):
                docs, tf = self._slice(term)
                if allowed is not None and len(docs):
                    keep = allowed[docs]
                    docs, tf = docs[keep], tf[keep]
                if not len(docs):
                    continue
                # a term's postings name each key once: no two updates of one cell
                acc[docs] += bm25.contributions(bm25.idf(stats.count, df), tf, norms[docs])
                found.append(docs)
            if not found:
                return np.empty(0, np.int64), np.empty(0)
            cand = np.concatenate(found) if len(found) > 1 else found[0]
            vals = acc[cand]
            if len(found) > 1:
                cand, first = np.unique(cand, return_index=True)
                vals = vals[first]
        finally:
            for docs in found:
                acc[docs] = 0.0
        return cand.astype(np.int64), vals

    def _top_k(
        self,
        terms: Sequence[str],
        stats: Bm25Stats,
        allowed: np.ndarray | None,
        k: int,
        norms: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` allowed keys, pruned by MaxScore (:func:`bm25.top_k`), exact."""
        ids = []
        for term, df in zip(terms, stats.document_frequencies, strict=True):
            t = self._term_id(term)
            if t is not None:
                ids.append((t, bm25.idf(stats.count, df)))
        offsets = self._offsets
        bounds = (
            self._bounds()
            if bm25.prunes([int(offsets[t + 1] - offsets[t]) for t, _ in ids])
            else None
        )
        average = stats.average_length
        present = []
        for t, term_idf in ids:
            s, e = offsets[t], offsets[t + 1]
            bound = 0.0 if bounds is None else bounds.upper_bound(t, term_idf, average)
            present.append(bm25.Term(self._docs[s:e], self._tf[s:e], term_idf, bound))
        return bm25.top_k(present, norms, allowed, k)


def _check_postings(
    terms: pa.Array, offsets: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray
) -> None:
    count = len(lengths)
    if len(offsets) != len(terms) + 1 or (len(offsets) > 1 and np.any(np.diff(offsets) <= 0)):
        raise FormatError("text index: a term has no postings")
    if len(terms) > 1:
        sorted_ok = pc.all(pc.less(terms[:-1], terms[1:])).as_py()
        if not sorted_ok:
            raise FormatError("text index: terms are not in strictly ascending order")
        if pc.any(pc.equal(terms, "")).as_py():
            raise FormatError("text index: an empty term")
    if len(docs):
        if int(docs.max()) >= count:
            raise FormatError("text index: a posting names a key beyond the lengths")
        if np.any(tf == 0):
            raise FormatError("text index: a posting has a zero count")
        rising = np.diff(docs.astype(np.int64)) > 0
        rising[offsets[1:-1] - 1] = True  # a new term starts over
        if not rising.all():
            raise FormatError("text index: a term's keys are not in ascending order")
    sums = np.bincount(docs, weights=tf, minlength=count) if len(docs) else np.zeros(count)
    if not np.array_equal(sums, lengths.astype(np.float64)):
        raise FormatError("text index: key lengths are not the sums of their postings")


@dataclasses.dataclass(frozen=True)
class Bm25Stats:
    """Collection statistics over the live rows of a version, for exact BM25 scores.

    Attributes:
        count: Rows (N).
        total_length: Their tokens, added up (avgdl is ``total_length / count``).
        document_frequencies: Per query term, in the query's order, the rows holding it.
    """

    count: int
    total_length: int
    document_frequencies: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("count", "total_length"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise InvalidArgumentError(f"Bm25Stats.{name} must be an int >= 0, not {value!r}")
        dfs = self.document_frequencies
        if not isinstance(dfs, tuple):
            raise InvalidArgumentError("Bm25Stats.document_frequencies must be a tuple of ints")
        for df in dfs:
            if (
                not isinstance(df, (int, np.integer))
                or isinstance(df, bool)
                or not (0 <= df <= self.count)
            ):
                raise InvalidArgumentError(
                    f"Bm25Stats.document_frequencies: {df!r} is not an int in 0..{self.count}"
                )
        if self.count == 0 and self.total_length:
            raise InvalidArgumentError("Bm25Stats: no rows cannot have tokens")

    @property
    def average_length(self) -> float | None:
        """avgdl, ``total_length / count`` in float64 (as the SQL computes it); None if no rows.

        The exact path computes ``sum(length) / count(*)`` (a correctly rounded quotient of
        exact integers), not DuckDB's ``avg``, whose windowed form divides in ``long double``
        and differs in the last bit for some totals.
        """
        if self.count == 0:
            return None
        return self.total_length / self.count

    def __add__(self, other: Bm25Stats) -> Bm25Stats:
        """The statistics of both sets of rows together (for the same query terms)."""
        if not isinstance(other, Bm25Stats):
            return NotImplemented
        if len(other.document_frequencies) != len(self.document_frequencies):
            raise InvalidArgumentError("Bm25Stats of different queries cannot be added")
        return Bm25Stats(
            self.count + other.count,
            self.total_length + other.total_length,
            tuple(
                a + b
                for a, b in zip(self.document_frequencies, other.document_frequencies, strict=True)
            ),
        )


def text_stats(texts: pa.Array | pa.ChunkedArray, terms: Sequence[str]) -> Bm25Stats:
    """The collection statistics of ``texts`` (e.g. rows no segment covers), by the tokenizer.

    Raises:
        InvalidArgumentError: ``texts`` is not an Arrow array of strings.
    """
    lists = _token_lists(texts)
    flat = lists.flatten()
    parent = pc.list_parent_indices(lists)
    dfs = []
    for term in terms:
        hit = pc.equal(flat, term)
        dfs.append(len(pc.unique(parent.filter(hit))) if len(flat) else 0)
    return Bm25Stats(len(lists), len(flat), tuple(dfs))


def substring_terms(value: str) -> list[str]:
    """Tokens every text containing ``value`` holds whole (for a ``CONTAINS`` prefilter).

    A token of ``value`` touching its start or end may be part of a longer token of the
    text, so only the tokens between separators inside ``value`` are returned.
    (DuckDB lower-cases letter by letter, so a text containing ``value`` lower-cases to
    one containing ``lower(value)``.)
    """
    sql = f"SELECT string_split_regex(lower(CAST($1 AS VARCHAR)), {_sql_str(TOKEN_PATTERN)})"
    # fetchall: the shared connection must not keep an unfinished result
    rows = _connection().execute(sql, [value]).fetchall()
    parts: list[str] = rows[0][0] if rows else []
    return list(dict.fromkeys(p for p in parts[1:-1] if p))


def bm25_scores(
    segments: Sequence[tuple[TextIndex, np.ndarray | None]],
    terms: Sequence[str],
    stats: Bm25Stats,
    k: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact BM25 scores of ``terms`` in each segment, under the collection ``stats``.

    Args:
        segments: Per segment, its index and its *allowed* mask (boolean over its keys:
            live, not dirty, matching the query's filter; None for every key). The mask is
            applied while the postings are gathered, never after the top-k, so a segment
            returns its best ``k`` allowed keys whenever it has them.
        terms: The query's distinct terms (:func:`query_terms`), in the query's order.
        stats: Statistics of the live rows of the whole version (all segments' live keys
            plus rows searched exactly), one document frequency per term:
            :meth:`TextIndex.stats` of each segment, plus :func:`text_stats`, added up.
        k: Keep each segment's best ``k`` (by score descending, ties by smaller key); None
            for every key holding at least one term (ascending keys).

    Returns:
        Per segment, ``(keys int64, scores float64)``. A key holding no term is never
        returned: its exact score is ``0.0``. Each score equals, bit for bit, the score
        ``BM25_SIMILARITY`` gives that row over the version.

    Raises:
        InvalidArgumentError: ``stats`` has another number of terms, ``k`` < 0, or a mask
            has the wrong shape or type.
    """
    terms = list(terms)
    if len(set(terms)) != len(terms):
        raise InvalidArgumentError("bm25_scores: terms must be distinct (see query_terms)")
    if len(stats.document_frequencies) != len(terms):
        raise InvalidArgumentError(
            f"bm25_scores: {len(stats.document_frequencies)} document frequencies for "
            f"{len(terms)} terms"
        )
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 0):
        raise InvalidArgumentError(f"bm25_scores: k must be an int >= 0 or None, not {k!r}")
    out = []
    for index, allowed in segments:
        if not isinstance(index, TextIndex):
            raise InvalidArgumentError(f"bm25_scores: {type(index).__name__} is not a TextIndex")
        if k == 0:
            out.append((np.empty(0, np.int64), np.empty(0)))
            continue
        out.append(index._search(terms, stats, allowed, k))
    return out
