"""``lakefmt ... | head -1``: a closed standard output ends the command quietly (issue 14,
defect 9), like Unix tools killed by SIGPIPE, instead of ``error: [Errno 32] Broken pipe``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lakefmt.cli import EXIT_CLOSED_PIPE
from tests.cli.conftest import CLI_ENV

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")


def _with_closed_stdout(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m lakefmt ARGS`` with stdout a pipe whose read end is already closed."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "lakefmt", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env=CLI_ENV,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        ["info", "{ds}"],
        ["log", "{ds}"],
        ["query", "{ds}", "SELECT * WHERE id >= 0"],
    ],
)
def test_closed_stdout_exits_quietly(sample_ds: str, args: list[str]) -> None:
    done = _with_closed_stdout(*(a.format(ds=sample_ds) for a in args))
    assert done.stderr.decode() == ""
    assert done.returncode == EXIT_CLOSED_PIPE


def test_pipe_to_head(sample_ds: str) -> None:
    """The user's command line: one line printed, nothing on stderr, not exit code 1."""
    status = 'echo "status=${PIPESTATUS[0]}"'
    cmd = f'"{sys.executable}" -m lakefmt info "{sample_ds}" | head -1; {status}'
    done = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, env=CLI_ENV, timeout=120
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("dataset")
    assert lines[-1] in ("status=0", f"status={EXIT_CLOSED_PIPE}")  # head may read it all first
    assert done.stderr == ""


def test_errors_still_reach_stderr_with_a_closed_stdout(sample_ds: str) -> None:
    done = _with_closed_stdout("info", sample_ds + "-missing")
    assert done.returncode == 1
    assert "no lakefmt dataset" in done.stderr.decode()
