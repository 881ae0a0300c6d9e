"""The JSON Schemas in spec/schemas/ match the pydantic models, and real manifests match them."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from lakefmt.format.manifest import Manifest

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"
SCHEMA_FILE = SPEC_DIR / "schemas" / "manifest.schema.json"


def _generator() -> dict[str, object]:
    return runpy.run_path(str(SPEC_DIR / "schemas" / "generate.py"), run_name="spec_schemas")


def test_manifest_schema_file_is_current() -> None:
    expected = json.dumps(Manifest.model_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "spec/schemas/manifest.schema.json is stale: run `python spec/schemas/generate.py` "
        "and update spec/format.md section 6.2 to match the model change"
    )


def test_generator_renders_the_committed_files() -> None:
    generator = _generator()
    for name, render in generator["SCHEMAS"].items():  # type: ignore[union-attr]
        assert (SPEC_DIR / "schemas" / name).read_text(encoding="utf-8") == render(), name


def test_manifests_validate_against_the_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import lakefmt

    path = str(tmp_path / "ds")
    ds = lakefmt.create(path, schema={"a": "int64", "b": "text"})
    ds.append({"a": [1, 2, 3, 4, 5], "b": ["x", "y", "z", "u", "v"]})
    ds.commit("rows")
    ds.delete(0)
    ds["b"][1] = "updated"
    ds.add_column("c", "bytes", default_value=b"\x01")
    ds.commit("edits")
    ds.branch("dev")
    dev = lakefmt.open(path, branch="dev")
    dev.append({"a": [9], "b": ["dev"]})
    dev.commit("dev")
    ds.merge("dev")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    manifests = sorted(Path(path).rglob("_versions/*.json"))
    golden = sorted((SPEC_DIR / "conformance").rglob("_versions/*.json"))
    assert len(manifests) > 5 and golden
    for manifest in manifests + golden:
        data = json.loads(manifest.read_bytes())
        errors = sorted(validator.iter_errors(data), key=str)
        assert not errors, f"{manifest}: {errors[0].message}"
