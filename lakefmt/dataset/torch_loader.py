"""PyTorch adapter: ``ds.pytorch()`` as a torch ``IterableDataset`` (torch is optional).

Rows are read in chunks (``CHUNK_ROWS`` sorted indices: one ranged read per column group,
media decoded in parallel) and handed out one by one, the next piece being read and decoded
on a background thread meanwhile. With ``num_workers`` DataLoader workers each reads a
disjoint set of chunks; the dataset object pickles by URL, so workers reopen the dataset
instead of copying it. With ``shuffle`` the chunk order and the rows inside a window of
``SHUFFLE_CHUNKS`` chunks are permuted anew every epoch (persistent workers included); rows
are decoded in the order they are handed out, so the window costs row indices, not decoded
images. Every row still comes exactly once per epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lakefmt._pool import new_pool
from lakefmt.errors import MissingDependencyError

#: Rows read per step; media in a chunk decode in parallel.
CHUNK_ROWS = 256
#: Chunks mixed together when shuffling.
SHUFFLE_CHUNKS = 8
#: Rows of a worker's first piece: a smaller first read gets the first batch out sooner.
FIRST_PIECE_ROWS = 64


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "ds.pytorch() needs PyTorch: pip install 'lakefmt[torch]'"
        ) from exc
    return torch


def make_torch_dataset(
    view: Any,
    *,
    transform: Callable[[dict[str, Any]], Any] | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    columns: Sequence[str] | None = None,
    seed: int = 0,
) -> Any:
    """Build the torch dataset for a lakefmt view (see ``DatasetView.pytorch``)."""
    torch = _torch()
    iterable_dataset: Any = torch.utils.data.IterableDataset  # torch is untyped here

    class LakefmtIterableDataset(iterable_dataset):
        """Rows (or batches) of a lakefmt dataset for a torch ``DataLoader``."""

        def __init__(self) -> None:
            super().__init__()
            self.view = view
            self.transform = transform
            self.batch_size = batch_size
            self.shuffle = shuffle
            self.columns = list(columns) if columns is not None else None
            self.seed = seed
            self.epoch = 0

        def __len__(self) -> int:
            n = len(self.view)
            return n if self.batch_size is None else -(-n // self.batch_size)

        def set_epoch(self, epoch: int) -> None:
            """Choose the shuffling of the next pass (use with ``shuffle=True``)."""
            self.epoch = epoch

        def __iter__(self) -> Iterator[Any]:
            info = torch.utils.data.get_worker_info()
            worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
            # Workers get a fresh seed from the DataLoader every epoch, unless they are
            # persistent: then (as in-process) the epoch count of this copy varies the order.
            # Each worker shuffles only its own chunks.
            entropy = [self.seed, self.epoch] + ([info.seed] if info is not None else [])
            rows = _iter_rows(
                self.view,
                self.columns,
                worker,
                workers,
                self.shuffle,
                np.random.default_rng(entropy),
            )
            if self.shuffle:
                self.epoch += 1
            if self.batch_size is None:
                for row in rows:
                    yield self.transform(row) if self.transform else row
                return
            for batch in _batched(rows, self.batch_size):
                yield self.transform(batch) if self.transform else batch

        def __reduce__(self) -> tuple[Any, ...]:
            return (
                make_torch_dataset,
                (self.view,),
                {
                    "transform": self.transform,
                    "batch_size": self.batch_size,
                    "shuffle": self.shuffle,
                    "columns": self.columns,
                    "seed": self.seed,
                    "epoch": self.epoch,
                },
            )

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)

    return LakefmtIterableDataset()


def _chunks(total: int, worker: int, workers: int) -> list[tuple[int, int]]:
    starts = range(0, total, CHUNK_ROWS)
    return [(s, min(s + CHUNK_ROWS, total)) for s in starts][worker::workers]


def _pieces(
    chunks: list[tuple[int, int]], shuffle: bool, rng: np.random.Generator
) -> list[slice | np.ndarray]:
    """The row positions to read and decode together, in the order rows are handed out.

    Without ``shuffle`` a piece is a chunk. With it, the chunks come in a random order and
    the rows of every ``SHUFFLE_CHUNKS`` consecutive chunks are permuted together, then cut
    into pieces of ``CHUNK_ROWS``: only the piece being handed out and the next one are ever
    decoded, so memory holds two pieces of decoded media, not a whole shuffle window.
    """
    pieces: list[slice | np.ndarray] = []
    if not shuffle:
        pieces = [slice(start, stop) for start, stop in chunks]
    else:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        for g in range(0, len(chunks), SHUFFLE_CHUNKS):
            window = np.concatenate(
                [
                    np.arange(start, stop, dtype=np.int64)
                    for start, stop in chunks[g : g + SHUFFLE_CHUNKS]
                ]
            )
            window = window[rng.permutation(len(window))]
            pieces.extend(window[i : i + CHUNK_ROWS] for i in range(0, len(window), CHUNK_ROWS))
    if pieces and _piece_len(pieces[0]) > FIRST_PIECE_ROWS:
        first = pieces[0]
        if isinstance(first, slice):
            cut = first.start + FIRST_PIECE_ROWS
            pieces[:1] = [slice(first.start, cut), slice(cut, first.stop)]
        else:
            pieces[:1] = [first[:FIRST_PIECE_ROWS], first[FIRST_PIECE_ROWS:]]
    return pieces


def _piece_len(piece: slice | np.ndarray) -> int:
    return piece.stop - piece.start if isinstance(piece, slice) else len(piece)


def _iter_rows(
    view: Any,
    columns: Sequence[str] | None,
    worker: int,
    workers: int,
    shuffle: bool,
    rng: np.random.Generator,
) -> Iterator[dict[str, Any]]:
    names = list(columns) if columns is not None else list(view.schema)
    if not names:
        return
    pieces = _pieces(_chunks(len(view), worker, workers), shuffle, rng)
    for batch in _prefetch(view, names, pieces):
        for k in range(len(batch[names[0]])):
            yield {name: batch[name][k] for name in names}


def _read_piece(view: Any, names: list[str], piece: slice | np.ndarray) -> dict[str, Any]:
    """Read and decode the rows at ``piece`` (in that order) as one batch."""
    rows = view[piece]
    with contextlib.closing(rows.batches(len(rows), columns=names)) as batches:
        return next(iter(batches))


def _prefetch(
    view: Any, names: list[str], pieces: list[slice | np.ndarray]
) -> Iterator[dict[str, Any]]:
    """Read and decode the next piece on a background thread while this one is consumed."""
    if not pieces:
        return
    pool = new_pool("torch-prefetch")  # one thread: pieces arrive in order
    try:
        pending = pool.submit(_read_piece, view, names, pieces[0])
        for i in range(len(pieces)):
            batch = pending.result()
            if i + 1 < len(pieces):
                pending = pool.submit(_read_piece, view, names, pieces[i + 1])
            yield batch
    finally:
        # an abandoned iterator must not wait for the piece being read
        pool.shutdown(wait=False, cancel_futures=True)


def _batched(rows: Iterator[dict[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield _stack(batch)
            batch = []
    if batch:
        yield _stack(batch)


def _stack(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        first = values[0]
        if isinstance(first, (np.ndarray, np.generic)) and all(
            getattr(v, "shape", None) == getattr(first, "shape", None) for v in values
        ):
            out[name] = np.stack(values)
        else:
            out[name] = values
    return out
