"""SIGKILL at random instants never loses committed data nor leaves a dataset unopenable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import lakefmt

# The writer reports each commit (id, rows, sum of x) on stdout as soon as it returns.
WRITER = textwrap.dedent(
    """
    import sys, lakefmt, numpy as np
    url, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    ds = lakefmt.open(url)
    step = 0
    while True:
        step += 1
        n = int(rng.integers(1, 200))
        ds.append({"x": rng.integers(0, 1000, n), "t": ["row"] * n})
        if step % 3 == 0:
            ds.flush()
        if step % 4 == 0 and len(ds) > 5:
            ds["x"][int(rng.integers(0, len(ds)))] = 7
        if step % 5 == 0 and len(ds) > 5:
            ds.delete(int(rng.integers(0, len(ds))))
        if step % 7 == 0:
            ds.optimize()
        if step % 11 == 0:
            ds.cleanup(0)
        if step % 13 == 0:
            ds.tag(f"t{seed}-{step}")
        if step % 17 == 0:
            ds.branch(f"b{seed}-{step}")
        version = ds.commit(f"step {step}")
        x = ds["x"][:]
        print(version, len(x), int(x.sum()), flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_anywhere_keeps_commits(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    ds = lakefmt.create(url, schema={"x": "int64", "t": "text"})
    ds.commit("init")
    rng = random.Random(1234)
    committed: list[tuple[str, int, int]] = []
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # Wait for the writer's first commit (import alone takes seconds on a loaded machine),
        # then kill it somewhere in the loop that follows.
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        for line in [first, *out.splitlines()]:
            if not line.strip():
                continue
            version, rows, total = line.split()
            committed.append((version, int(rows), int(total)))
        # The dataset opens at a consistent version and accepts writes again.
        reopened = lakefmt.open(url)
        x = reopened["x"][:]
        assert len(x) == len(reopened["t"][:])
        reopened.append({"x": [1], "t": ["after crash"]})
        reopened.commit(f"after crash {round_}")
    assert len(committed) >= 8, (
        f"only {len(committed)} commits: a writer died before its first commit"
    )
    for version, rows, total in committed:
        old = lakefmt.open_read_only(url, version=version)
        x = old["x"][:]
        assert (len(x), int(x.sum())) == (rows, total), version
    # Orphans from the crashes are swept by cleanup and the data stays intact.
    final = lakefmt.open(url)
    expected = final.to_arrow()
    final.cleanup(0)
    assert lakefmt.open_read_only(url).to_arrow().equals(expected)
    assert not list(Path(url, "_tmp").glob("*")) if Path(url, "_tmp").exists() else True
