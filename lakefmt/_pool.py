"""Every thread pool lakefmt runs, by name, with one thread budget.

lakefmt overlaps I/O and GIL-releasing work (pyarrow, Pillow, fsync, object-store
requests) on a few thread pools. They are all declared in :data:`POOLS`, so the threads
the library may start can be read in one place:

==================  =========================  ===================================================
name                threads                    what runs there
==================  =========================  ===================================================
``types``           ``max(4, min(32, 4*cpu))`` ``types._helpers.parallel_map`` (link fetches)
``decode``          ``max(2, cpu)``            decoding Parquet row groups ahead of a scan
``image``           ``max(1, cpu)``            :func:`lakefmt.codecs.image.decode_images`
``fsync``           8                          the syncs a local commit owes (``storage.local``)
``io``              16                         parallel parts of object-store transfers
``write-behind``    2                          data files of full append buffers
``async``           ``min(32, 4*cpu)``         the ``*_async`` API (``dataset.futures``)
``copy``            16 per call                ``lakefmt.copy`` (a private pool per call)
``torch-prefetch``  1 per iterator             the torch loader's read-ahead (a private pool)
==================  =========================  ===================================================

``cpu`` is :func:`os.cpu_count`. Shared pools are created on first use and re-created in
a forked child (:func:`os.register_at_fork`): a pool inherited through ``fork()`` has no
live threads and would hang its first caller. Private pools (``copy``, ``torch-prefetch``)
belong to the call that made them with :func:`new_pool`, which shuts them down.

**The thread budget.** By default every pool has the size above, so the budget is their
sum (:func:`thread_budget`; 63 threads on a 2-core machine). ``LAKEFMT_MAX_THREADS=N`` in
the environment, or :func:`set_thread_budget`, caps the sum at ``N``: each pool then gets a
share proportional to its size, at least one thread (so ``N`` is at least the number of
pools), and the shares add up to ``N`` (a private pool counts once per kind). The budget is
read when a pool is created; :func:`set_thread_budget` retires the shared pools made so far
(each finishes its queued work and its threads exit once nothing refers to it) so that
later work runs within the new budget.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from lakefmt.errors import InvalidArgumentError

__all__ = [
    "BUDGET_ENV",
    "POOLS",
    "PoolSpec",
    "new_pool",
    "pool_size",
    "set_thread_budget",
    "shared_pool",
    "thread_budget",
]

#: The environment variable that caps the threads of all pools together.
BUDGET_ENV = "LAKEFMT_MAX_THREADS"


def _cpus() -> int:
    return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True, slots=True)
class PoolSpec:
    """One kind of pool.

    Attributes:
        size: Its threads without a budget (called when the pool is made).
        prefix: The threads' name prefix (``threading.current_thread().name``).
        shared: One process-wide pool (:func:`shared_pool`) rather than one per caller
            (:func:`new_pool`).
    """

    size: Callable[[], int]
    prefix: str
    shared: bool = True


#: Every pool of the package (see the module docstring for what runs where).
POOLS: Mapping[str, PoolSpec] = {
    # I/O-bound work (link fetches), so more threads than cores
    "types": PoolSpec(lambda: max(4, min(32, 4 * _cpus())), "lakefmt-types"),
    # pyarrow releases the GIL while decoding: one thread per core
    "decode": PoolSpec(lambda: max(2, _cpus()), "lakefmt-decode"),
    "image": PoolSpec(lambda: max(1, _cpus()), "lakefmt-decode"),
    # fsyncs wait on the disk, not the CPU; 8 keeps a commit's syncs in flight together
    "fsync": PoolSpec(lambda: 8, "lakefmt-fsync"),
    # two transfers of storage.transfer.MAX_CONCURRENCY (8) parts at once
    "io": PoolSpec(lambda: 16, "lakefmt-io"),
    # Dataset.WRITE_BEHIND_DEPTH full buffers written behind the appender
    "write-behind": PoolSpec(lambda: 2, "lakefmt-write"),
    "async": PoolSpec(lambda: min(32, 4 * _cpus()), "lakefmt-async"),
    # latency-bound object copies; a private pool per lakefmt.copy call
    "copy": PoolSpec(lambda: 16, "lakefmt-copy", shared=False),
    # one piece read ahead, in order: exactly one thread per loader iterator
    "torch-prefetch": PoolSpec(lambda: 1, "lakefmt-torch", shared=False),
}

_lock = threading.Lock()
_shared: dict[str, ThreadPoolExecutor] = {}
_budget: int | None = None  # set_thread_budget's value; None: the environment or no cap


def _spec(name: str) -> PoolSpec:
    spec = POOLS.get(name)
    if spec is None:
        raise InvalidArgumentError(f"no thread pool named {name!r}; lakefmt has {sorted(POOLS)}")
    return spec


def _check_budget(threads: object, source: str) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < len(POOLS):
        raise InvalidArgumentError(
            f"{source} must be a whole number of threads of at least {len(POOLS)} (one for "
            f"each of lakefmt's pools: {', '.join(POOLS)}), got {threads!r}"
        )
    return threads


def _requested_budget() -> int | None:
    if _budget is not None:
        return _budget
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return None
    try:
        value: object = int(text)
    except ValueError:
        value = text
    return _check_budget(value, BUDGET_ENV)


def thread_budget() -> int:
    """Return the most threads lakefmt's pools run together.

    That is :func:`set_thread_budget`'s value, else ``LAKEFMT_MAX_THREADS``, else the sum
    of every pool's own size (which follows :func:`os.cpu_count`).

    Raises:
        InvalidArgumentError: ``LAKEFMT_MAX_THREADS`` is not a number of threads of at
            least the number of pools.
    """
    requested = _requested_budget()
    natural = sum(spec.size() for spec in POOLS.values())
    return natural if requested is None else min(requested, natural)


def set_thread_budget(threads: int | None) -> None:
    """Cap the threads of all of lakefmt's pools together (``None``: back to the default).

    The shared pools made so far are retired: work already queued on them finishes, and
    later work runs on new pools sized within the budget.

    Raises:
        InvalidArgumentError: ``threads`` is not an ``int`` of at least ``len(POOLS)``.
    """
    global _budget
    if threads is not None:
        threads = _check_budget(threads, "the thread budget")
    with _lock:
        _budget = threads
        _shared.clear()  # unreferenced executors let their idle threads exit


def _shares(budget: int) -> dict[str, int]:
    """Split ``budget`` over the pools in proportion to their sizes, one thread each at
    least (largest remainders get the threads left over)."""
    sizes = {name: spec.size() for name, spec in POOLS.items()}
    if budget >= sum(sizes.values()):
        return sizes
    spare = budget - len(sizes)
    weights = {name: size - 1 for name, size in sizes.items()}
    total = sum(weights.values())
    exact = {name: spare * weight / total for name, weight in weights.items()}
    shares = {name: 1 + int(value) for name, value in exact.items()}
    left = budget - sum(shares.values())
    for name in sorted(exact, key=lambda n: exact[n] - int(exact[n]), reverse=True)[:left]:
        shares[name] += 1
    return shares


def pool_size(name: str) -> int:
    """Return how many threads pool ``name`` has (or will have) within the budget.

    Raises:
        InvalidArgumentError: No pool has that name, or the budget is invalid.
    """
    _spec(name)
    return _shares(thread_budget())[name]


def shared_pool(name: str) -> ThreadPoolExecutor:
    """Return the process-wide pool ``name``, creating it on first use (and after a fork).

    Raises:
        InvalidArgumentError: No shared pool has that name.
    """
    spec = _spec(name)
    if not spec.shared:
        raise InvalidArgumentError(f"pool {name!r} is private to each caller: use new_pool()")
    with _lock:
        pool = _shared.get(name)
        if pool is None:
            pool = ThreadPoolExecutor(pool_size(name), thread_name_prefix=spec.prefix)
            _shared[name] = pool
        return pool


def new_pool(name: str) -> ThreadPoolExecutor:
    """Return a new pool of kind ``name`` for the caller alone, who shuts it down.

    Raises:
        InvalidArgumentError: No private kind of pool has that name.
    """
    spec = _spec(name)
    if spec.shared:
        raise InvalidArgumentError(f"pool {name!r} is shared: use shared_pool()")
    return ThreadPoolExecutor(pool_size(name), thread_name_prefix=spec.prefix)


def _after_fork_in_child() -> None:
    # the parent's pools have no threads here, and its lock may have been held at the fork
    global _lock
    _lock = threading.Lock()
    _shared.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
