"""What survives failures: rejected appends leave no trace, flushed rows survive the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import (
    ColumnMissingValueError,
    ColumnNotFoundError,
    LakefmtError,
    TypeMismatchError,
    UnevenColumnsError,
)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relative path -> content."""
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            out[str(full.relative_to(root))] = full.read_bytes()
    return out


def _dirs(root: Path) -> set[str]:
    return {str(Path(d).relative_to(root)) for d, _, _ in os.walk(root)}


@pytest.fixture
def existing(tmp_path: Path) -> tuple[str, Path]:
    """A file:// dataset with 5 committed rows and 2 flushed ones, in two fragments."""
    root = tmp_path / "ds"
    url = "file://" + str(root)
    ds = lakefmt.create(url, schema={"id": "int64", "name": "text", "score": "float32"})
    ds.append({"id": np.arange(5), "name": [f"n{i}" for i in range(5)], "score": [0.5] * 5})
    ds.commit("five")
    ds.append([{"id": 5, "name": "n5", "score": 1.0}, {"id": 6, "name": None, "score": None}])
    ds.flush()
    return url, root


_GOOD = {"id": [100, 101], "name": ["good0", "good1"], "score": [2.0, 3.0]}

_BAD: dict[str, tuple[Any, type[LakefmtError]]] = {
    "type_error_mid_batch": (
        {"id": [10, 11, 12, 13], "name": ["a", "b", 3, "d"], "score": [1.0] * 4},
        TypeMismatchError,
    ),
    "overflow_mid_rows": (
        [{"id": 10, "name": "a", "score": 1.0}, {"id": 2**70, "name": "b", "score": 1.0}],
        TypeMismatchError,
    ),
    "type_error_last_column": (
        {"id": [10, 11], "name": ["a", "b"], "score": [1.0, "x"]},
        TypeMismatchError,
    ),
    "unknown_column": (
        {"id": [10], "name": ["a"], "score": [1.0], "extra": [1]},
        ColumnNotFoundError,
    ),
    "unknown_column_in_a_row": (
        [{"id": 10, "name": "a", "score": 1.0}, {"id": 11, "name": "b", "score": 1.0, "x": 1}],
        ColumnNotFoundError,
    ),
    "uneven_columns": (
        {"id": [10, 11, 12], "name": ["a", "b"], "score": [1.0, 2.0, 3.0]},
        UnevenColumnsError,
    ),
    "missing_column": ({"id": [10], "name": ["a"]}, ColumnMissingValueError),
    "missing_value_in_a_row": (
        [{"id": 10, "name": "a", "score": 1.0}, {"id": 11, "name": "b"}],
        ColumnMissingValueError,
    ),
}


@pytest.mark.parametrize("kind", list(_BAD))
def test_failed_append_leaves_no_trace(existing: tuple[str, Path], kind: str) -> None:
    url, root = existing
    data, error = _BAD[kind]
    ds = lakefmt.open(url)
    version = ds.version
    before = _snapshot(root)
    dirs_before = _dirs(root)

    with pytest.raises(error):
        ds.append(data)
    assert len(ds) == 7
    assert _snapshot(root) == before

    ds.flush()  # nothing of the failed append is buffered, so nothing is written
    assert ds.version == version
    assert _snapshot(root) == before
    assert _dirs(root) == dirs_before

    ds.append(_GOOD)
    ds.flush()
    again = lakefmt.open_read_only(url)
    assert again["id"][:].tolist() == [0, 1, 2, 3, 4, 5, 6, 100, 101]
    assert again["name"][:] == ["n0", "n1", "n2", "n3", "n4", "n5", None, "good0", "good1"]
    assert list(again["score"][:]) == [0.5] * 5 + [1.0, None, 2.0, 3.0]


def test_failed_append_between_good_ones(existing: tuple[str, Path]) -> None:
    url, root = existing
    ds = lakefmt.open(url)
    ds.append({"id": [7], "name": ["n7"], "score": [7.0]})  # buffered
    before = _snapshot(root)
    for data, error in _BAD.values():
        with pytest.raises(error):
            ds.append(data)
    assert _snapshot(root) == before
    assert len(ds) == 8
    ds.append({"id": [8], "name": ["n8"], "score": [8.0]})
    ds.commit("good rows only")
    again = lakefmt.open(url)
    assert again["id"][:].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert again["name"][-2:] == ["n7", "n8"]


def test_failed_schema_change_and_update_leave_no_trace(existing: tuple[str, Path]) -> None:
    url, root = existing
    ds = lakefmt.open(url)
    before = _snapshot(root)
    with pytest.raises(TypeMismatchError):
        ds.add_column("small", "int8", default_value=1000)
    with pytest.raises(lakefmt.errors.ColumnExistsError):
        ds.add_column("id", "int8")
    with pytest.raises(ColumnNotFoundError):
        ds.rename_column("nope", "other")
    with pytest.raises(TypeMismatchError):
        ds["id"][0] = "not a number"
    with pytest.raises(UnevenColumnsError):
        ds["id"][0:3] = [1, 2]
    with pytest.raises(IndexError):
        ds.delete(100)
    ds.flush()
    assert _snapshot(root) == before
    assert list(lakefmt.open(url).schema) == ["id", "name", "score"]


# -- surviving the process ---------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import lakefmt

    url, mode = sys.argv[1], sys.argv[2]
    ds = lakefmt.open(url)
    ds.append({"id": [10, 11, 12], "name": ["f10", "f11", "f12"], "score": [1.0, 1.5, 2.0]})
    if mode in ("flush_exit", "flush_kill", "flush_then_kill_buffered"):
        ds.flush()
    if mode == "flush_then_kill_buffered":
        ds.append({"id": [13, 14], "name": ["lost", "lost"], "score": [0.0, 0.0]})
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    if mode == "flush_exit":
        os._exit(0)  # no atexit handlers, no buffers flushed by Python
    if mode in ("flush_kill", "kill_buffered", "flush_then_kill_buffered"):
        os.kill(os.getpid(), signal.SIGKILL)
    # mode "normal_exit": leave with rows still buffered
    """
)


def _run_writer(url: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WRITER, url, mode],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_rows(url: str, ids: list[int]) -> lakefmt.Dataset:
    ds = lakefmt.open(url)  # opens fine, whatever happened to the writer
    assert ds["id"][:].tolist() == ids
    assert len(ds) == len(ids)
    return ds


_BASE_IDS = [0, 1, 2, 3, 4, 5, 6]


def test_flushed_rows_survive_os_exit(existing: tuple[str, Path]) -> None:
    url, _ = existing
    result = _run_writer(url, "flush_exit")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ready"
    ds = _check_rows(url, [*_BASE_IDS, 10, 11, 12])
    assert ds["name"][-3:] == ["f10", "f11", "f12"]
    assert [v.message for v in ds.history][-1] == "five"  # flushed, never committed


def test_flushed_rows_survive_sigkill(existing: tuple[str, Path]) -> None:
    url, _ = existing
    result = _run_writer(url, "flush_kill")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.strip() == "ready"
    _check_rows(url, [*_BASE_IDS, 10, 11, 12])


def test_buffered_rows_flushed_at_normal_exit(existing: tuple[str, Path]) -> None:
    url, _ = existing
    result = _run_writer(url, "normal_exit")
    assert result.returncode == 0, result.stderr
    ds = _check_rows(url, [*_BASE_IDS, 10, 11, 12])
    assert list(ds["score"][-3:]) == [1.0, 1.5, 2.0]


def test_sigkill_loses_only_unflushed_rows(existing: tuple[str, Path]) -> None:
    url, _ = existing
    result = _run_writer(url, "flush_then_kill_buffered")
    assert result.returncode == -signal.SIGKILL, result.stderr
    ds = _check_rows(url, [*_BASE_IDS, 10, 11, 12])
    assert "lost" not in ds["name"][:]
    # the dataset stays fully usable
    ds.append({"id": [20], "name": ["after"], "score": [0.0]})
    ds.commit("after the crash")
    _check_rows(url, [*_BASE_IDS, 10, 11, 12, 20])


def test_sigkill_before_any_flush(existing: tuple[str, Path]) -> None:
    url, root = existing
    before = {k: v for k, v in _snapshot(root).items() if not k.startswith("_versions/_latest")}
    result = _run_writer(url, "kill_buffered")
    assert result.returncode == -signal.SIGKILL, result.stderr
    _check_rows(url, _BASE_IDS)
    after = {k: v for k, v in _snapshot(root).items() if not k.startswith("_versions/_latest")}
    assert after == before
