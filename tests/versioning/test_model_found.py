"""Defects found by the model-based test (``test_model.py``) that issue 14 does not list.

Each test is the minimal reproduction of one failure of the state machine, written with the
public API only; they are expected to fail until fixed (``xfail(strict=True)``), and become
plain regression tests once the fix lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import lakefmt


def _ids(ds: lakefmt.Dataset) -> list[int]:
    return ds.to_arrow()["a"].to_pylist()


@pytest.mark.xfail(
    strict=True,
    reason="issue 14: merging back a branch that received merged rows copies them again "
    "(criss-cross merge duplicates rows; spec 12.3-12.4 take fragments of the source newer "
    "than the base, including those the target gave it)",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="issue 14: merge columns back: a column that came from the target is added again "
    "and the merge fails with 'both branches have a column' (criss-cross merge)",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="issue 14: a branch deleted and made again under the same name is merged with the "
    "old branch's merge record: its changes are silently not merged",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="issue 14: a fork inherits its parent's merge records (spec 6.8), whose "
    "target_version names the parent's version: merging that source into the fork raises "
    "VersionNotFoundError (spec 12.3 resolves it on the fork)",
)
def test_merge_with_an_inherited_merge_record(tmp_path: Path) -> None:
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
    dev.merge("dev2")  # from the inherited record: only row 5 is new
    assert _ids(dev) == [1, 2, 3, 4, 5]
