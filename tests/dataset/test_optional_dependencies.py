"""Exports to pandas / polars without the package installed say what to install."""

from __future__ import annotations

import sys

import pytest

import lakefmt
from lakefmt.errors import MissingDependencyError


@pytest.fixture
def ds(mem_url: str) -> lakefmt.Dataset:
    ds = lakefmt.create(mem_url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [1, 2], "t": ["a", "b"]})
    return ds


@pytest.mark.parametrize(("module", "export"), [("pandas", "to_pandas"), ("polars", "to_polars")])
def test_export_without_the_package_names_the_extra(
    ds: lakefmt.Dataset, module: str, export: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError, match=rf"pip install 'lakefmt\[{module}\]'"):
        getattr(ds, export)()
    with pytest.raises(ImportError):  # still an ImportError for code that catches that
        getattr(ds.query("SELECT * WHERE id > 1"), export)()


def test_pandas_export_with_decode_also_explains(
    ds: lakefmt.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match="to_pandas"):
        ds.to_pandas(decode=True)
