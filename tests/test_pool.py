"""lakefmt._pool: named, lazily made, fork-safe thread pools within one thread budget."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakefmt import _pool
from lakefmt.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def default_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(_pool.BUDGET_ENV, raising=False)
    yield
    _pool.set_thread_budget(None)


def _thread_name() -> str:
    return threading.current_thread().name


def test_every_pool_of_the_package_comes_from_the_module() -> None:
    root = Path(_pool.__file__).parent
    makers = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "ThreadPoolExecutor(" in path.read_text()
    ]
    assert makers == ["_pool.py"]


def test_named_pools_are_shared_lazily_and_name_their_threads() -> None:
    pool = _pool.shared_pool("types")
    assert _pool.shared_pool("types") is pool
    assert pool.submit(_thread_name).result().startswith("lakefmt-types")
    assert _pool.shared_pool("io").submit(_thread_name).result().startswith("lakefmt-io")
    assert _pool.shared_pool("io") is not pool


def test_sizes_without_a_budget_are_each_pools_own() -> None:
    cpus = os.cpu_count() or 1
    assert _pool.pool_size("decode") == max(2, cpus)
    assert _pool.pool_size("image") == max(1, cpus)
    assert _pool.pool_size("types") == max(4, min(32, 4 * cpus))
    assert _pool.pool_size("async") == min(32, 4 * cpus)
    assert _pool.pool_size("fsync") == 8
    assert _pool.pool_size("io") == 16
    assert _pool.pool_size("write-behind") == 2
    assert _pool.pool_size("copy") == 16
    assert _pool.pool_size("torch-prefetch") == 1
    assert _pool.thread_budget() == sum(_pool.pool_size(name) for name in _pool.POOLS)
    assert _pool.shared_pool("fsync")._max_workers == 8


@pytest.mark.parametrize("budget", [len(_pool.POOLS), 12, 20, 40])
def test_budget_caps_the_sum_and_keeps_one_thread_each(budget: int) -> None:
    _pool.set_thread_budget(budget)
    sizes = {name: _pool.pool_size(name) for name in _pool.POOLS}
    assert sum(sizes.values()) == min(budget, sum(spec.size() for spec in _pool.POOLS.values()))
    assert all(1 <= sizes[name] <= spec.size() for name, spec in _pool.POOLS.items())
    assert sizes["torch-prefetch"] == 1
    assert _pool.shared_pool("io")._max_workers == sizes["io"]


def test_setting_a_budget_retires_the_pools_made_before() -> None:
    before = _pool.shared_pool("types")
    _pool.set_thread_budget(len(_pool.POOLS))
    after = _pool.shared_pool("types")
    assert after is not before and after._max_workers == 1
    assert before.submit(_thread_name).result()  # work already holding it still runs


def test_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_pool.BUDGET_ENV, "9")
    assert _pool.thread_budget() == 9
    assert _pool.set_thread_budget(30) is None and _pool.thread_budget() == 30  # the call wins
    _pool.set_thread_budget(None)
    monkeypatch.setenv(_pool.BUDGET_ENV, "two")
    with pytest.raises(InvalidArgumentError, match="LAKEFMT_MAX_THREADS"):
        _pool.pool_size("io")
    monkeypatch.setenv(_pool.BUDGET_ENV, "3")
    with pytest.raises(InvalidArgumentError, match="at least 9"):
        _pool.thread_budget()


@pytest.mark.parametrize("bad", [0, 3, -1, 2.5, True, "16"])
def test_bad_budgets_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="thread budget"):
        _pool.set_thread_budget(bad)  # type: ignore[arg-type]


def test_unknown_and_misused_names_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="no thread pool named 'nope'"):
        _pool.shared_pool("nope")
    with pytest.raises(InvalidArgumentError, match="new_pool"):
        _pool.shared_pool("copy")
    with pytest.raises(InvalidArgumentError, match="shared_pool"):
        _pool.new_pool("io")


def test_private_pools_are_new_each_time() -> None:
    with _pool.new_pool("copy") as one, _pool.new_pool("copy") as two:
        assert one is not two
        assert one.submit(_thread_name).result().startswith("lakefmt-copy")


def _use_pools_in_child() -> list[str]:
    # every shared pool, as the parent used them: the child must get live threads
    return [
        _pool.shared_pool(n).submit(_thread_name).result(timeout=30)
        for n in _pool.POOLS
        if _pool.POOLS[n].shared
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_pool_used_before_fork_works_in_the_child() -> None:
    used = [_pool.shared_pool(n) for n, spec in _pool.POOLS.items() if spec.shared]
    for pool in used:
        pool.submit(_thread_name).result()
    with multiprocessing.get_context("fork").Pool(1) as workers:
        names = workers.apply(_use_pools_in_child)
    assert len(names) == len(used) and all(name.startswith("lakefmt-") for name in names)
    assert [_pool.shared_pool(n) for n, spec in _pool.POOLS.items() if spec.shared] == used


def test_fork_while_a_pool_is_being_made_does_not_hang_the_child(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, threading
        from lakefmt import _pool
        _pool.shared_pool("types").submit(int).result()
        with _pool._lock:  # another thread holds the lock at the fork
            pid = os.fork()
            if pid == 0:
                ok = _pool.shared_pool("types").submit(lambda: 7).result(timeout=20) == 7
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        raise SystemExit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
