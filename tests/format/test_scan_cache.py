"""Scans small enough decoded go through the row-group cache; large ones stream.

Both paths must give the same rows (deletions, updates and added columns included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import lakefmt
from lakefmt.format import encoding, fragments


def build(path: Path) -> lakefmt.Dataset:
    ds = lakefmt.create(str(path), schema={"id": "int64", "score": "float32"})
    for start in range(0, 30_000, 10_000):
        ds.append({"id": np.arange(start, start + 10_000), "score": np.ones(10_000, np.float32)})
        ds.commit()
    ds.delete(list(range(5, 30_000, 7)))
    ds["score"][3] = 2.5
    ds.add_column("extra", "int32")
    ds.commit("deletes, an update, a new column")
    return ds


def scan(ds: lakefmt.Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [
        (b["id"].copy(), b["score"].copy(), np.asarray(b["extra"]))
        for b in ds.batches(4_096, columns=["id", "score", "extra"])
    ]


def count_parquet_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real_group, real_batches = pq.ParquetFile.read_row_group, pq.ParquetFile.iter_batches

    def read_row_group(self: pq.ParquetFile, *args: object, **kwargs: object) -> object:
        reads.append("read_row_group")
        return real_group(self, *args, **kwargs)

    def iter_batches(self: pq.ParquetFile, *args: object, **kwargs: object) -> object:
        reads.append("iter_batches")
        return real_batches(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    return reads


def all_cached(ds: lakefmt.Dataset) -> bool:
    snap = ds._snapshot()
    return all(
        fragments.groups_cached(snap.storage, d, list(d.field_ids))
        for f in snap.manifest.fragments
        for d in f.files
    )


def test_a_repeated_small_scan_is_decoded_twice_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = lakefmt.open_read_only(build(tmp_path / "ds").url)
    reads = count_parquet_reads(monkeypatch)
    first = scan(ds)  # a one-off scan streams and leaves the cache alone
    assert reads and not all_cached(ds)
    second = scan(ds)  # a repeated one streams and fills it
    assert all_cached(ds)
    reads.clear()
    third = scan(ds)  # the epochs after it decode nothing
    assert reads == []
    for a, b, c in zip(first, second, third, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)


def test_a_large_scan_streams_and_gives_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = lakefmt.open_read_only(build(tmp_path / "ds").url)
    cached = scan(ds)
    monkeypatch.setattr(fragments._GROUPS, "max_bytes", 1000)  # nothing fits any more
    fragments._GROUPS.clear()
    streamed = scan(ds)
    streamed = scan(ds)  # repeated, but too large for the cache: streams again
    assert not all_cached(ds)
    assert len(streamed) == len(cached)
    for a, b in zip(cached, streamed, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    ids = np.concatenate([b[0] for b in streamed])
    expected = np.array([i for i in range(30_000) if i < 5 or (i - 5) % 7 != 0])
    np.testing.assert_array_equal(ids, expected)
    scores = np.concatenate([b[1] for b in streamed])
    assert scores[3] == 2.5 and scores.sum() == pytest.approx(len(expected) + 1.5)
    assert not np.concatenate([b[2] for b in streamed]).any()  # the added column's default


def test_row_groups_are_decoded_ahead_on_the_decode_pool_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setattr(encoding, "MAX_ROW_GROUP_ROWS", 1_000)  # many small groups
    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64"})
    ds.append({"id": np.arange(25_500)})
    ds.commit()
    (data_file,) = ds._snap.manifest.fragments[0].files
    assert len(data_file.row_groups) == 26
    threads: set[str] = set()
    real = fragments._read_group

    def read_group(*args: object) -> object:
        threads.add(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fragments, "_read_group", read_group)
    batches = list(fragments.iter_data_file(ds._storage, data_file, data_file.field_ids, 64))
    ids = np.concatenate([b.column(0).to_numpy() for b in batches])
    assert np.array_equal(ids, np.arange(25_500))
    assert threads and all(name.startswith("lakefmt-decode") for name in threads)
    # a consumer that stops early leaves at most a window of groups decoded, none queued
    stream = fragments.iter_data_file(ds._storage, data_file, data_file.field_ids, 64)
    assert next(stream).num_rows == 1_000
    stream.close()
    pool, _workers = fragments._decode_pool()
    pool.submit(lambda: None).result()  # the pool is still usable


def test_a_damaged_data_file_fails_a_parallel_scan_with_its_name(tmp_path: Path) -> None:
    import pyarrow as pa

    from lakefmt.errors import FormatError

    ds = lakefmt.create(str(tmp_path / "ds"), schema={"id": "int64", "t": "text"})
    ds.append({"id": np.arange(300_000), "t": ["x" * 20] * 300_000})
    ds.commit()
    (data_file,) = ds._snap.manifest.fragments[0].files
    assert len(data_file.row_groups) > 1
    full = tmp_path / "ds" / data_file.path
    raw = bytearray(full.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 4096] = b"\xff" * 4096  # a column chunk, not the footer
    full.write_bytes(bytes(raw))
    fresh = lakefmt.open_read_only(str(tmp_path / "ds"))
    with pytest.raises((FormatError, pa.ArrowInvalid)) as info:
        for _ in fresh.batches(10_000):
            pass
    assert isinstance(info.value, FormatError) and data_file.path in str(info.value)


def test_a_sparse_take_over_many_groups_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoding, "MAX_ROW_GROUP_ROWS", 1_000)
    ds = lakefmt.create(str(tmp_path / "t"), schema={"id": "int64", "v": "float64", "s": "text"})
    ids = np.arange(20_000)
    names = [None if i % 3 == 0 else f"s{i}" for i in ids]
    ds.append({"id": ids, "v": ids * 0.5, "s": names})
    ds.commit()
    snap = ds._snapshot()
    assert len(snap.manifest.fragments[0].files[0].row_groups) == 20
    fields = [snap.field("id"), snap.field("v"), snap.field("s")]
    fragments._GROUPS.clear()
    reads = count_parquet_reads(monkeypatch)
    rows = np.random.default_rng(3).choice(20_000, 12, replace=False)  # a top-12, any order
    first = snap.take(fields, rows)
    assert first[fields[0].id].to_pylist() == rows.tolist()
    assert first[fields[1].id].to_pylist() == (rows * 0.5).tolist()
    assert first[fields[2].id].to_pylist() == [names[i] for i in rows]
    touched = len(reads)
    assert touched == len(np.unique(rows // 1_000))  # one read per group, through the cache
    again = snap.take(fields, rows[::-1])
    assert again[fields[0].id].to_pylist() == rows[::-1].tolist()
    assert len(reads) == touched  # every group came from the cache
    # a bulk take (more than SPARSE_TAKE_ROWS rows) reads its groups in one go, uncached
    many = np.arange(0, 20_000, 7)
    assert len(many) > fragments.SPARSE_TAKE_ROWS
    bulk = snap.take(fields, many)
    assert bulk[fields[0].id].to_pylist() == many.tolist()
    assert "read_row_group" not in reads[touched:]
