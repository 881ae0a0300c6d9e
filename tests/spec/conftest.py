"""Fixtures for the specification tests: paths of spec/, the reference reader of format.md."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO_ROOT / "spec"
FORMAT_MD = SPEC_DIR / "format.md"
CONFORMANCE_DIR = SPEC_DIR / "conformance"
BEGIN_MARK = "<!-- BEGIN reference-reader -->"
END_MARK = "<!-- END reference-reader -->"


def reference_reader_source() -> str:
    """The Python code block between the reference-reader markers of ``spec/format.md``."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert text.count(BEGIN_MARK) == 1 and text.count(END_MARK) == 1, "markers missing"
    block = text[text.index(BEGIN_MARK) + len(BEGIN_MARK) : text.index(END_MARK)]
    head, sep, rest = block.partition("```python\n")
    assert sep and not head.strip(), "the markers must enclose exactly one ```python block"
    code, sep, tail = rest.rpartition("```")
    assert sep and not tail.strip(), "the ```python block must end before the END marker"
    return code


@pytest.fixture(scope="session")
def reference_reader() -> dict[str, Any]:
    """The namespace of the reference reader (``read_table``, ``resolve``, ...), exec'd."""
    namespace: dict[str, Any] = {"__name__": "lakefmt_reference_reader"}
    exec(compile(reference_reader_source(), f"{FORMAT_MD}#reference-reader", "exec"), namespace)
    return namespace


def conformance_cases() -> list[Path]:
    """Every ``spec/conformance/v<N>/<case>/`` folder that has an ``expected.json``."""
    return sorted(p.parent for p in CONFORMANCE_DIR.glob("v*/*/expected.json"))


def case_id(path: Path) -> str:
    """``v1/scalars`` for a case folder."""
    return f"{path.parent.name}/{path.name}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``conformance_case`` once per golden dataset."""
    if "conformance_case" in metafunc.fixturenames:
        cases = conformance_cases()
        metafunc.parametrize("conformance_case", cases, ids=[case_id(c) for c in cases])


@pytest.fixture
def expected(conformance_case: Path) -> dict[str, Any]:
    """The parsed ``expected.json`` of the case under test."""
    return json.loads((conformance_case / "expected.json").read_text(encoding="utf-8"))


def encode_value(value: Any) -> Any:
    """A row value as expected.json writes it (bytes as ``{"$base64": ...}``)."""
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    return value


def table_as_json(table: Any) -> dict[str, Any]:
    """Columns and rows of a pyarrow Table in expected.json's form."""
    return {
        "columns": [{"name": f.name, "arrow_type": str(f.type)} for f in table.schema],
        "rows": [[encode_value(v) for v in row.values()] for row in table.to_pylist()],
    }


@pytest.fixture(scope="session")
def as_json():  # type: ignore[no-untyped-def]
    """:func:`table_as_json`, as a fixture (test modules cannot import this conftest)."""
    return table_as_json


@pytest.fixture
def conformance_copy(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a case's dataset to a temporary folder, so no test can touch the golden files."""

    def copy(case: Path) -> str:
        target = tmp_path / case.name
        shutil.copytree(case / "dataset", target)
        return str(target)

    return copy
