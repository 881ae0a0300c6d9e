"""Importing a Parquet file larger than the memory budget streams it: 2 GB in, < 1 GB RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SOURCE_BYTES = 2 * 1024**3
RSS_LIMIT_BYTES = 1024**3
ROWS_PER_GROUP = 1 << 18  # ~22 MB per row group


def _text_column(rng: np.random.Generator, rows: int, width: int) -> pa.Array:
    """Random lowercase strings of ``width`` characters, built without Python objects."""
    data = rng.integers(97, 123, size=rows * width, dtype=np.uint8)
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data))


def _write_big_parquet(path: Path, target_bytes: int) -> int:
    """Write random row groups until the file reaches ``target_bytes``; return the rows.

    One row group is in memory at a time, so making the file is bounded too. Random values
    and no compression keep the file as large on disk as in memory.
    """
    rng = np.random.default_rng(0)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("key", pa.int64()),
            ("text", pa.string()),
        ]
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        while path.stat().st_size < target_bytes:
            n = ROWS_PER_GROUP
            writer.write_table(
                pa.table(
                    [
                        pa.array(np.arange(rows, rows + n)),
                        pa.array(rng.random(n)),
                        pa.array(rng.standard_normal(n)),
                        pa.array(rng.integers(0, 1 << 62, n)),
                        _text_column(rng, n, 48),
                    ],
                    schema=schema,
                ),
                row_group_size=n,
            )
            rows += n
    return rows


CHILD = textwrap.dedent("""
    import resource, sys, time
    import lakefmt
    start = time.monotonic()
    ds = lakefmt.from_parquet(sys.argv[1], sys.argv[2], progress=False)
    print(len(ds), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          round(time.monotonic() - start, 1))
""")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_importing_2gb_parquet_stays_under_1gb_rss(tmp_path: Path) -> None:
    src = tmp_path / "big.parquet"
    started = time.monotonic()
    rows = _write_big_parquet(src, SOURCE_BYTES)
    size = src.stat().st_size
    assert size >= SOURCE_BYTES
    made = time.monotonic() - started

    dst = tmp_path / "imported"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, result.stderr
    imported, peak_rss, seconds = result.stdout.split()
    print(
        f"\n{size / 2**30:.2f} GiB, {rows} rows: written in {made:.0f} s, imported in {seconds} s "
        f"with peak RSS {int(peak_rss) / 2**20:.0f} MiB"
    )
    assert int(imported) == rows
    assert int(peak_rss) < RSS_LIMIT_BYTES, f"peak RSS {int(peak_rss) / 2**20:.0f} MiB"
    on_disk = sum(f.stat().st_size for f in dst.rglob("*.parquet"))
    assert on_disk > 0.8 * size  # the data really went in (random data does not compress)
    os.remove(src)
