"""Every type together: round trips on every backend, nulls, zero-row appends, exports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import trimesh

import lakefmt
from lakefmt import types
from lakefmt.errors import TypeMismatchError

Everything = tuple[dict[str, Any], list[dict[str, Any]]]


def _check_rows(ds: lakefmt.DatasetView, rows: list[dict[str, Any]]) -> None:
    """The values read back match what was appended (per type's read form)."""
    first, second, nulls = (ds[i].to_dict() for i in range(3))
    for name, value in nulls.items():
        assert value is None or name == "id", name
    assert first["image"].shape == (32, 48, 3)
    assert len(first["video"]) == 72 and second["video"][5:7].shape == (2, 48, 64, 3)
    assert isinstance(first["mesh"], trimesh.Trimesh) and len(first["mesh"].faces) == 12
    assert first["link"].shape == (20, 30, 3)
    np.testing.assert_array_equal(second["link"], first["link"])
    assert first["embedding"].tolist() == [0.25, 0.5, 1.0]
    assert second["array"].tolist() == [[0, 0], [0, 0]] and first["array"].tolist() == [
        [1, 2],
        [3, 4],
    ]
    assert first["ragged"].shape == (2, 3) and second["ragged"].shape == (0, 0)
    assert (first["label"], second["label"]) == (1, 0)
    np.testing.assert_allclose(first["boxes"], [[0.1, 0.1, 0.5, 0.5]])
    assert second["boxes"].shape == (0, 4)
    np.testing.assert_array_equal(first["segment"], np.eye(2))
    assert second["segment"].shape == (3, 1)
    np.testing.assert_array_equal(first["binary"], np.eye(2, dtype=bool))
    assert second["binary"].shape == (1, 1, 2)
    assert first["points"].tolist() == [[1.0, 2.0]] and second["points"].shape == (0, 2)
    assert first["polygons"][0].shape == (3, 2) and second["polygons"] == []
    assert (first["seq"], second["seq"]) == (["a", "b"], [])
    assert first["struct"]["a"] == 1 and first["struct"]["b"].tolist() == [1.0, 2.0]
    assert second["struct"]["a"] is None and second["struct"]["b"] is None
    assert (first["json"], second["json"]) == ({"k": "v"}, [1, 2])
    assert [first["id"], second["id"], nulls["id"]] == [0, 1, 2]
    assert ds["image"].get_bytes(0) == rows[0]["image"]


def test_every_type_round_trips_on_every_backend(
    dataset_url: str, types_everything: Everything
) -> None:
    schema, rows = types_everything
    ds = lakefmt.create(dataset_url, schema=schema)
    ds.append({name: [] for name in schema})  # zero-row append of every column
    ds.append(rows[:2])
    ds.append(dict(rows[2]))  # a one-row dict append of None in every typed column
    ds.append([])
    ds.flush()
    reopened = lakefmt.open_read_only(dataset_url)
    assert len(reopened) == 3
    assert reopened.schema == {k: types.resolve_type(v) for k, v in schema.items()}
    _check_rows(reopened, rows)
    batches = list(reopened.batches(2))
    assert [len(b["id"]) for b in batches] == [2, 1]
    assert batches[1]["image"] == [None] and batches[0]["seq"] == [["a", "b"], []]


def test_to_arrow_keeps_extension_types(types_url: str, types_everything: Everything) -> None:
    schema, rows = types_everything
    ds = lakefmt.create(types_url, schema=schema)
    ds.append(rows)
    ds.flush()
    table = lakefmt.open_read_only(types_url).to_arrow()
    for name, spec in schema.items():
        dtype = types.resolve_type(spec)
        assert table.schema.field(name).type == dtype.arrow_type, name
    assert table.column("image").null_count == 1
    images = table.column("image").combine_chunks()
    assert images.decode()[0].shape == (32, 48, 3)  # the extension array decodes itself
    # a table from to_arrow appends back unchanged (extension arrays are taken as storage)
    copy = lakefmt.create(types_url + "-copy", schema=schema)
    copy.append(table)
    assert copy.to_arrow().equals(table)


def test_to_pandas_bytes_or_decoded(types_url: str, types_everything: Everything) -> None:
    schema, rows = types_everything
    ds = lakefmt.create(types_url, schema=schema)
    ds.append(rows)
    raw = ds.to_pandas(columns=["image", "video", "mesh", "link", "embedding", "json", "id"])
    assert raw["image"][0] == rows[0]["image"] and raw["image"][2] is None
    assert isinstance(raw["video"][0], bytes) and isinstance(raw["mesh"][0], bytes)
    assert raw["link"][0] == rows[0]["link"]
    assert list(raw["embedding"][0]) == [0.25, 0.5, 1.0]
    assert raw["json"][0] == '{"k": "v"}'
    decoded = ds.to_pandas(columns=["image", "video", "mesh", "json", "id"], decode=True)
    assert decoded["image"][0].shape == (32, 48, 3) and decoded["image"][2] is None
    assert isinstance(decoded["video"][0], types.VideoClip)
    assert isinstance(decoded["mesh"][0], trimesh.Trimesh)
    assert decoded["json"][0] == {"k": "v"}


def test_polars_keeps_storage_values(types_url: str, types_everything: Everything) -> None:
    pl = pytest.importorskip("polars")
    schema, rows = types_everything
    ds = lakefmt.create(types_url, schema=schema)
    ds.append(rows)
    frame = ds.to_polars(columns=["image", "embedding", "label", "seq", "struct"])
    assert frame["image"].dtype == pl.Binary and frame["image"][0] == rows[0]["image"]
    assert frame["embedding"][0].to_list() == [0.25, 0.5, 1.0]
    assert frame["label"].to_list() == [1, 0, None]
    assert frame["seq"][0].to_list() == ["a", "b"]
    assert frame["struct"][0]["a"] == 1


def test_add_media_column_and_update_a_cell(types_url: str, types_jpeg: bytes) -> None:
    ds = lakefmt.create(types_url, schema={"id": "int64"})
    ds.append({"id": [1, 2]})
    ds.add_column("img", types.Image("uint8", "jpeg"))
    ds.add_column("meta", types.Dict(), default_value={"source": "none"})
    assert ds["img"][:] == [None, None]
    assert ds["meta"][1] == {"source": "none"}
    ds["img"][1] = types_jpeg
    ds.commit()
    again = lakefmt.open_read_only(types_url)
    assert again["img"][0] is None and again["img"].get_bytes(1) == types_jpeg
    assert again["img"][1].shape == (32, 48, 3)
    with pytest.raises(TypeMismatchError):
        ds.add_column("emb", types.Embedding(3), default_value=[1, 2])


def test_nulls_in_every_column_use_the_validity_bitmap(types_everything: Everything) -> None:
    schema, _ = types_everything
    for name, spec in schema.items():
        dtype = types.resolve_type(spec)
        array = dtype.convert([None, None], column=name)
        storage = array.storage if isinstance(array, pa.ExtensionArray) else array
        assert storage.null_count == 2, name
        assert dtype.decode_one(array, 1) is None, name
        assert dtype.convert([], column=name).type == dtype.arrow_type, name
