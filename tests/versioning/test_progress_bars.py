"""Long operations show a progress bar when asked (or on a terminal) and nothing otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lakefmt


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"x": "int64"})
    ds.auto_compact = False
    for i in range(4):
        ds.append({"x": np.arange(i * 10, i * 10 + 10)})
        ds.flush()
    ds.delete(0)
    ds.commit()
    return path


@pytest.mark.parametrize("shown", [True, False])
def test_long_operations_report_progress(
    url: str, tmp_path: Path, shown: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = lakefmt.open(url)
    ds.auto_compact = False
    ds.append({"x": np.arange(1_000_000)}, progress=shown)
    ds.optimize(progress=shown)
    ds.cleanup(0, progress=shown)
    assert ds.verify(progress=shown) == []
    lakefmt.copy(url, str(tmp_path / "copy"), progress=shown)
    err = capsys.readouterr().err
    for label in ("append", "optimize", "cleanup", "verify", "copy"):
        assert (label in err) == shown, (label, err)
    assert len(lakefmt.open_read_only(str(tmp_path / "copy"))) == 1_000_039


def test_no_bar_when_not_a_terminal(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ds = lakefmt.open(url)
    ds.append({"x": np.arange(1_200_000)})  # large, but stderr is not a terminal here
    ds.optimize()
    assert capsys.readouterr().err == ""
