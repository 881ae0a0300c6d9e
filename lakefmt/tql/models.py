"""What a query reads: its sources, the columns they show, and score requests on them.

A *source* is a dataset version (a :class:`~lakefmt.format.snapshot.Snapshot`), optionally
restricted to some rows in some order (a view), or a plain Arrow table (the result of an
aggregate query, queried again). Each place a query names a source becomes one relation
(:mod:`lakefmt.tql.relations` builds its SQL), carrying hidden identity columns that map
result rows back to source rows:

* ``__lf_frag``, ``__lf_pos``: fragment index (manifest order) and physical position of the
  row in its fragment, for a whole dataset version;
* ``__lf_vrow``: the row's position in the view or table, for views and tables.

The planner asks relations for computed score columns with :class:`SimilarityRequest` and
:class:`Bm25Request`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import Snapshot
from lakefmt.indexes.text import Bm25Stats
from lakefmt.tql.columns import ColumnKind, classify

#: Hidden columns every relation may carry.
FRAG = "__lf_frag"
POS = "__lf_pos"
VROW = "__lf_vrow"
ROW = "__lf_row"
IDENTITY_DATASET = (FRAG, POS)
IDENTITY_VIEW = (VROW,)


@dataclasses.dataclass(frozen=True)
class Visible:
    """A column a source shows to queries.

    Attributes:
        name: The name queries use.
        kind: How the engine treats it.
        arrow_type: Its Arrow type (extension type for multimodal columns).
        field: The dataset field behind it (``None`` for computed columns of views/tables).
        type: Its lakefmt type object when known (for re-wrapping results).
    """

    name: str
    kind: ColumnKind
    arrow_type: pa.DataType
    field: Field | None = None
    type: Any = None


@dataclasses.dataclass(eq=False)
class DatasetSource:
    """A dataset version, or some of its rows (a view), as a query source.

    Attributes:
        snapshot: The version.
        rows: Global row indices in view order; ``None`` for every live row.
        columns: ``(name, field)`` pairs the view shows; ``None`` for every field by name.
        extra: Computed columns of the view, aligned with ``rows``.
        extra_types: lakefmt types of ``extra`` columns, where known.
        handle: What the dataset layer needs to build result views (opaque here).
        label: How messages name the source.
        bm25_stats: See below.
    """

    snapshot: Snapshot
    rows: np.ndarray | None = None
    columns: list[tuple[str, Field]] | None = None
    extra: pa.Table | None = None
    extra_types: dict[str, Any] = dataclasses.field(default_factory=dict)
    handle: Any = None
    label: str = ""
    bm25_stats: dict[tuple[str, tuple[str, ...]], Any] = dataclasses.field(default_factory=dict)
    """Collection statistics ``BM25_SIMILARITY(column, terms)`` scores with instead of its
    relation's own (a view of index candidates scored as the whole version)."""

    @property
    def identity(self) -> tuple[str, ...]:
        """The hidden identity columns of this source's relations."""
        return IDENTITY_DATASET if self.rows is None else IDENTITY_VIEW

    def visible(self) -> list[Visible]:
        """The columns queries see, in order."""
        snap = self.snapshot
        pairs = self.columns if self.columns is not None else [(f.name, f) for f in snap.fields]
        out = []
        for name, f in pairs:
            t = snap.type_of(f)
            out.append(Visible(name, classify(t.to_json(), t.storage_type), t.arrow_type, f, t))
        if self.extra is not None:
            for name, col in zip(self.extra.column_names, self.extra.columns, strict=True):
                known = self.extra_types.get(name)
                out.append(Visible(name, _kind_of(known, col.type), col.type, None, known))
        return out


@dataclasses.dataclass(eq=False)
class TableSource:
    """An Arrow table (an earlier query's computed result) as a query source.

    Attributes:
        table: The rows.
        types: lakefmt types of columns, where known (re-wrapped in results).
        handle: What the dataset layer needs to build result views (opaque here).
        label: How messages name the source.
        bm25_stats: See below.
    """

    table: pa.Table
    types: dict[str, Any] = dataclasses.field(default_factory=dict)
    handle: Any = None
    label: str = ""

    identity = IDENTITY_VIEW
    rows = None

    def visible(self) -> list[Visible]:
        """The columns queries see, in order."""
        return [
            Visible(
                name, _kind_of(self.types.get(name), col.type), col.type, None, self.types.get(name)
            )
            for name, col in zip(self.table.column_names, self.table.columns, strict=True)
        ]


Source = DatasetSource | TableSource


def _kind_of(t: Any, arrow_type: pa.DataType) -> ColumnKind:
    type_json = t.to_json() if t is not None and hasattr(t, "to_json") else None
    return classify(type_json, arrow_type)


@dataclasses.dataclass
class SimilarityRequest:
    """``COSINE_SIMILARITY``/``DOT`` of a vector column with a constant vector, as a column.

    The relation computes it with one numpy matrix-vector product per data file over the
    vectors it reads into RAM (BLAS on every core, instead of DuckDB's per-row function), and
    with ``sql`` wherever it cannot: rows whose vector was updated, files DuckDB reads itself
    (the vector cache turned off), vectors with null elements (DuckDB's error then stands).

    Attributes:
        column: The visible name of the vector column.
        metric: ``cosine`` or ``dot``.
        vector: The constant vector.
        sql: DuckDB's expression for one value, with :data:`SIMILARITY_COLUMN` standing for
            the column.
        duck_type: The result's DuckDB type (``FLOAT``, or ``DOUBLE`` for double vectors).
        output: The name of the computed column.
    """

    column: str
    metric: str
    vector: np.ndarray
    sql: str
    duck_type: str
    output: str


#: Stands for the vector column in :attr:`SimilarityRequest.sql`.
SIMILARITY_COLUMN = "__lf_simcol"


@dataclasses.dataclass
class Bm25Request:
    """A ``BM25_SIMILARITY(column, 'query')`` computed over a whole relation.

    Attributes:
        column: The text column.
        terms: The query's distinct terms (:func:`lakefmt.indexes.text.query_terms`).
        output: The name of the computed column.
        stats: Collection statistics to score with instead of the relation's own (N, mean
            length, document frequencies), e.g. those of the whole version when the
            relation holds only candidate rows; None: the relation's.
    """

    column: str
    terms: list[str]
    output: str
    stats: Bm25Stats | None = None
