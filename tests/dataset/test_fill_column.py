"""``add_column(..., fill=)`` and ``fill_column``: computed columns, written as new column
groups, resumed after an interruption."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import lakefmt
from lakefmt.errors import ColumnNotFoundError, InvalidArgumentError


def _texts(path: str, fragments: int = 3, rows: int = 5) -> lakefmt.Dataset:
    ds = lakefmt.create(path, schema={"id": "int64", "text": "text"})
    for i in range(fragments):
        ds.append(
            {
                "id": list(range(i * rows, (i + 1) * rows)),
                "text": [f"doc {i}-{j}" * (j + 1) for j in range(rows)],
            }
        )
        ds.commit(f"part {i}")
    return ds


def _lengths(table: pa.Table) -> list[int]:
    return [len(s) for s in table.column("text").to_pylist()]


def test_fill_computes_every_row_and_rewrites_nothing_else(tmp_path) -> None:
    ds = _texts(str(tmp_path / "ds"))
    ds.delete([1, 7])
    ds["text"][0] = "changed"
    before = {f.path for fr in ds._manifest.fragments for f in fr.files}
    ds.add_column("length", "int32", fill=_lengths, fill_columns=["text"])
    rows = ds.to_arrow().to_pylist()
    assert [r["length"] for r in rows] == [len(r["text"]) for r in rows]
    after = [f for fr in ds._manifest.fragments for f in fr.files]
    new = [f for f in after if f.path not in before]
    assert len(new) == 3 and all(len(f.field_ids) == 1 for f in new)  # one column group each
    assert before <= {f.path for f in after}  # the old files are all still read
    assert ds.to_duckdb().to_arrow_table().column("length").to_pylist() == [
        r["length"] for r in rows
    ]


def test_an_interrupted_fill_resumes_where_it_stopped(tmp_path) -> None:
    url = str(tmp_path / "ds")
    ds = _texts(url)
    ds.add_column("length", "int32")
    calls: list[int] = []

    def flaky(table: pa.Table) -> list[int]:
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return _lengths(table)

    with pytest.raises(RuntimeError, match="worker lost"):
        ds.fill_column("length", flaky, columns=["text"])
    reopened = lakefmt.open(url)  # what a new process sees: the first fragment is filled
    lengths = reopened.to_arrow().column("length").to_pylist()
    assert lengths[:5] == [len(t) for t in reopened["text"][:5]] and lengths[5:] == [None] * 10
    calls.clear()
    assert reopened.fill_column("length", _counting(calls), columns=["text"]) == 10
    assert calls == [5, 5]  # only the two fragments left
    assert reopened.to_arrow().column("length").to_pylist() == [len(t) for t in reopened["text"][:]]
    assert reopened.fill_column("length", _counting(calls)) == 0  # nothing left


def _counting(calls: list[int]):
    def fill(table: pa.Table) -> list[int]:
        calls.append(table.num_rows)
        return _lengths(table)

    return fill


def test_batches_and_vector_values(tmp_path) -> None:
    ds = _texts(str(tmp_path / "ds"), fragments=1, rows=10)
    sizes: list[int] = []

    def embed(table: pa.Table) -> np.ndarray:
        sizes.append(table.num_rows)
        ids = table.column("id").to_numpy()
        return np.stack([ids, ids * 2, ids * 3], axis=1).astype(np.float32)

    ds.add_column("emb", lakefmt.types.Embedding(3))
    assert ds.fill_column("emb", embed, columns=["id"], batch_size=4) == 10
    assert sizes == [4, 4, 2]
    assert np.array_equal(ds["emb"].numpy(), np.stack([np.arange(10) * m for m in (1, 2, 3)], 1))


def test_bad_fills(tmp_path) -> None:
    ds = _texts(str(tmp_path / "ds"), fragments=1)
    version = ds.version
    with pytest.raises(InvalidArgumentError, match="function"):
        ds.add_column("n", "int32", fill=3)
    assert "n" not in ds.schema and ds.version == version  # refused before adding
    ds.add_column("n", "int32")
    with pytest.raises(InvalidArgumentError, match="one value per row"):
        ds.fill_column("n", lambda t: [1])
    with pytest.raises(InvalidArgumentError, match="itself"):
        ds.fill_column("n", _lengths, columns=["n"])
    with pytest.raises(ColumnNotFoundError):
        ds.fill_column("nope", _lengths)
    with pytest.raises(ColumnNotFoundError):
        ds.fill_column("n", _lengths, columns=["nope"])
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        ds.fill_column("n", _lengths, batch_size=0)
    with pytest.raises(lakefmt.TypeMismatchError):
        ds.fill_column("n", lambda t: ["x"] * t.num_rows)
    assert ds.to_arrow().column("n").to_pylist() == [None] * 5  # nothing half-written
    with pytest.raises(lakefmt.ReadOnlyError):
        lakefmt.open_read_only(str(tmp_path / "ds")).fill_column("n", _lengths)


def test_a_fragment_is_filled_whole_or_not_at_all(tmp_path) -> None:
    ds = _texts(str(tmp_path / "ds"), fragments=1, rows=10)
    ds.add_column("n", "int32")
    calls: list[int] = []

    def second_batch_fails(table: pa.Table) -> list[int]:
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise RuntimeError("stop")
        return _lengths(table)

    with pytest.raises(RuntimeError):
        ds.fill_column("n", second_batch_fails, batch_size=4)
    ds.commit()
    assert ds.to_arrow().column("n").to_pylist() == [None] * 10
    assert ds.fill_column("n", _lengths, batch_size=4) == 10
