"""Checks CI runs through the one test command: lint, layering, no stray files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff is in the [dev] extra; not installed"
)
def test_ruff_clean() -> None:
    result = subprocess.run(
        ["ruff", "check", "--quiet", "lakefmt", "tests", "benchmarks", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("lint-imports") is None, reason="import-linter is in the [dev] extra"
)
def test_layers_are_respected() -> None:
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_large_or_data_files_tracked() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        path = ROOT / name
        if not path.exists():
            continue
        assert path.stat().st_size < 1_000_000, f"{name} is too large to be in the repository"
        if name.endswith(".parquet"):
            assert name.startswith("spec/conformance/"), f"data file {name} committed"


def test_python_version() -> None:
    assert sys.version_info >= (3, 11)


def test_documentation_links_stay_inside_the_repository() -> None:
    """Every link in a Markdown file resolves to a file of this repository (users read the
    docs offline, from a clone)."""
    files = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # the documentation site's pages (docs/, built by tests/test_docs.py) are among them
    assert "docs/index.md" in files and any(n.startswith("docs/guide/") for n in files)
    broken = []
    for name in files:
        text = (ROOT / name).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith("#"):
                continue  # an anchor in the same file
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                broken.append(f"{name}: {target} (outside the repository)")
                continue
            where = target.split("#", 1)[0]
            # a link from the repository's root (docs/ pages use them), or from the file
            base = ROOT if where.startswith("/") else (ROOT / name).parent
            path = base / where.lstrip("/")
            inside = path.resolve().is_relative_to(ROOT)
            if not inside or not path.exists():
                broken.append(f"{name}: {target}")
    assert not broken, broken
