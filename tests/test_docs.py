"""The documentation site builds without a warning, and every Python example in it runs.

``mkdocs build --strict`` turns every warning (a broken link or anchor, a page missing from the
navigation, a docstring griffe cannot parse, an API object that does not exist) into a failure.
The site needs the ``docs`` extra (part of ``dev``); without it the build test is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# a block right after this comment is shown, not run (it needs a cloud bucket, say)
NOT_RUN = re.compile(r"^<!-- not run: [^>]+ -->\n```python\n.*?^```", re.S | re.M)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(
    not (_has("mkdocs") and _has("mkdocstrings_handlers.python") and _has("material")),
    reason="the docs tools are in the [docs] extra (part of [dev]); not installed",
)
def test_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner, not a warning of ours
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    # the spec is part of the site, and the reference was generated from the docstrings
    assert (site / "spec" / "format" / "index.html").is_file()
    assert (site / "spec" / "types" / "index.html").is_file()
    reference = (site / "reference" / "dataset" / "index.html").read_text(encoding="utf-8")
    assert 'id="lakefmt.Dataset.append"' in reference


def test_every_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [p.relative_to(DOCS).as_posix() for p in PAGES]
    missing = [name for name in missing if f" {name}" not in config]
    assert not missing, f"pages not listed in mkdocs.yml's nav: {missing}"


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if PYTHON_BLOCK.search(p.read_text(encoding="utf-8"))],
    ids=lambda p: p.relative_to(DOCS).as_posix(),
)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    """The Python blocks of a page run in order, as one script (later blocks use earlier ones)."""
    text = NOT_RUN.sub("", page.read_text(encoding="utf-8"))
    script = "\n".join(PYTHON_BLOCK.findall(text))
    if "import torch" in script and not _has("torch"):
        pytest.skip("this page's examples need torch (pip install torch, a CPU build is enough)")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{page.name}:\n{result.stdout}\n{result.stderr}"


def test_install_commands_match_the_readme() -> None:
    def commands(text: str) -> list[str]:
        return [c for c in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M) if "-e " in c]

    readme = commands((ROOT / "README.md").read_text())
    index = commands((DOCS / "index.md").read_text())
    assert readme[:2] == index[:2], "docs/index.md must show the README's two set-up commands"
