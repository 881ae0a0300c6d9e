"""``lakefmt.scan_polars``: a polars ``LazyFrame`` over one version of a dataset.

Built on polars' IO plugin API (``polars.io.plugins.register_io_source``): polars hands the
scan the columns the query needs, its predicate and a row limit, and the scan streams the
version's batches (deletions, updates, renames and defaults applied by lakefmt's reader),
reading only those columns, filtering each batch and stopping once the limit is reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from lakefmt.dataset import ReadOnlyDataset, open_read_only
from lakefmt.errors import MissingDependencyError

__all__ = ["scan_polars"]

#: Rows per batch when polars gives no hint.
SCAN_BATCH_ROWS = 65_536


def scan_polars(
    url: str,
    *,
    version: str | None = None,
    branch: str | None = None,
    creds: dict[str, Any] | None = None,
) -> Any:
    """A polars ``LazyFrame`` of one version of the dataset at ``url``, with projection,
    predicate and slice pushdown; ``collect()`` equals ``to_polars()`` of that version.

    The version is fixed when the frame is made (the head of ``branch`` then, unless
    ``version`` names one), so later commits never change what it reads. Media columns
    hold their stored bytes, as in ``to_polars()``.

    Raises:
        MissingDependencyError: polars is not installed.
        DatasetNotFoundError, VersionNotFoundError, BranchNotFoundError: as ``open_read_only``.
    """
    try:
        import polars as pl
        from polars.io.plugins import register_io_source
    except ImportError as exc:
        raise MissingDependencyError(
            "scan_polars needs polars: pip install 'lakefmt[polars]'"
        ) from exc
    ds = open_read_only(url, creds=creds, version=version, branch=branch)
    if version is None:  # pin the head it found
        ds = open_read_only(url, creds=creds, version=ds.version, branch=branch)
    names = list(ds.schema)
    storage = pa.schema([(n, ds.schema[n].storage_type) for n in names])
    schema = pl.DataFrame(storage.empty_table()).schema

    def source(
        with_columns: list[str] | None,
        predicate: Any | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[Any]:
        return _batches(pl, ds, names, with_columns, predicate, n_rows, batch_size)

    return register_io_source(
        source,
        schema=schema,
        is_pure=True,
        explain_name="lakefmt",
        explain_detail=f"{ds.url} at {ds.version}",
    )


def _batches(
    pl: Any,
    ds: ReadOnlyDataset,
    names: list[str],
    with_columns: list[str] | None,
    predicate: Any | None,
    n_rows: int | None,
    batch_size: int | None,
) -> Iterator[Any]:
    wanted = set(names if with_columns is None else with_columns)
    if predicate is not None:
        wanted |= set(predicate.meta.root_names())
    columns = [n for n in names if n in wanted]  # in schema order
    left = n_rows
    if left == 0:
        return
    for batch in ds.to_batches(columns, batch_size or SCAN_BATCH_ROWS):
        frame = pl.from_arrow(_plain(batch))
        if predicate is not None:
            frame = frame.filter(predicate)
        if with_columns is not None:
            frame = frame.select(with_columns)
        if left is not None:
            frame = frame.head(left)
            left -= frame.height
        yield frame
        if left == 0:
            return


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with extension columns as their storage (what polars reads)."""
    arrays = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
