"""ds.pytorch(): every row exactly once per epoch, with shuffle and with worker processes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import lakefmt

torch = pytest.importorskip(
    "torch",
    reason="torch is not installed (optional, not in [dev]): the README's set-up section "
    "shows the CPU install that runs these tests",
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("torch") / "ds")
    ds = lakefmt.create(path, schema={"x": "int64", "v": "float32", "t": "text"})
    for start in range(0, 1000, 250):  # several fragments
        ds.append(
            {
                "x": np.arange(start, start + 250),
                "v": np.ones(250, dtype=np.float32),
                "t": [f"r{i}" for i in range(start, start + 250)],
            }
        )
        ds.flush()
    ds.delete(0)
    ds.commit()
    return path


def _epoch(loader: torch.utils.data.DataLoader) -> list[int]:
    return torch.cat([batch["x"] for batch in loader]).tolist()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_row_once_per_epoch(url: str, workers: int, shuffle: bool) -> None:
    ds = lakefmt.open_read_only(url)
    loader = torch.utils.data.DataLoader(
        ds.pytorch(shuffle=shuffle, columns=["x", "v"]), batch_size=64, num_workers=workers
    )
    first, second = _epoch(loader), _epoch(loader)
    assert sorted(first) == list(range(1, 1000)) == sorted(second)
    if shuffle:
        assert first != sorted(first) and first != second
    elif workers == 0:
        assert first == list(range(1, 1000))


def test_transform_and_batches(url: str) -> None:
    ds = lakefmt.open_read_only(url)
    rows = list(ds.pytorch(transform=lambda r: (r["x"] * 2, r["t"])))
    assert rows[0] == (2, "r1") and len(rows) == 999
    batches = list(ds.pytorch(batch_size=100, columns=["x"]))
    assert len(batches) == 10 and batches[0]["x"].shape == (100,)
    assert np.concatenate([b["x"] for b in batches]).tolist() == list(range(1, 1000))


def test_pickles_by_reference(url: str, tmp_path: Path) -> None:
    tds = lakefmt.open_read_only(url).pytorch(columns=["x"])
    blob = pickle.dumps(tds)
    assert len(blob) < 5000  # a URL, not the data
    assert [r["x"] for r in pickle.loads(blob)][:3] == [1, 2, 3]


def test_persistent_workers_shuffle_anew_every_epoch(url: str) -> None:
    ds = lakefmt.open_read_only(url)
    loader = torch.utils.data.DataLoader(
        ds.pytorch(shuffle=True, columns=["x"]),
        batch_size=64,
        num_workers=2,
        persistent_workers=True,
    )
    first, second = _epoch(loader), _epoch(loader)
    assert sorted(first) == list(range(1, 1000)) == sorted(second)
    assert first != second


@pytest.mark.parametrize("workers", [0, 2])
def test_subview_every_row_once(url: str, workers: int) -> None:
    view = lakefmt.open_read_only(url)[list(range(998, 0, -3))]  # out of order, with gaps
    loader = torch.utils.data.DataLoader(
        view.pytorch(shuffle=True, columns=["x"]), batch_size=50, num_workers=workers
    )
    assert sorted(_epoch(loader)) == list(range(3, 1000, 3))  # x = row index + 1


def test_shuffle_decodes_one_piece_at_a_time(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakefmt.dataset import torch_loader

    sizes: list[int] = []
    read_piece = torch_loader._read_piece

    def recording(view: object, names: list[str], piece: object) -> dict[str, object]:
        batch = read_piece(view, names, piece)
        sizes.append(len(batch[names[0]]))
        return batch

    monkeypatch.setattr(torch_loader, "_read_piece", recording)
    rows = [r["x"] for r in lakefmt.open_read_only(url).pytorch(shuffle=True, columns=["x"])]
    assert sorted(rows) == list(range(1, 1000)) and rows != sorted(rows)
    # a shuffle window spans several chunks, but only a chunk's worth is decoded at once
    assert sum(sizes) == 999 and max(sizes) <= torch_loader.CHUNK_ROWS
