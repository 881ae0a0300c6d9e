"""Vector similarity scores computed with numpy, for the relations that read vectors into RAM.

``COSINE_SIMILARITY``/``DOT`` of a stored vector column with a constant vector is one
matrix-vector product per data file (BLAS on every core) instead of DuckDB's per-row
function; see :class:`~lakefmt.tql.models.SimilarityRequest`. Row norms of cached vector
columns are cached beside them in :data:`lakefmt.tql.cache.VECTORS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.tql.cache import VECTORS
from lakefmt.tql.models import SimilarityRequest

_SCORE_TYPES = {"FLOAT": pa.float32(), "DOUBLE": pa.float64()}


def score_type(similarity: Sequence[tuple[int, SimilarityRequest]], output: str) -> pa.DataType:
    """The Arrow type of the scores of the request named ``output``."""
    return _SCORE_TYPES[next(req.duck_type for _, req in similarity if req.output == output)]


def similarity_scores(
    array: pa.Array, req: SimilarityRequest, norms_key: tuple[Any, ...] | None
) -> pa.Array | None:
    """``req`` over every vector of a fixed-size-list array, with numpy; None if it has
    null elements. Row norms are cached next to the vectors when ``norms_key`` is given."""
    size = array.type.list_size
    values = array.values.slice(array.offset * size, len(array) * size)
    if values.null_count:
        return None
    dtype = np.float64 if req.duck_type == "DOUBLE" else np.float32
    matrix = values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    matrix = matrix.reshape(len(array), size)
    query = req.vector.astype(dtype)
    scores = matrix @ query
    if req.metric == "cosine":  # in place: no temporaries of the matrix's length

        def norms() -> pa.Array:
            return pa.array(np.sqrt(np.einsum("ij,ij->i", matrix, matrix)))

        if norms_key is not None:
            row_norms = VECTORS.get_or_load(
                (*norms_key, "norms", req.duck_type), norms, lambda a: a.nbytes
            )
        else:
            row_norms = norms()
        with np.errstate(divide="ignore", invalid="ignore"):
            scores /= row_norms.to_numpy()
            scores /= dtype(np.linalg.norm(query))
    valid = None if array.null_count == 0 else ~np.asarray(array.is_valid())
    return pa.array(scores.astype(dtype, copy=False), mask=valid)
