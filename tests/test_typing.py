"""The package type-checks: mypy (configured in pyproject.toml) reports no error, and every
``type: ignore`` left in lakefmt names its error code and says why."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lakefmt"

# `# type: ignore[code, ...]` followed by `  # a reason`
_EXPLAINED_IGNORE = re.compile(r"#\s*type:\s*ignore\[[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*\]\s+#\s*\S")


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_reports_no_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "lakefmt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy found errors:\n{report}"
    assert "Success: no issues found" in report, report


def test_every_type_ignore_names_its_code_and_reason() -> None:
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"#\s*type:\s*ignore", line) and not _EXPLAINED_IGNORE.search(line):
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unexplained, (
        "each `type: ignore` needs an error code and a reason, e.g. "
        "`# type: ignore[attr-defined]  # pyarrow stubs lack X`:\n" + "\n".join(unexplained)
    )
