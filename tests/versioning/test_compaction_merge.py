"""Automatic compaction and merge (spec/format.md sections 11.1 and 12.5).

A merge cannot follow a compaction of rows both branches share. Automatic compaction (after
a flush, once 8 small fragments of one size tier pile up) used to compact fragments a branch
inherited from its fork point, or that the parent still shares with a branch forked from it,
so a branch that made many small flushes silently became unmergeable. These tests check
that merges in both directions after many small flushes give exactly the rows of a plain
three-way merge (computed here on Python dicts), and that an explicit ``optimize`` of shared
rows gives a ``MergeConflictError`` saying what happened.

The property test runs 25 examples in the CI profile (about 10 s on a 2-core machine), 100
with ``HYPOTHESIS_PROFILE=dev python -m pytest tests/versioning/test_compaction_merge.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt.errors import MergeConflictError

Rows = dict[int, int]  # row key -> value, in row order


def _rows(ds: lakefmt.ReadOnlyDataset) -> Rows:
    table = ds.to_arrow()
    return dict(zip(table["k"].to_pylist(), table["v"].to_pylist(), strict=True))


def three_way(base: Rows, source: Rows, target: Rows) -> Rows:
    """A plain three-way merge of keyed rows (no conflicting cells expected).

    Rows deleted on either side are gone; values the source changed since the base are
    taken; rows the source added follow the target's rows, in source order.
    """
    out: Rows = {}
    for key, value in target.items():
        if key in base and key not in source:
            continue  # deleted on the source
        if key in base and source[key] != base[key]:
            assert value in (base[key], source[key]), f"conflict on row {key}"
            value = source[key]
        out[key] = value
    for key, value in source.items():
        if key not in base and key not in out:
            out[key] = value
    return out


def _fragment_ids(ds: lakefmt.Dataset) -> list[int]:
    return [f.id for f in ds._manifest.fragments]


def _small_flushes(ds: lakefmt.Dataset, keys: range, value: int) -> None:
    for key in keys:
        ds.append({"k": [key], "v": [value]})
        ds.flush()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return str(tmp_path / "ds")


def test_many_small_flushes_on_both_branches_merge_both_ways(url: str) -> None:
    ds = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    _small_flushes(ds, range(12), 0)  # main compacts its own rows before the fork
    ds.commit("base")
    base = _rows(ds)
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    shared = set(_fragment_ids(dev))

    # dev: changes to shared rows, then 20 small flushes (auto-compaction is due twice)
    dev["v"][0] = 100
    dev.delete(3)
    dev.flush()
    _small_flushes(dev, range(100, 120), 1)
    dev["v"][len(dev) - 1] = 101  # a row of its own, already compacted
    dev.commit("dev work")
    assert shared <= set(_fragment_ids(dev)), "dev compacted rows it shares with main"
    assert len(dev._manifest.fragments) < len(shared) + 21, "dev never compacted"
    dev_state = _rows(dev)

    # main: other changes to shared rows, then 20 small flushes of its own
    ds["v"][1] = 200
    ds.delete(5)
    ds.flush()
    _small_flushes(ds, range(200, 220), 2)
    ds.commit("main work")
    assert shared <= set(_fragment_ids(ds)), "main compacted rows dev shares"
    main_state = _rows(ds)

    expected = three_way(base, dev_state, main_state)
    assert ds.merge("dev") is not None
    assert _rows(ds) == expected
    merged_source = dict(dev_state)  # the next base: the source version of this merge

    # both go on flushing; then main -> dev, then dev -> main again
    _small_flushes(ds, range(300, 317), 3)
    ds["v"][2] = 300
    ds.commit("main more")
    _small_flushes(dev, range(400, 417), 4)
    dev["v"][0] = 400
    dev.commit("dev more")
    main_state, dev_state = _rows(ds), _rows(dev)
    expected_dev = three_way(merged_source, main_state, dev_state)
    dev.merge("main")
    assert _rows(dev) == expected_dev
    dev_state = _rows(dev)
    ds.merge("dev")
    assert _rows(ds) == three_way(main_state, dev_state, main_state)
    assert sorted(_rows(ds)) == sorted(_rows(dev))
    assert lakefmt.open_read_only(url, branch="dev").to_arrow().num_rows == len(dev)


def test_parent_does_not_compact_rows_a_fresh_child_shares(url: str) -> None:
    ds = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    _small_flushes(ds, range(7), 0)  # 7 small fragments: one short of a compaction
    ds.commit()
    ds.branch("dev")
    _small_flushes(ds, range(7, 30), 0)  # main's own rows compact, the 7 shared stay
    ds.commit()
    first = _fragment_ids(ds)[:7]
    assert first == list(range(7))
    assert len(ds._manifest.fragments) < 30
    dev = lakefmt.open(url, branch="dev")
    dev["v"][0] = 9
    dev.commit()
    ds.merge("dev")
    assert _rows(ds) == {k: (9 if k == 0 else 0) for k in range(30)}
    ds.branches["dev"].delete()
    _small_flushes(ds, range(30, 32), 0)  # once no branch shares them, they compact
    assert not set(first) & set(_fragment_ids(ds))
    assert _rows(ds) == {k: (9 if k == 0 else 0) for k in range(32)}


def test_merged_rows_stay_mergeable_after_more_flushes(url: str) -> None:
    """Fragments a merge copied are shared from then on, on both branches."""
    ds = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    ds.append({"k": [0], "v": [0]})
    ds.commit()
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    _small_flushes(dev, range(1, 8), 1)  # 7 of dev's own, not yet compacted
    dev.commit()
    ds.merge("dev")  # main now shares them
    _small_flushes(dev, range(8, 26), 1)
    dev.delete(2)  # a row main received from dev
    dev.commit()
    _small_flushes(ds, range(100, 118), 2)
    ds["v"][3] = 50  # likewise
    ds.commit()
    base, dev_state, main_state = {k: 0 if k == 0 else 1 for k in range(8)}, _rows(dev), _rows(ds)
    ds.merge("dev")
    assert _rows(ds) == three_way(base, dev_state, main_state)
    dev.merge("main")
    assert sorted(_rows(dev).items()) == sorted(_rows(ds).items())


@pytest.mark.parametrize("side", ["source", "target"])
def test_explicit_optimize_of_shared_rows_says_what_happened(url: str, side: str) -> None:
    ds = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    _small_flushes(ds, range(3), 0)
    ds.commit()
    ds.branch("dev")
    dev = lakefmt.open(url, branch="dev")
    dev["v"][0] = 5
    dev.commit()
    if side == "source":
        optimized = dev.optimize()  # documented: rewrites every small fragment
        who, other = "dev", "main"
    else:
        optimized = ds.optimize()
        who, other = "main", "dev"
    before = _rows(ds)
    with pytest.raises(MergeConflictError) as info:
        ds.merge("dev")
    text = str(info.value)
    assert f"'{who}' compacted rows" in text
    assert f"version {optimized} ('optimize')" in text
    assert "Merge before calling optimize()" in text
    assert (other in text) and "nothing was merged" in text
    assert _rows(ds) == before


# -- property: auto-compaction on, two branches, merges in both directions ----------------------
_STEP = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(["main", "dev"]), st.integers(1, 3)),
    st.tuples(st.just("update"), st.sampled_from(["main", "dev"]), st.integers(0, 10**6)),
    st.tuples(st.just("delete"), st.sampled_from(["main", "dev"]), st.integers(0, 10**6)),
    st.tuples(st.just("flush"), st.sampled_from(["main", "dev"]), st.just(0)),
    st.tuples(st.just("flushes"), st.sampled_from(["main", "dev"]), st.integers(8, 12)),
    st.tuples(st.just("merge"), st.sampled_from(["main", "dev"]), st.just(0)),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, min_size=4, max_size=18))
def test_auto_compaction_never_breaks_merges(tmp_path: Path, steps: list[tuple]) -> None:
    """Random small appends, updates, deletes, flushes and merges on ``main`` and ``dev``
    with automatic compaction on: every merge gives the rows of a three-way merge.

    Each branch updates only rows of its own parity (even values of ``k`` on main), so
    cells never conflict; the model's base is the source state of the last merge.
    """
    url = str(tmp_path / uuid.uuid4().hex)
    main = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    main.append({"k": [0, 1], "v": [0, 0]})
    main.commit()
    main.branch("dev")
    handles = {"main": main, "dev": lakefmt.open(url, branch="dev")}
    parity = {"main": 0, "dev": 1}
    state = {"main": {0: 0, 1: 0}, "dev": {0: 0, 1: 0}}  # current rows
    committed = {name: dict(rows) for name, rows in state.items()}
    base: Rows = {0: 0, 1: 0}
    next_key = {"main": 2, "dev": 3}
    for what, name, arg in steps:
        ds, rows = handles[name], state[name]
        if what == "append":
            keys = list(range(next_key[name], next_key[name] + 2 * arg, 2))
            next_key[name] += 2 * arg
            ds.append({"k": keys, "v": [0] * arg})
            rows.update(dict.fromkeys(keys, 0))
        elif what in ("update", "delete") and rows:
            index = arg % len(rows)
            key = list(rows)[index]
            if what == "delete":
                ds.delete(index)
                del rows[key]
            elif key % 2 == parity[name]:
                ds["v"][index] = arg
                rows[key] = arg
        elif what == "flush":
            ds.flush()
        elif what == "flushes":
            for _ in range(arg):
                ds.append({"k": [next_key[name]], "v": [1]})
                rows[next_key[name]] = 1
                next_key[name] += 2
                ds.flush()
        elif what == "merge":
            other = "dev" if name == "main" else "main"
            handles[other].commit()
            committed[other] = dict(state[other])
            expected = three_way(base, committed[other], rows)
            ds.merge(other)
            state[name] = rows = expected
            committed[name] = dict(rows)
            base = dict(committed[other])
        assert _rows(ds) == rows, (what, name)
    for name, ds in handles.items():
        ds.flush()
        assert _rows(lakefmt.open_read_only(url, branch=name)) == state[name]


def test_damaged_branch_file_skips_auto_compaction_not_the_flush(url: str) -> None:
    """What is shared cannot be known: compaction waits, the user's rows still commit."""
    ds = lakefmt.create(url, schema={"k": "int64", "v": "int64"})
    ds.branch("other")
    (Path(url) / "_refs" / "branches" / "other.json").write_text("{not json")
    _small_flushes(ds, range(12), 0)
    assert len(ds._manifest.fragments) == 12  # nothing compacted, nothing failed
    assert _rows(lakefmt.open_read_only(url)) == dict.fromkeys(range(12), 0)
