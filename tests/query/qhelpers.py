"""Helpers for query tests: datasets with several fragments, deletions, updates, a renamed
and an added column, mirrored by a pandas frame kept up to date independently of lakefmt.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

import lakefmt
from lakefmt import types

WORDS = ["alpha", "beta", "gamma", "delta", "cat", "dog", "the", "bird"]
CLASSES = ["cat", "dog", "bird"]
DIM = 8


def png_bytes(height: int, width: int) -> bytes:
    """A small RGB PNG of the given size."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 7, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _rows(rng: np.random.Generator, start: int, n: int) -> dict[str, Any]:
    words = rng.choice(WORDS, size=(n, 3))
    return {
        "id": np.arange(start, start + n, dtype=np.int64),
        "score": np.round(rng.random(n), 3),
        "label": [CLASSES[i] for i in rng.integers(0, 3, n)],
        "name": [" ".join(w) for w in words],
        "emb": rng.standard_normal((n, DIM)).astype(np.float32),
        "tags": [list(rng.integers(0, 10, int(k))) for k in rng.integers(0, 4, n)],
        "meta": [
            {"k": {"n": int(i % 7)}, "s": WORDS[int(i % len(WORDS))]}
            for i in range(start, start + n)
        ],
    }


class Built:
    """A dataset and the pandas truth of its current rows (``truth``), plus its history."""

    def __init__(self, ds: Any, truth: pd.DataFrame, versions: dict[str, pd.DataFrame]) -> None:
        self.ds = ds
        self.truth = truth
        self.versions = versions


def build_rich(url: str, *, images: bool = False, seed: int = 0) -> Built:
    """Three fragments, a deletion in two of them, cell updates, a rename and an added column.

    Final columns: id, score, label (ClassLabel), title (renamed from name), emb (Embedding),
    tags (ragged int array), meta (Dict), extra (added later, default 5), optionally img.
    """
    rng = np.random.default_rng(seed)
    schema: dict[str, Any] = {
        "id": "int64",
        "score": "float64",
        "label": types.ClassLabel(class_names=CLASSES),
        "name": "text",
        "emb": types.Embedding(DIM),
        "tags": types.Array("int64", dimensions=1),
        "meta": types.Dict(),
    }
    if images:
        schema["img"] = types.Image(sample_compression="png")
    ds = lakefmt.create(url, schema=schema)
    ds.auto_compact = False
    frames = []
    start = 0
    for n in (40, 35, 25):
        batch = _rows(rng, start, n)
        if images:
            batch["img"] = [png_bytes(4 + i % 5, 3 + i % 4) for i in range(start, start + n)]
        ds.append(batch)
        ds.flush()
        frame = pd.DataFrame({k: list(v) for k, v in batch.items()})
        frames.append(frame)
        start += n
    truth = pd.concat(frames, ignore_index=True)
    truth["label"] = [CLASSES.index(v) for v in truth["label"]]
    ds.commit("three fragments")
    ds.tag("base")
    versions = {"base": truth.copy()}
    # deletions in two fragments (global indices at the time)
    gone = [3, 17, 41, 42, 90]
    ds.delete(gone)
    truth = truth.drop(index=gone).reset_index(drop=True)
    # cell updates
    ds["score"][[0, 50, 70]] = [9.5, 9.25, 9.75]
    truth.loc[[0, 50, 70], "score"] = [9.5, 9.25, 9.75]
    ds["name"][5] = "updated cat name"
    truth.loc[5, "name"] = "updated cat name"
    ds.commit("deletes and updates")
    versions[ds.version] = truth.copy()
    # schema evolution
    ds.rename_column("name", "title")
    truth = truth.rename(columns={"name": "title"})
    ds.add_column("extra", "int32", default_value=5)
    truth["extra"] = 5
    batch = _rows(rng, start, 6)
    batch["title"] = batch.pop("name")
    batch["extra"] = np.arange(6, dtype=np.int32)
    if images:
        batch["img"] = [png_bytes(9, 9)] * 6
    ds.append(batch)
    ds.flush()
    frame = pd.DataFrame({k: list(v) for k, v in batch.items()})
    frame["label"] = [CLASSES.index(v) for v in frame["label"]]
    truth = pd.concat([truth, frame], ignore_index=True)
    ds.commit("renamed, added, appended")
    return Built(ds, truth, versions)


def ids(view: Any) -> list[int]:
    """The ``id`` column of a view, as a list of ints."""
    return [int(i) for i in view["id"][:]] if len(view) else []
