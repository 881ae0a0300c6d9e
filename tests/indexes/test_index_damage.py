"""Damaged and missing index files, copies and cleanup (issue 17).

An index file deleted, truncated or with flipped bytes makes its segment unusable: queries
answer exactly what ``SearchConfig(exact=True)`` answers (never a wrong row, never a crash),
``ds.explain`` names the segment as not used and why, and ``ds.verify()`` lists the file,
also when this process loaded the file before it was damaged. A copy's queries use its index
and equal the source's; ``cleanup(older_than=0)`` removes index files no kept version lists
and keeps those of tags and branches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.format.index_files import INDEX_FILE_CACHE
from lakefmt.indexes.segments import LOADED

pytest.importorskip("faiss")

ROWS = 400
DIM = 8
EXACT = lakefmt.SearchConfig(exact=True)
KINDS = {
    "clustered": types.Clustered,
    "clustered_quantized": types.ClusteredQuantized,
    "pooled_quantized": types.PooledQuantized,
}
WORDS = ["apple", "bee", "cat", "dog", "elm", "fig", "gnu", "hay"]


def cold_caches() -> None:
    """Forget loaded index files and segments, as a new process starts."""
    INDEX_FILE_CACHE.clear()
    LOADED.clear()


def make_dataset(url: str, kind: str) -> lakefmt.Dataset:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((5, DIM))
    vecs = centres[rng.integers(0, 5, ROWS)] + rng.standard_normal((ROWS, DIM)) * 0.3
    ds = lakefmt.create(
        url,
        schema={
            "id": types.Int64(),
            "label": types.Int32(),
            "emb": types.Embedding(DIM, index_type=types.EmbeddingIndex(KINDS[kind])),
            "text": types.Text(index_type=types.BM25),
        },
    )
    ds.append(
        {
            "id": np.arange(ROWS, dtype=np.int64),
            "label": rng.integers(0, 4, ROWS).astype(np.int32),
            "emb": vecs.astype(np.float32),
            "text": [" ".join(rng.choice(WORDS, int(rng.integers(1, 7)))) for _ in range(ROWS)],
        }
    )
    ds.build_indexes()
    return ds


def queries() -> list[str]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(6):
        q = ", ".join(repr(round(float(x), 3)) for x in rng.standard_normal(DIM))
        sim = f"COSINE_SIMILARITY(emb, ARRAY[{q}])"
        where = f" WHERE label = {i % 4}" if i % 2 else ""
        out.append(f"SELECT id, {sim} AS s{where} ORDER BY {sim} DESC LIMIT {[1, 5, 20][i % 3]}")
    return out


BM25_QUERY = (
    "SELECT id, BM25_SIMILARITY(text, 'cat hay') AS s "
    "ORDER BY BM25_SIMILARITY(text, 'cat hay') DESC LIMIT 10"
)


def answers(handle: Any, tqls: list[str]) -> list[tuple[list[int], list[float]]]:
    out = []
    for tql in tqls:
        table = handle.query(tql).to_arrow()
        scores = table.column("s").to_numpy(zero_copy_only=False).astype(np.float64).tolist()
        out.append((table.column("id").to_pylist(), scores))
    return out


def exact_answers(handle: Any, tqls: list[str]) -> list[tuple[list[int], list[float]]]:
    before = handle.query_config
    handle.query_config = EXACT
    try:
        return answers(handle, tqls)
    finally:
        handle.query_config = before


def same_answers(
    got: list[tuple[list[int], list[float]]], want: list[tuple[list[int], list[float]]]
) -> bool:
    """Equal answers up to ties: the same scores in order, the same rows above the last
    score (rows tied at the last score may be any of them)."""
    for (g_ids, g_s), (w_ids, w_s) in zip(got, want, strict=True):
        if len(g_ids) != len(w_ids) or not np.allclose(g_s, w_s, rtol=0, atol=1e-9):
            return False
        if w_s and {i for i, x in zip(g_ids, g_s, strict=True) if x > w_s[-1] + 1e-9} != {
            i for i, x in zip(w_ids, w_s, strict=True) if x > w_s[-1] + 1e-9
        }:
            return False
    return True


def recall(
    got: list[tuple[list[int], list[float]]], want: list[tuple[list[int], list[float]]]
) -> float:
    """The share of the exact answers' rows found."""
    found = sum(len(set(g[0]) & set(w[0])) for g, w in zip(got, want, strict=True))
    return found / sum(len(w[0]) for w in want)


def index_of(handle: Any, kind: str) -> Any:
    (index,) = [i for i in handle._manifest.indexes if i.kind == kind]
    return index


def vector_explain(handle: Any) -> str:
    return handle.explain(queries()[0])


def damage(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:  # flip bytes in the middle, same size
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 4)):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))


REASONS = {"delete": "missing", "truncate": "bytes", "flip": "checksum"}


@pytest.mark.parametrize("how", ["delete", "truncate", "flip"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_damaged_vector_index_file_falls_back_to_exact(tmp_path: Path, kind: str, how: str) -> None:
    url = str(tmp_path / "ds")
    ds = make_dataset(url, kind)
    tqls = queries()
    want = exact_answers(ds, tqls)
    intact = answers(ds, tqls)
    if kind == "pooled_quantized":  # IVF probes some lists: approximate even here
        assert recall(intact, want) >= 0.9
    else:  # HNSW at LIMIT x refine visits about every row of this small segment
        assert same_answers(intact, want)
    assert "not used" not in vector_explain(ds)
    assert ds.verify() == []
    segment = index_of(ds, kind).segments[0]
    for index_file in segment.files:  # every file of the segment, one at a time
        cold_caches()
        original = (tmp_path / "ds" / index_file.path).read_bytes()
        damage(tmp_path / "ds" / index_file.path, how)
        handle = lakefmt.open_read_only(url)
        assert same_answers(answers(handle, tqls), want), index_file.path
        text = vector_explain(handle)
        assert f"segment {segment.id} not used" in text, text
        assert REASONS[how] in text and index_file.path in text, text
        problems = handle.verify()
        assert len(problems) == 1 and index_file.path in problems[0], problems
        assert REASONS[how] in problems[0], problems
        (tmp_path / "ds" / index_file.path).write_bytes(original)
    cold_caches()
    handle = lakefmt.open_read_only(url)
    assert handle.verify() == []
    assert "not used" not in vector_explain(handle)


def test_damage_after_load_is_listed_by_verify_and_answers_stay_exact(tmp_path: Path) -> None:
    """A process that loaded a segment keeps answering from it (it was checked when read);
    ``verify`` reads storage, not the cache, so it still reports the damage."""
    url = str(tmp_path / "ds")
    ds = make_dataset(url, "clustered")
    tqls = queries()
    want = exact_answers(ds, tqls)
    assert same_answers(answers(ds, tqls), want)  # loads the segment
    index_file = index_of(ds, "clustered").segments[0].files[0]
    damage(tmp_path / "ds" / index_file.path, "delete")
    assert same_answers(answers(ds, tqls), want)
    problems = ds.verify()
    assert len(problems) == 1 and "missing" in problems[0], problems
    cold_caches()
    assert same_answers(answers(lakefmt.open_read_only(url), tqls), want)


@pytest.mark.parametrize("how", ["delete", "truncate", "flip"])
def test_damaged_text_index_file(tmp_path: Path, how: str) -> None:
    url = str(tmp_path / "ds")
    ds = make_dataset(url, "clustered")
    want = exact_answers(ds, [BM25_QUERY])
    assert same_answers(answers(ds, [BM25_QUERY]), want)
    index_file = index_of(ds, "bm25").segments[0].files[0]
    cold_caches()
    damage(tmp_path / "ds" / index_file.path, how)
    handle = lakefmt.open_read_only(url)
    assert same_answers(answers(handle, [BM25_QUERY]), want)
    problems = handle.verify()
    assert len(problems) == 1 and index_file.path in problems[0], problems


def test_all_index_files_gone(tmp_path: Path) -> None:
    """An ``_indexes/`` folder lost whole (a partial copy): exact answers, every file listed."""
    url = str(tmp_path / "ds")
    ds = make_dataset(url, "clustered_quantized")
    tqls = [*queries(), BM25_QUERY]
    want = exact_answers(ds, tqls)
    listed = {f.path for i in ds._manifest.indexes for s in i.segments for f in s.files}
    cold_caches()
    for path in listed:
        (tmp_path / "ds" / path).unlink()
    handle = lakefmt.open_read_only(url)
    assert same_answers(answers(handle, tqls), want)
    problems = handle.verify()
    assert len(problems) == len(listed)
    assert {p for p in listed if any(p in problem for problem in problems)} == listed


def test_copy_keeps_the_index(tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    dst = str(tmp_path / "dst")
    ds = make_dataset(src, "clustered")
    ds.tag("v1")
    ds.delete([0, 5, 7])
    ds["emb"][3] = np.ones(DIM, np.float32)
    ds.commit()
    tqls = [*queries(), BM25_QUERY]
    want = answers(ds, tqls)
    assert same_answers(want, exact_answers(ds, tqls))
    lakefmt.copy(src, dst)
    cold_caches()
    copy = lakefmt.open_read_only(dst)
    assert same_answers(answers(copy, tqls), want)
    text = vector_explain(copy)
    assert "Index: none" not in text and "not used" not in text, text
    assert copy.verify() == []
    source_files = {f.path for i in ds._manifest.indexes for s in i.segments for f in s.files}
    assert {f.path for i in copy._manifest.indexes for s in i.segments for f in s.files} == (
        source_files
    )
    for path in source_files:
        assert (tmp_path / "dst" / path).read_bytes() == (tmp_path / "src" / path).read_bytes()
    tagged = copy.tags["v1"].open()
    assert same_answers(answers(tagged, tqls), answers(ds.tags["v1"].open(), tqls))


def _index_folders(root: Path) -> set[str]:
    folder = root / "_indexes"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_cleanup_removes_unlisted_index_files_and_keeps_tagged_ones(tmp_path: Path) -> None:
    url = str(tmp_path / "ds")
    root = tmp_path / "ds"
    ds = make_dataset(url, "clustered")
    tqls = queries()
    tagged_want = answers(ds, tqls)
    ds.tag("indexed")
    tagged_files = {f.path for i in ds._manifest.indexes for s in i.segments for f in s.files}
    # a branch that builds its own segment, then is deleted: nothing keeps that segment
    ds.branch("tmp")
    side = ds.branches["tmp"].open()
    side.append(
        {
            "id": np.arange(ROWS, ROWS + 50, dtype=np.int64),
            "label": np.zeros(50, np.int32),
            "emb": np.random.default_rng(9).standard_normal((50, DIM)).astype(np.float32),
            "text": ["cat"] * 50,
        }
    )
    side.build_indexes()
    side_only = {
        f.path for i in side._manifest.indexes for s in i.segments for f in s.files
    } - tagged_files
    assert side_only
    del side
    ds.branches["tmp"].delete()
    # a stray folder, as a build interrupted before its commit leaves
    stray = root / "_indexes" / "0123456789abcdef0123456789abcdef"
    stray.mkdir()
    (stray / "graph.bin").write_bytes(b"partial")
    # the index dropped on main: the tag still lists its files
    ds["emb"].drop_index("clustered")
    ds.commit()
    report = ds.cleanup(older_than=0)
    assert not (stray / "graph.bin").exists()
    assert "_indexes/0123456789abcdef0123456789abcdef/graph.bin" in report.files
    for path in side_only:
        assert not (root / path).exists(), path
        assert path in report.files
    for path in tagged_files:
        assert (root / path).exists(), path
    cold_caches()
    handle = ds.tags["indexed"].open()
    assert same_answers(answers(handle, tqls), tagged_want)
    text = vector_explain(handle)
    assert "Index: none" not in text and "not used" not in text, text
    assert handle.verify() == []
    assert "Index: none" in vector_explain(ds)
    assert ds.verify() == []
    # once the tag is gone too, nothing lists the vector index's files
    ds.tags["indexed"].delete()
    ds.cleanup(older_than=0)
    vector_files = {f.path for s in index_of(handle, "clustered").segments for f in s.files}
    history = [v.open() for v in ds.history]
    still_listed = {
        f.path for h in history for i in h._manifest.indexes for s in i.segments for f in s.files
    }
    for path in vector_files:
        assert (root / path).exists() == (path in still_listed), path
    assert os.path.isdir(root / "_indexes") or not still_listed
