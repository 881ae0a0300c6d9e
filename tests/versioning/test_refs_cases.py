"""Regression tests of issue 14's refs slice: version ids, tags, branch deletion, ref files.

Defect 7 (tags named like version ids, hidden flush versions opened by a guessable name, ids
that jump), defect 6 (deleting a branch others need, stale handles), and from defect 9: empty
commits, malformed tag/branch/format files, unknown attributes on a handle.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import lakefmt
from lakefmt.errors import (
    BranchInUseError,
    BranchNotFoundError,
    FormatError,
    InvalidNameError,
    LakefmtError,
    UnknownAttributeError,
    VersionNotFoundError,
)
from lakefmt.format import layout

CONFORMANCE_V1 = Path(__file__).resolve().parents[2] / "spec" / "conformance" / "v1"


def _ids(ds: lakefmt.ReadOnlyDataset) -> list[str]:
    return [v.id for v in ds.history]


def _manifests(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("_versions/0*.json"))


# -- defect 7: version ids and tag names -----------------------------------------------------------
def test_git_style_tag_names_work_and_v1_is_not_a_hidden_flush_version(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.flush()  # manifest 1: a flush version, never committed
    with pytest.raises(VersionNotFoundError):  # was: opened the hidden flush version
        lakefmt.open_read_only(url, version="v1")
    first = ds.commit("one row")
    ds.append({"a": [2, 3]})
    second = ds.commit("three rows")
    names = ["v1", "v1.0", "release", "v2.0-rc1", "release/2024", "team/v1+build.7"]
    for name in names:  # tag v1 used to raise a bare ValueError
        ds.tag(name, version=first if name.startswith("v1") else second)
    assert ds.tags.names() == sorted(names)
    for name in names:
        rows = [1] if name.startswith("v1") else [1, 2, 3]
        assert lakefmt.open_read_only(url, version=name)["a"][:].tolist() == rows, name
        assert ds.tags[name].open()["a"][:].tolist() == rows
        assert ds.tags[name].version == (first if name.startswith("v1") else second)
        assert lakefmt.query(f'SELECT * FROM "{url}@{name}"')["a"][:].tolist() == rows
    ds.tags["release/2024"].delete()
    assert "release/2024" not in ds.tags and "release" in ds.tags


@pytest.mark.parametrize(
    "bad", ["", "a//b", "/a", "a/", "../x", "x/..", ".hidden", "-x", "a b", "x@y", "x.lock", "ü"]
)
def test_invalid_tag_and_branch_names_are_refused_clearly(tmp_path: Path, bad: str) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int64"})
    for make in (ds.tag, ds.branch):
        with pytest.raises(InvalidNameError) as err:
            make(bad)
        assert isinstance(err.value, ValueError) and repr(bad) in str(err.value)
    assert ds.tags.names() == [] and ds.branches.names() == ["main"]


def test_a_tag_named_like_a_version_id_is_refused(tmp_path: Path) -> None:
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"a": "int64"})
    with pytest.raises(InvalidNameError, match="looks like a version id"):
        ds.tag(ds.version)
    with pytest.raises(InvalidNameError, match="looks like a version id"):
        ds.branch("0123456789abcdef")
    ds.tag("0123456789abcde")  # 15 hex digits: not an id
    ds.tag("0123456789ABCDEF")  # ids are lowercase


def test_history_lists_exactly_the_commits_and_ids_do_not_count_flushes(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": list(range(120))})
    c1 = ds.commit("rows")
    for _ in range(100):  # 100 single-row deletes: 100 manifests, no commit
        ds.delete(0)
    flushed = ds.version
    assert flushed not in (c1,) and flushed not in _ids(ds)
    c2 = ds.commit("deletes")
    assert _ids(ds) == [ds.history[0].id, c1, c2]  # create, and what the user committed
    assert len(set(_ids(ds))) == 3 and all(layout.VERSION_ID_RE.match(i) for i in _ids(ds))
    # a flushed version opens by the id the handle showed (exactly its rows), never in history
    assert lakefmt.open_read_only(url, version=flushed)["a"][:].tolist() == list(range(100, 120))
    with pytest.raises(VersionNotFoundError, match="no commit"):
        ds.history[flushed]
    # nothing opens a version by its number
    for guess in ("v2", "v50", "v103", "main/v3"):
        with pytest.raises(VersionNotFoundError):
            lakefmt.open_read_only(url, version=guess)
    assert lakefmt.open_read_only(url, version=c1)["a"][:].tolist() == list(range(120))
    assert lakefmt.open(url, version=c2).version == c2


def test_an_id_of_a_branch_commit_opens_from_any_branch(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit("main")
    ds.branch("feature/x")  # '/' in branch names: the folder is the branch id
    dev = lakefmt.open(url, branch="feature/x")
    dev.append({"a": [2]})
    on_dev = dev.commit("dev")
    ds.append({"a": [3]})
    ds.commit("main 2")  # main's manifest of the same number as dev's commit
    for branch in (None, "feature/x"):
        got = lakefmt.open_read_only(url, version=on_dev, branch=branch)
        assert got["a"][:].tolist() == [1, 2] and got.current_branch.name == "feature/x"
    assert [p.parent.parent.name for p in Path(url, "tree").glob("*/_versions/0*.json")] == [
        json.loads(Path(url, "_refs/branches/feature/x.json").read_text())["id"]
    ]


def test_format_1_datasets_keep_their_ids_and_take_format_2_commits(tmp_path: Path) -> None:
    url = str(tmp_path / "old")
    shutil.copytree(CONFORMANCE_V1 / "refs_merge" / "dataset", url)
    expected = json.loads((CONFORMANCE_V1 / "refs_merge" / "expected.json").read_text())
    v1_rows = next(r["rows"] for r in expected["reads"] if r["open"] == {"version": "v1"})
    old = lakefmt.open_read_only(url, version="v1")  # a format-1 id still works
    assert [list(r.values()) for r in old.to_arrow().to_pylist()] == v1_rows
    ids = _ids(lakefmt.open_read_only(url))
    assert ids == _ids(lakefmt.open_read_only(url))  # derived ids are stable
    assert lakefmt.open_read_only(url, version=ids[1]).to_arrow().equals(old.to_arrow())
    assert lakefmt.open_read_only(url).history["v1"].id == ids[1]
    ds = lakefmt.open(url)
    ds.append({"k": [7], "v": ["new"], "extra": [1]})
    new = ds.commit("format 2 commit")
    head = json.loads(sorted(Path(url, "_versions").glob("0*.json"))[-1].read_bytes())
    assert head["format_version"] == 2 and head["id"] == new
    assert json.loads(Path(url, "_lakefmt.json").read_text())["format_version"] == 1
    with pytest.raises(VersionNotFoundError, match="format 1"):
        lakefmt.open_read_only(url, version=f"v{head['version']}")
    ds.tag("v1", version=new)  # a tag takes precedence over a format-1 id
    assert lakefmt.open_read_only(url, version="v1").version == new


# -- defect 6: deleting branches ------------------------------------------------------------------
def _with_dev(url: str) -> tuple[lakefmt.Dataset, lakefmt.Dataset, str]:
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit("base")
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev.append({"a": [2]})
    return ds, dev, dev.commit("dev work")


def test_a_branch_with_tags_or_forks_cannot_be_deleted(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds, dev, _ = _with_dev(url)
    dev.tag("exp-1")
    dev.branch("dev2")
    with pytest.raises(BranchInUseError) as err:
        ds.branches["dev"].delete()
    assert err.value.tags == ["exp-1"] and err.value.branches == ["dev2"]
    assert "exp-1" in str(err.value) and "dev2" in str(err.value)
    # nothing dangles: the tag and the fork still read
    assert lakefmt.open_read_only(url, version="exp-1")["a"][:].tolist() == [1, 2]
    assert lakefmt.open_read_only(url, branch="dev2")["a"][:].tolist() == [1, 2]
    ds.tags["exp-1"].delete()
    with pytest.raises(BranchInUseError, match="dev2"):
        ds.branches["dev"].delete()
    ds.branches["dev2"].delete()
    ds.branches["dev"].delete()
    assert ds.branches.names() == ["main"]
    with pytest.raises(BranchInUseError):
        ds.branches["main"].delete()


def test_a_damaged_tag_file_refuses_a_branch_deletion(tmp_path: Path) -> None:
    # the damaged tag may name the branch: deleting it could lose the versions the tag needs
    url = str(tmp_path / "ds")
    ds, dev, _ = _with_dev(url)
    dev.tag("exp-1")
    tag_file = tmp_path / "ds" / layout.tag_path("exp-1")
    tag_file.write_bytes(tag_file.read_bytes()[:-5])
    with pytest.raises(FormatError, match="exp-1"):
        ds.branches["dev"].delete()
    assert "dev" in ds.branches.names()
    assert lakefmt.open_read_only(url, branch="dev")["a"][:].tolist() == [1, 2]


def test_a_tag_made_on_a_fresh_branch_does_not_hold_the_branch(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit("base")
    ds.branch("fresh")
    lakefmt.open(url, branch="fresh").tag("t")  # names main's manifest, where it is stored
    ds.branches["fresh"].delete()
    assert lakefmt.open_read_only(url, version="t")["a"][:].tolist() == [1]
    ds.cleanup(0)
    assert lakefmt.open_read_only(url, version="t")["a"][:].tolist() == [1]


@pytest.mark.parametrize("committed", [True, False])
def test_a_stale_handle_cannot_commit_to_a_deleted_branch(tmp_path: Path, committed: bool) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    ds.commit("base")
    ds.branch("dev")
    stale = lakefmt.open(url, branch="dev")
    if committed:
        stale.append({"a": [2]})
        stale.commit("dev work")
    ds.branches["dev"].delete()
    stale.append({"a": [99]})
    with pytest.raises(BranchNotFoundError, match="deleted"):
        stale.commit("lost?")  # was: committed a version nothing could open
    with pytest.raises(BranchNotFoundError):
        stale.refresh()
    # a new branch of the same name is another branch: none of the stale handle's writes
    ds.branch("dev")
    with pytest.raises(BranchNotFoundError):
        stale.flush()
    fresh = lakefmt.open(url, branch="dev")
    assert fresh["a"][:].tolist() == [1]
    fresh.append({"a": [3]})
    fresh.commit("new dev")
    ds.cleanup(0)  # removes the old branch's manifests, keeps its tombstone
    with pytest.raises(BranchNotFoundError):
        stale.flush()
    assert lakefmt.open_read_only(url, branch="dev")["a"][:].tolist() == [1, 3]
    assert [v.message for v in lakefmt.open_read_only(url, branch="dev").history][-1] == "new dev"
    del stale  # its buffered rows cannot be flushed anywhere: logged, never written


# -- defect 9: empty commits, malformed ref files, unknown attributes ----------------------------
def test_an_empty_commit_makes_no_version(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.append({"a": [1]})
    first = ds.commit("one")
    files = _manifests(Path(url))
    assert ds.commit() == first and ds.commit("again") == first
    assert _manifests(Path(url)) == files and len(ds.history) == 2
    ds.append({"a": [2]})
    ds.flush()
    second = ds.commit("flushed rows")  # flushed since the last commit: a real commit
    assert second != first and len(ds.history) == 3


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("_refs/tags/t.json", b"{not json"),
        ("_refs/tags/t.json", b'{"name": "t", "branch": "main"}'),
        ("_refs/tags/t.json", b"\xff\xfe"),
        ("_refs/branches/dev.json", b'{"name": "dev"}'),
        ("_refs/branches/dev.json", b"[]"),
        ("_lakefmt.json", b'{"format": "lakefmt"}'),
    ],
)
def test_malformed_ref_and_format_files_raise_format_error(
    tmp_path: Path, path: str, content: bytes
) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    ds.tag("t")
    ds.branch("dev")
    Path(url, path).write_bytes(content)
    with pytest.raises(FormatError, match=path.replace(".", r"\.")):
        if path.startswith("_refs/tags"):
            ds.tags["t"]
        elif path.startswith("_refs/branches"):
            lakefmt.open(url, branch="dev")
        else:
            lakefmt.open(url)
    if not path.startswith("_lakefmt"):
        before = sorted(Path(url).rglob("*"))
        with pytest.raises(FormatError):  # cleanup cannot know what the file names
            ds.cleanup(0)
        assert sorted(Path(url).rglob("*")) == before


def test_assigning_an_unknown_attribute_is_refused(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"a": "int64"})
    with pytest.raises(UnknownAttributeError, match="auto_commit_enabled") as err:
        ds.auto_commit_enabled = True  # type: ignore[attr-defined]
    assert isinstance(err.value, AttributeError) and isinstance(err.value, LakefmtError)
    assert not hasattr(ds, "auto_commit_enabled")
    with pytest.raises(UnknownAttributeError, match="did you mean 'auto_compact'"):
        ds.auto_compat = False  # type: ignore[attr-defined]
    with pytest.raises(UnknownAttributeError, match="read-only"):
        ds.version = "x"  # type: ignore[misc]
    ds.auto_compact = False  # a real option still works
    assert ds.auto_compact is False
    ro = lakefmt.open_read_only(url)
    with pytest.raises(UnknownAttributeError):
        ro.auto_compact = False  # type: ignore[attr-defined]
