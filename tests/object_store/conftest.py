"""The object-store suite's fixtures; the servers themselves are in ``servers.py``.

``store`` is the one parametrized fixture of the dataset suite: a fresh, empty dataset
location (URL and creds) on ``file``, ``mem``, ``s3``, ``az`` and ``gs``; ``object_store``
the same on the object stores alone.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.object_store.servers import BACKENDS, OBJECT_STORES, Location, make_location


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Location]:
    """A fresh, empty dataset location on each backend (removed afterwards)."""
    location = make_location(str(request.param), request, tmp_path)
    yield location
    from lakefmt.storage import open_storage

    with contextlib.suppress(Exception):
        open_storage(location.url, location.creds).delete_all()


@pytest.fixture(params=OBJECT_STORES)
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Location]:
    """A fresh, empty dataset location on each object store."""
    location = make_location(str(request.param), request, tmp_path)
    yield location
    from lakefmt.storage import open_storage

    with contextlib.suppress(Exception):
        open_storage(location.url, location.creds).delete_all()


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A temporary directory outside pytest's tmp_path (for subprocess scripts)."""
    path = Path(tempfile.mkdtemp(prefix="lakefmt-os-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
