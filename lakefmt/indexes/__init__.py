"""Indexes stored in the dataset: vector (ANN), full-text (BM25) and scalar lookups.

Layer between :mod:`lakefmt.format` (which lists index files in the manifest) and
:mod:`lakefmt.tql` (which uses them to answer queries). An index is a list of immutable
*segments* under ``_indexes/``; each covers a set of fragments as they were when it was built,
and a reader uses a segment for a fragment only while the manifest still reads the indexed
column from exactly those files (``spec/format.md``, section "Indexes"). Everything an index
does not cover is searched exactly, so an index can make a query faster, never wrong.

Modules, from the top:

* engines: :mod:`~lakefmt.indexes.embedding` (faiss HNSW / IVF-PQ over vectors) and
  :mod:`~lakefmt.indexes.text` (an inverted index in Arrow/Parquet with exact BM25).
"""
