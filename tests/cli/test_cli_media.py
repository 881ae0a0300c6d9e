"""``lakefmt import`` / ``export`` of image folders and COCO through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lakefmt
from tests.cli.conftest import Run, assert_ok, assert_user_error, run_many
from tests.integrations.media_helpers import make_coco, make_folder, read_files

pytest.importorskip("PIL.Image")


def test_import_and_export_image_folder(cli: Run, tmp_path: Path) -> None:
    src = tmp_path / "src"
    original = make_folder(src, {f"{c}/{i}.png": "PNG" for c in ("ant", "bee") for i in range(3)})
    dst = str(tmp_path / "ds")
    out = assert_ok(cli("import", str(src), dst))
    assert out.strip() == f"imported 6 rows into {dst} ({lakefmt.open_read_only(dst).version})"
    exported, by_label = tmp_path / "out", tmp_path / "by-label"
    info, head, export, export_by_label, flat = run_many(
        ("info", dst),
        ("head", dst, "-n", "2", "--columns", "image,filename"),
        ("export", dst, str(exported), "--format", "images"),
        ("export", dst, str(by_label), "--format", "images", "--label-column", "label"),
        ("import", str(src), str(tmp_path / "flat"), "--no-labels"),
    )
    assert "Image(" in assert_ok(info) and "ClassLabel(" in info.stdout
    assert "bytes>" in assert_ok(head) and "ant/0.png" in head.stdout
    assert "exported 6 rows" in assert_ok(export)
    assert read_files(exported) == original
    assert_ok(export_by_label)
    assert read_files(by_label) == original
    assert_ok(flat)
    assert list(lakefmt.open_read_only(str(tmp_path / "flat")).schema) == ["image", "filename"]


def test_mixed_image_folder_is_a_one_line_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_folder(src, {"a/1.png": "PNG", "a/2.jpg": "JPEG"})
    mixed, missing = run_many(
        ("import", str(src), str(tmp_path / "ds")),
        ("import", str(tmp_path / "empty-nothing"), str(tmp_path / "ds2")),
    )
    assert_user_error(mixed, "mix formats")
    assert not (tmp_path / "ds" / "_lakefmt.json").exists()
    assert_user_error(missing, "empty-nothing")


def test_import_coco(cli: Run, tmp_path: Path) -> None:
    images_dir, ann, files = make_coco(tmp_path)
    dst = str(tmp_path / "coco")
    out = assert_ok(cli("import", str(images_dir), dst, "--annotations", str(ann)))
    assert out.strip() == f"imported 3 rows into {dst} ({lakefmt.open_read_only(dst).version})"
    ds = lakefmt.open_read_only(dst)
    names = ds.schema["categories"].params()["class_names"]
    assert [[names[c] for c in row] for row in ds["categories"][:]] == [
        ["person", "dog", "car"],
        [],
        ["car"],
    ]
    assert ds["boxes"][2].tolist() == [[4.0, 1.0, 5.0, 6.0]]

    exported = tmp_path / "coco-images"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"categories": []}))
    query, export, explicit, no_ann, bad_ann = run_many(
        ("query", dst, "SELECT filename, image_id ORDER BY image_id", "--format", "json"),
        ("export", dst, str(exported), "--format", "images"),
        (
            "import",
            str(images_dir),
            str(tmp_path / "coco2"),
            "--format",
            "coco",
            "--annotations",
            str(ann),
        ),
        (
            "import",
            str(images_dir),
            str(tmp_path / "c3"),
            "--annotations",
            str(tmp_path / "missing.json"),
        ),
        ("import", str(images_dir), str(tmp_path / "c4"), "--annotations", str(broken)),
    )
    rows = json.loads(assert_ok(query))
    assert [r["filename"] for r in rows] == ["000001.jpg", "000002.jpg", "sub/000003.jpg"]
    assert_ok(export)
    assert read_files(exported) == files
    assert "imported 3 rows" in assert_ok(explicit)
    assert_user_error(no_ann, "missing.json")
    assert_user_error(bad_ann, "COCO")
