"""The dataset-level protocol steps (lakefmt.format.protocol) and version statistics."""

from __future__ import annotations

import uuid

import pytest

import lakefmt
from lakefmt.errors import DatasetExistsError, DatasetNotFoundError, ReadOnlyError
from lakefmt.format import layout, protocol
from lakefmt.format.stats import version_stats
from lakefmt.storage import open_storage
from lakefmt.types import resolve_type


def _url() -> str:
    return f"mem://protocol-{uuid.uuid4().hex}"


def test_copy_order_writes_data_then_manifests_then_refs_and_the_format_file_last() -> None:
    paths = [
        "_refs/tags/v1.json",
        "tree/0123456789abcdef/_versions/00000000000000000001.json",
        layout.FORMAT_FILE,
        "_versions/00000000000000000000.json",
        "_tmp/half-written",
        "data/b.parquet",
        "_deletions/1-x.parquet",
        "_versions/_latest",
        "_refs/branches/dev.json",
        "data/a.parquet",
    ]
    order = protocol.copy_order(paths)
    assert order.groups == [
        ["_deletions/1-x.parquet", "data/a.parquet", "data/b.parquet"],
        [
            "_versions/00000000000000000000.json",
            "_versions/_latest",
            "tree/0123456789abcdef/_versions/00000000000000000001.json",
        ],
        ["_refs/branches/dev.json", "_refs/tags/v1.json"],
    ]
    assert order.last == layout.FORMAT_FILE
    assert order.num_files == 8
    assert protocol.copy_order([layout.FORMAT_FILE]).groups == []


def test_create_open_and_delete() -> None:
    storage = open_storage(_url())
    assert not protocol.dataset_exists(storage)
    with pytest.raises(DatasetNotFoundError):
        protocol.open_head(storage)
    first = protocol.create_dataset(storage, [("id", resolve_type("int64"))])
    assert protocol.dataset_exists(storage)
    assert (first.version, first.branch, first.operation) == (0, layout.MAIN_BRANCH, "create")
    assert [(f.id, f.name, f.arrow_type) for f in first.fields] == [(0, "id", "int64")]
    assert protocol.open_head(storage) == first
    assert protocol.open_version(storage, first.version_id) == first
    with pytest.raises(DatasetExistsError):
        protocol.create_dataset(storage, [])
    protocol.delete_dataset(storage)
    assert not protocol.dataset_exists(storage)
    with pytest.raises(DatasetNotFoundError):
        protocol.delete_dataset(storage)


def test_stats_of_a_version() -> None:
    ds = lakefmt.create(_url(), schema={"id": "int64"})
    assert ds.stats.fragments == 0 and ds.stats.data_bytes == 0
    ds.append({"id": list(range(10))})
    ds.append({"id": [0]})
    assert ds.stats.fragments == 0  # not flushed yet: the version has no fragment
    ds.flush()
    ds.delete([0, 1])
    stats = ds.stats
    assert stats == version_stats(ds._manifest)
    assert stats.fragments == 1
    assert stats.deleted_rows == 2
    assert stats.data_bytes == sum(d.size for f in ds._manifest.fragments for d in f.files)
    assert 0 < stats.live_bytes < stats.data_bytes
    assert lakefmt.open_read_only(ds.url).stats == stats


def test_read_only_handles_refuse_every_write_by_name() -> None:
    url = _url()
    lakefmt.create(url, schema={"id": "int64"}).commit("first")
    ro = lakefmt.open_read_only(url)
    for name in (
        "append",
        "add_column",
        "remove_column",
        "rename_column",
        "delete",
        "flush",
        "commit",
        "rollback",
        "tag",
        "branch",
        "optimize",
        "cleanup",
        "merge",
    ):
        method = getattr(lakefmt.ReadOnlyDataset, name)
        assert method is not getattr(lakefmt.Dataset, name), name
        assert "ReadOnlyError" in (method.__doc__ or ""), name
    with pytest.raises(ReadOnlyError, match="is open read-only"):
        ro.rollback()
    with pytest.raises(ReadOnlyError, match=r"use lakefmt\.open\(\)"):
        ro.cleanup(0)
