"""PyTorch loader: a DataLoader over ``ds.pytorch()`` vs one over a plain Dataset of JPEG bytes.

    python benchmarks/loader.py --images 20000 --repeat 3     # the figures in RESULTS.md
    python benchmarks/loader.py --images 20000 --repeat 3 --shuffle   # and with --batched
    python benchmarks/loader.py                                # a smoke run (seconds)

Generates ``--images`` deterministic 256x256 JPEGs (``media.make_jpegs``, about 15 KB each),
writes them with an ``int64`` id to an ``Image("uint8", "jpeg")`` column of a dataset on
local disk (a temporary directory), then iterates one epoch of a ``torch.utils.data.DataLoader``
with ``batch_size=--batch`` for each ``num_workers`` in ``--workers`` (0, 1, 2), over:

* **lakefmt**: ``ds.pytorch(transform=..., columns=["image", "id"])``, the DataLoader
  collating rows into batches, as a user writes it (with ``--batched``:
  ``ds.pytorch(batch_size=--batch)`` stacks the batches itself, ``DataLoader(batch_size=None)``);
* **floor**: a plain map-style ``torch.utils.data.Dataset`` over the same JPEG bytes kept in
  a Python list, decoding each with Pillow in ``__getitem__``, same DataLoader settings.

Both apply the same light transform: HWC ``uint8`` to a CHW ``float32`` tensor in [0, 1]
(plus the image's ``uint8`` pixel sum, so that the answer can be checked). Each epoch is timed
from ``iter(loader)`` (worker start-up included, as a user sees it) to the last batch, and
its CPU time is the user+system time of this process (``os.times()``) plus that of its
reaped children, the DataLoader workers (``getrusage(RUSAGE_CHILDREN)``). Utilisation is
that CPU time / (wall time x cores), cores being the CPUs this process may run on; each
worker's own CPU time is sampled from ``/proc`` while it runs. On a shared machine the
"others" column is the CPU other processes took meanwhile (from ``/proc/stat``): when it
is high, low utilisation is contention, not the loader.

Answers are checked on every epoch: every id exactly once, the pixel checksum equal to the
floor's, and the first batch's tensors equal to the floor's tensors for the same ids.
Prints a markdown table; the main figures are ratios (lakefmt / floor images per second,
and utilisation; the issue aims at >= 1.8 of 2 cores with ``num_workers=2``).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine, table
from media import SIDE, make_jpegs

import lakefmt
from lakefmt import types

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# decoded arrays may be read-only; the transform copies them into a new float tensor anyway
warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)


# -- the transform and the floor -----------------------------------------------------------------


def to_chw(image: np.ndarray) -> torch.Tensor:
    """HWC ``uint8`` array -> CHW ``float32`` tensor in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255)


def lakefmt_transform(row: dict[str, Any]) -> dict[str, Any]:
    """The transform given to ``ds.pytorch``: tensor, id and pixel sum of one row."""
    image = row["image"]
    return {"image": to_chw(image), "id": int(row["id"]), "sum": int(image.sum(dtype=np.int64))}


def lakefmt_batch_transform(batch: dict[str, Any]) -> dict[str, Any]:
    """The transform for ``ds.pytorch(batch_size=...)``: the same, on a stacked batch."""
    images = batch["image"]  # (B, H, W, C) uint8
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255),
        "id": torch.from_numpy(np.asarray(batch["id"], dtype=np.int64)),
        "sum": torch.from_numpy(images.reshape(len(images), -1).sum(axis=1, dtype=np.int64)),
    }


class JpegBytesDataset(torch.utils.data.Dataset):  # type: ignore[misc]
    """The floor: JPEG bytes in a list, decoded with Pillow, the same transform."""

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs = jpegs

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from PIL import Image

        with Image.open(io.BytesIO(self.jpegs[i])) as im:
            image = np.asarray(im.convert("RGB"))
        return {"image": to_chw(image), "id": i, "sum": int(image.sum(dtype=np.int64))}


# -- measuring ---------------------------------------------------------------------------------


def _proc_usage(pid: int) -> tuple[float, int] | None:
    """User+system CPU seconds and resident bytes of a live process, from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command: state is fields[0], utime [11], stime [12], rss in pages [21]
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[21]) * _PAGE


def _system_busy() -> float | None:
    """CPU seconds all processes have spent busy since boot (None without ``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK  # guest time is already in user


def _cpu_now() -> float:
    t = os.times()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t.user + t.system + children.ru_utime + children.ru_stime


class _WorkerSampler:
    """Polls the CPU time of this process's live children (the DataLoader workers)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.peak_rss: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for child in multiprocessing.active_children():
                pid = child.pid
                if pid is None:
                    continue
                usage = _proc_usage(pid)
                if usage is not None:
                    self.cpu[pid] = usage[0]
                    self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), usage[1])
            if self._stop.wait(self.interval):
                return


@dataclass
class Epoch:
    """One timed epoch: wall time, CPU, answers."""

    wall: float
    cpu: float
    others: float | None
    first_batch: float
    workers_cpu: list[float] = field(default_factory=list)
    workers_rss: list[int] = field(default_factory=list)
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    checksum: int = 0
    sample: dict[int, torch.Tensor] = field(default_factory=dict)


def run_epoch(loader: torch.utils.data.DataLoader) -> Epoch:
    """Iterate ``loader`` once; time it, count its CPU and collect ids and checksums."""
    ids: list[torch.Tensor] = []
    checksum = 0
    sample: dict[int, torch.Tensor] = {}
    first_batch = 0.0
    busy0 = _system_busy()
    cpu0 = _cpu_now()
    with _WorkerSampler() as sampler:
        start = time.perf_counter()
        for batch in loader:
            if not ids:
                first_batch = time.perf_counter() - start
                sample = {
                    int(i): t.clone() for i, t in zip(batch["id"], batch["image"], strict=True)
                }
            ids.append(batch["id"])
            checksum += int(batch["sum"].sum())
        wall = time.perf_counter() - start
    cpu = _cpu_now() - cpu0  # the workers were shut down and reaped when the iterator ended
    busy1 = _system_busy()
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0) - cpu)
    return Epoch(
        wall=wall,
        cpu=cpu,
        others=others,
        first_batch=first_batch,
        workers_cpu=[sampler.cpu[pid] for pid in sorted(sampler.cpu)],
        workers_rss=[sampler.peak_rss[pid] for pid in sorted(sampler.peak_rss)],
        ids=torch.cat(ids).numpy() if ids else np.empty(0, np.int64),
        checksum=checksum,
        sample=sample,
    )


# -- the runs ------------------------------------------------------------------------------------


def write_dataset(url: str, jpegs: list[bytes]) -> None:
    """The JPEGs and their ids as a committed dataset at ``url``."""
    ds = lakefmt.create(url, schema={"image": types.Image("uint8", "jpeg"), "id": "int64"})
    for lo in range(0, len(jpegs), 1000):
        chunk = jpegs[lo : lo + 1000]
        ds.append({"image": chunk, "id": np.arange(lo, lo + len(chunk), dtype=np.int64)})
    ds.commit("images")


def loaders(
    url: str,
    jpegs: list[bytes],
    workers: int,
    batch: int,
    shuffle: bool,
    context: str | None,
    batched: bool = False,
) -> dict[str, torch.utils.data.DataLoader]:
    """The two DataLoaders, with the same settings (``batched``: lakefmt stacks batches)."""
    options: dict[str, Any] = {"batch_size": batch, "num_workers": workers}
    if workers:
        options["multiprocessing_context"] = context
    ds = lakefmt.open_read_only(url)
    if batched:
        tds = ds.pytorch(
            transform=lakefmt_batch_transform,
            batch_size=batch,
            shuffle=shuffle,
            columns=["image", "id"],
        )
        lakefmt_loader = torch.utils.data.DataLoader(tds, **{**options, "batch_size": None})
    else:
        tds = ds.pytorch(transform=lakefmt_transform, shuffle=shuffle, columns=["image", "id"])
        lakefmt_loader = torch.utils.data.DataLoader(tds, **options)
    return {
        "lakefmt": lakefmt_loader,
        "floor": torch.utils.data.DataLoader(JpegBytesDataset(jpegs), shuffle=shuffle, **options),
    }


def check(side: str, epoch: Epoch, n: int, floor_checksum: int, jpegs: list[bytes]) -> None:
    """Every id exactly once, the floor's pixel checksum, the floor's tensors."""
    ids = np.sort(epoch.ids)
    assert len(ids) == n and np.array_equal(ids, np.arange(n)), f"{side}: rows lost or repeated"
    assert epoch.checksum == floor_checksum, f"{side}: checksum {epoch.checksum} != floor's"
    floor = JpegBytesDataset(jpegs)
    for i, tensor in epoch.sample.items():
        assert torch.equal(tensor, floor[i]["image"]), f"{side}: row {i} differs from the floor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images in the dataset")
    parser.add_argument("--batch", type=int, default=64, help="DataLoader batch_size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="epochs per case; best is kept")
    parser.add_argument("--shuffle", action="store_true", help="shuffle=True on both sides")
    parser.add_argument(
        "--batched",
        action="store_true",
        help="lakefmt side: ds.pytorch(batch_size=--batch) and DataLoader(batch_size=None)",
    )
    parser.add_argument(
        "--start-method",
        choices=["fork", "spawn", "forkserver"],
        default=None,
        help="how workers start (default: the platform's); spawn pickles the datasets",
    )
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    jpegs = make_jpegs(args.images)
    n = args.images
    total_mb = sum(map(len, jpegs)) / 1e6
    method = args.start_method or multiprocessing.get_start_method()
    print(
        f"{machine()}; {n} JPEGs of {SIDE}x{SIDE}, {total_mb:.1f} MB; batch_size={args.batch}, "
        f"shuffle={args.shuffle}, lakefmt "
        f"{'stacks batches' if args.batched else 'hands out rows'}, workers start by {method}, "
        f"torch {torch.__version__}"
    )

    floor = JpegBytesDataset(jpegs)  # the checksum every side must reach
    expected = sum(floor[i]["sum"] for i in range(n))

    root = Path(tempfile.mkdtemp(prefix="lakefmt-bench-loader-"))
    best: dict[tuple[str, int], Epoch] = {}
    try:
        url = str(root / "images")
        write_dataset(url, jpegs)
        lakefmt.open_read_only(url)["image"][0]  # one-time imports out of the first epoch
        for workers in args.workers:
            for _ in range(args.repeat):
                built = loaders(
                    url, jpegs, workers, args.batch, args.shuffle, args.start_method, args.batched
                )
                for side, loader in built.items():  # interleaved: both see the same noise
                    epoch = run_epoch(loader)
                    check(side, epoch, n, expected, jpegs)
                    key = (side, workers)
                    if key not in best or epoch.wall < best[key].wall:
                        best[key] = epoch
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    for workers in args.workers:
        lf, fl = best[("lakefmt", workers)], best[("floor", workers)]
        rows.append(
            [
                str(workers),
                f"{n / lf.wall:,.0f}",
                f"{n / fl.wall:,.0f}",
                f"{fl.wall / lf.wall:.2f}x",
                f"{lf.cpu / lf.wall:.2f} of {cores}",
                f"{fl.cpu / fl.wall:.2f} of {cores}",
                f"{lf.cpu * 1e3 / n:.1f} / {fl.cpu * 1e3 / n:.1f}",
                _others(lf, fl),
            ]
        )
    header = [
        "num_workers",
        "lakefmt images/s",
        "floor images/s",
        "lakefmt / floor",
        "lakefmt cores busy",
        "floor cores busy",
        "CPU ms per image (lakefmt / floor)",
        "others' cores (lakefmt, floor)",
    ]
    print()
    print(table(rows, header))
    print()
    for workers in args.workers:
        for side in ("lakefmt", "floor"):
            e = best[(side, workers)]
            per_worker = ", ".join(f"{c:.1f}" for c in e.workers_cpu) or "-"
            rss = ", ".join(f"{r / 2**20:.0f}" for r in e.workers_rss) or "-"
            print(
                f"- {side}, num_workers={workers}: {e.wall:.2f} s wall, {e.cpu:.2f} s CPU "
                f"({e.cpu / (e.wall * cores):.0%} of {cores} cores), first batch after "
                f"{e.first_batch:.2f} s; per worker: CPU s {per_worker}, peak RSS MiB {rss}"
            )
    print(f"\nanswers equal: {n} rows once each per epoch, pixel checksum {expected}")


def _others(lf: Epoch, fl: Epoch) -> str:
    if lf.others is None or fl.others is None:
        return "n/a"
    return f"{lf.others / lf.wall:.2f}, {fl.others / fl.wall:.2f}"


if __name__ == "__main__":
    main()
