"""Generated images, image folders and a small COCO file, shared by integration and CLI tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np


def image_bytes(rng: np.random.Generator, fmt: str, size: tuple[int, int] = (12, 9)) -> bytes:
    """A random RGB image of ``size`` (width, height) encoded as ``fmt``."""
    from PIL import Image

    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def make_folder(root: Path, layout: dict[str, str], seed: int = 0) -> dict[str, bytes]:
    """Write ``{relative path: "JPEG" | "PNG" | "TIFF"}``; return ``{relative path: bytes}``."""
    rng = np.random.default_rng(seed)
    written = {}
    for rel, fmt in layout.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = image_bytes(rng, fmt, (8 + len(written) % 5, 6 + len(written) % 3))
        path.write_bytes(data)
        written[rel] = data
    return written


def read_files(root: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def make_coco(root: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """Three images (one without annotations), three categories: (images dir, JSON, files)."""
    images_dir = root / "images"
    files = make_folder(
        images_dir, {"000001.jpg": "JPEG", "000002.jpg": "JPEG", "sub/000003.jpg": "JPEG"}, seed=5
    )
    coco = {
        "info": {"description": "tiny"},
        "images": [
            {"id": 3, "file_name": "sub/000003.jpg", "width": 10, "height": 8},
            {"id": 1, "file_name": "000001.jpg", "width": 8, "height": 6},
            {"id": 2, "file_name": "000002.jpg", "width": 9, "height": 7},
        ],
        "categories": [
            {"id": 18, "name": "dog", "supercategory": "animal"},
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "bbox": [1.0, 2.0, 3.0, 4.0],
                "area": 12.0,
                "iscrowd": 0,
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 18,
                "bbox": [0.5, 0.5, 2.5, 2.0],
                "area": 5.0,
                "iscrowd": 0,
            },
            {
                "id": 12,
                "image_id": 3,
                "category_id": 3,
                "bbox": [4, 1, 5, 6],
                "area": 30,
                "iscrowd": 1,
            },
            {"id": 13, "image_id": 1, "category_id": 3, "bbox": [6, 0, 1, 1], "area": 1},
        ],
    }
    ann = root / "instances.json"
    ann.write_text(json.dumps(coco))
    return images_dir, ann, files
