"""Hugging Face ``datasets`` in and out (issue 19): lakefmt against Lance and ``datasets``.

    python benchmarks/huggingface.py --images 2000 --repeat 3

Builds one ``datasets.Dataset`` of ``--images`` JPEGs (256x256, smooth gradients with noise,
~20 KB each, as photos compress), a ``ClassLabel`` (Zipf-distributed over 10 classes) and a
caption, then times, best of ``--repeat``:

* import: ``lakefmt.from_huggingface(hf, dir)`` against ``lance.write_dataset(hf, dir)``,
  both into a local directory, and lakefmt from the same rows as a streaming
  ``IterableDataset`` (``hf.to_iterable_dataset()``, made once, untimed);
* export: ``ds.to_huggingface()`` and ``lakefmt.to_huggingface_parquet`` against
  ``hf.to_parquet`` of the original (the floor: ``datasets`` writing its own table).

Lance (pylance) is a comparator only, never a dependency. Prints a markdown table of ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import machine, table

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_images(n: int, rng: np.random.Generator) -> list[bytes]:
    """``n`` distinct 256x256 JPEGs: gradients plus noise (as photos compress, ~20 KB)."""
    from PIL import Image

    y, x = np.mgrid[0:256, 0:256]
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([x * a, y * b, (x + y) * c / 2], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def best(fn: Callable[[], Any], repeat: int, reset: Callable[[], None]) -> float:
    """Best wall time of ``repeat`` runs, ``reset()`` (untimed) before each."""
    times = []
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import datasets
    import lance

    import lakefmt

    rng = np.random.default_rng(19)
    images = make_images(args.images, rng)
    labels = np.minimum(rng.zipf(1.6, args.images) - 1, 9).tolist()
    words = ["a", "cat", "dog", "on", "the", "grass", "near", "red", "car", "sofa"]
    captions = [" ".join(rng.choice(words, 6)) for _ in range(args.images)]
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[f"c{i}" for i in range(10)]),
            "caption": datasets.Value("string"),
        }
    )
    hf = datasets.Dataset.from_dict(
        {"image": images, "label": labels, "caption": captions}, features=features
    )
    mb = sum(len(b) for b in images) / 1e6
    root = tempfile.mkdtemp(prefix="bench-hf-")
    target = os.path.join(root, "ds")

    def clear() -> None:
        shutil.rmtree(target, ignore_errors=True)

    t_lance = best(lambda: lance.write_dataset(hf, target), args.repeat, clear)
    t_lake = best(lambda: lakefmt.from_huggingface(hf, target, progress=False), args.repeat, clear)
    streaming = hf.to_iterable_dataset()  # made once: datasets takes ~1 s to make it
    t_stream = best(
        lambda: lakefmt.from_huggingface(streaming, target, progress=False), args.repeat, clear
    )
    clear()
    ds = lakefmt.from_huggingface(hf, target, progress=False)
    out = os.path.join(root, "out.parquet")

    def rm_out() -> None:
        if os.path.exists(out):
            os.remove(out)

    t_floor_pq = best(lambda: hf.to_parquet(out), args.repeat, rm_out)
    t_pq = best(
        lambda: lakefmt.to_huggingface_parquet(ds, out, progress=False), args.repeat, rm_out
    )
    t_to_hf = best(ds.to_huggingface, args.repeat, lambda: None)
    t_arrow = best(ds.to_arrow, args.repeat, lambda: None)
    shutil.rmtree(root, ignore_errors=True)

    def rate(seconds: float) -> str:
        return f"{args.images / seconds:,.0f} img/s ({mb / seconds:,.0f} MB/s)"

    rows = [
        ["import: lance.write_dataset(hf)", rate(t_lance), "1.00x"],
        ["import: lakefmt.from_huggingface(hf)", rate(t_lake), f"{t_lance / t_lake:.2f}x"],
        [
            "import: from_huggingface(IterableDataset)",
            rate(t_stream),
            f"{t_lance / t_stream:.2f}x",
        ],
        ["export: hf.to_parquet (datasets, floor)", rate(t_floor_pq), "1.00x"],
        ["export: to_huggingface_parquet(ds)", rate(t_pq), f"{t_floor_pq / t_pq:.2f}x"],
        ["ds.to_arrow() (floor of to_huggingface)", rate(t_arrow), "1.00x"],
        ["ds.to_huggingface()", rate(t_to_hf), f"{t_arrow / t_to_hf:.2f}x"],
    ]
    print(
        f"{args.images} JPEGs 256x256 ({mb:.1f} MB), ClassLabel + caption; best of "
        f"{args.repeat}; {machine()}; datasets {datasets.__version__}, pylance "
        f"{lance.__version__}. Ratios > 1: lakefmt is faster than the row above it.\n"
    )
    print(table(rows, ["workload", "throughput", "vs the first row of its group"]))


if __name__ == "__main__":
    main()
