"""ClassLabel, BoundingBox, Point, Polygon, masks, Sequence, Struct and Dict columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import DecodeError, TypeMismatchError

Roundtrip = Callable[..., lakefmt.ReadOnlyDataset]


def _bad_append(
    url: str, schema: dict[str, Any], data: Any, error: type[Exception], match: str
) -> str:
    ds = lakefmt.create(url, schema=schema)
    with pytest.raises(error, match=match) as info:
        ds.append(data)
    assert len(ds) == 0
    ds.flush()
    assert len(lakefmt.open_read_only(url)) == 0
    return str(info.value)


# --- ClassLabel ----------------------------------------------------------------------------------


def test_class_labels_by_int_and_name(types_roundtrip: Roundtrip) -> None:
    dtype = types.ClassLabel("int16", class_names=["cat", "dog", "bird"])
    ds = types_roundtrip(
        {"label": dtype},
        {"label": ["dog", 0, np.int64(2), None]},
        {"label": np.array([1, 1], dtype=np.int32)},
        {"label": "bird"},
    )
    labels = ds["label"][:]
    assert labels.tolist() == [1, 0, 2, None, 1, 1, 2]
    assert ds["label"][0] == 1 and ds["label"][3] is None
    assert ds["label"][:2].dtype == np.int16
    back = ds.schema["label"]
    assert back.params()["class_names"] == ["cat", "dog", "bird"]
    assert back.class_name(1) == "dog" and back.index_of("bird") == 2
    assert back.class_name(7) is None


def test_multi_label(types_roundtrip: Roundtrip) -> None:
    dtype = types.ClassLabel(types.Array("int32", dimensions=1), ["a", "b", "c"])
    assert dtype.storage_type == pa.list_(pa.int32())
    ds = types_roundtrip({"tags": dtype}, {"tags": [["a", "c"], [], None, [1]]}, {"tags": ["b"]})
    rows = ds["tags"][:]
    assert [None if r is None else r.tolist() for r in rows] == [[0, 2], [], None, [1], [1]]
    assert ds.schema["tags"] == dtype


@pytest.mark.parametrize(
    "bad,match",
    [
        (["cat", "horse"], r"no class named 'horse' \(row 1\)"),
        ([0, 1.5], r"got float.*row 1"),
        ([0, True], r"got bool.*row 1"),
        ([0, 40_000], r"2 classes \(0\.\.1\), got 40000 at row 1"),
    ],
)
def test_bad_class_labels(types_url: str, bad: Any, match: str) -> None:
    schema = {"label": types.ClassLabel("int16", class_names=["cat", "dog"])}
    message = _bad_append(types_url, schema, {"label": bad}, TypeMismatchError, match)
    assert "'label'" in message


def test_class_label_without_names_refuses_names(types_url: str) -> None:
    _bad_append(
        types_url, {"l": types.ClassLabel()}, {"l": ["cat"]}, TypeMismatchError, "no class_names"
    )


# --- boxes, points, polygons ---------------------------------------------------------------------


def test_bounding_boxes(types_roundtrip: Roundtrip) -> None:
    dtype = types.BoundingBox("float32", format="LTWH", bbox_type="pixel")
    assert dtype.params() == {"dtype": "float32", "format": "ltwh", "bbox_type": "pixel"}
    assert dtype.storage_type == pa.list_(pa.list_(pa.float32(), 4))
    ds = types_roundtrip(
        {"boxes": dtype},
        {"boxes": [np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), [], None, [[0.5, 0.5, 1, 1]]]},
        {"boxes": [10, 20, 30, 40]},  # one row holding one box
    )
    rows = ds["boxes"][:]
    assert rows[0].shape == (2, 4) and rows[0].dtype == np.float32
    assert rows[1].shape == (0, 4) and rows[2] is None
    assert rows[3].tolist() == [[0.5, 0.5, 1, 1]]
    assert ds["boxes"][4].tolist() == [[10, 20, 30, 40]]
    assert ds.schema["boxes"] == dtype
    with pytest.raises(TypeError):
        types.BoundingBox(format="xyxy")


def test_points_and_polygons(types_roundtrip: Roundtrip) -> None:
    ds = types_roundtrip(
        {"kp": types.Point("int32", dimensions=3), "poly": types.Polygon()},
        {
            "kp": [[[1, 2, 3]], np.zeros((0, 3), np.int32), None],
            "poly": [[np.zeros((3, 2)), [[0, 0], [1, 0], [1, 1], [0, 1]]], [], None],
        },
    )
    kp = ds["kp"][:]
    assert kp[0].tolist() == [[1, 2, 3]] and kp[0].dtype == np.int32
    assert kp[1].shape == (0, 3) and kp[2] is None
    poly = ds["poly"][:]
    assert [p.shape for p in poly[0]] == [(3, 2), (4, 2)]
    assert poly[0][1].tolist() == [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert poly[1] == [] and poly[2] is None
    assert [p.shape for p in ds["poly"][0]] == [(3, 2), (4, 2)]


@pytest.mark.parametrize(
    "schema,bad,match",
    [
        (
            {"b": types.BoundingBox()},
            {"b": [[[1, 2, 3, 4]], [[1, 2, 3]]]},
            r"shape \(1, 3\) at row 1",
        ),
        ({"b": types.BoundingBox()}, {"b": [[[1, 2, 3, 4]], [["a", "b", "c", "d"]]]}, "row 1"),
        ({"p": types.Point("int32")}, {"p": [[[1, 2]], [[1.5, 2]]]}, r"int32.*float64 at row 1"),
        (
            {"g": types.Polygon()},
            {"g": [[np.zeros((3, 2))], [np.zeros((3, 3))]]},
            r"\(3, 3\) at row 1",
        ),
        ({"g": types.Polygon()}, {"g": [[np.zeros((3, 2))], "square"]}, "row 1"),
    ],
)
def test_bad_geometry(types_url: str, schema: dict[str, Any], bad: Any, match: str) -> None:
    _bad_append(types_url, schema, bad, TypeMismatchError, match)


# --- masks ---------------------------------------------------------------------------------------


def test_segment_masks(types_roundtrip: Roundtrip, types_encode_pil: Callable[..., bytes]) -> None:
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    wide = (np.arange(6, dtype=np.uint16) * 1000).reshape(2, 3)
    ds = types_roundtrip(
        {
            "plain": types.SegmentMask("uint16"),
            "png": types.SegmentMask("uint8", sample_compression="png"),
            "png16": types.SegmentMask("uint16", sample_compression="png"),
        },
        {
            "plain": [wide, None],
            "png": [mask, types_encode_pil(mask, "PNG")],
            "png16": [wide, None],
        },
    )
    np.testing.assert_array_equal(ds["plain"][0], wide)
    assert ds["plain"][0].dtype == np.uint16 and ds["plain"][1] is None
    for value in ds["png"][:]:
        assert value.shape == (3, 4)
        np.testing.assert_array_equal(value, mask)
    np.testing.assert_array_equal(ds["png16"][0], wide)
    assert ds["png"].get_bytes(0).startswith(b"\x89PNG")


def test_binary_masks(types_roundtrip: Roundtrip, types_encode_pil: Callable[..., bytes]) -> None:
    flat = np.eye(3, 4, dtype=bool)
    stacked = np.stack([flat, ~flat], axis=-1)
    ds = types_roundtrip(
        {"m": types.BinaryMask(), "p": types.BinaryMask("png")},
        {
            "m": [flat, stacked, None, np.zeros((0, 0), bool)],
            "p": [flat, types_encode_pil(flat.astype(np.uint8) * 255, "PNG"), None, flat[:1]],
        },
    )
    rows = ds["m"][:]
    np.testing.assert_array_equal(rows[0], flat)
    np.testing.assert_array_equal(rows[1], stacked)
    assert rows[1].dtype == bool and rows[2] is None and rows[3].shape == (0, 0)
    np.testing.assert_array_equal(ds["m"][1], stacked)
    for value in ds["p"][:2]:
        np.testing.assert_array_equal(value, flat)
    assert ds["p"][3].shape == (1, 4)


@pytest.mark.parametrize(
    "schema,bad,error,match",
    [
        (
            {"m": types.SegmentMask()},
            [np.zeros((2, 2), np.uint8), np.zeros(3, np.uint8)],
            TypeMismatchError,
            r"\(3,\) at row 1",
        ),
        (
            {"m": types.SegmentMask()},
            [np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.float32)],
            TypeMismatchError,
            "uint8.*float32 at row 1",
        ),
        (
            {"m": types.SegmentMask("uint8", "png")},
            [b"\x89PNG\r\n\x1a\n", b"junk"],
            DecodeError,
            "row 0",
        ),
        (
            {"m": types.BinaryMask()},
            [np.zeros((2, 2), bool), np.zeros((2, 2), np.uint8)],
            TypeMismatchError,
            "bool.*uint8 at row 1",
        ),
        (
            {"m": types.BinaryMask()},
            [np.zeros((2, 2), bool), np.zeros(3, bool)],
            TypeMismatchError,
            r"\(3,\) at row 1",
        ),
        (
            {"m": types.BinaryMask("png")},
            [np.zeros((2, 2), bool), np.zeros((2, 2, 2), bool)],
            TypeMismatchError,
            "row 1",
        ),
    ],
)
def test_bad_masks(
    types_url: str, schema: dict[str, Any], bad: list[Any], error: type[Exception], match: str
) -> None:
    message = _bad_append(types_url, schema, {"m": bad}, error, match)
    assert "'m'" in message


def test_png_mask_must_be_single_channel(types_url: str, types_png: bytes) -> None:
    _bad_append(
        types_url,
        {"m": types.SegmentMask("uint8", "png")},
        {"m": [types_png]},
        DecodeError,
        "single-channel PNG mask, got a 3-channel",
    )


# --- Sequence, Struct, Dict -----------------------------------------------------------------


def test_sequences(types_roundtrip: Roundtrip, types_png: bytes) -> None:
    schema = {
        "words": types.Sequence("text"),
        "nums": types.Sequence(types.Int32()),
        "frames": types.Sequence(types.Image()),
        "vecs": types.Sequence(types.Embedding(2)),
    }
    assert schema["frames"].is_media and not schema["words"].is_media
    ds = types_roundtrip(
        schema,
        {
            "words": [["a", "b"], [], None],
            "nums": [np.array([1, 2, 3]), [4], [None, 5]],
            "frames": [[types_png, types_png], [None], []],
            "vecs": [[[1, 2], [3, 4]], [], None],
        },
        {"words": ["x"], "nums": [7], "frames": [types_png], "vecs": [[5, 6]]},  # one row
    )
    assert ds["words"][:] == [["a", "b"], [], None, ["x"]]
    nums = ds["nums"][:]
    assert nums[0].tolist() == [1, 2, 3] and list(nums[2]) == [None, 5] and nums[3].tolist() == [7]
    frames = ds["frames"][:]
    assert len(frames[0]) == 2 and frames[0][0].shape == (20, 30, 3)
    assert frames[1] == [None] and frames[2] == []
    vecs = ds["vecs"][:]
    assert vecs[0].tolist() == [[1, 2], [3, 4]] and len(vecs[1]) == 0 and vecs[2] is None
    assert ds["vecs"][3].tolist() == [[5, 6]]
    assert ds.schema["frames"] == types.Sequence(types.Image())


def test_bad_sequence_item_names_row_and_item(types_url: str, types_png: bytes) -> None:
    message = _bad_append(
        types_url,
        {"s": types.Sequence("int32")},
        {"s": [[1, 2], [3, "x"]]},
        TypeMismatchError,
        r"column 's\[1\]' expects int32, got str 'x' at row 1",
    )
    assert message
    _bad_append(
        types_url + "2",
        {"s": types.Sequence(types.Image())},
        {"s": [[types_png], [types_png, b"??"]]},
        DecodeError,
        r"column 's\[1\]' row 1",
    )
    _bad_append(
        types_url + "3", {"s": types.Sequence("int32")}, {"s": [[1], 5]}, TypeMismatchError, "row 1"
    )


def test_structs(types_roundtrip: Roundtrip, types_png: bytes) -> None:
    dtype = types.Struct(
        {"name": "text", "score": types.Float32(), "box": types.BoundingBox(), "img": types.Image()}
    )
    assert dtype.is_media
    ds = types_roundtrip(
        {"obj": dtype},
        {
            "obj": [
                {"name": "a", "score": 0.5, "box": [[1, 2, 3, 4]], "img": types_png},
                {"name": "b"},
                None,
            ]
        },
        {"obj": {"score": 2.0}},
    )
    rows = ds["obj"][:]
    assert rows[0]["name"] == "a" and rows[0]["score"] == pytest.approx(0.5)
    assert rows[0]["box"].tolist() == [[1, 2, 3, 4]] and rows[0]["img"].shape == (20, 30, 3)
    assert rows[1]["score"] is None and rows[1]["img"] is None and rows[2] is None
    assert ds["obj"][3]["score"] == pytest.approx(2.0) and ds["obj"][3]["name"] is None
    assert list(ds.schema["obj"].fields) == ["name", "score", "box", "img"]


@pytest.mark.parametrize(
    "bad,match",
    [
        ([{"a": 1}, {"a": 1, "zz": 2}], r"no field 'zz' \(row 1\)"),
        ([{"a": 1}, 5], "row 1"),
        ([{"a": 1}, {"a": "x"}], r"column 'st.a' expects int32, got str 'x' at row 1"),
    ],
)
def test_bad_structs(types_url: str, bad: Any, match: str) -> None:
    _bad_append(
        types_url, {"st": types.Struct({"a": "int32"})}, {"st": bad}, TypeMismatchError, match
    )


def test_dicts(types_roundtrip: Roundtrip) -> None:
    values = [
        {"a": 1, "b": [1, 2]},
        {"nested": {"x": None}},
        None,
        3,
        "text",
        {"n": np.int64(4), "v": np.arange(2)},
    ]
    ds = types_roundtrip({"meta": types.Dict()}, {"meta": values}, {"meta": {"one": "row"}})
    rows = ds["meta"][:]
    assert rows[:5] == values[:5]
    assert rows[5] == {"n": 4, "v": [0, 1]}
    assert ds["meta"][6] == {"one": "row"}
    assert ds["meta"].get_bytes(0) == '{"a": 1, "b": [1, 2]}'


@pytest.mark.parametrize("bad", [{"x": b"bytes"}, {"x": float("nan")}, {"x": object()}])
def test_bad_dicts(types_url: str, bad: Any) -> None:
    _bad_append(
        types_url, {"meta": types.Dict()}, {"meta": [{"ok": 1}, bad]}, TypeMismatchError, "row 1"
    )
