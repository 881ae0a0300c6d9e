"""Shared fixtures for the lakefmt test suite.

``dataset_url`` yields a fresh, unused dataset URL on each backend listed in ``_BACKENDS``.
Another backend (S3, Azure...) is added by putting one more factory in ``_BACKENDS``: a
callable taking the pytest ``request`` and ``tmp_path`` and returning a URL (or raising
``pytest.skip`` when the backend is unavailable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# the storage servers (moto, Azurite, fake-gcs-server), shared by tests/storage and
# tests/object_store: one of each per session
pytest_plugins = ("tests.object_store.servers",)

# The default profile, which CI runs: derandomized, so a run's outcome depends on the code
# alone and a red CI is reproducible; "dev" and "model-long" explore new examples each run
# (that is how the model tests find defects: run them before a release).
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
# tests/versioning/test_model.py's long local run (its docstring has the command)
settings.register_profile(
    "model-long",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _mem_url(request: Any, tmp_path: Path) -> str:
    return f"mem://test-{uuid.uuid4().hex}"


def _file_url(request: Any, tmp_path: Path) -> str:
    return str(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")


def _file_scheme_url(request: Any, tmp_path: Path) -> str:
    return "file://" + str(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")


def _tmp_url(request: Any, tmp_path: Path) -> str:
    return f"tmp://test-{uuid.uuid4().hex}"


#: backend name -> factory(request, tmp_path) -> fresh URL
_BACKENDS: dict[str, Callable[[Any, Path], str]] = {
    "mem": _mem_url,
    "file": _file_url,
    "file_url": _file_scheme_url,
    "tmp": _tmp_url,
}

#: The backends that live on this machine's disk (URL maps to a directory).
LOCAL_DISK_BACKENDS = ("file", "file_url", "tmp")


@pytest.fixture(params=list(_BACKENDS))
def storage_backend(request: pytest.FixtureRequest) -> str:
    """The name (a key of ``_BACKENDS``) of the storage backend a test runs on."""
    return str(request.param)


@pytest.fixture
def dataset_url(storage_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh URL where no dataset exists yet, on each backend of ``_BACKENDS``."""
    return _BACKENDS[storage_backend](request, tmp_path)


@pytest.fixture
def mem_url() -> str:
    """A fresh ``mem://`` URL (for tests where the backend does not matter)."""
    return _mem_url(None, Path("."))


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    """A fresh ``file://`` URL under ``tmp_path``."""
    return _file_scheme_url(None, tmp_path)


@pytest.fixture
def local_path(tmp_path: Path) -> str:
    """A fresh plain directory path under ``tmp_path`` (no dataset there yet)."""
    return _file_url(None, tmp_path)
