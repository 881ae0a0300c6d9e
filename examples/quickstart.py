"""Quick start: create a dataset, append rows, commit, read them back, travel in time.

Run with ``python examples/quickstart.py [URL]`` (default: a fresh ``tmp://`` dataset).
"""

from __future__ import annotations

import sys

import numpy as np

import lakefmt
from lakefmt import types


def main(url: str = "tmp://") -> None:
    """Build a small dataset at ``url`` and show the main operations."""
    ds = lakefmt.create(
        url,
        schema={
            "id": types.Int64(),
            "caption": types.Text(),
            "score": types.Float32(),
        },
    )
    rng = np.random.default_rng(0)
    # Column batches are the fast path; a list of row dicts works too.
    ds.append(
        {
            "id": np.arange(1000),
            "caption": [f"photo {i}" for i in range(1000)],
            "score": rng.random(1000, dtype=np.float32),
        }
    )
    ds.append([{"id": 1000, "caption": "one more", "score": 0.5}])
    first = ds.commit("initial rows")
    print(f"committed {first}: {len(ds)} rows")

    ds["score"][0] = 1.0
    ds.delete(1)
    second = ds.commit("fix a score, drop a row")
    print(f"committed {second}: {len(ds)} rows; score[0] = {ds['score'][0]}")

    total = sum(len(batch["id"]) for batch in ds.batches(256))
    print(f"read {total} rows in batches of 256")

    old = lakefmt.open_read_only(ds.url, version=first)
    print(f"version {first} still has {len(old)} rows; history: {[v.id for v in ds.history]}")
    assert len(old) == 1001 and len(ds) == 1000 and total == 1000

    table = ds.to_arrow()
    print(f"as Arrow: {table.num_rows} rows, columns {table.column_names}")
    ds.summary()


if __name__ == "__main__":
    main(*sys.argv[1:])
