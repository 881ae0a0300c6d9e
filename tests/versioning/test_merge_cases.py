"""Merge regression cases of issue 14 (one test per defect) and merge x schema x defaults x
deletes combinations (spec/format.md sections 12.3-12.5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt.errors import FormatError, MergeConflictError
from lakefmt.format import layout
from lakefmt.format.manifest import dump_manifest
from lakefmt.format.versions import read_latest
from lakefmt.storage import open_storage


@pytest.fixture
def url(tmp_path: Path) -> str:
    return str(tmp_path / "ds")


def _dev(url: str, ds: lakefmt.Dataset, name: str = "dev") -> lakefmt.Dataset:
    ds.branch(name)
    return lakefmt.open(url, branch=name)


def _rows(ds: lakefmt.ReadOnlyDataset) -> list[dict[str, object]]:
    return ds.to_arrow().to_pylist()


# -- defect 1: ids the source allocated after the fork ---------------------------------------------
def test_defect1_dropped_column_id_is_not_given_to_another_column(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [1, 2]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("tmp", "int32")
    dev.append({"id": [3, 4], "tmp": [70, 80]})
    dev.remove_column("tmp")
    dev.commit()
    ds.add_column("score", "int32", default_value=0)
    ds.commit()
    ds.merge("dev")
    assert ds["score"][:].tolist() == [0, 0, 0, 0]
    assert ds["id"][:].tolist() == [1, 2, 3, 4]
    ds.append({"id": [5], "score": [9]})  # the merged schema is usable
    assert ds["score"][:].tolist() == [0, 0, 0, 0, 9]


def test_defect1_dropped_column_of_another_type(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("blob", "bytes")
    dev.append({"id": [1], "blob": [b"\x01\x02\x03"]})
    dev.remove_column("blob")
    dev.commit()
    ds.add_column("small", "int8", default_value=-1)
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"id": 1, "small": -1}]


def test_defect1_columns_both_sides_added_get_their_own_data(url: str) -> None:
    """Both sides allocate the same field id and fragment id after the fork."""
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [0]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("d", "text", default_value="dd")
    dev.append({"id": [1], "d": ["dev-row"]})
    dev.commit()
    ds.add_column("m", "float32", default_value=0.5)
    ds.append({"id": [2], "m": [2.5]})
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [
        {"id": 0, "m": 0.5, "d": "dd"},
        {"id": 2, "m": 2.5, "d": "dd"},
        {"id": 1, "m": 0.5, "d": "dev-row"},
    ]


def test_defect1_reader_refuses_a_column_stored_with_another_type(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "b": "bytes"})
    ds.append({"id": [1], "b": [b"\xff\x00"]})
    ds.commit()
    storage = open_storage(url)
    head = read_latest(storage, "main")
    fields = [
        f.model_copy(update={"type": {"name": "int8"}, "arrow_type": "int8"})
        if f.name == "b"
        else f
        for f in head.fields
    ]
    damaged = head.model_copy(update={"fields": fields})
    storage.write(layout.manifest_path("main", head.version), dump_manifest(damaged))
    reopened = lakefmt.open_read_only(url)
    assert reopened["id"][:].tolist() == [1]  # other columns of the file still read
    with pytest.raises(FormatError, match=r"column 'b'.*binary.*int8"):
        reopened["b"][:]
    with pytest.raises(FormatError, match="column 'b'"):
        reopened.to_arrow()


# -- defect 2: forked at a flush version --------------------------------------------------------
def test_defect2_branch_forked_at_a_flush_version_does_not_revert_the_parent(url: str) -> None:
    ds = lakefmt.create(url, schema={"a": "int64", "s": "text"})
    ds.append({"a": [1, 2], "s": ["x", "y"]})
    ds.commit()
    ds.rename_column("a", "b")
    ds["s"][0] = "changed"
    ds.flush()
    ds.branch("dev")
    before = ds.version
    assert ds.merge("dev") is None
    assert ds.version == before
    assert _rows(ds) == [{"b": 1, "s": "changed"}, {"b": 2, "s": "y"}]
    # the branch's own commit merges only what it changed
    dev = lakefmt.open(url, branch="dev")
    dev["s"][1] = "dev"
    dev.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"b": 1, "s": "changed"}, {"b": 2, "s": "dev"}]


def test_defect2_parent_not_committed_since_the_fork_merges_nothing(url: str) -> None:
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit()
    ds.append({"a": [2]})
    ds.flush()
    dev = _dev(url, ds)
    dev.append({"a": [3]})
    dev.commit()
    assert dev.merge("main") is None
    assert dev["a"][:].tolist() == [1, 2, 3]


# -- defect 3: name clashes --------------------------------------------------------------------
def _two_columns(url: str) -> tuple[lakefmt.Dataset, lakefmt.Dataset]:
    ds = lakefmt.create(url, schema={"a": "int64", "b": "int64"})
    ds.append({"a": [1], "b": [2]})
    ds.commit()
    return ds, _dev(url, ds)


def _assert_conflict_changes_nothing(ds: lakefmt.Dataset, *names: str) -> None:
    before, schema = ds.version, list(ds.schema)
    with pytest.raises(MergeConflictError) as info:
        ds.merge("dev")
    for name in names:
        assert name in str(info.value)
    assert ds.version == before and list(ds.schema) == schema


def test_defect3_both_sides_rename_different_columns_to_one_name(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.rename_column("a", "z")
    dev.commit()
    ds.rename_column("b", "z")
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'a'", "'b'", "'z'")
    for resolve in ("ours", "theirs"):  # not a choice between two values of one thing
        with pytest.raises(MergeConflictError):
            ds.merge("dev", resolve=resolve)


def test_defect3_source_renames_to_a_name_the_target_added(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.rename_column("a", "z")
    dev.commit()
    ds.add_column("z", "text")
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'a'", "'z'")
    ds.append({"a": [5], "b": [6], "z": ["ok"]})  # the target is still writable


def test_defect3_source_adds_a_name_the_target_renamed_to(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.add_column("z", "int32")
    dev.commit()
    ds.rename_column("a", "z")
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'a'", "'z'")


def test_defect3_source_renames_away_and_reuses_a_name(url: str) -> None:
    """A name freed by a rename on the source may be taken by another column there."""
    ds, dev = _two_columns(url)
    dev.rename_column("b", "c")
    dev.rename_column("a", "b")
    dev.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"b": 1, "c": 2}]


def test_defect3_target_renamed_a_column_the_source_moved_a_name_onto(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.rename_column("b", "c")
    dev.rename_column("a", "b")
    dev.commit()
    ds.rename_column("b", "w")  # rename/rename of the same column: a choice of name
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'w'", "'c'")
    ds.merge("dev", resolve="ours")
    assert _rows(ds) == [{"b": 1, "w": 2}]


def test_defect3_rename_rename_of_one_column_resolved_by_theirs(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.rename_column("a", "x")
    dev.commit()
    ds.rename_column("a", "y")
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'x'", "'y'")
    ds.merge("dev", resolve="theirs")
    assert _rows(ds) == [{"x": 1, "b": 2}]


def test_defect3_drop_and_add_of_one_name(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.remove_column("b")
    dev.add_column("b", "text", default_value="new")
    dev.append({"a": [3], "b": ["dev"]})
    dev.commit()
    ds["b"][0] = 20  # an update of the old column: dropped with it
    ds.commit()
    ds.merge("dev")
    assert ds.schema["b"] == lakefmt.types.Text()
    assert _rows(ds) == [{"a": 1, "b": "new"}, {"a": 3, "b": "dev"}]


def test_defect3_both_drop_and_add_one_name(url: str) -> None:
    ds, dev = _two_columns(url)
    dev.remove_column("b")
    dev.add_column("b", "text")
    dev.commit()
    ds.remove_column("b")
    ds.add_column("b", "float32")
    ds.commit()
    _assert_conflict_changes_nothing(ds, "'b'")


# -- defect 11: nothing committed since the fork --------------------------------------------------
def test_defect11_merge_of_an_unchanged_branch_keeps_flushed_updates(url: str) -> None:
    ds = lakefmt.create(url, schema={"label": "text"})
    ds.append({"label": ["a", "b"]})
    ds.commit()
    ds["label"][1] = "B-fixed"
    ds.flush()
    ds.branch("dev")
    assert ds.merge("dev") is None
    assert ds["label"][:] == ["a", "B-fixed"]


def test_defect11_merge_of_an_unchanged_branch_after_flushed_appends(url: str) -> None:
    ds = lakefmt.create(url, schema={"label": "text"})
    ds.append({"label": ["a"]})
    ds.commit()
    ds.append({"label": ["b"]})
    ds.flush()
    ds.branch("dev")
    ds.append({"label": ["c"]})
    ds.flush()
    assert ds.merge("dev") is None
    assert ds["label"][:] == ["a", "b", "c"]


def test_defect11_second_merge_with_no_new_commit_is_a_no_op(url: str) -> None:
    ds = lakefmt.create(url, schema={"label": "text"})
    ds.append({"label": ["a"]})
    ds.commit()
    dev = _dev(url, ds)
    dev.append({"label": ["d"]})
    dev.commit()
    dev.append({"label": ["uncommitted"]})
    dev.flush()  # flush versions after the last commit are not merged
    ds.merge("dev")
    ds["label"][1] = "changed"
    ds.flush()
    assert ds.merge("dev") is None
    assert ds["label"][:] == ["a", "changed"]


# -- defect 12: deletions never conflict ---------------------------------------------------------
def test_defect12_source_updates_then_deletes_a_row_the_target_updated(url: str) -> None:
    ds = lakefmt.create(url, schema={"t": "text"})
    ds.append({"t": ["a", "b"]})
    ds.commit()
    dev = _dev(url, ds)
    dev["t"][0] = "dev"
    dev.delete(0)
    dev.commit()
    ds["t"][0] = "main"
    ds.commit()
    ds.merge("dev")
    assert ds["t"][:] == ["b"]


def test_defect12_target_deleted_a_row_the_source_updated(url: str) -> None:
    ds = lakefmt.create(url, schema={"t": "text"})
    ds.append({"t": ["a", "b", "c"]})
    ds.commit()
    dev = _dev(url, ds)
    dev["t"][0] = "dev0"
    dev["t"][2] = "dev2"
    dev.commit()
    ds["t"][0] = "main"
    ds.delete(0)
    ds.commit()
    ds.merge("dev")
    assert ds["t"][:] == ["b", "dev2"]


# -- combinations --------------------------------------------------------------------------------
def test_source_column_with_default_reads_it_on_target_appended_rows(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [0]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("score", "float32", default_value=1.5)
    dev["score"][0] = 3.0
    dev.commit()
    ds.append({"id": [1, 2]})
    ds.commit()
    ds.merge("dev")
    assert ds["score"][:].tolist() == [3.0, 1.5, 1.5]


def test_source_rename_and_target_update_of_one_column(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [0, 1], "t": ["a", "b"]})
    ds.commit()
    dev = _dev(url, ds)
    dev.rename_column("t", "text")
    dev["text"][1] = "dev"
    dev.commit()
    ds["t"][0] = "main"
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"id": 0, "text": "main"}, {"id": 1, "text": "dev"}]


def test_source_drops_a_column_the_target_updated(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [0], "t": ["a"]})
    ds.commit()
    dev = _dev(url, ds)
    dev.remove_column("t")
    dev.commit()
    ds["t"][0] = "main"
    ds.append({"id": [1], "t": ["b"]})
    ds.commit()
    ds.merge("dev")  # drops win, as deletions do
    assert _rows(ds) == [{"id": 0}, {"id": 1}]


def test_target_dropped_a_column_the_source_updated_and_appended(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [0], "t": ["a"]})
    ds.commit()
    dev = _dev(url, ds)
    dev["t"][0] = "dev"
    dev.append({"id": [1], "t": ["b"]})
    dev.commit()
    ds.remove_column("t")
    ds.add_column("t", "int32", default_value=7)  # a new column of the old name
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"id": 0, "t": 7}, {"id": 1, "t": 7}]


def test_incremental_merges_bring_only_what_is_new(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [0]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("x", "int32", default_value=5)
    dev.append({"id": [1], "x": [10]})
    dev.commit()
    ds.add_column("m", "text", default_value="m")
    ds.commit()
    ds.merge("dev")
    dev["x"][0] = 11  # a row that was shared
    dev["x"][1] = 12  # the row the first merge appended
    dev.append({"id": [2], "x": [20]})
    dev.rename_column("x", "xx")
    dev.commit()
    ds["m"][1] = "main-on-merged-row"
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [
        {"id": 0, "m": "m", "xx": 11},
        {"id": 1, "m": "main-on-merged-row", "xx": 12},
        {"id": 2, "m": "m", "xx": 20},
    ]
    assert ds.merge("dev") is None


def test_merge_main_into_a_branch_and_back(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64", "t": "text"})
    ds.append({"id": [0, 1], "t": ["a", "b"]})
    ds.commit()
    dev = _dev(url, ds)
    ds.append({"id": [10], "t": ["main"]})
    ds.add_column("mcol", "int32", default_value=1)
    ds["t"][0] = "main0"
    ds.commit()
    dev.append({"id": [20], "t": ["dev"]})
    dev.commit()
    dev.merge("main")
    assert sorted(dev["id"][:].tolist()) == [0, 1, 10, 20]
    dev["t"][1] = "dev1"
    dev["mcol"][3] = 3  # the row main appended, as dev sees it
    dev.commit()
    ds["t"][0] = "main0-again"  # after dev took main0: not a conflict
    ds.commit()
    ds.merge("dev")
    assert _rows(ds) == [
        {"id": 0, "t": "main0-again", "mcol": 1},
        {"id": 1, "t": "dev1", "mcol": 1},
        {"id": 10, "t": "main", "mcol": 3},
        {"id": 20, "t": "dev", "mcol": 1},
    ]
    dev.merge("main")  # and back again: dev catches up, no row twice
    assert sorted(map(tuple, (r.values() for r in _rows(dev)))) == sorted(
        map(tuple, (r.values() for r in _rows(ds)))
    )
    assert ds.merge("dev") is None


def test_git_like_conflict_after_an_earlier_merge(url: str) -> None:
    """A target change the source never saw conflicts with a later source change."""
    ds = lakefmt.create(url, schema={"t": "text"})
    ds.append({"t": ["a", "b"]})
    ds.commit()
    dev = _dev(url, ds)
    dev["t"][1] = "dev1"
    dev.commit()
    ds["t"][0] = "main0"
    ds.commit()
    ds.merge("dev")
    dev["t"][0] = "dev0"  # dev never saw main0
    dev.commit()
    with pytest.raises(MergeConflictError) as info:
        ds.merge("dev")
    assert info.value.rows == [0] and info.value.columns == ["t"]
    ds.merge("dev", resolve="theirs")
    assert ds["t"][:] == ["dev0", "dev1"]


def test_resolve_ours_and_theirs_on_updates_of_a_source_added_column(url: str) -> None:
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [0, 1]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("x", "int32", default_value=0)
    dev.commit()
    ds.merge("dev")
    dev["x"][0] = 1
    dev["x"][1] = 1
    dev.commit()
    ds["x"][0] = 2
    ds.commit()
    with pytest.raises(MergeConflictError):
        ds.merge("dev")
    ds.merge("dev", resolve="ours")
    assert ds["x"][:].tolist() == [2, 1]
    dev["x"][0] = 3
    dev.commit()
    ds.merge("dev", resolve="theirs")
    assert ds["x"][:].tolist() == [3, 1]


def test_format1_merge_record_is_honoured(url: str) -> None:
    """Format 1 records leave out fields added under the same id on both sides."""
    ds = lakefmt.create(url, schema={"id": "int64"})
    ds.append({"id": [0]})
    ds.commit()
    dev = _dev(url, ds)
    dev.add_column("x", "int32", default_value=0)  # id 1 on dev, and on main after merge
    dev.append({"id": [1], "x": [1]})
    dev.commit()
    ds.merge("dev")
    storage = open_storage(url)
    head = read_latest(storage, "main")
    record = head.merges["dev"]
    assert record.complete_maps and record.fields == {1: 1}
    v1 = record.model_copy(update={"fields": {}, "complete_maps": False})
    raw = json.loads(dump_manifest(head.model_copy(update={"merges": {"dev": v1}})))
    assert "complete_maps" in raw["merges"]["dev"]
    del raw["merges"]["dev"]["complete_maps"]  # exactly what format 1 wrote
    raw.pop("checksum")
    from lakefmt.format.manifest import Manifest

    old = Manifest.model_validate(raw)
    assert not old.merges["dev"].complete_maps
    storage.write(layout.manifest_path("main", head.version), dump_manifest(old))
    ds = lakefmt.open(url)
    dev["x"][0] = 5
    dev.append({"id": [2], "x": [2]})
    dev.commit()
    ds.merge("dev")
    assert _rows(ds) == [{"id": 0, "x": 5}, {"id": 1, "x": 1}, {"id": 2, "x": 2}]


def test_merge_keeps_nan_equal_and_source_only_deletes(url: str) -> None:
    ds = lakefmt.create(url, schema={"f": "float64"})
    ds.append({"f": [float("nan"), 1.0, 2.0]})
    ds.commit()
    dev = _dev(url, ds)
    dev.delete(2)
    dev.commit()
    ds["f"][1] = 9.0
    ds.commit()
    ds.merge("dev")
    got = ds["f"][:]
    assert np.isnan(got[0]) and got[1:].tolist() == [9.0]


def test_caches_of_a_file_shared_by_branches_follow_each_branchs_field_ids(url: str) -> None:
    """A merged data file carries other field ids on the target than on the source; the
    decoded row-group cache must not hand one branch's column to the other's field id."""
    ds = lakefmt.create(url, schema={"a": "int32"})
    ds.append({"a": [0]})
    ds.commit()
    dev = _dev(url, ds)
    ds.add_column("c", "int32")  # id 1 on main
    ds.commit()
    dev.add_column("b", "int32")  # id 1 on dev
    dev.merge("main")  # c gets id 2 on dev
    dev.append({"a": [5], "b": [10], "c": [20]})
    dev.commit()
    assert _rows(dev)[-1] == {"a": 5, "b": 10, "c": 20}  # fills the caches on dev's ids
    ds.merge("dev")
    assert _rows(ds)[-1] == {"a": 5, "c": 20, "b": 10}
    assert ds.query("SELECT b, c WHERE a = 5").to_arrow().to_pylist() == [{"b": 10, "c": 20}]
