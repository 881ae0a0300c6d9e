"""Fixtures of the type tests (prefixed ``types_``): media samples, round trips, a moto S3."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakefmt


def gradient(height: int, width: int, channels: int, dtype: str = "uint8") -> np.ndarray:
    """A smooth, deterministic test image (compresses well, survives JPEG roughly)."""
    top = 65535 if dtype == "uint16" else 255
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        (x * top // max(width - 1, 1)),
        (y * top // max(height - 1, 1)),
        ((x + y) * top // max(width + height - 2, 1)),
        np.full_like(x, top * 3 // 4),
    ]
    return (
        np.stack(planes[:channels], axis=-1).astype(dtype)
        if channels > 1
        else planes[0][..., None].astype(dtype)
    )


def encode_pil(array: np.ndarray, fmt: str, **kwargs: Any) -> bytes:
    """Encode with Pillow directly (what a user's file on disk would hold)."""
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def types_jpeg() -> bytes:
    """A 32x48 RGB JPEG file."""
    return encode_pil(gradient(32, 48, 3), "JPEG", quality=90)


@pytest.fixture(scope="session")
def types_png() -> bytes:
    """A 20x30 RGB PNG file."""
    return encode_pil(gradient(20, 30, 3), "PNG")


@pytest.fixture
def types_url(tmp_path: Path) -> str:
    """A fresh local dataset URL."""
    return str(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def types_roundtrip(types_url: str) -> Callable[..., lakefmt.ReadOnlyDataset]:
    """``roundtrip(schema, *appends)``: create, append each, flush, reopen read-only."""

    def run(
        schema: dict[str, Any], *appends: Any, url: str | None = None
    ) -> lakefmt.ReadOnlyDataset:
        target = url or types_url
        ds = lakefmt.create(target, schema=schema)
        for data in appends:
            ds.append(data)
        ds.flush()
        return lakefmt.open_read_only(target)

    return run


@pytest.fixture(scope="session")
def types_clip_frames() -> np.ndarray:
    """A 3 s, 24 fps, 64x48 clip whose frames carry their index (see ``frame_index``)."""
    frames, height, width = 72, 48, 64
    clip = np.full((frames, height, width, 3), 40, np.uint8)
    for t in range(frames):
        x = round(t * (width - 12) / (frames - 1))
        clip[t, 12:24, x : x + 12] = (230, 30, 30)
        for bit in range(7):
            clip[t, height - 8 :, bit * 8 : bit * 8 + 8] = 255 if (t >> bit) & 1 else 0
    return clip


def frame_index(frame: np.ndarray) -> int:
    """Which frame of ``types_clip_frames`` a decoded frame is (reads its binary counter)."""
    height = frame.shape[0]
    centres = frame[height - 6 : height - 2, :, :].mean(axis=(0, 2))
    return sum(1 << bit for bit in range(7) if centres[bit * 8 + 2 : bit * 8 + 6].mean() > 128)


@pytest.fixture(scope="session")
def types_clip_mp4(types_clip_frames: np.ndarray) -> bytes:
    """The clip as H.264 MP4 (24 fps, a keyframe every second)."""
    from lakefmt.codecs.video import encode_video

    return encode_video(types_clip_frames, fps=24.0)


@pytest.fixture(scope="session")
def types_s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 (free port) with bucket ``links``.

    Yields ``{"creds": lakefmt creds dict, "client": a boto3 client}``.
    """
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="links")
        creds = {
            "aws_access_key_id": "x",
            "aws_secret_access_key": "x",
            "endpoint_url": endpoint,
            "region": "us-east-1",
        }
        yield {"creds": creds, "client": client}
    finally:
        server.stop()


@pytest.fixture
def types_frame_index() -> Callable[[np.ndarray], int]:
    """:func:`frame_index`."""
    return frame_index


@pytest.fixture
def types_gradient() -> Callable[..., np.ndarray]:
    """:func:`gradient`."""
    return gradient


@pytest.fixture
def types_encode_pil() -> Callable[..., bytes]:
    """:func:`encode_pil`."""
    return encode_pil


@pytest.fixture
def types_everything(
    types_jpeg: bytes, types_png: bytes, types_clip_mp4: bytes, tmp_path: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A schema with a column of every type, two rows of values and a row of nulls."""
    import trimesh

    from lakefmt import types

    link_target = tmp_path / "linked.png"
    link_target.write_bytes(types_png)
    schema: dict[str, Any] = {
        "image": types.Image("uint8", "jpeg"),
        "video": types.Video(),
        "mesh": types.Mesh(),
        "link": types.Link(types.Image()),
        "embedding": types.Embedding(3),
        "array": types.Array("int32", shape=(2, 2)),
        "ragged": types.Array("float64", dimensions=2),
        "label": types.ClassLabel("int32", ["no", "yes"]),
        "boxes": types.BoundingBox("float32", "ltrb", "fractional"),
        "segment": types.SegmentMask("uint8"),
        "binary": types.BinaryMask(),
        "points": types.Point(),
        "polygons": types.Polygon(),
        "seq": types.Sequence("text"),
        "struct": types.Struct({"a": "int64", "b": types.Embedding(2)}),
        "json": types.Dict(),
        "id": "int64",
    }
    rows: list[dict[str, Any]] = [
        {
            "image": types_jpeg,
            "video": types_clip_mp4,
            "mesh": trimesh.creation.box(),
            "link": str(link_target),
            "embedding": [0.25, 0.5, 1.0],
            "array": [[1, 2], [3, 4]],
            "ragged": np.ones((2, 3)),
            "label": "yes",
            "boxes": [[0.1, 0.1, 0.5, 0.5]],
            "segment": np.eye(2, dtype=np.uint8),
            "binary": np.eye(2, dtype=bool),
            "points": [[1.0, 2.0]],
            "polygons": [np.zeros((3, 2))],
            "seq": ["a", "b"],
            "struct": {"a": 1, "b": [1.0, 2.0]},
            "json": {"k": "v"},
            "id": 0,
        },
        {
            "image": types_jpeg,
            "video": types_clip_mp4,
            "mesh": trimesh.creation.icosphere(subdivisions=1),
            "link": "file://" + str(link_target),
            "embedding": np.zeros(3),
            "array": np.zeros((2, 2), np.int32),
            "ragged": np.zeros((0, 0)),
            "label": 0,
            "boxes": np.zeros((0, 4)),
            "segment": np.zeros((3, 1), np.uint8),
            "binary": np.zeros((1, 1, 2), bool),
            "points": np.zeros((0, 2)),
            "polygons": [],
            "seq": [],
            "struct": {"a": None},
            "json": [1, 2],
            "id": 1,
        },
        dict.fromkeys(schema) | {"id": 2},
    ]
    return schema, rows
