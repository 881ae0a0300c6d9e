"""The index kinds: one :class:`IndexKind` entry per kind, in :data:`KINDS`.

An entry says which columns the kind indexes, which engine writes its segment files and
how to build and load them. Adding a kind means adding an entry here (and, for a new
family of queries, the search that uses it in :mod:`lakefmt.tql`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakefmt.errors import FormatError, InvalidArgumentError
from lakefmt.indexes import embedding, scalar, text
from lakefmt.types.base import Type

#: ``vector``: ORDER BY a similarity of a vector column; ``text``: BM25 and CONTAINS;
#: ``scalar``: ``=``, ``IN`` and ranges of a number column.
Family = str
#: Text kinds whose segments also hold a ``keys`` file (:mod:`~lakefmt.indexes.scalar`, by
#: hash) for ``col = 'literal'`` and ``IN``: Deep Lake's Inverted and Exact text indexes
#: serve lookups; ``bm25`` is for ranking only.
TEXT_LOOKUP_KINDS = frozenset({"inverted", "exact"})


@dataclasses.dataclass(frozen=True)
class IndexKind:
    """One kind of index.

    Attributes:
        name: The canonical name, as column types and manifests store it.
        family: ``vector``, ``text`` or ``scalar``: which queries it answers.
        engine: The engine whose files the segments hold (manifest ``engine``).
        engine_version: The engine file format version the segments are written in.
        accepts: Whether a column of this lakefmt type can have this kind of index.
        build: Segment files (role -> bytes) for the values of the covered rows (key ``i``
            is value ``i``), with build parameters.
        load: The searchable form of a segment's files (role -> bytes).
    """

    name: str
    family: Family
    engine: str
    engine_version: Callable[[], str]
    accepts: Callable[[Type], bool]
    build: Callable[[pa.Array, np.ndarray, dict[str, Any]], dict[str, bytes]]
    load: Callable[[dict[str, bytes]], Any]


def _faiss_version() -> str:
    try:
        return importlib.metadata.version("faiss-cpu")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _is_vector(t: Type) -> bool:
    return t.to_json().get("name") == "lakefmt.embedding"


def _is_text(t: Type) -> bool:
    return pa.types.is_string(t.storage_type) or pa.types.is_large_string(t.storage_type)


def _vectors(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An ``(n, d)`` float32 matrix of a fixed-size-list array, and which rows a search can
    score (not null, finite; not all zero, which has no cosine)."""
    if isinstance(values, pa.ExtensionArray):
        values = values.storage
    size = values.type.list_size
    flat = values.values.slice(values.offset * size, len(values) * size)
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(values), size)
    valid = np.isfinite(matrix).all(axis=1) & np.any(matrix != 0, axis=1)
    if values.null_count:
        valid &= np.asarray(values.is_valid())
    matrix[~valid] = 0.0
    return matrix, valid


def _keys_file(keys: np.ndarray) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"key": pa.array(keys, pa.int64())}), sink)
    return sink.getvalue().to_pybytes()


def _read_keys(data: bytes) -> np.ndarray:
    try:
        table = pq.read_table(pa.BufferReader(data))
        return np.asarray(table.column("key").to_numpy(), dtype=np.int64)
    except (pa.ArrowException, KeyError) as exc:
        raise FormatError(f"index keys file is not readable: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class VectorSegment:
    """A loaded vector segment: the engine's graph, and the keys it cannot score (null,
    non-finite or zero vectors), which searches add as candidates for exact scoring."""

    graph: embedding.EmbeddingIndex
    unsearchable: np.ndarray


def _build_vectors(name: str) -> Callable[[pa.Array, np.ndarray, dict[str, Any]], dict[str, bytes]]:
    def build(values: pa.Array, live: np.ndarray, params: dict[str, Any]) -> dict[str, bytes]:
        matrix, valid = _vectors(values)
        index_params = embedding.EmbeddingIndexParams.from_json({**params, "kind": name})
        graph = embedding.build_embedding_index(matrix, valid & live, index_params)
        return {"graph": graph, "unsearchable": _keys_file(np.flatnonzero(~valid & live))}

    return build


def _load_vectors(files: dict[str, bytes]) -> VectorSegment:
    if "graph" not in files or "unsearchable" not in files:
        raise FormatError("vector index segment lacks its graph or unsearchable file")
    return VectorSegment(
        embedding.EmbeddingIndex.from_bytes(files["graph"]), _read_keys(files["unsearchable"])
    )


def _is_number(t: Type) -> bool:
    storage = t.storage_type
    return pa.types.is_integer(storage) or pa.types.is_floating(storage)


def _build_text(
    lookups: bool,
) -> Callable[[pa.Array, np.ndarray, dict[str, Any]], dict[str, bytes]]:
    def build(values: pa.Array, live: np.ndarray, params: dict[str, Any]) -> dict[str, bytes]:
        if isinstance(values, pa.ExtensionArray):
            values = values.storage
        keys = {"keys": scalar.build_sorted_keys(values, live)} if lookups else {}
        # deleted rows are indexed as empty documents: never returned, never counted
        values = pa.compute.if_else(pa.array(live), values, pa.scalar(None, values.type))
        return {**text.build_text_index(values), **keys}

    return build


def _build_numeric(values: pa.Array, live: np.ndarray, params: dict[str, Any]) -> dict[str, bytes]:
    return {"keys": scalar.build_sorted_keys(values, live)}


def load_keys(files: dict[str, bytes]) -> scalar.SortedKeys:
    """The sorted keys of a segment (its ``keys`` file).

    Raises:
        FormatError: The segment has no ``keys`` file (built before text lookups, or by
            another writer), or it is damaged.
    """
    if "keys" not in files:
        raise FormatError("index segment has no keys file")
    return scalar.SortedKeys.from_bytes(files["keys"])


KINDS: dict[str, IndexKind] = {
    kind.name: kind
    for kind in [
        *(
            IndexKind(
                name=name,
                family="vector",
                engine="faiss",
                engine_version=_faiss_version,
                accepts=_is_vector,
                build=_build_vectors(name),
                load=_load_vectors,
            )
            for name in ("clustered", "clustered_quantized", "pooled_quantized")
        ),
        *(
            IndexKind(
                name=name,
                family="text",
                engine="lakefmt.inverted",
                engine_version=lambda: text.ENGINE_VERSION,
                accepts=_is_text,
                build=_build_text(name in TEXT_LOOKUP_KINDS),
                load=text.TextIndex.from_files,
            )
            for name in ("bm25", "inverted", "exact")
        ),
        IndexKind(
            name="numeric",
            family="scalar",
            engine="lakefmt.sorted",
            engine_version=lambda: scalar.ENGINE_VERSION,
            accepts=_is_number,
            build=_build_numeric,
            load=load_keys,
        ),
    ]
}


def kind(name: str) -> IndexKind:
    """The kind called ``name``.

    Raises:
        InvalidArgumentError: No such kind.
    """
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown index kind {name!r}; known: {', '.join(sorted(KINDS))}"
        ) from None
