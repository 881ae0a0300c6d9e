"""Build the golden conformance datasets of the current format version.

Each case is a tiny dataset written with the public API under
``spec/conformance/<version dir>/<case>/dataset/``, plus ``<case>/expected.json``: for each
version, tag or branch head the case checks, the columns (name and Arrow type) and every row as
JSON values. ``tests/spec/test_conformance.py`` reads every case with the current library and
compares, so these files are the backward-compatibility test of the format: once a format version
is released its datasets are never regenerated (``--force`` exists for the version being
developed).

Values are chosen so that expected.json does not depend on anything random (dataset ids, file
names, timestamps). JSON encoding of values: integers and floats as JSON numbers (all floats
are exactly representable in their type), text as strings, bytes as ``{"$base64": "..."}``,
null as ``null``.

Usage (from the repository root)::

    python spec/conformance/generate.py            # refuses to overwrite existing cases
    python spec/conformance/generate.py --force    # rebuild (only for an unreleased version)
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def encode_value(value: Any) -> Any:
    """A row value as JSON (bytes as ``{"$base64": ...}``)."""
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    return value


def snapshot(ds: Any) -> dict[str, Any]:
    """Columns and rows of a dataset handle, JSON-encoded."""
    table = ds.to_arrow()
    return {
        "columns": [{"name": f.name, "arrow_type": str(f.type)} for f in table.schema],
        "rows": [[encode_value(v) for v in row.values()] for row in table.to_pylist()],
    }


# -- cases ---------------------------------------------------------------------------------------
# Each case builds its dataset at ``path`` and returns (description, list of reads). A read is
# {"open": {...keyword arguments of lakefmt.open_read_only...}} and gets "columns"/"rows" added.

SCALAR_SCHEMA = {
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
    "u8": "uint8",
    "u16": "uint16",
    "u32": "uint32",
    "u64": "uint64",
    "f16": "float16",
    "f32": "float32",
    "f64": "float64",
    "flag": "bool",
    "text": "text",
    "blob": "bytes",
}


def case_scalars(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    ds = lakefmt.create(path, schema=SCALAR_SCHEMA)
    ds.append(
        {
            "i8": [-128, 0, 127, None],
            "i16": [-32768, 1, 32767, None],
            "i32": [-(2**31), 2, 2**31 - 1, None],
            "i64": [-(2**63), 3, 2**63 - 1, None],
            "u8": [0, 1, 255, None],
            "u16": [0, 2, 65535, None],
            "u32": [0, 3, 2**32 - 1, None],
            "u64": [0, 4, 2**64 - 1, None],
            "f16": [-1.5, 0.0, 65504.0, None],
            "f32": [-2.25, 0.5, 3.0e38, None],
            "f64": [-1e300, 0.125, 1e300, None],
            "flag": [True, False, True, None],
            "text": ["", "héllo", "日本語 ✓", None],
            "blob": [b"", b"\x00\x01\xff", b"lakefmt", None],
        }
    )
    created = ds.history[0].id
    first = ds.commit("every scalar type")
    return "one fragment holding every scalar type, with extremes and a null row", [
        {"open": {}},
        {"open": {"version": first}},
        {"open": {"version": created}},
    ]


def case_deletions_updates(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    ds = lakefmt.create(path, schema={"id": "int32", "name": "text", "score": "float64"})
    ds.auto_compact = False
    for start in (0, 10, 20):  # three fragments of ten rows
        ds.append(
            {
                "id": list(range(start, start + 10)),
                "name": [f"n{i}" for i in range(start, start + 10)],
                "score": [i / 4 for i in range(start, start + 10)],
            }
        )
        ds.flush()
    three = ds.commit("three fragments")
    ds.delete([0, 5, 15])  # deletion files in fragments 0 and 1
    ds["score"][3] = -1.0  # one cell: an update file
    ds["name"][17] = None  # a null through an update file
    edited = ds.commit("deletions and updates")
    ds["score"][17:27] = [100.0 + i for i in range(10)]  # all of fragment 2: a new column group
    ds.delete(0)  # a second deletion in fragment 0 (the union is written)
    ds.commit("column group rewrite")
    return "three fragments; deletion files, update files and a whole-column rewrite", [
        {"open": {}},
        {"open": {"version": three}},
        {"open": {"version": edited}},
    ]


def case_schema_evolution(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    ds = lakefmt.create(path, schema={"a": "int64", "b": "text", "c": "float32"})
    ds.append({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})
    initial = ds.commit("initial")
    ds.add_column("d", "int16", default_value=7)
    ds.add_column("e", "bytes", default_value=b"\x00\xfe")
    ds.add_column("f", "text")  # no default: old rows read null
    ds.append({"a": [3], "b": ["z"], "c": [2.5], "f": ["set"]})  # d, e from their defaults
    ds.append({"a": [4], "b": ["w"], "c": [3.5], "d": [-1], "e": [b"e"], "f": [None]})
    ds.commit("added columns")
    ds.rename_column("b", "b_renamed")
    ds.remove_column("c")
    ds.add_column("c", "text", default_value="new c")  # the old name, a new field id and type
    ds["d"][0] = 70  # an update of a column no data file of fragment 0 holds
    ds.commit("renamed, removed, re-added")
    return "added columns with and without defaults, rename, drop, re-add of a dropped name", [
        {"open": {}},
        {"open": {"version": initial}},
    ]


def case_refs_merge(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    ds = lakefmt.create(path, schema={"k": "int64", "v": "text"})
    ds.append({"k": list(range(6)), "v": [f"m{i}" for i in range(6)]})
    base = ds.commit("base")
    ds.tag("base", message="before the branch")
    ds.branch("dev")
    dev = lakefmt.open(path, branch="dev")
    dev.append({"k": [100, 101], "v": ["d0", "d1"]})
    dev["v"][1] = "dev-edit"
    dev.delete(4)
    dev.add_column("extra", "int32", default_value=-1)
    dev.commit("dev work")
    ds.append({"k": [50], "v": ["m50"]})
    ds["v"][2] = "main-edit"
    ds.commit("main work")
    ds.merge("dev")
    ds.tag("merged")
    return "a tag, a branch with appends/update/delete/new column, main changes, a merge", [
        {"open": {}},
        {"open": {"version": base}},
        {"open": {"version": "base"}},
        {"open": {"version": "merged"}},
        {"open": {"branch": "dev"}},
    ]


def case_optimized(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    ds = lakefmt.create(path, schema={"n": "uint16", "s": "text"})
    for i in range(9):  # the 8th flush triggers automatic compaction of 8 tiny fragments
        ds.append({"n": [2 * i, 2 * i + 1], "s": [f"s{2 * i}", f"s{2 * i + 1}"]})
        ds.flush()
    ds.delete([1, 10])
    ds["s"][0] = "first"
    before = ds.commit("before optimize")
    after = ds.optimize()
    ds.append({"n": [1000], "s": ["after"]})
    ds.commit("appended after optimize")
    return "automatic tiered compaction, then optimize() over deletions and updates", [
        {"open": {}},
        {"open": {"version": before}},
        {"open": {"version": after}},
    ]


def case_empty(path: str) -> tuple[str, list[dict[str, Any]]]:
    import lakefmt

    created = lakefmt.create(path, schema={"x": "int64", "y": "text"}).version
    reads = [{"open": {}}, {"open": {"version": created}}]
    return "a created dataset with a schema and no rows", reads


CASES: dict[str, Callable[[str], tuple[str, list[dict[str, Any]]]]] = {
    "scalars": case_scalars,
    "deletions_updates": case_deletions_updates,
    "schema_evolution": case_schema_evolution,
    "refs_merge": case_refs_merge,
    "optimized": case_optimized,
    "empty": case_empty,
}


def build(case: str, target: Path) -> None:
    """Build one case under ``target`` (``dataset/`` and ``expected.json``)."""
    import lakefmt

    dataset = target / "dataset"
    description, reads = CASES[case](str(dataset))
    for read in reads:
        read.update(snapshot(lakefmt.open_read_only(str(dataset), **read["open"])))
    shutil.rmtree(dataset / "_tmp", ignore_errors=True)  # staging only; git keeps no empty folders
    expected = {
        "case": case,
        "description": description,
        "format_version": lakefmt.FORMAT_VERSION,
        "written_by": f"lakefmt {lakefmt.__version__}",
        "reads": reads,
    }
    (target / "expected.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    """Build every case (or the ones named) of one format version folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"cases to build (default: all of {list(CASES)})")
    parser.add_argument(
        "--version-dir", default=None, help="folder under spec/conformance/ (default: v<format>)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing cases")
    args = parser.parse_args(argv)
    if args.version_dir is None:
        import lakefmt

        args.version_dir = f"v{lakefmt.FORMAT_VERSION}"
    for case in args.cases or list(CASES):
        if case not in CASES:
            parser.error(f"unknown case {case!r}")
        target = HERE / args.version_dir / case
        if target.exists():
            if not args.force:
                print(f"{target} exists; not rebuilt (use --force)", file=sys.stderr)
                continue
            shutil.rmtree(target)
        target.mkdir(parents=True)
        build(case, target)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"wrote {target} ({size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
