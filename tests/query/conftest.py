"""Fixtures for query tests (helpers live in ``qhelpers.py`` next to this file)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qhelpers import Built, build_rich

import lakefmt


@pytest.fixture(params=["mem", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh dataset URL in memory and on local disk (the two read paths of the engine)."""
    if request.param == "mem":
        return f"mem://query-{uuid.uuid4().hex}"
    return str(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def rich(url: str) -> Built:
    """The rich dataset on each backend."""
    return build_rich(url)


@pytest.fixture
def rich_mem() -> Built:
    """The rich dataset in memory only (for tests where the backend does not matter)."""
    return build_rich(f"mem://query-{uuid.uuid4().hex}")


@pytest.fixture
def make_mem() -> Callable[..., Any]:
    """Create a fresh in-memory dataset from a dict of columns (flushed)."""

    def make(columns: dict[str, Any], schema: dict[str, Any] | None = None) -> Any:
        url = f"mem://query-{uuid.uuid4().hex}"
        ds = lakefmt.create(url, schema=schema or dict.fromkeys(columns, "text"))
        ds.append(columns)
        ds.flush()
        return ds

    return make
