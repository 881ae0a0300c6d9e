"""Helpers for the CLI tests: run the real ``lakefmt`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import lakefmt

#: A wide, colourless terminal, so rich tables are not cut to 80 columns.
CLI_ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m lakefmt ARGS`` in a subprocess, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "lakefmt", *args],
        cwd=cwd,
        env=CLI_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_many(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``lakefmt`` commands at once (results in order): start-up dominates."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_cli(*args), commands))


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 0 and no traceback; returns stdout."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1 with one ``error: ...`` line on stderr (no traceback); returns that line."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with click's usage message, no traceback."""
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "Usage:" in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def cli() -> Run:
    """``cli(*args)`` runs ``python -m lakefmt *args``."""
    return run_cli


@pytest.fixture
def sample_ds(tmp_path: Path) -> str:
    """A local dataset: 25 rows in two fragments, commits "first rows" and "more rows"."""
    url = str(tmp_path / "sample")
    ds = lakefmt.create(url, schema={"id": "int64", "name": "text", "score": "float32"})
    ds.append(
        {
            "id": np.arange(20),
            "name": [f"name-{i}" for i in range(20)],
            "score": np.linspace(0, 1, 20, dtype=np.float32),
        }
    )
    ds.commit("first rows")
    ds.append(
        {
            "id": np.arange(20, 25),
            "name": [f"name-{i}" for i in range(20, 25)],
            "score": np.full(5, 0.5, dtype=np.float32),
        }
    )
    ds.commit("more rows")
    del ds
    return url
