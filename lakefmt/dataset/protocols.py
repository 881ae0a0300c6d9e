"""The interfaces views read and write through: :class:`RowReader` (a version's rows),
:class:`WritableRows` (the dataset that takes writes) and :class:`RowSource` (what a view
is a view of). Datasets implement them; views and columns only use them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import Arrays
from lakefmt.types import Type

if TYPE_CHECKING:
    from lakefmt.dataset.view import DatasetView


class RowReader(Protocol):
    """Reads rows by field: one version (:class:`~lakefmt.format.snapshot.Snapshot`) or a
    query result (:class:`~lakefmt.dataset.query_view.ResultSnapshot`)."""

    @property
    def fields(self) -> list[Field]:
        """The columns, in order."""
        ...

    def field(self, name: str) -> Field:
        """The column called ``name`` (raises ``ColumnNotFoundError``)."""
        ...

    def type_of(self, field: Field) -> Type:
        """The lakefmt type of a column."""
        ...

    def arrow_schema(self, fields: Sequence[Field] | None = None) -> pa.Schema:
        """The Arrow schema (extension types included) of some or all columns."""
        ...

    def take(self, fields: Sequence[Field], indices: np.ndarray) -> Arrays:
        """Values of ``fields`` at row ``indices`` (any order, repeats allowed)."""
        ...

    def read_range(self, fields: Sequence[Field], start: int, stop: int) -> Arrays:
        """Values of ``fields`` for rows ``[start, stop)``."""
        ...

    def iter_batches(
        self, fields: Sequence[Field], batch_size: int, *, drop_last: bool = False
    ) -> Iterator[Arrays]:
        """Every row in order, in batches of ``batch_size``."""
        ...


class WritableRows(Protocol):
    """What writes through a view (``view["col"][i] = v``, metadata) need from its dataset."""

    def _update_cells(self, column: str, indices: Any, value: Any, *, single: bool) -> None: ...

    def _set_metadata(self, values: dict[str, Any], removed: list[str]) -> None: ...

    def _set_column_metadata(self, column: str, metadata: dict[str, Any]) -> None: ...

    def _create_index(self, column: str, index_type: Any) -> None: ...

    def _drop_index(self, column: str, index_type: Any) -> None: ...


class RowSource(Protocol):
    """What a view needs from the dataset handle or query result its rows come from.

    ``rows`` below are the view's row indices into the source (None: all of them).
    """

    def __len__(self) -> int: ...

    def _snapshot(self) -> RowReader:
        """The current version, for schema lookups (never flushes)."""
        ...

    def _data(self) -> RowReader:
        """The current version with pending writes flushed, for reading rows."""
        ...

    def _link_creds(self) -> dict[str, Any] | None:
        """Credentials for ``Link`` columns."""
        ...

    def _writable(self) -> WritableRows:
        """The dataset that accepts writes (raises ``ReadOnlyError`` if there is none)."""
        ...

    def _query(self, rows: np.ndarray | None, query: str) -> DatasetView:
        """Run TQL with these rows as the implicit source."""
        ...

    def _explain(self, rows: np.ndarray | None, query: str) -> str:
        """The translated SQL and DuckDB's plan of TQL on these rows."""
        ...
