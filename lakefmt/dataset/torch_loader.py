"""PyTorch adapter: ``ds.pytorch()`` as a torch ``IterableDataset`` (torch is optional).

Rows are read in chunks (``CHUNK_ROWS`` sorted indices: one ranged read per column group,
media decoded in parallel) and handed out one by one. With ``num_workers`` DataLoader
workers each reads a disjoint set of chunks; the dataset object pickles by URL, so workers
reopen the dataset instead of copying it. With ``shuffle`` the chunk order and the rows
inside a buffer of chunks are permuted anew every epoch (persistent workers included); every
row still comes exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lakefmt.errors import MissingDependencyError

#: Rows read per step; media in a chunk decode in parallel.
CHUNK_ROWS = 256
#: Chunks mixed together when shuffling.
SHUFFLE_CHUNKS = 8


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

    class LakefmtIterableDataset(torch.utils.data.IterableDataset):  # type: ignore[misc]
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


def _iter_rows(
    view: Any,
    columns: Sequence[str] | None,
    worker: int,
    workers: int,
    shuffle: bool,
    rng: np.random.Generator,
) -> Iterator[dict[str, Any]]:
    chunks = _chunks(len(view), worker, workers)
    if shuffle:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    names = list(columns) if columns is not None else list(view.schema)
    group = SHUFFLE_CHUNKS if shuffle else 1
    pending = _prefetch(view, names, chunks)
    buffer: list[dict[str, Any]] = []
    for i, batch in enumerate(pending):
        count = len(batch[names[0]]) if names else 0
        buffer.extend({name: batch[name][k] for name in names} for k in range(count))
        if (i + 1) % group == 0 or i == len(chunks) - 1:
            order = rng.permutation(len(buffer)) if shuffle else range(len(buffer))
            for k in order:
                yield buffer[k]
            buffer = []


def _read_chunk(view: Any, names: list[str], start: int, stop: int) -> dict[str, Any]:
    rows = view[start:stop]
    return next(iter(rows.batches(stop - start, columns=names)))


def _prefetch(
    view: Any, names: list[str], chunks: list[tuple[int, int]]
) -> Iterator[dict[str, Any]]:
    """Read the next chunk on a thread while the current one is consumed."""
    result: dict[int, Any] = {}

    def load(i: int) -> None:
        try:
            result[i] = _read_chunk(view, names, *chunks[i])
        except BaseException as exc:  # re-raised in the consumer
            result[i] = exc

    thread: threading.Thread | None = None
    if chunks:
        thread = threading.Thread(target=load, args=(0,), daemon=True)
        thread.start()
    for i in range(len(chunks)):
        assert thread is not None
        thread.join()
        value = result.pop(i)
        if i + 1 < len(chunks):
            thread = threading.Thread(target=load, args=(i + 1,), daemon=True)
            thread.start()
        if isinstance(value, BaseException):
            raise value
        yield value


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
