"""Progress bars: drawn on a terminal, silent when stderr is not one or progress=False."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt._progress import Progress, tracked


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _table(rows: int = 5_000) -> pa.Table:
    return pa.table({"n": pa.array(range(rows), pa.int64()), "s": [f"r{i}" for i in range(rows)]})


def _on_terminal(monkeypatch: pytest.MonkeyPatch) -> _FakeTerminal:
    """Replace sys.stderr by a stream that says it is a terminal.

    Called in the test body: pytest's capture resets sys.stderr between a fixture's setup and
    the test call, which would undo a patch made in a fixture.
    """
    fake = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    return fake


def test_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    terminal = _on_terminal(monkeypatch)
    ds = lakefmt.from_arrow(_table())  # progress=None: decided by isatty
    text = terminal.getvalue()
    assert "import" in text and "100%" in text and "5.00k" in text, text
    terminal.seek(0)
    terminal.truncate()
    lakefmt.to_parquet(ds, tmp_path / "o.parquet")
    lakefmt.to_csv(ds, tmp_path / "o.csv")
    text = terminal.getvalue()
    assert "export parquet" in text and "export csv" in text, text


def test_progress_false_silences_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    terminal = _on_terminal(monkeypatch)
    ds = lakefmt.from_arrow(_table(), progress=False)
    lakefmt.to_parquet(ds, tmp_path / "o.parquet", progress=False)
    lakefmt.to_csv(ds, tmp_path / "o.csv", progress=False)
    assert terminal.getvalue() == ""


def test_nothing_when_not_a_terminal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert not sys.stderr.isatty()
    ds = lakefmt.from_arrow(_table())
    lakefmt.to_parquet(ds, tmp_path / "o.parquet")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_true_forces_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    lakefmt.from_arrow(_table(), progress=True)
    assert "import" in capsys.readouterr().err


def test_progress_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _on_terminal(monkeypatch)
    with Progress(10, "work", None, unit="things") as bar:
        bar.update(4)
        bar.update(6)
    assert "work" in terminal.getvalue() and "10" in terminal.getvalue()
    assert list(tracked(iter("abc"), 3, "letters", False)) == ["a", "b", "c"]


def _run_with_tty_stderr(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe; return (code, out, err)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "COLUMNS": "120"}
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


def test_cli_shows_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(_table(), src)
    cli = [sys.executable, "-m", "lakefmt"]

    code, out, err = _run_with_tty_stderr([*cli, "import", str(src), "a"], tmp_path)
    assert code == 0, err
    assert "imported 5000 rows" in out
    assert "import" in err and "100%" in err, err

    code, out, err = _run_with_tty_stderr(
        [*cli, "export", "a", "a.parquet", "--no-progress"], tmp_path
    )
    assert code == 0 and "exported 5000 rows" in out
    assert "%" not in err, err

    piped = subprocess.run(
        [*cli, "import", str(src), "b"], cwd=tmp_path, capture_output=True, text=True
    )
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    piped = subprocess.run(
        [*cli, "export", "b", "b.csv", "--progress"], cwd=tmp_path, capture_output=True, text=True
    )
    assert piped.returncode == 0 and "export csv" in piped.stderr
