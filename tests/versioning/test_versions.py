"""Commits, time travel, tags, branches, merge, optimize and cleanup."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import (
    BranchExistsError,
    BranchNotFoundError,
    InvalidNameError,
    MergeConflictError,
    ReadOnlyError,
    TagExistsError,
    TagNotFoundError,
    VersionNotFoundError,
)


def _rows(ds: lakefmt.ReadOnlyDataset) -> list[tuple[int, str]]:
    return list(zip(ds["id"][:].tolist(), ds["t"][:], strict=True))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return str(tmp_path / "ds")


def test_time_travel_to_every_commit_and_tag(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    snapshots: dict[str, list[tuple[int, str]]] = {ds.version: []}
    ds.append({"id": np.arange(20), "t": [f"r{i}" for i in range(20)]})
    snapshots[ds.commit("append")] = _rows(ds)
    ds["t"][3] = "updated"
    snapshots[ds.commit("update")] = _rows(ds)
    ds.delete([0, 7])
    snapshots[ds.commit("delete")] = _rows(ds)
    ds.tag("before-schema", message="tagged")
    ds.add_column("extra", "int32", default_value=4)
    ds.rename_column("t", "text")
    ds.rename_column("text", "t")
    snapshots[ds.commit("schema")] = _rows(ds)
    for i in range(3):
        ds.append({"id": [100 + i], "t": ["late"], "extra": [i]})
        ds.flush()
    snapshots[ds.commit("more")] = _rows(ds)
    ds.optimize()
    snapshots[ds.version] = _rows(ds)
    ds.cleanup(0)
    assert [v.id for v in ds.history] == list(snapshots)
    for version, rows in snapshots.items():
        old = lakefmt.open_read_only(url, version=version)
        assert _rows(old) == rows, version
        assert ds.history[version].open().version == version
    tagged = lakefmt.open_read_only(url, version="before-schema")
    assert "extra" not in tagged.schema
    assert _rows(tagged) == list(snapshots.values())[3]
    assert ds.tags["before-schema"].open().version == tagged.version
    assert ds.history[-1].message == "optimize"


def test_history_and_refresh(url: str) -> None:
    a = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    b = lakefmt.open(url)
    a.append({"id": [1], "t": ["x"]})
    v = a.commit("one")
    assert len(b) == 0
    b.refresh()
    assert len(b) == 1 and b.version == v
    assert [h.message for h in b.history] == [None, "one"]
    with pytest.raises(VersionNotFoundError):
        b.history["v999"]
    with pytest.raises(VersionNotFoundError):
        lakefmt.open(url, version="v999")
    with pytest.raises(VersionNotFoundError):
        lakefmt.open(url, version="no-such-tag")
    assert isinstance(b.history[-1].timestamp, datetime.datetime)


def test_version_handles_are_read_only(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [1], "t": ["x"]})
    v = ds.commit()
    old = lakefmt.open(url, version=v)
    with pytest.raises(ReadOnlyError):
        old.append({"id": [2], "t": ["y"]})
    with pytest.raises(ReadOnlyError):
        old["id"][0] = 5
    with pytest.raises(ReadOnlyError):
        old.tag("x")


def test_tags(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [1], "t": ["x"]})
    v1 = ds.commit("one")
    tag = ds.tag("first", message="the first")
    assert (tag.name, tag.version, tag.message) == ("first", v1, "the first")
    ds.append({"id": [2], "t": ["y"]})
    ds.commit("two")
    ds.tag("by-id", version=v1)
    assert ds.tags.names() == ["by-id", "first"]
    assert len(ds.tags["by-id"].open()) == 1
    with pytest.raises(TagExistsError):
        ds.tag("first")
    for bad in ["", "a//b", "../x", "0123456789abcdef", "has space", "-x", "x@y"]:
        with pytest.raises(InvalidNameError):
            ds.tag(bad)
    ds.tags["first"].delete()
    assert ds.tags.names() == ["by-id"]
    with pytest.raises(TagNotFoundError):
        ds.tags["first"]


def test_branches_are_isolated_and_share_files(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": np.arange(5), "t": ["m"] * 5})
    ds.commit("base")
    files_before = set(os.listdir(Path(url, "data")))
    branch = ds.branch("dev")
    assert set(os.listdir(Path(url, "data"))) == files_before  # nothing copied
    dev = lakefmt.open(url, branch="dev")
    assert dev.current_branch.name == "dev" and _rows(dev) == _rows(ds)
    dev.append({"id": [99], "t": ["d"]})
    dev["t"][0] = "changed on dev"
    dev.commit("dev work")
    assert len(ds) == 5 and ds["t"][0] == "m"
    assert len(lakefmt.open(url)) == 5
    assert len(branch.open()) == 6
    assert ds.branches.names() == ["main", "dev"]
    assert dev.version != ds.version and dev.history[-1].branch == "dev"
    assert lakefmt.open_read_only(url, version=dev.version)["t"][0] == "changed on dev"
    with pytest.raises(BranchExistsError):
        ds.branch("dev")
    with pytest.raises(BranchNotFoundError):
        lakefmt.open(url, branch="nope")
    ds.branches["dev"].delete()
    assert ds.branches.names() == ["main"]
    with pytest.raises(BranchNotFoundError):
        lakefmt.open(url, branch="dev")


def test_merge_brings_appends_deletes_updates_and_columns(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": np.arange(10), "t": [str(i) for i in range(10)]})
    ds.commit("base")
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.append({"id": [100, 101], "t": ["x", "y"]})
    dev["t"][0] = "dev0"
    dev.delete(9)
    dev.add_column("score", "float32", default_value=1.5)
    dev["score"][1] = 2.5
    dev.commit("dev work")
    ds["t"][5] = "main5"
    ds.append({"id": [200], "t": ["m"]})
    ds.commit("main work")
    version = ds.merge("dev")
    assert version == ds.version and ds.history[-1].message == "merge dev"
    expected_ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, 200, 100, 101]
    assert ds["id"][:].tolist() == expected_ids
    assert ds["t"][:] == ["dev0", "1", "2", "3", "4", "main5", "6", "7", "8", "m", "x", "y"]
    assert ds["score"][:].tolist() == [1.5, 2.5] + [1.5] * 10
    # A second merge brings only what is new, including changes to rows merged before.
    dev.append({"id": [102], "t": ["z"]})
    dev["t"][10] = "y2"  # the row with id 101
    dev.commit("more")
    ds.merge("dev")
    assert ds["id"][:].tolist() == [*expected_ids, 102]
    assert ds["t"][11] == "y2"
    assert ds.merge("dev") is None  # nothing new


def test_merge_conflict_changes_nothing_and_sides_can_be_chosen(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": np.arange(4), "t": ["a", "b", "c", "d"]})
    ds.commit("base")
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev["t"][1] = "dev"
    dev["t"][2] = "same"
    dev.commit("dev")
    ds["t"][1] = "main"
    ds["t"][2] = "same"  # same value on both sides: no conflict
    ds.commit("main")
    before = ds.version
    with pytest.raises(MergeConflictError) as info:
        ds.merge("dev")
    assert info.value.rows == [1] and info.value.columns == ["t"]
    assert ds.version == before and lakefmt.open(url).version == before
    ds.merge("dev", resolve="ours")
    assert ds["t"][:] == ["a", "main", "same", "d"]
    dev["t"][3] = "dev3"
    dev["t"][1] = "dev again"
    dev.commit("dev 2")
    ds.merge("dev", resolve="theirs")
    assert ds["t"][:] == ["a", "dev again", "same", "dev3"]


def test_merge_schema_conflict(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.commit()
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.add_column("x", "int32")
    dev.commit()
    ds.add_column("x", "text")
    ds.commit()
    with pytest.raises(MergeConflictError, match="column 'x'"):
        ds.merge("dev")
    assert "x" in ds.schema and ds.schema["x"] == lakefmt.types.Text()


def test_optimize_keeps_rows_and_order(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.auto_compact = False
    for i in range(12):
        ds.append({"id": [i * 2, i * 2 + 1], "t": ["a", "b"]})
        ds.flush()
    ds["t"][3] = "u"
    ds.delete([0, 10])
    before = ds.to_arrow()
    assert len(ds._manifest.fragments) == 12
    ds.optimize()
    assert len(ds._manifest.fragments) == 1
    assert ds.to_arrow().equals(before)
    assert lakefmt.open_read_only(url).to_arrow().equals(before)


def test_automatic_compaction(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    for i in range(80):
        ds.append({"id": [i]})
        ds.flush()
    assert len(ds._manifest.fragments) < 40
    assert ds["id"][:].tolist() == list(range(80))
    off = lakefmt.open(url)
    off.auto_compact = False
    start = len(off._manifest.fragments)
    for i in range(40):
        off.append({"id": [i]})
        off.flush()
    assert len(off._manifest.fragments) == start + 40


def test_cleanup_keeps_what_versions_need(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.auto_compact = False
    ds.append({"id": [1], "t": ["a"]})
    v1 = ds.commit("one")
    ds.append({"id": [2], "t": ["b"]})
    ds.flush()  # a flush-only version: may be expired
    ds["t"][0] = "A"
    ds.flush()
    ds.tag("tagged")
    ds.delete(0)
    v2 = ds.commit("two")
    ds.optimize()
    orphan = Path(url, "data", "orphan.parquet")
    orphan.write_bytes(b"left by a crashed writer")
    report = ds.cleanup(datetime.timedelta(days=1))  # everything is young: nothing goes
    assert report.files == [] and report.manifests == [] and orphan.exists()
    dry = ds.cleanup(0, dry_run=True)
    assert "data/orphan.parquet" in dry.files and orphan.exists()
    report = ds.cleanup(0)
    assert not orphan.exists() and report.bytes > 0
    assert lakefmt.open_read_only(url, version=v1)["t"][:] == ["a"]
    assert lakefmt.open_read_only(url, version="tagged")["t"][:] == ["A", "b"]
    assert lakefmt.open_read_only(url, version=v2)["t"][:] == ["b"]
    assert lakefmt.open_read_only(url)["t"][:] == ["b"]
    with pytest.raises(ValueError):
        ds.cleanup(-1)


def test_copy_keeps_history_tags_and_branches(tmp_path: Path) -> None:
    src = f"mem://copy-src-{tmp_path.name}"
    ds = lakefmt.create(src, schema={"id": "int64", "t": "text"})
    ds.append({"id": [1, 2], "t": ["a", "b"]})
    v1 = ds.commit("one")
    ds.tag("t1")
    ds.branch("dev")
    ds.delete(0)
    ds.commit("two")
    dst = str(tmp_path / "copy")
    lakefmt.copy(src, dst)
    copied = lakefmt.open(dst)
    assert [v.id for v in copied.history] == [v.id for v in ds.history]
    assert copied.tags.names() == ["t1"] and copied.branches.names() == ["main", "dev"]
    assert lakefmt.open_read_only(dst, version=v1)["id"][:].tolist() == [1, 2]
    assert copied["id"][:].tolist() == [2]
    back = f"mem://copy-back-{tmp_path.name}"
    lakefmt.copy(dst, back)
    assert lakefmt.open_read_only(back).to_arrow().equals(copied.to_arrow())
