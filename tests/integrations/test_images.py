"""Image folders and COCO: in with the original bytes, out with identical files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lakefmt
from lakefmt import types
from lakefmt.errors import ColumnNotFoundError, DecodeError, SchemaError
from tests.integrations.media_helpers import image_bytes, make_coco, make_folder, read_files

PIL = pytest.importorskip("PIL.Image")


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png")])
def test_image_folder_round_trip_is_byte_identical(tmp_path: Path, fmt: str, ext: str) -> None:
    layout = {f"{cls}/{i}.{ext}": fmt for cls in ("cat", "dog", "zebra") for i in range(4)}
    layout[f"dog/puppies/tiny.{ext}"] = fmt  # deeper folders: label from the top-level one
    src = tmp_path / "src"
    original = make_folder(src, layout)
    (src / "notes.txt").write_text("not an image")  # ignored

    ds = lakefmt.from_image_folder(src, str(tmp_path / "ds"), progress=False)
    assert len(ds) == len(layout)
    assert ds.schema["image"] == types.Image("uint8", fmt.lower())
    assert ds.schema["label"].params()["class_names"] == ["cat", "dog", "zebra"]
    assert sorted(ds["filename"][:]) == sorted(layout)
    names = ds.schema["label"].params()["class_names"]
    for i, (name, label) in enumerate(zip(ds["filename"][:], ds["label"][:], strict=True)):
        assert names[int(label)] == name.split("/")[0]
        assert ds["image"].get_bytes(i) == original[name]
    assert ds["image"][0].shape == (6, 8, 3)  # decodes too

    out = tmp_path / "out"
    written = lakefmt.to_image_folder(lakefmt.open_read_only(ds.url), out, progress=False)
    assert len(written) == len(layout)
    assert read_files(out) == original  # same subfolders, names and bytes


def test_export_by_label_column(tmp_path: Path) -> None:
    src = tmp_path / "src"
    original = make_folder(src, {"a/x/1.png": "PNG", "a/2.png": "PNG", "b/3.png": "PNG"})
    ds = lakefmt.from_image_folder(src, progress=False)
    out = tmp_path / "out"
    lakefmt.to_image_folder(ds, out, label_column="label", progress=False)
    assert read_files(out) == {
        "a/1.png": original["a/x/1.png"],
        "a/2.png": original["a/2.png"],
        "b/3.png": original["b/3.png"],
    }
    with pytest.raises(SchemaError, match="empty folder"):
        lakefmt.to_image_folder(ds, out, label_column="label", progress=False)
    with pytest.raises(ColumnNotFoundError):
        lakefmt.to_image_folder(ds, tmp_path / "x", label_column="nope", progress=False)
    with pytest.raises(ColumnNotFoundError):
        lakefmt.to_image_folder(ds, tmp_path / "x", column="pixels", progress=False)


def test_export_without_filenames_numbersread_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    blobs = [image_bytes(rng, "JPEG") for _ in range(3)]
    ds = lakefmt.create(
        "mem://no-names-" + tmp_path.name, schema={"image": types.Image("uint8", "jpeg")}
    )
    ds.append({"image": [blobs[0], None, blobs[2]]})
    lakefmt.to_image_folder(ds, tmp_path / "out", progress=False)
    assert read_files(tmp_path / "out") == {"00000000.jpg": blobs[0], "00000002.jpg": blobs[2]}


def test_without_labels_and_images_at_the_top(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_folder(src, {"top.jpg": "JPEG", "cls/in.jpg": "JPEG"})
    ds = lakefmt.from_image_folder(src, progress=False)
    labels = dict(zip(ds["filename"][:], ds["label"][:], strict=True))
    assert labels["top.jpg"] is None and labels["cls/in.jpg"] == 0
    plain = lakefmt.from_image_folder(src, labels_from_subfolders=False, progress=False)
    assert list(plain.schema) == ["image", "filename"]


def test_mixed_formats_need_a_compression(tmp_path: Path) -> None:
    src = tmp_path / "src"
    original = make_folder(src, {"a/1.jpg": "JPEG", "a/2.jpg": "JPEG", "b/3.png": "PNG"})
    with pytest.raises(SchemaError, match=r"2 jpeg.*1 png|1 png.*2 jpeg"):
        lakefmt.from_image_folder(src, str(tmp_path / "ds"), progress=False)
    assert not lakefmt.exists(str(tmp_path / "ds"))
    ds = lakefmt.from_image_folder(src, compression="jpeg", progress=False)
    by_name = {n: ds["image"].get_bytes(i) for i, n in enumerate(ds["filename"][:])}
    assert by_name["a/1.jpg"] == original["a/1.jpg"]  # kept as is
    assert by_name["b/3.png"] != original["b/3.png"] and by_name["b/3.png"][:3] == b"\xff\xd8\xff"


def test_format_comes_from_the_bytes_not_the_extension(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    png = image_bytes(rng, "PNG")
    (src / "really_png.jpg").write_bytes(png)
    ds = lakefmt.from_image_folder(src, progress=False)
    assert ds.schema["image"] == types.Image("uint8", "png")
    assert ds["image"].get_bytes(0) == png
    (src / "broken.png").write_bytes(b"hello, not an image")
    with pytest.raises(DecodeError, match=r"broken\.png"):
        lakefmt.from_image_folder(src, progress=False)


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="no images"):
        lakefmt.from_image_folder(tmp_path / "empty", progress=False)
    with pytest.raises(FileNotFoundError):
        lakefmt.from_image_folder(tmp_path / "missing", progress=False)


# -- COCO ---------------------------------------------------------------------------------------
def test_coco_boxes_and_categories_per_image(tmp_path: Path) -> None:
    images_dir, ann, files = make_coco(tmp_path)
    ds = lakefmt.from_coco(images_dir, ann, str(tmp_path / "ds"), progress=False)
    assert len(ds) == 3
    assert ds["image_id"][:].tolist() == [1, 2, 3]  # sorted by image id
    assert ds["filename"][:] == ["000001.jpg", "000002.jpg", "sub/000003.jpg"]
    # categories are sorted by COCO id: person (1), car (3), dog (18)
    names = ds.schema["categories"].params()["class_names"]
    assert names == ["person", "car", "dog"]

    boxes, cats, crowd = ds["boxes"][:], ds["categories"][:], ds["iscrowd"][:]
    np.testing.assert_array_equal(
        boxes[0], np.array([[1, 2, 3, 4], [0.5, 0.5, 2.5, 2.0], [6, 0, 1, 1]], dtype=np.float32)
    )
    assert [names[c] for c in cats[0]] == ["person", "dog", "car"]
    assert list(crowd[0]) == [False, False, False]
    assert boxes[1].shape == (0, 4) and len(cats[1]) == 0 and len(crowd[1]) == 0  # no annotations
    np.testing.assert_array_equal(boxes[2], [[4, 1, 5, 6]])
    assert [names[c] for c in cats[2]] == ["car"] and list(crowd[2]) == [True]
    assert ds.schema["boxes"].params()["format"] == "ltwh"

    for i, name in enumerate(ds["filename"][:]):
        assert ds["image"].get_bytes(i) == files[name]
    out = tmp_path / "out"
    lakefmt.to_image_folder(ds, out, progress=False)
    assert read_files(out) == files

    same = lakefmt.from_coco(images_dir, json.loads(ann.read_text()), progress=False)  # a dict
    assert same.to_arrow().equals(ds.to_arrow())


def test_coco_errors(tmp_path: Path) -> None:
    images_dir, ann, _ = make_coco(tmp_path)
    coco = json.loads(ann.read_text())
    with pytest.raises(SchemaError, match="images"):
        lakefmt.from_coco(images_dir, {"annotations": []}, progress=False)
    bad = dict(
        coco,
        annotations=[
            *coco["annotations"],
            {"id": 99, "image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1]},
        ],
    )
    with pytest.raises(SchemaError, match="category 77"):
        lakefmt.from_coco(images_dir, bad, progress=False)
    bad = dict(
        coco, annotations=[{"id": 98, "image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1]}]
    )
    with pytest.raises(SchemaError, match="image 42"):
        lakefmt.from_coco(images_dir, bad, progress=False)
    (images_dir / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError):
        lakefmt.from_coco(images_dir, ann, str(tmp_path / "ds"), progress=False)
    assert not lakefmt.exists(str(tmp_path / "ds"))
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    with pytest.raises(SchemaError, match="not JSON"):
        lakefmt.from_coco(images_dir, not_json, progress=False)
