"""Golden datasets of every format version still read as recorded (backward compatibility).

``spec/conformance/v<N>/<case>/dataset`` was written by the lakefmt of format version N (see
``spec/conformance/generate.py``); ``expected.json`` holds the columns and rows of each version,
tag and branch head the case checks. The current library must read all of them identically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

import lakefmt
from lakefmt.format.manifest import FORMAT_VERSION, parse_manifest

CONFORMANCE_DIR = Path(__file__).resolve().parents[2] / "spec" / "conformance"
#: Golden datasets of a format version are kept forever (about 130 KiB each); the cap keeps
#: new cases tiny.
MAX_TOTAL_BYTES = 400 * 1024


def test_there_are_golden_datasets_for_the_current_format_version() -> None:
    cases = sorted(CONFORMANCE_DIR.glob(f"v{FORMAT_VERSION}/*/expected.json"))
    assert len(cases) >= 5


def test_golden_datasets_stay_small() -> None:
    total = sum(p.stat().st_size for p in CONFORMANCE_DIR.rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES, f"spec/conformance holds {total} bytes"


def test_case_reads_as_expected(
    conformance_case: Path,
    expected: dict[str, Any],
    conformance_copy: Callable[[Path], str],
    as_json: Callable[[pa.Table], dict[str, Any]],
) -> None:
    assert expected["format_version"] <= FORMAT_VERSION
    url = conformance_copy(conformance_case)
    for read in expected["reads"]:
        ds = lakefmt.open_read_only(url, **read["open"])
        got = as_json(ds.to_arrow())
        assert got["columns"] == read["columns"], read["open"]
        assert got["rows"] == read["rows"], read["open"]
        assert len(ds) == len(read["rows"])
        assert ds.verify() == [], read["open"]


def test_case_manifests_verify(conformance_case: Path) -> None:
    root = conformance_case / "dataset"
    manifests = sorted(root.rglob("_versions/*.json"))
    assert manifests
    fmt = json.loads((root / "_lakefmt.json").read_bytes())
    for path in manifests:
        manifest = parse_manifest(path.read_bytes(), location=str(path))
        assert manifest.dataset_id == fmt["dataset_id"]
        assert f"{manifest.version:020d}.json" == path.name
        for fragment in manifest.fragments:
            for data_file in fragment.files:
                assert sum(data_file.row_groups) == fragment.rows
                assert (root / data_file.path).stat().st_size == data_file.size


def test_case_can_be_written_to_by_the_current_library(
    conformance_case: Path,
    expected: dict[str, Any],
    conformance_copy: Callable[[Path], str],
) -> None:
    url = conformance_copy(conformance_case)
    ds = lakefmt.open(url)
    before = ds.to_arrow()
    ds.optimize()
    ds.refresh()
    assert ds.to_arrow().equals(before)
    head = next(r for r in expected["reads"] if r["open"] == {})
    assert len(lakefmt.open_read_only(url)) == len(head["rows"])
