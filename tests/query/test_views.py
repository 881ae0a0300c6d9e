"""Query results are lazy views: row references into the queried version."""

from __future__ import annotations

import asyncio
import importlib
import pickle
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from qhelpers import Built, build_rich, ids

import lakefmt
from lakefmt import ReadOnlyError, types

query_pkg = importlib.import_module("lakefmt.tql")


def test_row_view_basics(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT * WHERE score > 0.5")
    e = t[t.score > 0.5].reset_index(drop=True)
    assert len(view) == len(e)
    assert isinstance(view, lakefmt.DatasetView)
    assert view["title"][0] == e.title[0]
    assert view["id"][-1] == e.id.iloc[-1]
    np.testing.assert_allclose(view["emb"][3], np.asarray(e.emb[3]))
    row = view[2].to_dict()
    assert row["id"] == e.id[2] and row["title"] == e.title[2] and row["extra"] == e.extra[2]
    np.testing.assert_allclose(row["emb"], np.asarray(e.emb[2]))
    assert list(view["tags"][1]) == list(e.tags[1])
    assert view["meta"][0] == e.meta[0]
    assert [r["id"] for r in view[:3]] == e.id.tolist()[:3]
    sub = view[[4, 1]]
    assert ids(sub) == [int(e.id[4]), int(e.id[1])]
    batches = list(view.batches(7, columns=["id", "emb"]))
    assert sum(len(b["id"]) for b in batches) == len(e)
    assert np.concatenate([b["emb"] for b in batches]).shape == (len(e), 8)


def test_to_arrow_keeps_extension_types(rich: Built) -> None:
    view = rich.ds.query("SELECT * WHERE extra = 5")
    table = view.to_arrow()
    full = rich.ds.to_arrow()
    assert table.schema == full.schema
    mask = pa.compute.equal(full.column("extra"), 5)
    assert table.equals(full.filter(mask))
    assert (
        view.to_arrow(columns=["id", "label"]).schema.field("label").type
        == full.schema.field("label").type
    )
    frame = view.to_pandas()
    assert frame.shape == (len(view), len(view.schema))
    polars = view.to_polars()
    assert polars.shape == (len(view), len(view.schema))
    reader = view.to_batches(batch_size=10)
    assert reader.read_all().num_rows == len(view)


def test_media_columns_are_read_lazily(tmp_path: Path) -> None:
    for url in (f"mem://query-{uuid.uuid4().hex}", str(tmp_path / "lazy")):
        built = build_rich(url, images=True)
        ds = built.ds
        img_field = ds._snapshot().field("img")
        # a filter on scalars neither reads nor registers the image column
        plan = query_pkg._plan("SELECT * WHERE score > 0.5", query_pkg_source(ds), None)
        img_files = {
            d.path for f in ds._manifest.fragments for d in f.files if img_field.id in d.field_ids
        }
        assert not any(path in plan.sql for path in img_files)
        assert all(f"__lf_f{img_field.id}" not in t.column_names for _, t in plan.tables)
        view = ds.query("SELECT * WHERE score > 0.5")
        assert "img" in view.schema and isinstance(view.schema["img"], types.Image)
        assert [c.name for c in view._result.columns if not c.in_table] == ["emb", "tags", "img"]
        first = view["img"][0]
        assert first.ndim == 3 and first.shape[2] == 3
        assert view[0]["img"].shape == first.shape
        raw = view["img"].get_bytes(0)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"


def query_pkg_source(ds: lakefmt.Dataset) -> object:
    from lakefmt.dataset.query_view import dataset_source

    return dataset_source(ds._pinned_now())


def test_nested_queries(rich: Built) -> None:
    t = rich.truth
    first = rich.ds.query("SELECT *, score * 2 AS s2 WHERE extra = 5")
    second = first.query("SELECT * WHERE s2 > 1 ORDER BY s2 DESC, id")
    e = t[(t.extra == 5) & (t.score * 2 > 1)].sort_values(["score", "id"], ascending=[False, True])
    assert ids(second) == e.id.tolist()
    np.testing.assert_allclose(second["s2"][:], (e.score * 2).to_numpy())
    np.testing.assert_allclose(second["emb"][:], np.stack(e.emb.to_list()))
    # a slice of a query result, queried again
    part = first[5:15]
    third = part.query("SELECT id, title WHERE ROW_NUMBER() < 3")
    assert ids(third) == ids(first)[5:8]
    # a plain row range of the dataset
    rows = rich.ds[10:30].query("SELECT * WHERE score > 0.5")
    assert ids(rows) == [i for i in t.id.tolist()[10:30] if t.set_index("id").score[i] > 0.5]
    # aggregates over a view, and a query over an aggregate result
    agg = first.query("SELECT label, COUNT(*) AS n GROUP BY label ORDER BY label")
    assert agg["n"][:].tolist() == t[t.extra == 5].groupby("label").size().tolist()
    again = agg.query("SELECT * WHERE n > 1")
    assert again["n"][:].tolist() == [n for n in agg["n"][:].tolist() if n > 1]
    assert isinstance(again.schema["label"], types.ClassLabel)


def test_renamed_output_columns(rich: Built) -> None:
    view = rich.ds.query("SELECT id AS key, emb AS vector, title WHERE extra < 5")
    assert list(view.schema) == ["key", "vector", "title"]
    assert view["vector"][:].shape == (5, 8)  # extra is 0..5 on the last 6 rows
    again = view.query("SELECT key WHERE key > 100")
    assert again["key"][:].tolist() == [k for k in view["key"][:].tolist() if k > 100]


def test_pickling_views(rich: Built) -> None:
    view = rich.ds.query("SELECT *, score + 1 AS s1 WHERE score > 0.5 ORDER BY score DESC")
    clone = pickle.loads(pickle.dumps(view))
    assert len(clone) == len(view)
    assert clone.to_arrow().equals(view.to_arrow())
    np.testing.assert_array_equal(clone["emb"][:], view["emb"][:])
    agg = rich.ds.query("SELECT extra, COUNT(*) AS n GROUP BY extra ORDER BY extra")
    assert pickle.loads(pickle.dumps(agg)).to_arrow().equals(agg.to_arrow())
    sub = view[1:4]
    assert pickle.loads(pickle.dumps(sub)).to_arrow().equals(sub.to_arrow())


def test_query_views_are_read_only(rich_mem: Built) -> None:
    view = rich_mem.ds.query("SELECT * WHERE score > 0.5")
    with pytest.raises(ReadOnlyError):
        view["score"][0] = 1.0
    with pytest.raises(ReadOnlyError):
        view[0]["title"] = "x"


def test_query_async_is_awaitable(rich_mem: Built) -> None:
    future = rich_mem.ds.query_async("SELECT * WHERE score > 0.5")
    assert len(future.result(timeout=30)) == int((rich_mem.truth.score > 0.5).sum())

    async def main() -> int:
        view = await rich_mem.ds.query_async("SELECT * WHERE score > 0.9")
        top = await lakefmt.query_async(f'SELECT * FROM "{rich_mem.ds.url}" WHERE score > 0.9')
        return len(view) + len(top)

    assert asyncio.run(main()) == 2 * int((rich_mem.truth.score > 0.9).sum())
    failed = rich_mem.ds.query_async("SELECT nosuch")
    with pytest.raises(lakefmt.QueryError):
        failed.result(timeout=30)


def test_concurrent_queries_from_threads(rich: Built) -> None:
    from concurrent.futures import ThreadPoolExecutor

    t = rich.truth
    tqls = [f"SELECT * WHERE score > {x / 10}" for x in range(10)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: ids(rich.ds.query(q)), tqls * 3))
    for q, got in zip(tqls * 3, results, strict=True):
        threshold = float(q.rsplit(" ", 1)[1])
        assert got == t[t.score > threshold].id.tolist()


def test_summary_and_repr(rich_mem: Built) -> None:
    view = rich_mem.ds.query("SELECT id, score WHERE score > 0.5")
    assert "QueryView" in repr(view) and "score > 0.5" in repr(view)
    assert view.tql == "SELECT id, score WHERE score > 0.5"
