"""The pure-pyarrow reference reader of spec/format.md (Appendix B) reads what lakefmt reads.

Each dataset here is built with the public API on local disk; the reader printed in the spec
(extracted and exec'd by the ``reference_reader`` fixture) must return a table equal to
``lakefmt.open_read_only(url).to_arrow()``: same column names, Arrow types and values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakefmt
from lakefmt import types as T
from tests.dataset.default_cases import CASES, ply_bytes, png_bytes, same, storage_table
from tests.dataset.test_default_values import V1_CASES, _v1_dataset_with_defaults


def _multi_fragment(path: str) -> None:
    ds = lakefmt.create(path, schema={"id": "int64", "name": "text", "score": "float32"})
    ds.auto_compact = False
    for start in range(0, 40, 10):
        ds.append(
            {
                "id": list(range(start, start + 10)),
                "name": [f"n{i}" for i in range(start, start + 10)],
                "score": [i * 0.5 for i in range(start, start + 10)],
            }
        )
        ds.flush()
    ds.commit("four fragments")


def _deletions(path: str) -> None:
    _multi_fragment(path)
    ds = lakefmt.open(path)
    ds.delete([0, 3, 12, 13, 39 - 4])
    ds.delete(slice(20, 25))
    ds.commit("deletions")


def _updates(path: str) -> None:
    _multi_fragment(path)
    ds = lakefmt.open(path)
    ds["score"][2] = -1.0  # one cell: an update file
    ds["name"][11] = None
    ds["name"][12] = "renamed row"  # a second update of the same (fragment, field): merged
    ds.commit("cell updates")
    ds.delete(2)  # delete an updated row
    n = len(ds)
    ds["score"][0:n] = [float(i) for i in range(n)]  # every fragment: new column groups
    ds.commit("full column-group rewrite")
    ds["score"][5] = 55.5  # an update on top of the rewritten group
    ds.commit("update after rewrite")


def _schema_changes(path: str) -> None:
    _multi_fragment(path)
    ds = lakefmt.open(path)
    ds.add_column("label", "int16", default_value=3)
    ds.add_column("blob", "bytes", default_value=b"\x00\x01")
    ds.add_column("note", "text")
    ds.append({"id": [100], "name": ["new"], "score": [1.0], "label": [9], "note": ["n"]})
    ds["label"][1] = 4  # update of a column no data file of the fragment holds
    ds.rename_column("name", "title")
    ds.remove_column("score")
    ds.add_column("score", "float64", default_value=0.25)  # old name, new id and type
    ds.commit("schema changes")


def _optimized(path: str) -> None:
    _updates(path)
    ds = lakefmt.open(path)
    ds.delete([1, 17])
    ds["name"][3] = "before optimize"
    ds.optimize()
    ds.append({"id": [999], "name": ["after"], "score": [9.0]})
    ds.commit("after optimize")


def _auto_compacted(path: str) -> None:
    ds = lakefmt.create(path, schema={"x": "uint32", "y": "bool"})
    for i in range(10):  # 8 tiny fragments of one tier are compacted automatically
        ds.append({"x": [i], "y": [i % 2 == 0]})
        ds.flush()
    ds.commit("tiny flushes")


def _merged(path: str) -> None:
    ds = lakefmt.create(path, schema={"k": "int64", "v": "text"})
    ds.append({"k": list(range(6)), "v": [f"m{i}" for i in range(6)]})
    ds.commit("base")
    ds.branch("dev")
    dev = lakefmt.open(path, branch="dev")
    dev.add_column("extra", "int8", default_value=1)
    dev.append({"k": [100], "v": ["d"], "extra": [5]})
    dev["v"][0] = "dev edit"
    dev.delete(3)
    dev.commit("dev")
    ds.add_column("main_only", "text", default_value="mo")
    ds.append({"k": [50], "v": ["m50"]})
    ds.commit("main")
    ds.merge("dev")


def _empty(path: str) -> None:
    lakefmt.create(path, schema={"a": "int32", "b": "bytes"})


#: One default per type, with what broke format 1: NaN and bytes nested, dict sentinel keys.
FIXED_DEFAULTS: dict[str, Any] = {
    **{name: 0 for name, t, _ in CASES if isinstance(t, T.Numeric)},
    "uint64": 2**64 - 1,
    "int64": -(2**63),
    "float16": float("nan"),
    "float32": float("-inf"),
    "float64": -0.0,
    "bool": True,
    "text": "\U0001f600 astral",
    "bytes": b"\xff\x00",
    "label": "dog",
    "labels": ["😀 bird", 0],
    "emb": [float("nan"), float("inf"), 1.5],
    "emb16": [65504.0, float("-inf")],
    "emb_i8": [-128, 127],
    "arr": np.array([[float("nan"), 1.0], [2.0, 3.0]]),
    "ragged": [[float("nan")], [1.0]],
    "ragged_i": [[1, 2]],
    "boxes": [[0, 0, 1, float("nan")]],
    "points": [[1, 2, 3]],
    "polygons": [[[0, 0], [1, 0], [0, 1]]],
    "seg": np.array([[0, 1], [2, 3]], dtype=np.uint8),
    "seg_png": np.array([[0, 1], [2, 3]], dtype=np.uint8),
    "mask": np.array([[True, False]]),
    "mask_png": np.array([[True, False]]),
    "seq_text": ["a", None],
    "seq_bytes": [b"\x80"],
    "rec": {"b": b"\xff", "f": float("nan"), "t": "t", "e": [1.0, 2.0], "n": 2**62},
    "nested": [{"x": b"\x00", "y": [float("inf")]}],
    "dict": {"$base64": "aGk=", "$float": "nan"},
    "link": "s3://bucket/😀.png",
    "image": png_bytes(np.zeros((2, 2, 3), dtype=np.uint8)),
    "image_px": np.ones((2, 3, 3), dtype=np.uint8),
    "mesh": ply_bytes(),
}


def _with_defaults(path: str, values: dict[str, Any]) -> None:
    ds = lakefmt.create(path, schema={"k": "int64"})
    ds.append({"k": [0, 1]})
    for name, column_type, _ in CASES:
        ds.add_column(name, column_type, default_value=values[name])
    ds.append({"k": [2]})
    ds.commit()


def _defaults(path: str) -> None:
    _with_defaults(path, FIXED_DEFAULTS)


def _no_columns(path: str) -> None:
    ds = lakefmt.create(path, schema={"a": "int64"})
    ds.append({"a": [1, 2, 3]})
    ds.remove_column("a")
    ds.commit()


BUILDERS: dict[str, Callable[[str], None]] = {
    "multi_fragment": _multi_fragment,
    "deletions": _deletions,
    "updates_and_rewrite": _updates,
    "schema_changes": _schema_changes,
    "optimized": _optimized,
    "auto_compacted": _auto_compacted,
    "merged": _merged,
    "empty": _empty,
    "defaults_of_every_type": _defaults,
    "no_columns": _no_columns,
}


def _head(path: str) -> dict[str, Any]:
    return json.loads(max((Path(path) / "_versions").glob("0*.json")).read_bytes())


def _groups(m: dict[str, Any]) -> int:
    return max(len(f["files"]) for f in m["fragments"])


#: What each dataset must exercise in its head manifest (guards against builders that drift).
SHAPES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "multi_fragment": lambda m: len(m["fragments"]) == 4,
    "deletions": lambda m: sum(f["deletion"] is not None for f in m["fragments"]) >= 3,
    "updates_and_rewrite": lambda m: _groups(m) >= 2 and any(f["updates"] for f in m["fragments"]),
    "schema_changes": lambda m: (
        any(f["updates"] for f in m["fragments"]) and any(fld["has_default"] for fld in m["fields"])
    ),
    "optimized": lambda m: m["fragments"][0]["id"] > 3 and m["fragments"][0]["deletion"] is None,
    "auto_compacted": lambda m: len(m["fragments"]) < 10,
    "merged": lambda m: any(r["fields"] for r in m["merges"].values()),
    "empty": lambda m: m["fragments"] == [],
    "defaults_of_every_type": lambda m: sum(f["has_default"] for f in m["fields"]) == len(CASES),
    "no_columns": lambda m: m["fields"] == [] and m["fragments"][0]["rows"] == 3,
}


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_reference_reader_matches_lakefmt(
    builder: str, tmp_path: Path, reference_reader: dict[str, Any]
) -> None:
    path = str(tmp_path / builder)
    BUILDERS[builder](path)
    assert SHAPES[builder](_head(path)), f"{builder} no longer builds what it should"
    _check_same(reference_reader["read_table"](path), lakefmt.open_read_only(path).to_arrow())


def _check_same(got: pa.Table, want: pa.Table) -> None:
    """The reader's table equals lakefmt's, non-scalar columns as their storage, NaN-aware."""
    want = storage_table(want) if want.num_columns else want
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        assert same(a, b), f"{name}:\n{a}\n!=\n{b}"


@settings(max_examples=10)
@given(values=st.fixed_dictionaries({name: strategy for name, _, strategy in CASES}))
def test_reference_reader_reads_generated_defaults_of_every_type(
    tmp_path_factory: Any, reference_reader: dict[str, Any], values: dict[str, Any]
) -> None:
    path = str(tmp_path_factory.mktemp("ref") / "ds")
    _with_defaults(path, values)
    _check_same(reference_reader["read_table"](path), lakefmt.open_read_only(path).to_arrow())


def test_reference_reader_reads_format_1_defaults(
    tmp_path: Path, reference_reader: dict[str, Any]
) -> None:
    path = _v1_dataset_with_defaults(tmp_path, [(n, t, v) for n, t, v, _ in V1_CASES])
    _check_same(reference_reader["read_table"](path), lakefmt.open_read_only(path).to_arrow())
    ds = lakefmt.open(path)
    ds.append([{"a": 1, "b_renamed": "x", "c": "c", "f": "f"}])
    ds.commit()  # a format-2 manifest: the defaults re-encoded
    _check_same(reference_reader["read_table"](path), lakefmt.open_read_only(path).to_arrow())


def test_reference_reader_reads_branches_and_old_versions(
    tmp_path: Path, reference_reader: dict[str, Any]
) -> None:
    path = str(tmp_path / "ds")
    _merged(path)
    ds = lakefmt.open(path)
    ds.branch("fresh")  # no manifest of its own: reads as its fork point
    read_table, resolve = reference_reader["read_table"], reference_reader["resolve"]
    for branch in ("dev", "fresh"):
        want = lakefmt.open_read_only(path, branch=branch).to_arrow()
        assert read_table(path, branch=branch).equals(want), branch
    first = resolve(path, "main", 1)
    want = lakefmt.open_read_only(path, version=first["id"]).to_arrow()
    assert read_table(path, manifest=first).equals(want)
    find_version = reference_reader["find_version"]
    for version in ds.history:  # ids of every branch resolve as section 8.3 says
        assert find_version(path, version.id)["version"] == version.number
    dev = lakefmt.open_read_only(path, branch="dev")
    assert read_table(path, manifest=find_version(path, dev.version)).equals(dev.to_arrow())


def test_reference_reader_refuses_damaged_and_newer_manifests(
    tmp_path: Path, reference_reader: dict[str, Any]
) -> None:
    path = tmp_path / "ds"
    _multi_fragment(str(path))
    head = max((path / "_versions").glob("0*.json"))
    raw = head.read_bytes()
    head.write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="truncated"):
        reference_reader["read_table"](str(path))
    head.write_bytes(raw.replace(b'"rows":10', b'"rows":11', 1))
    with pytest.raises(ValueError, match="checksum"):
        reference_reader["read_table"](str(path))
    head.write_bytes(raw)
    load = reference_reader["load_manifest"]
    assert load(str(path), head.relative_to(path).as_posix())["version"] == int(head.stem)


def test_reference_reader_reads_every_conformance_case(
    conformance_case: Path,
    expected: dict[str, Any],
    reference_reader: dict[str, Any],
    as_json: Callable[[pa.Table], dict[str, Any]],
) -> None:
    root = str(conformance_case / "dataset")  # read only: the reader never writes
    reads = [r for r in expected["reads"] if set(r["open"]) <= {"branch"}]
    assert reads, "every case checks at least one branch head"
    for read in reads:
        table = reference_reader["read_table"](root, **read["open"])
        assert as_json(table) == {"columns": read["columns"], "rows": read["rows"]}, read["open"]
