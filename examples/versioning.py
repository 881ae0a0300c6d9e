"""Versions and branches: commits, time travel, tags, branches, and a merge with a conflict.

Run with ``python examples/versioning.py [URL]`` (default: a fresh ``tmp://`` dataset).
"""

from __future__ import annotations

import sys

import numpy as np

import lakefmt
from lakefmt.errors import MergeConflictError


def main(url: str = "tmp://") -> None:
    """Build a small labelled dataset at ``url`` and walk through its history."""
    ds = lakefmt.create(url, schema={"id": "int64", "label": "text", "score": "float32"})

    # -- commits ------------------------------------------------------------------------------
    ds.append(
        {
            "id": np.arange(5),
            "label": ["cat", "dog", "cat", "bird", "dog"],
            "score": np.full(5, 0.5, dtype=np.float32),
        }
    )
    v1 = ds.commit("five labelled rows")
    ds.append({"id": [5, 6], "label": ["fish", "cat"], "score": [0.9, 0.1]})
    v2 = ds.commit("two more rows")
    ds["label"][3] = "parrot"  # fix a label in place
    v3 = ds.commit("bird -> parrot")
    print(f"commits {v1}, {v2}, {v3}; {len(ds)} rows now")
    assert [v.message for v in ds.history][-3:] == [
        "five labelled rows",
        "two more rows",
        "bird -> parrot",
    ]

    # -- time travel ----------------------------------------------------------------------------
    first = lakefmt.open_read_only(ds.url, version=v1)
    print(f"at {v1}: {len(first)} rows, label[3] = {first['label'][3]!r}")
    assert len(first) == 5 and first["label"][3] == "bird"
    assert ds.history[v2].open()["label"][3] == "bird" and ds["label"][3] == "parrot"

    # -- tags -----------------------------------------------------------------------------------
    ds.tag("v1.0", message="first public cut", version=v2)
    released = lakefmt.open_read_only(ds.url, version="v1.0")
    print(f"tag v1.0 -> {ds.tags['v1.0'].version}: {len(released)} rows")
    assert ds.tags["v1.0"].version == v2 and len(released) == 7

    # -- branches -------------------------------------------------------------------------------
    ds.branch("relabel")
    side = lakefmt.open(ds.url, branch="relabel")
    side["label"][0] = "kitten"  # a change only on the branch
    side.append({"id": [7], "label": ["hamster"], "score": [0.7]})
    side.commit("relabel row 0, add a hamster")
    print(f"branch relabel: {len(side)} rows; main still has {len(ds)}")
    assert len(side) == 8 and len(ds) == 7 and ds["label"][0] == "cat"

    merged = ds.merge("relabel")  # no conflict: main did not touch these cells
    print(f"merged relabel into main as {merged}: label[0] = {ds['label'][0]!r}, {len(ds)} rows")
    assert ds["label"][0] == "kitten" and ds["label"][7] == "hamster"

    # -- a merge conflict, resolved ---------------------------------------------------------------
    ds.branch("review")
    review = lakefmt.open(ds.url, branch="review")
    review["score"][1] = 0.99
    review["score"][2] = 0.42  # only the branch changes row 2
    review.commit("reviewer scores")
    ds["score"][1] = 0.01  # main changes the same cell differently
    ds.commit("automatic score")
    try:
        ds.merge("review")
        raise AssertionError("the merge should have reported a conflict")
    except MergeConflictError as conflict:
        print(f"conflict on rows {conflict.rows}, columns {conflict.columns}")
        assert conflict.rows == [1] and conflict.columns == ["score"]
    assert ds["score"][1] == np.float32(0.01)  # a failed merge changes nothing

    ds.merge("review", resolve="theirs")  # the reviewer wins
    print(
        f"resolved with the branch's values: score[1] = {ds['score'][1]:.2f}, "
        f"score[2] = {ds['score'][2]:.2f}"
    )
    assert ds["score"][1] == np.float32(0.99) and ds["score"][2] == np.float32(0.42)

    print("history:")
    for version in ds.history:
        print(f"  {version.id}  {version.message or ''}")
    assert ds.history[-1].message == "merge review"
    assert len(lakefmt.open_read_only(ds.url, version=v1)) == 5  # old versions stay readable


if __name__ == "__main__":
    main(*sys.argv[1:])
