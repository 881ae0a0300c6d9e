"""Defects found by the model-based test (``test_model.py``) that issue 14 does not list.

Each test is the minimal reproduction of one failure of the state machine, written with the
public API only, kept as a regression test now that it is fixed: criss-cross merges (merge
``dev`` into ``main``, then ``main`` into ``dev``) bring nothing back twice; a merge record
carries the source's ``branch_id``, so a branch deleted and made again under the same name,
or a record a fork inherited about such a branch, is not taken as the base (spec 12.3);
merging branches with no direct fork point is refused even when a fork inherited a record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import lakefmt
from lakefmt.errors import BranchInUseError, InvalidMergeError, MergeConflictError


def _ids(ds: lakefmt.Dataset) -> list[int]:
    return ds.to_arrow()["a"].to_pylist()


def test_merge_back_does_not_duplicate_rows(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1, 2]})
    ds.commit("c1")
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.append({"a": [3]})
    dev.commit("d1")
    ds.merge("dev")  # main: 1 2 3
    ds.append({"a": [4]})
    ds.commit("m2")
    dev.merge("main")  # dev gets main's 4; its own 3 must not come back a second time
    assert _ids(dev) == [1, 2, 3, 4]
    ds.merge("dev")
    assert _ids(ds) == [1, 2, 3, 4]


def test_merge_back_of_a_merged_column(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1]})
    ds.commit("c1")
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.add_column("c", "int32", default_value=0)
    dev.commit("add c")
    ds.merge("dev")  # main gets c
    ds.append({"a": [2], "c": [5]})
    ds.commit("m2")
    dev.merge("main")  # must bring row 2, not a second column c
    assert dev.to_arrow().to_pydict() == {"a": [1, 2], "c": [0, 5]}


def test_recreated_branch_is_merged_from_its_own_fork_point(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1, 2]})
    ds.commit("c1")  # v1
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    for value in (10, 11, 12):  # dev/v2, dev/v3, dev/v4
        dev["a"][0] = value
        dev.commit(f"d{value}")
    assert ds.merge("dev") is not None  # v2: merges["dev"].source_version = 4
    ds.branches["dev"].delete()
    ds.branch("dev")  # a new branch, forked at v2
    dev = lakefmt.open(ds.url, branch="dev")
    dev["a"][1] = 20
    dev.commit("e1")  # dev/v3
    dev["a"][1] = 21
    dev.commit("e2")  # dev/v4: the old record's source_version, now on the new branch
    assert ds.merge("dev") is not None, "the new branch's changes were not merged"
    assert _ids(ds) == [12, 21]


def test_merge_with_an_inherited_merge_record_of_an_unrelated_branch(tmp_path: Path) -> None:
    """A fork carries its parent's record of ``dev2`` (spec 6.8), but ``dev`` and ``dev2``
    have no direct fork point: the merge is refused (spec 12.3) instead of resolving the
    record's ``target_version`` on ``dev`` (which raised ``VersionNotFoundError``), and
    going through ``main`` brings only what is new."""
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1, 2]})
    ds.commit("c1")
    ds.branch("dev2")
    dev2 = lakefmt.open(ds.url, branch="dev2")
    dev2.append({"a": [3]})
    dev2.commit("d2")
    ds.merge("dev2")  # main records merges["dev2"]
    ds.append({"a": [4]})
    ds.commit("m2")
    ds.branch("dev")  # dev's manifests carry main's record of dev2
    dev2.append({"a": [5]})
    dev2.commit("d2b")
    dev = lakefmt.open(ds.url, branch="dev")
    before = dev.version
    with pytest.raises(MergeConflictError, match="no direct fork point"):
        dev.merge("dev2")
    assert dev.version == before and _ids(dev) == [1, 2, 3, 4]
    assert ds.merge("dev2") is not None  # from main's own record: only row 5 is new
    assert _ids(ds) == [1, 2, 3, 4, 5]
    assert dev.merge("main") is not None
    assert _ids(dev) == [1, 2, 3, 4, 5]


def test_inherited_merge_record_of_a_deleted_namesake_is_ignored(tmp_path: Path) -> None:
    """``exp`` inherits main's record of the first ``dev``; a new ``dev`` forked from ``exp``
    is another branch (another ``branch_id``): merging it into ``exp`` starts from its fork
    point, not from the old record (which named a version the new branch also has)."""
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1, 2]})
    ds.commit("c1")
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    for value in (10, 11, 12, 13, 14):
        dev["a"][0] = value
        dev.commit(f"d{value}")
    assert ds.merge("dev") is not None  # main: merges["dev"] names the old dev's version
    ds.branch("exp")
    ds.branches["dev"].delete()
    exp = lakefmt.open(ds.url, branch="exp")
    exp.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    for value in (20, 21, 22):
        dev["a"][1] = value
        dev.commit(f"e{value}")
    assert exp.merge("dev") is not None, "the new dev's changes were not merged"
    assert _ids(exp) == [14, 22]
    record = exp._manifest.merges["dev"]
    assert record.branch_id == dev._manifest.branch_id is not None


def test_merge_arguments_that_mean_nothing_are_lakefmt_errors(tmp_path: Path) -> None:
    """``resolve=`` other than error/ours/theirs, and a branch merged into itself, raise
    :class:`InvalidMergeError` (a ``ValueError`` too) before anything is written."""
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1]})
    ds.commit("c1")
    ds.branch("dev")
    ds.append({"a": [2]})  # buffered: a refused merge must not flush it
    with pytest.raises(InvalidMergeError, match="'mine'"):
        ds.merge("dev", resolve="mine")
    with pytest.raises(InvalidMergeError, match="into itself"):
        ds.merge("main")
    assert issubclass(InvalidMergeError, ValueError)
    assert len(lakefmt.open_read_only(ds.url).to_arrow()) == 1
    assert _ids(ds) == [1, 2]


def test_merged_rows_of_dropped_columns_read_with_zero_columns(tmp_path: Path) -> None:
    """Rows merged from a branch whose every column the two sides dropped: the merge maps the
    source's field 0 to -1 in the copied fragment's ``field_ids``, which the zero-column
    stand-in (field id -1) read as its own column ("stored as int32 ... storage type is
    bool", a ``FormatError``). The version has 2 rows and no column (spec 8.1 step 9)."""
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32", "s": "text"})
    ds.branch("dev")
    ds.remove_column("a")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.append({"a": [0, 1], "s": ["x", "y"]})
    dev.remove_column("s")
    dev.commit("rows, then no s")
    assert ds.merge("dev") is not None
    assert len(ds) == 2
    table = ds.to_arrow()
    assert table.num_rows == 2 and table.column_names == []
    assert lakefmt.open_read_only(ds.url).to_arrow().num_rows == 2
    assert len(list(ds.batches(batch_size=1))) == 2


def test_deleting_a_branch_names_forks_of_its_unchanged_forks(tmp_path: Path) -> None:
    # dev2 forks dev and writes nothing, so exp, forked from dev2, starts at a version stored
    # in dev's folder: deleting dev must name exp too, or exp would lose its fork point
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [1]})
    ds.commit("c1")
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.append({"a": [2]})
    dev.commit("d1")
    dev.branch("dev2")
    lakefmt.open(ds.url, branch="dev2").branch("exp")
    with pytest.raises(BranchInUseError) as refused:
        ds.branches["dev"].delete()
    assert refused.value.branches == ["dev2", "exp"]
    assert _ids(lakefmt.open(ds.url, branch="exp")) == [1, 2]


def test_nan_inside_a_vector_is_not_a_change(tmp_path: Path) -> None:
    # both sides set other cells of the column; the row holding a NaN inside a vector was
    # changed by neither, but list equality says two NaNs differ, which made it a conflict
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int32"})
    ds.append({"a": [0]})
    ds.commit("c1")
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.add_column("e", lakefmt.types.Embedding(2))
    dev.append({"a": [1, 2, 3], "e": [[0.0, float("nan")], [0.0, 0.0], [0.0, 0.0]]})
    dev.commit("a NaN inside a vector")
    ds.merge("dev")
    dev["e"][2] = [1.0, 1.0]
    dev.commit("dev sets row 2")
    ds["e"][3] = [2.0, 2.0]
    ds.commit("main sets row 3")
    ds.merge("dev")
    got = [None if v is None else list(map(float, v)) for v in ds["e"][:]]
    assert got[0] is None and got[2:] == [[1.0, 1.0], [2.0, 2.0]]
    assert got[1][0] == 0.0 and got[1][1] != got[1][1]  # still NaN
