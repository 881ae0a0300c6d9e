"""What a query returns: :class:`QueryResult`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from lakefmt.tql.models import Source
from lakefmt.tql.translate import OutputColumn


@dataclasses.dataclass
class QueryResult:
    """What a query returned.

    Attributes:
        columns: The result's columns in order. For row results, ``lazy`` ones are not in
            ``table``: read them from ``source`` at ``rows``.
        table: Values of the non-lazy columns (DuckDB's Arrow output, no extension types).
        source: The source the rows refer to (row results), else None.
        rows: Row results: global row indices (a whole dataset) or positions in the source
            view or table. None for computed tables.
        sql: The DuckDB SQL that ran.
    """

    columns: list[OutputColumn]
    table: pa.Table
    source: Source | None
    rows: np.ndarray | None
    sql: str
