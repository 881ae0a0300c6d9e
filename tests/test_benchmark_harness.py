"""A smoke run of the benchmark harness at ``--scale tiny`` (the benchmark itself is not a
test): every workload runs on lakefmt and the floor, and every answer checks out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "benchmarks" / "harness.py"


def test_tiny_harness_run_gives_right_answers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--scale",
            "tiny",
            "--engines",
            "floor,numpy,lakefmt",
            "--no-write",
            "--data",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    header, rows = table[0], table[2:]
    assert header.split("|")[1:4] == [" workload ", " floor ", " numpy "]
    assert len(rows) >= 15
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        lakefmt_cell = cells[3]
        # a wrong answer or a failed workload never shows as a figure
        assert "WRONG" not in row and "n/a" not in lakefmt_cell and "FAILED" not in row, row
        assert lakefmt_cell and lakefmt_cell != "-", row
