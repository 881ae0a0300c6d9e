"""Filling a column from the others, fragment by fragment (``Dataset.fill_column``).

Each fragment whose rows still read the column's default gets its values computed from the
columns it names, in batches, and written as a new column group of that fragment: no other
column is rewritten. Each filled fragment is flushed as its own version, so an interrupted
backfill keeps what it wrote, and calling it again computes only the fragments left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lakefmt.errors import InvalidArgumentError
from lakefmt.format.manifest import Field
from lakefmt.format.snapshot import Snapshot

__all__ = ["Fill", "computed_values", "unfilled_fragments"]

#: What computes a column: a table of some rows' source columns in, one value per row out
#: (a list, a numpy array or an Arrow array).
Fill = Callable[[pa.Table], Any]


def unfilled_fragments(snap: Snapshot, field: Field) -> list[int]:
    """Indices of the fragments with live rows where no data or update file holds ``field``
    (their rows read its default)."""
    out = []
    for k, fragment in enumerate(snap.manifest.fragments):
        if not fragment.live_rows:
            continue
        held = any(field.id in f.field_ids for f in fragment.files) or any(
            u.field_id == field.id for u in fragment.updates
        )
        if not held:
            out.append(k)
    return out


def fragment_rows(snap: Snapshot, k: int) -> np.ndarray:
    """Global row indices of fragment ``k``'s live rows."""
    fragment = snap.manifest.fragments[k]
    positions = snap.live_positions(fragment)
    return snap.global_rows(np.full(len(positions), k, dtype=np.int64), positions)


def computed_values(
    snap: Snapshot,
    rows: np.ndarray,
    sources: Sequence[Field],
    fill: Fill,
    batch_size: int,
) -> Iterator[tuple[np.ndarray, Any]]:
    """``(rows, values)`` per batch: ``fill`` of the source columns of ``batch_size`` rows.

    Raises:
        InvalidArgumentError: ``fill`` returned another number of values than rows.
    """
    schema = snap.arrow_schema(list(sources))
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        arrays = snap.take(list(sources), part)
        table = pa.Table.from_arrays([arrays[f.id] for f in sources], schema=schema)
        values = fill(table)
        count = len(values) if hasattr(values, "__len__") else None
        if count != len(part):
            raise InvalidArgumentError(
                f"fill returned {count if count is not None else 'no sized'} values for "
                f"{len(part)} rows: it must return one value per row of the table it gets"
            )
        yield part, values
