"""Side-by-side benchmark harness: lakefmt vs raw Parquet + DuckDB (the floor), Lance, Deep Lake.

    python benchmarks/harness.py --scale medium          # 2M rows, 20k JPEGs, 200k x 384
    python benchmarks/harness.py --scale tiny            # a smoke run (seconds)

Generates deterministic data once (cached in ``--data``), then runs each engine in its own
subprocess (so peak memory is per engine) over the same data: tabular ingest and scan, JPEG
ingest and decode scan, random row and image reads, a filter, GROUP BY, LIKE, brute-force
cosine top-10, small append+commit. Every answer is checked against the generated data: a
fast wrong answer counts as a failure, not a time. Lance (``pylance``) and Deep Lake
(``deeplake``) run only when installed; they are comparators, never lakefmt dependencies.
Writes a markdown table of ratios into ``benchmarks/RESULTS.md`` between markers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SCALES = {
    "tiny": {"rows": 20_000, "images": 200, "emb_rows": 2_000},
    "small": {"rows": 200_000, "images": 2_000, "emb_rows": 20_000},
    "medium": {"rows": 2_000_000, "images": 20_000, "emb_rows": 200_000},
}
DIM = 384
#: Ingests are timed as the best of this many runs, each into a fresh location.
INGEST_RUNS = 3
BATCH = 10_000
WORDS = np.array(["apple", "banana", "cherry", "delta", "echo", "fox", "golf", "hotel"])


# -- data --------------------------------------------------------------------------------------


def generate(data: Path, scale: str) -> None:
    """Write the deterministic inputs of a scale to ``data`` (once)."""
    sizes = SCALES[scale]
    data.mkdir(parents=True, exist_ok=True)
    marker = data / f"done-{scale}"
    if marker.exists():
        return
    rng = np.random.default_rng(42)
    n = sizes["rows"]
    ids = np.arange(n, dtype=np.int64)
    table = pa.table(
        {
            "id": ids,
            "score": rng.random(n, dtype=np.float32),
            "label": rng.integers(0, 10, n, dtype=np.int32),
            "text": pa.array(
                [f"item {i} {w}" for i, w in zip(ids, WORDS[ids % len(WORDS)], strict=True)]
            ),
        }
    )
    pq.write_table(table, data / "tabular.parquet")
    from PIL import Image

    jpegs = []
    base = np.linspace(0, 255, 256, dtype=np.float32)
    for i in range(sizes["images"]):
        r = np.random.default_rng(i)
        img = (
            base[None, :, None] * r.random(3)
            + base[:, None, None] * r.random(3) / 2
            + r.normal(0, 12, (256, 256, 3))
        )
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=85)
        jpegs.append(buf.getvalue())
    pq.write_table(
        pa.table(
            {"id": np.arange(len(jpegs), dtype=np.int64), "image": pa.array(jpegs, pa.binary())}
        ),
        data / "images.parquet",
    )
    emb = rng.normal(size=(sizes["emb_rows"], DIM)).astype(np.float32)
    queries = rng.normal(size=(5, DIM)).astype(np.float32)
    np.save(data / "emb.npy", emb)
    np.save(data / "queries.npy", queries)
    marker.write_text("ok")


# -- timing helpers --------------------------------------------------------------------------------


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def warm(fn: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    """Run once untimed, then the best of ``runs`` timed runs (one slow run of a
    millisecond-scale query on a shared machine would otherwise decide the figure)."""
    fn()
    return best_of(fn, runs)


def best_of(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The fastest of ``runs`` timed runs, and the last answer."""
    timings = [clock(fn) for _ in range(runs)]
    return min(t for t, _ in timings), timings[-1][1]


def p50(fn: Callable[[int], Any], indices: np.ndarray) -> float:
    samples = []
    for i in indices:
        start = time.perf_counter()
        fn(int(i))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class Expected:
    """The right answers, computed from the generated data."""

    def __init__(self, data: Path) -> None:
        self.tab = pq.read_table(data / "tabular.parquet")
        self.score = self.tab["score"].to_numpy()
        self.label = self.tab["label"].to_numpy()
        self.filter_ids = np.flatnonzero((self.score > 0.9) & (self.label == 3))
        self.group = np.bincount(self.label, minlength=10)
        ids = np.arange(self.tab.num_rows)
        self.like = int(((ids % len(WORDS)) == 2).sum())  # text LIKE '%cherry%'
        self.images = pq.read_table(data / "images.parquet")["image"].to_pylist()
        self.pixel_sum = int(sum(int(decode_jpeg(b)[0, 0].sum()) for b in self.images[:50]))
        self.emb = np.load(data / "emb.npy")
        self.queries = np.load(data / "queries.npy")
        norms = self.emb / np.linalg.norm(self.emb, axis=1, keepdims=True)
        self.top = [
            set(np.argsort(-(norms @ (q / np.linalg.norm(q))))[:10].tolist()) for q in self.queries
        ]


# -- engines ---------------------------------------------------------------------------


def run_engine(engine: str, data: Path, work: Path) -> dict[str, Any]:
    """Run every workload on one engine; returns {workload: seconds or error string}."""
    exp = Expected(data)
    results: dict[str, Any] = {}
    rng = np.random.default_rng(7)
    n = exp.tab.num_rows
    numeric = exp.tab.select(["id", "score", "label"])
    batches = numeric.to_batches(BATCH)
    text_table = exp.tab
    impl = ENGINES[engine](work)

    def ingest(method: str, *args: Any) -> tuple[float, Any]:
        """The best of INGEST_RUNS runs of an ingest, each into a fresh location: the first
        ones on scratch engine objects whose files are deleted after, the last on ``impl``
        (whose dataset the later workloads read)."""
        times = []
        for k in range(INGEST_RUNS - 1):
            scratch_dir = work / f"scratch-{method}-{k}"
            scratch_dir.mkdir()
            scratch = ENGINES[engine](scratch_dir)
            times.append(clock(lambda scratch=scratch: getattr(scratch, method)(*args))[0])
            del scratch
            shutil.rmtree(scratch_dir, ignore_errors=True)
        seconds, out = clock(lambda: getattr(impl, method)(*args))
        return min([*times, seconds]), out

    def record(
        name: str, fn: Callable[[], Any], check: Callable[[Any], bool] | None = None
    ) -> None:
        try:
            seconds, out = fn()
            if check is not None and not check(out):
                results[name] = "WRONG ANSWER"
                return
            results[name] = seconds
        except Exception as exc:  # a comparator lacking a feature: shown, not fatal
            results[name] = f"n/a ({type(exc).__name__}: {str(exc)[:60]})"

    record(
        "ingest_tabular",
        lambda: ingest("ingest_tabular", text_table.to_batches(BATCH)),
        lambda out: out == n,
    )
    # Four epochs: the first is a one-off scan of a freshly opened dataset; the best of the
    # other three is a repeated scan (training epochs), where engines may serve from RAM.
    epochs: list[tuple[float, Any]] = []

    def scan_epochs() -> tuple[float, Any]:
        epochs.extend(clock(impl.scan_tabular) for _ in range(4))
        return epochs[0][0], [out for _, out in epochs]

    id_sum = int(exp.tab["id"].to_numpy().sum())
    record("scan_tabular_first", scan_epochs, lambda outs: all(o == id_sum for o in outs))
    if len(epochs) == 4 and isinstance(results["scan_tabular_first"], float):
        results["scan_tabular"] = min(t for t, _ in epochs[1:])
    idx = rng.integers(0, n, 200)
    record("random_row_p50", lambda: (p50(impl.read_row, idx), None))
    record(
        "random_row_check",
        lambda: (0.0, [impl.read_row(int(i)) for i in idx[:5]]),
        lambda out: all(int(r) == int(i) for r, i in zip(out, idx[:5], strict=True)),
    )
    # Queries are timed warm (best of 5 after one untimed run), for every engine alike: the
    # first run of an engine pays one-time costs (imports, connection set-up) once.
    record("filter", lambda: warm(impl.filter), lambda out: sorted(out) == exp.filter_ids.tolist())
    record("group_by", lambda: warm(impl.group_by), lambda out: list(out) == exp.group.tolist())
    record("like", lambda: warm(impl.like), lambda out: out == exp.like)
    record("append_commit", lambda: (impl.append_commit(), None))
    if hasattr(impl, "append_commit_nosync"):
        record("append_commit_nosync", lambda: (impl.append_commit_nosync(), None))
    if hasattr(impl, "append_commit_synced"):
        record("append_commit_synced", lambda: (impl.append_commit_synced(), None))
    if hasattr(impl, "append_commit_versioned"):
        record("append_commit_versioned", lambda: (impl.append_commit_versioned(), None))
    record(
        "ingest_jpeg",
        lambda: ingest("ingest_images", exp.images),
        lambda out: out == len(exp.images),
    )
    if hasattr(impl, "ingest_images_nosync"):
        record(
            "ingest_jpeg_nosync",
            lambda: ingest("ingest_images_nosync", exp.images),
            lambda out: out == len(exp.images),
        )
    if hasattr(impl, "ingest_images_synced"):
        record(
            "ingest_jpeg_synced",
            lambda: ingest("ingest_images_synced", exp.images),
            lambda out: out == len(exp.images),
        )
    record(
        "scan_decode_jpeg",
        lambda: clock(impl.scan_decode),
        lambda out: out[0] == len(exp.images) and out[1] == exp.pixel_sum,
    )
    img_idx = rng.integers(0, len(exp.images), 50)
    record("random_image_p50", lambda: (p50(impl.read_image, img_idx), None))
    record(
        "ingest_embeddings",
        lambda: ingest("ingest_embeddings", exp.emb),
        lambda out: out == len(exp.emb),
    )
    first = [None]

    def topk() -> tuple[float, Any]:
        impl.topk(exp.queries[0])  # warm: a repeated query on an open dataset
        times, answers = [], []
        for q in exp.queries:
            t, out = clock(lambda q=q: impl.topk(q))
            times.append(t)
            answers.append(out)
        first[0] = answers
        return statistics.median(times), answers

    record(
        "cosine_top10",
        topk,
        lambda out: all(set(map(int, a)) == e for a, e in zip(out, exp.top, strict=True)),
    )
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del numeric, batches
    return results


class Floor:
    """Raw pyarrow Parquet + DuckDB on the same data (what you would write by hand)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.tab = work / "floor-tab.parquet"
        self.img = work / "floor-img.parquet"
        self.emb = work / "floor-emb.parquet"
        import duckdb

        self.con = duckdb.connect()
        self._emb_matrix: np.ndarray | None = None

    def ingest_tabular(self, batches: list[pa.RecordBatch]) -> int:
        with pq.ParquetWriter(self.tab, batches[0].schema) as w:
            for b in batches:
                w.write_batch(b)
        return pq.ParquetFile(self.tab).metadata.num_rows

    def scan_tabular(self) -> int:
        total = 0
        for b in pq.ParquetFile(self.tab).iter_batches(BATCH, columns=["id", "score", "label"]):
            cols = [b.column(i).to_numpy() for i in range(3)]
            total += int(cols[0].sum())
        return total

    def read_row(self, i: int) -> int:
        pf = pq.ParquetFile(self.tab)
        md = pf.metadata
        start = 0
        for g in range(md.num_row_groups):
            rows = md.row_group(g).num_rows
            if i < start + rows:
                t = pf.read_row_group(g, columns=["id", "score", "label"])
                return int(t["id"][i - start].as_py())
            start += rows
        raise IndexError(i)

    def filter(self) -> list[int]:
        return [
            r[0]
            for r in self.con.sql(
                f"SELECT id FROM read_parquet('{self.tab}') WHERE score > 0.9 AND label = 3"
            ).fetchall()
        ]

    def group_by(self) -> list[int]:
        rows = self.con.sql(
            f"SELECT label, count(*) FROM read_parquet('{self.tab}') GROUP BY label ORDER BY label"
        ).fetchall()
        return [c for _, c in rows]

    def like(self) -> int:
        return int(
            self.con.sql(
                f"SELECT count(*) FROM read_parquet('{self.tab}') WHERE text LIKE '%cherry%'"
            ).fetchall()[0][0]
        )

    def append_commit(self) -> float:
        return self._append(synced=False)

    def append_commit_synced(self) -> float:
        return self._append(synced=True)

    def append_commit_versioned(self) -> float:
        """A durable versioned commit written by hand: the Parquet file and its directory
        synced, then the list of files as JSON in a temp file, synced, renamed to the next
        version's name, and that directory synced (the least a reader-safe, power-loss-safe
        version needs; one writer only, so no put-if-absent)."""
        t = pa.table(
            {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
        )
        data, versions = self.work / "versioned-data", self.work / "versioned-versions"
        data.mkdir()
        versions.mkdir()
        names: list[str] = []
        samples = []

        def sync(target: Path) -> None:
            fd = os.open(target, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        for k in range(40):
            start = time.perf_counter()
            name = f"{k}.parquet"
            pq.write_table(t, data / name)
            sync(data / name)
            sync(data)
            names.append(name)
            tmp = versions / f".{k}.tmp"
            tmp.write_text(json.dumps({"version": k, "files": names}))
            sync(tmp)
            os.rename(tmp, versions / f"{k}.json")
            sync(versions)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples[5:])

    def _append(self, *, synced: bool) -> float:
        """One Parquet write per "commit"; ``synced`` also syncs the file and its directory
        (what a commit that survives a power loss needs at the least, with no manifest)."""
        t = pa.table(
            {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
        )
        samples = []
        for k in range(30):
            path = self.work / f"floor-append-{'s' if synced else 'u'}{k}.parquet"
            start = time.perf_counter()
            pq.write_table(t, path)
            if synced:
                for target in (path, self.work):
                    fd = os.open(target, os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    def ingest_images(self, images: list[bytes]) -> int:
        return self._ingest_images(images, self.img)

    def ingest_images_synced(self, images: list[bytes]) -> int:
        """The same, then ``fsync`` of the file and its directory (what lakefmt's commit does)."""
        path = self.work / "floor-img-synced.parquet"
        count = self._ingest_images(images, path)
        for target in (path, self.work):
            fd = os.open(target, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        path.unlink()
        return count

    def _ingest_images(self, images: list[bytes], path: Path) -> int:
        schema = pa.schema([("id", pa.int64()), ("image", pa.binary())])
        with pq.ParquetWriter(path, schema, compression="none") as w:
            for s in range(0, len(images), 1000):
                chunk = images[s : s + 1000]
                w.write_table(
                    pa.table(
                        {"id": np.arange(s, s + len(chunk)), "image": pa.array(chunk, pa.binary())},
                        schema=schema,
                    )
                )
        return pq.ParquetFile(path).metadata.num_rows

    def scan_decode(self) -> tuple[int, int]:
        count, pixel = 0, 0
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            for b in pq.ParquetFile(self.img).iter_batches(256, columns=["image"]):
                arrays = list(pool.map(decode_jpeg, b.column(0).to_pylist()))
                for a in arrays:
                    if count < 50:
                        pixel += int(a[0, 0].sum())
                    count += 1
        return count, pixel

    def read_image(self, i: int) -> np.ndarray:
        pf = pq.ParquetFile(self.img)
        md = pf.metadata
        start = 0
        for g in range(md.num_row_groups):
            rows = md.row_group(g).num_rows
            if i < start + rows:
                return decode_jpeg(
                    pf.read_row_group(g, columns=["image"])["image"][i - start].as_py()
                )
            start += rows
        raise IndexError(i)

    def ingest_embeddings(self, emb: np.ndarray) -> int:
        arr = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM)
        pq.write_table(pa.table({"id": np.arange(len(emb)), "emb": arr}), self.emb)
        return pq.ParquetFile(self.emb).metadata.num_rows

    def topk(self, q: np.ndarray) -> list[int]:
        qs = "[" + ",".join(f"{x:.8f}" for x in q) + "]"
        sql = (
            f"SELECT id FROM read_parquet('{self.emb}') ORDER BY "
            f"array_cosine_similarity(emb::FLOAT[{DIM}], {qs}::FLOAT[{DIM}]) DESC LIMIT 10"
        )
        return [r[0] for r in self.con.sql(sql).fetchall()]


class Numpy(Floor):
    """The floor for vector search: the matrix in RAM, one matrix product."""

    def topk(self, q: np.ndarray) -> list[int]:
        if self._emb_matrix is None:
            m = (
                pq.read_table(self.emb)["emb"]
                .combine_chunks()
                .flatten()
                .to_numpy()
                .reshape(-1, DIM)
            )
            self._emb_matrix = m / np.linalg.norm(m, axis=1, keepdims=True)
        sims = self._emb_matrix @ (q / np.linalg.norm(q))
        top = np.argpartition(-sims, 10)[:10]
        return top[np.argsort(-sims[top])].tolist()


class Lakefmt:
    """lakefmt through its public API."""

    def __init__(self, work: Path) -> None:
        import lakefmt

        self.lf = lakefmt
        self.work = work

    def ingest_tabular(self, batches: list[pa.RecordBatch]) -> int:
        ds = self.lf.create(
            str(self.work / "lf-tab"),
            schema={"id": "int64", "score": "float32", "label": "int32", "text": "text"},
        )
        for b in batches:
            ds.append({name: b.column(name) for name in b.schema.names})
        ds.commit("ingest")
        self.tab = self.lf.open_read_only(str(self.work / "lf-tab"))
        return len(self.tab)

    def scan_tabular(self) -> int:
        total = 0
        for b in self.tab.batches(BATCH, columns=["id", "score", "label"]):
            total += int(b["id"].sum())
        return total

    def read_row(self, i: int) -> int:
        row = self.tab[i]
        return int(row["id"])

    def filter(self) -> list[int]:
        return self.tab.query("SELECT id WHERE score > 0.9 AND label = 3")["id"][:].tolist()

    def group_by(self) -> list[int]:
        view = self.tab.query("SELECT label, COUNT(*) AS n GROUP BY label ORDER BY label")
        return [int(v) for v in view["n"][:]]

    def like(self) -> int:
        return int(self.tab.query("SELECT COUNT(*) AS n WHERE text LIKE '%cherry%'")["n"][0])

    def append_commit(self, url: str | None = None) -> float:
        ds = self.lf.create(
            url or str(self.work / "lf-commits"), schema={"id": "int64", "score": "float32"}
        )
        data = {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
        samples = []
        for _ in range(40):
            start = time.perf_counter()
            ds.append(data)
            ds.commit()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples[5:])

    def append_commit_nosync(self) -> float:
        return self.append_commit("tmp://lf-commits-nosync")

    def ingest_images(self, images: list[bytes], url: str | None = None) -> int:
        from lakefmt import types

        url = url or str(self.work / "lf-img")
        ds = self.lf.create(url, schema={"id": "int64", "image": types.Image("uint8", "jpeg")})
        for s in range(0, len(images), 1000):
            chunk = images[s : s + 1000]
            ds.append({"id": np.arange(s, s + len(chunk)), "image": chunk})
        ds.commit()
        if url.startswith("tmp://"):
            return len(ds)
        self.img = self.lf.open_read_only(url)
        return len(self.img)

    def ingest_images_nosync(self, images: list[bytes]) -> int:
        import uuid

        return self.ingest_images(images, f"tmp://lf-img-nosync-{uuid.uuid4().hex}")

    def scan_decode(self) -> tuple[int, int]:
        count, pixel = 0, 0
        for b in self.img.batches(256, columns=["image"]):
            for a in b["image"]:
                if count < 50:
                    pixel += int(a[0, 0].sum())
                count += 1
        return count, pixel

    def read_image(self, i: int) -> np.ndarray:
        return self.img["image"][i]

    def ingest_embeddings(self, emb: np.ndarray) -> int:
        from lakefmt import types

        ds = self.lf.create(
            str(self.work / "lf-emb"), schema={"id": "int64", "emb": types.Embedding(DIM)}
        )
        for s in range(0, len(emb), 50_000):
            ds.append({"id": np.arange(s, min(s + 50_000, len(emb))), "emb": emb[s : s + 50_000]})
        ds.commit()
        self.emb = self.lf.open_read_only(str(self.work / "lf-emb"))
        return len(self.emb)

    def topk(self, q: np.ndarray) -> list[int]:
        qs = ", ".join(f"{x:.8f}" for x in q)
        view = self.emb.query(
            f"SELECT id ORDER BY COSINE_SIMILARITY(emb, ARRAY[{qs}]) DESC LIMIT 10"
        )
        return view["id"][:].tolist()


class Lance:
    """pylance, when installed."""

    def __init__(self, work: Path) -> None:
        import lance

        self.lance = lance
        self.work = work

    def ingest_tabular(self, batches: list[pa.RecordBatch]) -> int:
        reader = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
        self.tab = self.lance.write_dataset(reader, str(self.work / "lance-tab"))
        return self.tab.count_rows()

    def scan_tabular(self) -> int:
        total = 0
        for b in self.tab.to_batches(batch_size=BATCH, columns=["id", "score", "label"]):
            cols = [b.column(i).to_numpy() for i in range(3)]
            total += int(cols[0].sum())
        return total

    def read_row(self, i: int) -> int:
        return int(self.tab.take([i], columns=["id", "score", "label"])["id"][0].as_py())

    def filter(self) -> list[int]:
        return self.tab.to_table(columns=["id"], filter="score > 0.9 AND label = 3")[
            "id"
        ].to_pylist()

    def group_by(self) -> list[int]:
        import duckdb

        ds = self.tab  # noqa: F841 - DuckDB scans the Lance dataset through Arrow
        rows = duckdb.sql("SELECT label, count(*) FROM ds GROUP BY label ORDER BY label").fetchall()
        return [c for _, c in rows]

    def like(self) -> int:
        return self.tab.count_rows(filter="text LIKE '%cherry%'")

    def append_commit(self) -> float:
        t = pa.table(
            {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
        )
        path = str(self.work / "lance-commits")
        self.lance.write_dataset(t, path)
        samples = []
        for _ in range(40):
            start = time.perf_counter()
            self.lance.write_dataset(t, path, mode="append")
            samples.append(time.perf_counter() - start)
        return statistics.median(samples[5:])

    def ingest_images(self, images: list[bytes]) -> int:
        schema = pa.schema([("id", pa.int64()), ("image", pa.binary())])
        tables = [
            pa.table(
                {
                    "id": np.arange(s, s + len(images[s : s + 1000])),
                    "image": pa.array(images[s : s + 1000], pa.binary()),
                },
                schema=schema,
            )
            for s in range(0, len(images), 1000)
        ]
        reader = pa.RecordBatchReader.from_batches(
            schema, [b for t in tables for b in t.to_batches()]
        )
        self.img = self.lance.write_dataset(reader, str(self.work / "lance-img"))
        return self.img.count_rows()

    def scan_decode(self) -> tuple[int, int]:
        count, pixel = 0, 0
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            for b in self.img.to_batches(batch_size=256, columns=["image"]):
                for a in pool.map(decode_jpeg, b.column(0).to_pylist()):
                    if count < 50:
                        pixel += int(a[0, 0].sum())
                    count += 1
        return count, pixel

    def read_image(self, i: int) -> np.ndarray:
        return decode_jpeg(self.img.take([i], columns=["image"])["image"][0].as_py())

    def ingest_embeddings(self, emb: np.ndarray) -> int:
        arr = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM)
        self.emb = self.lance.write_dataset(
            pa.table({"id": np.arange(len(emb)), "emb": arr}), str(self.work / "lance-emb")
        )
        return self.emb.count_rows()

    def topk(self, q: np.ndarray) -> list[int]:
        t = self.emb.to_table(
            columns=["id"],
            nearest={"column": "emb", "q": q, "k": 10, "metric": "cosine", "use_index": False},
        )
        return t["id"].to_pylist()


class DeepLake:
    """Deep Lake 4, when installed."""

    def __init__(self, work: Path) -> None:
        import deeplake

        self.dl = deeplake
        self.work = work

    def _create(self, name: str, schema: dict[str, Any]) -> Any:
        ds = self.dl.create(f"file://{self.work / name}")
        for col, dtype in schema.items():
            ds.add_column(col, dtype)
        return ds

    def ingest_tabular(self, batches: list[pa.RecordBatch]) -> int:
        t = self.dl.types
        ds = self._create(
            "dl-tab", {"id": t.Int64(), "score": t.Float32(), "label": t.Int32(), "text": t.Text()}
        )
        for b in batches:
            ds.append(
                {
                    "id": b.column(0).to_numpy(),
                    "score": b.column(1).to_numpy(),
                    "label": b.column(2).to_numpy(),
                    "text": b.column(3).to_pylist(),
                }
            )
        ds.commit()
        self.tab = self.dl.open_read_only(f"file://{self.work / 'dl-tab'}")
        return len(self.tab)

    def scan_tabular(self) -> int:
        total = 0
        col = self.tab["id"]
        for s in range(0, len(self.tab), BATCH):
            total += int(np.asarray(col[s : s + BATCH]).sum())
        return total

    def read_row(self, i: int) -> int:
        return int(self.tab[i]["id"])

    def filter(self) -> list[int]:
        view = self.tab.query("SELECT * WHERE score > 0.9 AND label = 3")
        return np.asarray(view["id"][:]).tolist()

    def group_by(self) -> list[int]:
        view = self.tab.query("SELECT label, COUNT(*) AS n GROUP BY label ORDER BY label")
        return [int(v) for v in np.asarray(view["n"][:])]

    def like(self) -> int:
        return len(self.tab.query("SELECT * WHERE text LIKE '%cherry%'"))

    def append_commit(self) -> float:
        t = self.dl.types
        ds = self._create("dl-commits", {"id": t.Int64(), "score": t.Float32()})
        data = {"id": np.arange(100, dtype=np.int64), "score": np.ones(100, dtype=np.float32)}
        samples = []
        for _ in range(40):
            start = time.perf_counter()
            ds.append(data)
            ds.commit()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples[5:])

    def ingest_images(self, images: list[bytes]) -> int:
        t = self.dl.types
        ds = self._create(
            "dl-img", {"id": t.Int64(), "image": t.Image(dtype="uint8", sample_compression="jpeg")}
        )
        for s in range(0, len(images), 1000):
            chunk = images[s : s + 1000]
            ds.append({"id": np.arange(s, s + len(chunk)), "image": chunk})
        ds.commit()
        self.img = self.dl.open_read_only(f"file://{self.work / 'dl-img'}")
        return len(self.img)

    def scan_decode(self) -> tuple[int, int]:
        count, pixel = 0, 0
        col = self.img["image"]
        for s in range(0, len(self.img), 256):
            for a in col[s : s + 256]:
                if count < 50:
                    pixel += int(np.asarray(a)[0, 0].sum())
                count += 1
        return count, pixel

    def read_image(self, i: int) -> np.ndarray:
        return np.asarray(self.img["image"][i])

    def ingest_embeddings(self, emb: np.ndarray) -> int:
        t = self.dl.types
        ds = self._create("dl-emb", {"id": t.Int64(), "emb": t.Embedding(DIM)})
        for s in range(0, len(emb), 50_000):
            ds.append({"id": np.arange(s, min(s + 50_000, len(emb))), "emb": emb[s : s + 50_000]})
        ds.commit()
        self.emb = self.dl.open_read_only(f"file://{self.work / 'dl-emb'}")
        return len(self.emb)

    def topk(self, q: np.ndarray) -> list[int]:
        qs = ", ".join(f"{x:.8f}" for x in q)
        view = self.emb.query(
            f"SELECT * ORDER BY COSINE_SIMILARITY(emb, ARRAY[{qs}]) DESC LIMIT 10"
        )
        return np.asarray(view["id"][:]).tolist()


ENGINES: dict[str, Callable[[Path], Any]] = {
    "floor": Floor,
    "numpy": Numpy,
    "lakefmt": Lakefmt,
    "lance": Lance,
    "deeplake": DeepLake,
}
INSTALLED = {"lance": "lance", "deeplake": "deeplake"}

# workload -> (label, kind): kind "time" (lower is better) or "rate:<unit count key>"
WORKLOADS = [
    ("ingest_tabular", "ingest tabular, 10k-row batches", "rows"),
    ("ingest_jpeg", "ingest JPEG bytes", "images"),
    ("ingest_jpeg_synced", "ingest JPEG bytes, vs a floor that syncs its file", "images"),
    ("ingest_jpeg_nosync", "ingest JPEG bytes, lakefmt on tmp:// (no fsync)", "images"),
    ("ingest_embeddings", "ingest embeddings", "emb_rows"),
    ("scan_tabular_first", "scan tabular, batches of 10k, first epoch", "rows"),
    ("scan_tabular", "scan tabular, batches of 10k, repeated (best of epochs 2-4)", "rows"),
    ("scan_decode_jpeg", "scan + decode JPEGs", "images"),
    ("random_row_p50", "random single-row read, p50", None),
    ("random_image_p50", "random image read + decode, p50", None),
    ("filter", "`score > 0.9 AND label = 3`, materialized", None),
    ("group_by", "GROUP BY label, COUNT(*)", None),
    ("like", "LIKE '%cherry%' count", None),
    ("cosine_top10", "brute-force cosine top-10, per query (open dataset)", None),
    ("append_commit", "append 100 rows + commit", None),
    ("append_commit_synced", "append 100 rows + commit, vs a floor that syncs its file", None),
    ("append_commit_nosync", "append 100 rows + commit, lakefmt on tmp:// (no fsync)", None),
    (
        "append_commit_versioned",
        "append 100 rows + commit, vs a durable versioned commit by hand (file + JSON list)",
        None,
    ),
]

#: Rows measured by the floor only; the other engines show their figure of another row.
SAME_AS = {
    "append_commit_synced": "append_commit",
    "append_commit_versioned": "append_commit",
    "ingest_jpeg_synced": "ingest_jpeg",
}
#: Rows measured by lakefmt only (on ``tmp://``, which never syncs), against the floor of
#: another row: how much of a gap is the cost of durability.
FLOOR_SAME_AS = {"append_commit_nosync": "append_commit", "ingest_jpeg_nosync": "ingest_jpeg"}


def _fmt(value: Any, unit_count: int | None) -> str:
    if isinstance(value, str):
        return value
    if unit_count:
        rate = unit_count / value
        return f"{rate / 1e6:.2f}M/s" if rate >= 1e6 else f"{rate / 1e3:.1f}k/s"
    return f"{value * 1000:.2f} ms"


def render(results: dict[str, dict[str, Any]], scale: str) -> str:
    sizes = SCALES[scale]
    engines = [e for e in ("floor", "numpy", "lance", "deeplake", "lakefmt") if e in results]
    header = ["workload", *engines, "lakefmt / floor", "lakefmt / lance"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label, units in WORKLOADS:
        row = [label]
        for e in engines:
            v = results[e].get(
                FLOOR_SAME_AS.get(key, key) if e == "floor" else SAME_AS.get(key, key)
            )
            row.append(
                "-"
                if v is None or (e == "numpy" and key != "cosine_top10")
                else _fmt(v, sizes[units] if units else None)
            )
        lf = results.get("lakefmt", {}).get(SAME_AS.get(key, key))

        def ratio(other: str, key: str = key, lf: Any = lf) -> str:
            o = results.get(other, {}).get(
                FLOOR_SAME_AS.get(key, key) if other == "floor" else SAME_AS.get(key, key)
            )
            if other == "floor" and key == "cosine_top10":
                o = results.get("numpy", {}).get(key)
            if not isinstance(lf, float) or not isinstance(o, float) or lf == 0:
                return "-"
            # > 1 means lakefmt is faster (throughput ratio for rates, time ratio inverted)
            return f"{o / lf:.2f}x"

        row += [ratio("floor"), ratio("lance")]
        lines.append("| " + " | ".join(row) + " |")
    mem = ["peak memory (RSS, MiB)"] + [f"{results[e].get('peak_rss_mb', 0):.0f}" for e in engines]
    floor_mem = results.get("floor", {}).get("peak_rss_mb")
    lf_mem = results.get("lakefmt", {}).get("peak_rss_mb")
    mem.append(f"{lf_mem / floor_mem:.2f}x of floor's" if floor_mem and lf_mem else "-")
    mem.append("-")
    lines.append("| " + " | ".join(mem) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--engines", default=None, help="Comma-separated (default: all installed).")
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "lakefmt-bench-data"
    )
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; leave RESULTS.md alone."
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data / args.scale
    if args.worker:
        print(json.dumps(run_engine(args.worker, data, args.work)))
        return
    generate(data, args.scale)
    engines = (
        args.engines.split(",")
        if args.engines
        else [e for e in ENGINES if e not in INSTALLED or _installed(INSTALLED[e])]
    )
    results: dict[str, dict[str, Any]] = {}
    for engine in engines:
        work = Path(tempfile.mkdtemp(prefix=f"lakefmt-bench-{engine}-"))
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    engine,
                    "--work",
                    str(work),
                    "--scale",
                    args.scale,
                    "--data",
                    str(args.data),
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                results[engine] = {
                    "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
                }
                print(f"{engine}: FAILED {results[engine]['error']}", file=sys.stderr)
                continue
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{engine}: done", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    cmd = f"python benchmarks/harness.py --scale {args.scale}" + (
        f" --engines {args.engines}" if args.engines else ""
    )
    sizes = SCALES[args.scale]
    text = (
        f"Scale `{args.scale}`: {sizes['rows']:,} tabular rows, {sizes['images']:,} JPEGs "
        f"(256x256), {sizes['emb_rows']:,} x {DIM} embeddings. Command: `{cmd}`. "
        "Ratios > 1: lakefmt is faster.\n\n" + render(results, args.scale)
    )
    print(text)
    if not args.no_write:
        _write_section(args.results, f"harness-{args.scale}", text)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _write_section(path: Path, name: str, text: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{start}\n{text}\n{end}"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        _, after = rest.split(end, 1)
        current = before + block + after
    else:
        current = current.rstrip() + f"\n\n## Harness, scale {name.split('-', 1)[1]}\n\n{block}\n"
    path.write_text(current)


if __name__ == "__main__":
    main()
