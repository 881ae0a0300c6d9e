"""Every example runs and prints what it checked; README snippets run too."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: examples that need a package outside the [dev] extra -> that package
NEEDS = {"image_classification.py": "torch"}


def _example(path: Path) -> object:
    needed = NEEDS.get(path.name)
    if needed is None:
        return path
    missing = importlib.util.find_spec(needed) is None
    reason = (
        f"{path.name} needs {needed}, which is not installed (optional, not in [dev]): the "
        "README's set-up section shows the CPU install"
    )
    return pytest.param(path, marks=pytest.mark.skipif(missing, reason=reason))


EXAMPLES = [_example(p) for p in sorted((ROOT / "examples").glob("*.py"))]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), f"{path.name} printed nothing"


def test_quickstart_output() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "1000 rows" in result.stdout and "history" in result.stdout


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"README block failed:\n{block}\n{result.stderr}"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    assert commands[0].startswith("pip install") and "examples/quickstart.py" in commands[0]
    assert commands[1] in ci  # CI runs exactly the README's test command
