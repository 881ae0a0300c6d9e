"""The vector index engine: approximate nearest neighbours over one embedding column, on faiss.

Pure: numpy arrays in, bytes out, and back; nothing here knows about manifests, fragments or
datasets. The key of row ``i`` of the vectors given to :func:`build_embedding_index` is ``i``;
the caller maps keys to fragment positions.

Kinds (``spec/proposals/indexes.md`` section 8; measured in section 9):

==========================  ====================================================================
kind                        faiss index
==========================  ====================================================================
``clustered``               ``IndexHNSWFlat``: HNSW graph over the float32 vectors
``clustered_quantized``     ``IndexIVFScalarQuantizer``: inverted lists (a k-means coarse
                            quantizer) of 8-bit scalar-quantised residuals (the default: 0.26x
                            the bytes of ``clustered``; at 1M x 384 clustered vectors it keeps
                            recall@10 above 0.95 where one HNSW graph over SQ8 codes stalls
                            near 0.9, and builds several times faster)
``pooled_quantized``        ``IndexIVFPQ``: inverted lists of product-quantised codes (compact;
                            its recall needs the caller's exact re-rank)
==========================  ====================================================================

Each kind has a *structure*, ``hnsw`` (a graph; knob ``ef_search``) or ``ivf`` (inverted
lists; knob ``nprobe``). ``clustered_quantized`` indexes written by header version 1 are HNSW
graphs over SQ8 codes (``IndexHNSWSQ``); they still load and answer, and
``EmbeddingIndexParams(structure="hnsw")`` still builds one.

Metrics: ``cosine`` normalises the vectors at build and the query at search and searches by
inner product; ``dot`` searches by inner product on the raw vectors; ``l2`` by Euclidean
distance. Scores are the index's own (approximate for the quantised kinds): the exact re-rank
from the stored float32 column belongs to the caller, which asks for ``k x refine`` candidates.

Rows that can never be answered (``valid[i]`` false, a NaN or infinite component, the zero
vector under ``cosine``, a vector too large for float32 arithmetic: squared norm above
``float32 max / 4``) are not added to the index at all, so no search returns them.

The serialized form (the output of :func:`build_embedding_index`, which
:meth:`EmbeddingIndex.from_bytes` reads) is self-describing::

    magic      8 bytes   b"LKFVECIX"
    version    u32 LE    2 (1: written before the ``structure`` parameter; still read)
    head_len   u32 LE    length of the header
    header     JSON      _Header: kind, metric, build parameters, count, dim, indexed rows, ...
    body_len   u64 LE    length of the faiss bytes
    body_crc   u32 LE    zlib.crc32 of the faiss bytes
    body       bytes     faiss.serialize_index(...) (empty when no row is indexed)

Every length and the checksum are checked before faiss sees a byte, so a truncated or damaged
blob is a :class:`~lakefmt.errors.FormatError`, never a crash inside faiss.

Threads: a build runs ``threads`` OpenMP threads (default: the cores), never more than
lakefmt's thread budget (:func:`lakefmt._pool.thread_budget`, ``LAKEFMT_MAX_THREADS``); faiss's
process-wide OpenMP setting is restored afterwards. A search runs one query on the caller's
thread.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
import pydantic

from lakefmt._pool import thread_budget
from lakefmt.errors import FormatError, InvalidArgumentError, MissingDependencyError

__all__ = [
    "KINDS",
    "METRICS",
    "EmbeddingIndex",
    "EmbeddingIndexParams",
    "build_embedding_index",
]

#: Similarity measures an index can be built for.
METRICS = ("cosine", "dot", "l2")
#: Index kinds: HNSW32 flat, IVF over SQ8 codes (the default), IVF-PQ.
KINDS = ("clustered", "clustered_quantized", "pooled_quantized")
#: The structures each kind can be built as, its default first.
STRUCTURES = {
    "clustered": ("hnsw",),
    "clustered_quantized": ("ivf", "hnsw"),
    "pooled_quantized": ("ivf",),
}
#: The structure of each kind in header version 1 (before ``structure`` was written).
_LEGACY_STRUCTURE = {"clustered": "hnsw", "clustered_quantized": "hnsw", "pooled_quantized": "ivf"}

_MAGIC = b"LKFVECIX"
_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_PREFIX = struct.Struct("<8sII")  # magic, version, header length
_BODY = struct.Struct("<QI")  # body length, body crc32
#: A header is a few hundred bytes; more is damage, not data.
_MAX_HEADER = 1 << 16
#: Default efSearch of the HNSW kinds (at least k is always used: faiss needs ef >= k).
DEFAULT_EF_SEARCH = 64
#: HNSW defaults: neighbours per node, candidate list while building.
_DEFAULT_M = 32
_DEFAULT_EF_CONSTRUCTION = 40
#: Rows an IVF search scores at least by default (:func:`default_nprobe`).
_SCAN_AT_LEAST = 2048
#: k-means iterations of the IVF coarse quantizer by default.
_DEFAULT_NITER = 10
#: k-means of the IVF kind trains on at most this many points per list (faiss's own default
#: is 256; 32 keeps a 1M-row build in minutes on two cores at no measurable loss of recall).
_TRAIN_POINTS_PER_LIST = 32
#: PQ codebooks train on this many points at most (256 centroids per sub-quantizer).
_PQ_TRAIN_POINTS = 65_536
#: Largest squared norm of a vector the index takes: faiss computes in float32, and squared
#: distances between two vectors reach 4x their squared norms (beyond, k-means and the
#: distances overflow, and faiss may abort the process).
_MAX_SQUARED_NORM = float(np.finfo(np.float32).max) / 4
#: Rows added to an IVF index per call, and checked for validity per step (bounds the
#: temporary copies).
_ADD_BATCH = 65_536

_omp_lock = threading.Lock()


def _faiss() -> ModuleType:
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            "vector indexes need the optional package 'faiss-cpu'; "
            'install it with: pip install "lakefmt[index]"'
        ) from exc
    return faiss


def _whole(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgumentError(f"{name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise InvalidArgumentError(f"{name} must be {span}, got {value}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class EmbeddingIndexParams:
    """How to build one vector index.

    Attributes:
        kind: One of :data:`KINDS`.
        metric: One of :data:`METRICS`.
        structure: ``hnsw`` or ``ivf``, one of the kind's :data:`STRUCTURES`; ``None``: the
            kind's default (``ivf`` for ``clustered_quantized``).
        m: HNSW neighbours per node (``hnsw``), 2 to 256; ``None``: 32.
        ef_construction: HNSW candidate list while building (``hnsw``), >= 1; ``None``: 40.
        nlist: IVF lists (``ivf``); ``None``: about ``4 * sqrt(rows)``. Never more than the
            rows indexed (an index of fewer rows uses one list per row).
        niter: k-means iterations training the IVF lists (``ivf``), >= 1; ``None``: 10.
        pq_m: PQ sub-vectors (``pooled_quantized``); must divide the dimension. ``None``: the
            divisor of the dimension nearest ``dim / 8``.

    Raises:
        InvalidArgumentError: A value of the wrong type or out of range, a structure the kind
            cannot have, or a parameter given for a structure or kind that has no such
            parameter.
    """

    kind: str = "clustered_quantized"
    metric: str = "cosine"
    structure: str | None = None
    m: int | None = None
    ef_construction: int | None = None
    nlist: int | None = None
    niter: int | None = None
    pq_m: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgumentError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        if self.metric not in METRICS:
            raise InvalidArgumentError(f"metric must be one of {METRICS}, got {self.metric!r}")
        allowed = STRUCTURES[self.kind]
        if self.structure is not None and self.structure not in allowed:
            raise InvalidArgumentError(
                f"a {self.kind!r} index is built as one of {allowed}, got {self.structure!r}"
            )
        structure = self.resolved_structure
        own: tuple[str, ...] = {"hnsw": ("m", "ef_construction"), "ivf": ("nlist", "niter")}[
            structure
        ]
        if self.kind == "pooled_quantized":
            own = (*own, "pq_m")
        bounds = {"m": (2, 256), "ef_construction": (1, None), "nlist": (1, None)}
        for name in ("m", "ef_construction", "nlist", "niter", "pq_m"):
            value = getattr(self, name)
            if value is None:
                continue
            if name not in own:
                raise InvalidArgumentError(
                    f"{name} is not a parameter of a {self.kind!r} index built as {structure!r}"
                )
            low, high = bounds.get(name, (1, None))
            _whole(value, name, low, high)

    @property
    def resolved_structure(self) -> str:
        """``structure``, or the kind's default when it is ``None``."""
        return self.structure or STRUCTURES[self.kind][0]

    def to_json(self) -> dict[str, Any]:
        """Return the parameters as a JSON object (what :meth:`from_json` reads)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EmbeddingIndexParams:
        """Read parameters written by :meth:`to_json` (missing members take their defaults).

        Raises:
            FormatError: ``obj`` is not an object, has unknown members, or a bad value.
        """
        if not isinstance(obj, dict):
            raise FormatError(f"embedding index parameters must be a JSON object, got {obj!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise FormatError(f"unknown embedding index parameters {unknown}")
        try:
            return cls(**obj)
        except InvalidArgumentError as exc:
            raise FormatError(f"bad embedding index parameters: {exc}") from exc


class _Header(pydantic.BaseModel):
    """The JSON header of a serialized index (see the module docstring)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True)

    params: dict[str, Any]
    count: int = pydantic.Field(ge=0)  # keys 0..count-1, valid or not
    dim: int = pydantic.Field(ge=1)
    indexed: int = pydantic.Field(ge=0)  # rows in the faiss index (the valid ones)
    id_map: bool  # faiss index wrapped in IndexIDMap (some rows were not indexed)
    faiss_version: str


def default_nlist(rows: int) -> int:
    """IVF lists for ``rows`` indexed rows: about ``4 * sqrt(rows)``, at least 1, at most
    ``rows``."""
    return max(1, min(rows, round(4 * math.sqrt(rows))))


def default_pq_m(dim: int) -> int:
    """PQ sub-vectors for dimension ``dim``: its divisor nearest ``dim / 8`` (the larger on a
    tie), so each sub-vector has about 8 components."""
    divisors = [d for d in range(1, dim + 1) if dim % d == 0]
    return min(divisors, key=lambda d: (abs(d - dim / 8), -d))


def default_nprobe(nlist: int, indexed: int = 0) -> int:
    """IVF lists probed by default: about 2% of them, at least 8, and enough to score about
    :data:`_SCAN_AT_LEAST` of the ``indexed`` rows (a small index is scanned whole, which
    costs less than a millisecond); never more than ``nlist``."""
    small = math.ceil(nlist * _SCAN_AT_LEAST / indexed) if indexed else 0
    return min(nlist, max(8, math.ceil(nlist / 50), small))


def _engine_threads(threads: int | None) -> int:
    cores = os.cpu_count() or 1
    wanted = cores if threads is None else _whole(threads, "threads", 1)
    return min(wanted, thread_budget())


@contextmanager
def _omp_threads(faiss: ModuleType, threads: int) -> Iterator[None]:
    # faiss's OpenMP thread count is process-wide: set it for this build, then put it back
    with _omp_lock:
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(before)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"vectors must be a 2-D array (rows, dim), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"vectors must be of a float or int dtype, got {arr.dtype}")
    if arr.shape[1] < 1:
        raise InvalidArgumentError("vectors must have at least one dimension")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(arr, dtype=np.float32)


def _usable_rows(data: np.ndarray, valid: np.ndarray | None, metric: str) -> np.ndarray:
    """Bool mask of the rows a search may return."""
    n = len(data)
    if valid is None:
        usable = np.ones(n, dtype=bool)
    else:
        mask = np.asarray(valid)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise InvalidArgumentError(
                f"valid must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}"
            )
        usable = mask.copy()
    for start in range(0, n, _ADD_BATCH):
        part = data[start : start + _ADD_BATCH]
        with np.errstate(over="ignore", invalid="ignore"):
            squares = np.einsum("ij,ij->i", part, part)
        ok = squares <= _MAX_SQUARED_NORM  # false for NaN and infinite components too
        if metric == "cosine":
            ok &= squares > 0
        usable[start : start + _ADD_BATCH] &= ok
    return usable


def _normalised(part: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return np.ascontiguousarray(part / norms, dtype=np.float32)


def _new_faiss_index(faiss: ModuleType, params: EmbeddingIndexParams, dim: int) -> Any:
    """An empty faiss index of the kind, structure and metric asked (resolved by
    :func:`_resolved`; trained by the caller)."""
    metric = faiss.METRIC_L2 if params.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if params.resolved_structure == "hnsw":
        assert params.m is not None and params.ef_construction is not None
        if params.kind == "clustered":
            index = faiss.IndexHNSWFlat(dim, params.m, metric)
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, params.m, metric)
        index.hnsw.efConstruction = params.ef_construction
        return index
    assert params.nlist is not None and params.niter is not None
    quantizer = faiss.IndexFlat(dim, metric)
    if params.kind == "clustered_quantized":
        # residuals to the list's centroid: finer codes, and faster to scan than raw vectors
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, params.nlist, faiss.ScalarQuantizer.QT_8bit, metric, True
        )
    else:
        assert params.pq_m is not None
        index = faiss.IndexIVFPQ(quantizer, dim, params.nlist, params.pq_m, 8, metric)
        index.pq.cp.min_points_per_centroid = 1
        index.pq.cp.max_points_per_centroid = _PQ_TRAIN_POINTS // 256
    index.cp.niter = params.niter
    # a small index trains on few points; faiss would warn on stderr for each k-means
    index.cp.min_points_per_centroid = 1
    index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
    return index


def _resolved(params: EmbeddingIndexParams, dim: int, rows: int) -> EmbeddingIndexParams:
    """``params`` with the structure and every parameter of it set to the values to build."""
    structure = params.resolved_structure
    if structure == "hnsw":
        return dataclasses.replace(
            params,
            structure=structure,
            m=_DEFAULT_M if params.m is None else params.m,
            ef_construction=(
                _DEFAULT_EF_CONSTRUCTION
                if params.ef_construction is None
                else params.ef_construction
            ),
        )
    nlist = default_nlist(rows) if params.nlist is None else min(params.nlist, max(rows, 1))
    niter = _DEFAULT_NITER if params.niter is None else params.niter
    resolved = dataclasses.replace(params, structure=structure, nlist=nlist, niter=niter)
    if params.kind != "pooled_quantized":
        return resolved
    pq_m = default_pq_m(dim) if params.pq_m is None else params.pq_m
    if dim % pq_m:
        raise InvalidArgumentError(f"pq_m ({pq_m}) must divide the vectors' dimension ({dim})")
    return dataclasses.replace(resolved, pq_m=pq_m)


def _training_sample(
    data: np.ndarray, rows: np.ndarray, metric: str, want: int, least: int
) -> np.ndarray:
    """Up to ``want`` usable rows (evenly spread), repeated up to ``least`` rows: k-means
    needs at least as many points as centroids, which a tiny index has not."""
    pick = rows if len(rows) <= want else rows[np.linspace(0, len(rows) - 1, want).astype(int)]
    sample = data[pick]
    if metric == "cosine":
        sample = _normalised(sample)
    if len(sample) < least:
        sample = np.tile(sample, (math.ceil(least / len(sample)), 1))
    return np.ascontiguousarray(sample, dtype=np.float32)


def build_embedding_index(
    vectors: np.ndarray,
    valid: np.ndarray | None,
    params: EmbeddingIndexParams,
    *,
    threads: int | None = None,
) -> bytes:
    """Build a vector index over ``vectors`` and return its serialized form.

    Args:
        vectors: ``(rows, dim)`` array of any float or int dtype (converted to float32). The
            key of row ``i`` is ``i``.
        valid: ``None`` (every row) or a bool array of length ``rows``; rows where it is false
            are never returned by a search (null vectors). Rows with a NaN or infinite
            component, vectors too large for float32 arithmetic, and zero vectors under
            ``cosine`` are excluded as well (:attr:`EmbeddingIndex.indexed` counts the rest).
        params: What to build.
        threads: OpenMP threads for the build (default: the machine's cores), capped by
            lakefmt's thread budget.

    Returns:
        Bytes that :meth:`EmbeddingIndex.from_bytes` reads.

    Raises:
        InvalidArgumentError: ``vectors`` is not a 2-D numeric array, ``valid`` has another
            shape or dtype, ``threads`` is not a positive number, or ``pq_m`` does not divide
            the dimension.
        MissingDependencyError: faiss-cpu is not installed.
    """
    if not isinstance(params, EmbeddingIndexParams):
        raise InvalidArgumentError(f"params must be EmbeddingIndexParams, got {params!r}")
    data = _as_matrix(vectors)
    count, dim = data.shape
    usable = _usable_rows(data, valid, params.metric)
    rows = np.flatnonzero(usable)
    params = _resolved(params, dim, len(rows))
    n_threads = _engine_threads(threads)
    faiss = _faiss()
    ivf = params.resolved_structure == "ivf"
    id_map = len(rows) < count and not ivf  # IVF lists store the keys themselves
    body = b""
    if len(rows):
        with _omp_threads(faiss, n_threads):
            index = _new_faiss_index(faiss, params, dim)
            if ivf:
                assert params.nlist is not None
                want = params.nlist * _TRAIN_POINTS_PER_LIST
                if params.kind == "pooled_quantized":
                    want = max(want, _PQ_TRAIN_POINTS)
                least = max(params.nlist, 256 if params.kind == "pooled_quantized" else 1)
                index.train(_training_sample(data, rows, params.metric, want, least))
            elif params.kind == "clustered_quantized":
                index.train(_training_sample(data, rows, params.metric, 1 << 20, 1))
            outer = faiss.IndexIDMap(index) if id_map else index
            # HNSW in one call: faiss inserts a call's points level by level, top first, and
            # batches of 10k rows lost 0.02 of recall@10 at efSearch 16 (60k rows). IVF in
            # batches, which bounds the normalised copy.
            batch = _ADD_BATCH if ivf else max(len(rows), 1)
            for start in range(0, len(rows), batch):
                keys = rows[start : start + batch]
                part = data[keys] if len(rows) < count else data[start : start + batch]
                if params.metric == "cosine":
                    part = _normalised(part)
                if id_map or ivf:
                    outer.add_with_ids(part, keys.astype(np.int64))
                else:
                    outer.add(part)
            body = faiss.serialize_index(outer).tobytes()
    header = _Header(
        params=params.to_json(),
        count=count,
        dim=dim,
        indexed=len(rows),
        id_map=id_map,
        faiss_version=faiss.__version__,
    )
    head = json.dumps(header.model_dump(), separators=(",", ":")).encode()
    return b"".join(
        [
            _PREFIX.pack(_MAGIC, _VERSION, len(head)),
            head,
            _BODY.pack(len(body), zlib.crc32(body)),
            body,
        ]
    )


def _parse(data: bytes) -> tuple[_Header, EmbeddingIndexParams, memoryview]:
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise FormatError(f"not a vector index: {len(view)} bytes is shorter than its header")
    magic, version, head_len = _PREFIX.unpack_from(view)
    if magic != _MAGIC:
        raise FormatError("not a lakefmt vector index (bad magic bytes)")
    if version not in _READABLE_VERSIONS:
        raise FormatError(
            f"vector index format version {version} is not readable "
            f"({', '.join(map(str, _READABLE_VERSIONS))} are)"
        )
    if head_len > _MAX_HEADER or len(view) < _PREFIX.size + head_len + _BODY.size:
        raise FormatError("vector index is truncated or damaged (header length)")
    head = bytes(view[_PREFIX.size : _PREFIX.size + head_len])
    try:
        header = _Header.model_validate(json.loads(head))
    except (ValueError, pydantic.ValidationError) as exc:
        raise FormatError(f"vector index header is damaged: {exc}") from exc
    stored = dict(header.params)
    if version == 1:  # written before structures: each kind had one
        if "structure" in stored:
            raise FormatError("vector index header version 1 cannot name a structure")
        stored["structure"] = _LEGACY_STRUCTURE.get(stored.get("kind", ""), "hnsw")
        if stored["structure"] == "ivf":  # version 1 wrote HNSW defaults for every kind
            stored.pop("m", None)
            stored.pop("ef_construction", None)
            stored["niter"] = _DEFAULT_NITER  # what version 1 trained with
    elif stored.get("structure") is None:
        raise FormatError("vector index header does not name its structure")
    params = EmbeddingIndexParams.from_json(stored)
    at = _PREFIX.size + head_len
    body_len, crc = _BODY.unpack_from(view, at)
    body = view[at + _BODY.size :]
    if len(body) != body_len:
        raise FormatError(
            f"vector index is truncated or damaged: {len(body)} bytes of index, {body_len} expected"
        )
    if zlib.crc32(body) != crc:
        raise FormatError("vector index is damaged (checksum mismatch)")
    if header.indexed > header.count or (header.indexed == 0) != (body_len == 0):
        raise FormatError("vector index header does not match its contents")
    return header, params, body


class EmbeddingIndex:
    """A vector index read back from :func:`build_embedding_index`'s bytes.

    Attributes:
        count: Keys ``0 .. count - 1`` (the rows given to the build, indexed or not).
        dim: The vectors' dimension; a query must have it.
        indexed: Rows in the index (the valid ones); only these are ever returned.
        params: The build parameters, with the structure and its parameters resolved to the
            values used.
        nbytes: Size of the serialized index.
    """

    def __init__(
        self, header: _Header, params: EmbeddingIndexParams, faiss_index: Any, nbytes: int
    ) -> None:
        self.count = header.count
        self.dim = header.dim
        self.indexed = header.indexed
        self.params = params
        self.nbytes = nbytes
        self._index = faiss_index
        self._id_map = header.id_map

    @property
    def structure(self) -> str:
        """``hnsw`` (knob ``ef_search``) or ``ivf`` (knob ``nprobe``)."""
        return self.params.resolved_structure

    def __repr__(self) -> str:
        return (
            f"EmbeddingIndex(kind={self.params.kind!r}, structure={self.structure!r}, "
            f"metric={self.params.metric!r}, "
            f"count={self.count}, indexed={self.indexed}, dim={self.dim}, nbytes={self.nbytes})"
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EmbeddingIndex:
        """Read an index from :func:`build_embedding_index`'s bytes.

        Raises:
            FormatError: ``data`` is not a readable index (truncated, damaged, another format
                version, or a faiss index that does not match its header).
            MissingDependencyError: faiss-cpu is not installed.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgumentError(f"an index is read from bytes, got {type(data).__name__}")
        header, params, body = _parse(bytes(data) if isinstance(data, memoryview) else data)
        faiss = _faiss()
        index = None
        if header.indexed:
            try:
                index = faiss.deserialize_index(np.frombuffer(body, dtype=np.uint8))
            except (RuntimeError, MemoryError) as exc:
                raise FormatError(f"faiss cannot read this vector index: {exc}") from exc
            _check_faiss_index(faiss, index, header, params)
        return cls(header, params, index, len(data))

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> np.ndarray:
        """Return the keys of (about) the ``k`` nearest rows to ``query``, best first.

        Args:
            query: A vector of the index's dimension (shape ``(dim,)`` or ``(1, dim)``).
            k: How many keys at most.
            allowed: ``None`` or a bool mask of length :attr:`count`: only keys where it is
                true may be returned. Passed into the search (faiss ``IDSelectorBitmap``), so
                the graph or lists are walked for allowed rows, not filtered afterwards.
            ef_search: HNSW candidate list (``hnsw`` structure; default 64, at least ``k``).
            nprobe: IVF lists visited (``ivf`` structure; default about 2% of the lists).

        Returns:
            int64 keys, best first by the index's (approximate) score, at most ``k`` of them,
            never a row the build excluded nor one outside ``allowed``. An approximate search
            may return fewer than ``k`` (most often with a selective ``allowed``).

        Raises:
            InvalidArgumentError: The query has another dimension or a NaN/infinite
                component, is zero under ``cosine``, ``k`` is negative, ``allowed`` is not a
                bool mask of length :attr:`count`, or a knob of another kind is given.
        """
        q = np.asarray(query)
        if q.dtype.kind not in "fiu":
            raise InvalidArgumentError(f"query must be numeric, got dtype {q.dtype}")
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.shape != (self.dim,):
            raise InvalidArgumentError(
                f"query must be one vector of dimension {self.dim}, got shape {np.shape(query)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            q = np.ascontiguousarray(q, dtype=np.float32).reshape(1, self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            square = float(np.einsum("ij,ij->", q, q))
        if not square <= _MAX_SQUARED_NORM:
            raise InvalidArgumentError(
                "query has a NaN or infinite component, or is too large to score in float32"
            )
        if self.params.metric == "cosine":
            if square == 0:
                raise InvalidArgumentError("cosine similarity to the zero vector is undefined")
            q = q / np.float32(math.sqrt(square))
        k = _whole(k, "k", 0)
        hnsw = self.structure == "hnsw"
        if hnsw and nprobe is not None:
            raise InvalidArgumentError(
                f"nprobe is a knob of IVF indexes, not of this {self.params.kind!r} HNSW graph"
            )
        if not hnsw and ef_search is not None:
            raise InvalidArgumentError(
                f"ef_search is a knob of HNSW graphs, not of this {self.params.kind!r} IVF index"
            )
        if ef_search is not None:
            ef_search = _whole(ef_search, "ef_search", 1)
        if nprobe is not None:
            nprobe = _whole(nprobe, "nprobe", 1)
        bits = None
        if allowed is not None:
            mask = np.asarray(allowed)
            if mask.dtype != np.bool_ or mask.shape != (self.count,):
                raise InvalidArgumentError(
                    f"allowed must be a bool array of shape ({self.count},), "
                    f"got {mask.dtype} {mask.shape}"
                )
            if not mask.any():
                return np.empty(0, dtype=np.int64)
            bits = np.packbits(mask, bitorder="little")
        k = min(k, self.indexed)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        faiss = _faiss()
        selector = (
            None if bits is None else faiss.IDSelectorBitmap(self.count, faiss.swig_ptr(bits))
        )
        if hnsw:
            ef = max(k, DEFAULT_EF_SEARCH if ef_search is None else ef_search)
            search_params = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            assert self.params.nlist is not None
            probe = default_nprobe(self.params.nlist, self.indexed) if nprobe is None else nprobe
            search_params = faiss.SearchParametersIVF(nprobe=min(probe, self.params.nlist))
        if selector is not None:
            search_params.sel = selector
        _, labels = self._index.search(q, k, params=search_params)
        found = labels[0]
        del bits  # the bitmap had to outlive the search: faiss holds a raw pointer to it
        return found[found >= 0].astype(np.int64, copy=False)


def _check_faiss_index(
    faiss: ModuleType, index: Any, header: _Header, params: EmbeddingIndexParams
) -> None:
    """The faiss index must be what the header says, or searching it could read out of
    bounds (a key past ``count`` in the bitmap) or answer for another metric."""
    inner = faiss.downcast_index(index.index) if header.id_map else index
    if header.id_map and not isinstance(index, faiss.IndexIDMap):
        raise FormatError("vector index header says id-mapped, the faiss index is not")
    expected = {
        ("clustered", "hnsw"): faiss.IndexHNSWFlat,
        ("clustered_quantized", "hnsw"): faiss.IndexHNSWSQ,
        ("clustered_quantized", "ivf"): faiss.IndexIVFScalarQuantizer,
        ("pooled_quantized", "ivf"): faiss.IndexIVFPQ,
    }[(params.kind, params.resolved_structure)]
    metric = faiss.METRIC_L2 if params.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if (
        not isinstance(inner, expected)
        or index.d != header.dim
        or index.ntotal != header.indexed
        or index.metric_type != metric
    ):
        raise FormatError(
            f"vector index body does not match its header ({type(inner).__name__}, "
            f"d={index.d}, ntotal={index.ntotal}; header: {params.kind}, d={header.dim}, "
            f"rows={header.indexed})"
        )
    if params.resolved_structure == "ivf" and inner.nlist != params.nlist:
        raise FormatError("vector index body's lists do not match its header")
    if params.kind == "pooled_quantized" and params.pq_m != inner.pq.M:
        raise FormatError("vector index body's sub-vectors do not match its header")
