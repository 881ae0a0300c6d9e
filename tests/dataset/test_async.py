"""The async API gives what the sync API gives, and exceptions propagate."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import DatasetNotFoundError, TypeMismatchError


@pytest.fixture
def url() -> str:
    return f"mem://async-{uuid.uuid4().hex}"


def test_futures_match_sync_results(url: str) -> None:
    ds = lakefmt.create_async(url, schema={"x": "int64", "t": "text"}).result()
    ds.append({"x": np.arange(100), "t": [str(i) for i in range(100)]})
    ds.commit()
    reopened = lakefmt.open_async(url).result()
    futures = [reopened["x"].get_async(i) for i in range(100)]
    assert [f.result() for f in futures] == list(range(100))
    assert reopened["t"].get_async(slice(5, 8)).result() == ["5", "6", "7"]
    assert reopened[3].get_async("t").result() == "3"
    reopened["x"].set_async(0, -1).result()
    reopened[1].set_async("t", "one").result()
    assert reopened["x"][0] == -1 and reopened["t"][1] == "one"
    ro = lakefmt.open_read_only_async(url).result()
    assert isinstance(ro, lakefmt.ReadOnlyDataset) and len(ro) == 100


def test_awaitable_in_asyncio(url: str) -> None:
    lakefmt.create(url, schema={"x": "int64"}).append({"x": [1, 2, 3]})

    async def main() -> list[int]:
        ds = await lakefmt.open_async(url)
        values = await asyncio.gather(*(ds["x"].get_async(i) for i in range(3)))
        await ds["x"].set_async(2, 30)
        values.append(await ds[2].get_async("x"))
        return [int(v) for v in values]

    assert asyncio.run(main()) == [1, 2, 3, 30]


def test_exceptions_propagate(url: str) -> None:
    ds = lakefmt.create(url, schema={"x": "int64"})
    ds.append({"x": [1]})
    with pytest.raises(IndexError):
        ds["x"].get_async(5).result()
    with pytest.raises(TypeMismatchError):
        ds["x"].set_async(0, "not a number").result()
    with pytest.raises(DatasetNotFoundError):
        lakefmt.open_async(f"mem://missing-{uuid.uuid4().hex}").result()

    async def awaited() -> None:
        await ds["x"].get_async(9)

    with pytest.raises(IndexError):
        asyncio.run(awaited())
