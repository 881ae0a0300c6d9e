"""Image, Video and Mesh columns: round trips, byte preservation, lazy clips, bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import trimesh
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lakefmt
from lakefmt import types
from lakefmt.errors import DecodeError, TypeMismatchError
from lakefmt.format import fragments

Roundtrip = Callable[..., lakefmt.ReadOnlyDataset]


# --- Image ---------------------------------------------------------------------------------------


def test_image_bytes_are_kept_byte_for_byte_and_decoded(
    types_roundtrip: Roundtrip, types_jpeg: bytes, types_gradient: Callable[..., np.ndarray]
) -> None:
    ds = types_roundtrip(
        {"img": types.Image("uint8", "jpg"), "label": "int32"},
        {"img": [types_jpeg, types_jpeg], "label": [1, 2]},
        {"img": types_jpeg, "label": 3},  # one-row dict append of raw bytes
    )
    assert len(ds) == 3
    assert ds["img"].get_bytes(0) == types_jpeg
    assert ds["img"].get_bytes([1, 2]) == [types_jpeg, types_jpeg]
    image = ds["img"][2]
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    expected = types_gradient(32, 48, 3).astype(int)
    assert np.abs(image.astype(int) - expected).mean() < 4  # JPEG is lossy
    batch = ds["img"][0:3]
    assert isinstance(batch, list) and len(batch) == 3
    np.testing.assert_array_equal(batch[1], image)
    assert ds.schema["img"] == types.Image("uint8", "jpeg")


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_lossless_arrays_round_trip(
    types_roundtrip: Roundtrip, types_gradient: Callable[..., np.ndarray], fmt: str, channels: int
) -> None:
    pixels = types_gradient(17, 23, channels)
    given_value = pixels[:, :, 0] if channels == 1 else pixels  # grayscale as (H, W)
    ds = types_roundtrip({"img": types.Image(sample_compression=fmt)}, {"img": [given_value]})
    np.testing.assert_array_equal(ds["img"][0], pixels)
    header = ds["img"].get_bytes(0)[:4]
    assert header == (b"\x89PNG" if fmt == "png" else b"II*\x00")


def test_grayscale_and_rgba_bytes(
    types_roundtrip: Roundtrip,
    types_gradient: Callable[..., np.ndarray],
    types_encode_pil: Callable[..., bytes],
) -> None:
    gray = types_gradient(9, 11, 1)
    rgba = types_gradient(9, 11, 4)
    ds = types_roundtrip(
        {"img": types.Image()},
        {"img": [types_encode_pil(gray, "PNG"), types_encode_pil(rgba, "PNG")]},
    )
    first, second = ds["img"][:]
    assert first.shape == (9, 11, 1)
    np.testing.assert_array_equal(first, gray)
    assert second.shape == (9, 11, 4)
    np.testing.assert_array_equal(second, rgba)


def test_16_bit_png(
    types_roundtrip: Roundtrip,
    types_gradient: Callable[..., np.ndarray],
    types_encode_pil: Callable[..., bytes],
) -> None:
    deep = types_gradient(8, 10, 1, "uint16")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(deep[:, :, 0]).save(buf, "PNG")  # a 16-bit grayscale PNG file
    ds = types_roundtrip(
        {"deep": types.Image("uint16", "png"), "small": types.Image("uint8", "png")},
        {"deep": [deep[:, :, 0], buf.getvalue()], "small": [buf.getvalue(), None]},
    )
    for value in ds["deep"][:]:
        assert value.dtype == np.uint16
        np.testing.assert_array_equal(value, deep)
    scaled = ds["small"][0]
    assert scaled.dtype == np.uint8
    np.testing.assert_array_equal(scaled, ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8))
    assert ds["small"][1] is None


def test_pil_images_are_encoded_once(types_roundtrip: Roundtrip) -> None:
    from PIL import Image

    im = Image.new("RGB", (5, 4), (10, 200, 30))
    ds = types_roundtrip({"img": types.Image("uint8", "png")}, {"img": im})
    assert ds["img"][0].shape == (4, 5, 3)
    assert (ds["img"][0] == [10, 200, 30]).all()


def test_jpeg_bytes_are_never_decoded_on_append(
    types_url: str, types_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakefmt.codecs import image as codec

    def no_decode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the write path decoded an image")

    monkeypatch.setattr(codec, "decode_image", no_decode)
    monkeypatch.setattr("PIL.Image.open", no_decode)
    ds = lakefmt.create(types_url, schema={"img": types.Image("uint8", "jpeg")})
    ds.append({"img": [types_jpeg] * 50})
    ds.commit()
    assert len(lakefmt.open_read_only(types_url)) == 50


def test_many_rows_decode_through_parallel_decode_images(
    types_roundtrip: Roundtrip, types_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakefmt.types import media

    calls: list[int] = []
    real = media.decode_images

    def spy(datas: Any, **kwargs: Any) -> Any:
        calls.append(len(datas))
        return real(datas, **kwargs)

    monkeypatch.setattr(media, "decode_images", spy)
    ds = types_roundtrip({"img": types.Image()}, {"img": [types_png] * 10})
    assert len(ds["img"][:]) == 10
    assert sum(len(b["img"]) for b in ds.batches(4)) == 10
    assert calls[0] == 10 and sorted(calls[1:]) == [2, 4, 4]


def _pipeline_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name in ("lakefmt-read", "lakefmt-decode")]


def test_image_batches_read_and_decode_on_separate_threads(
    types_roundtrip: Roundtrip, types_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from lakefmt.dataset.view import DatasetView
    from lakefmt.types import media

    ds = types_roundtrip(
        {"img": types.Image("uint8", "jpeg"), "n": "int32"},
        {"img": [types_jpeg] * 20, "n": list(range(20))},
    )
    seen: dict[str, set[str]] = {"read": set(), "decode": set()}
    real_iter, real_decode = DatasetView._iter_arrays, media.decode_images

    def iter_arrays(self: Any, *args: Any) -> Any:
        for arrays in real_iter(self, *args):
            seen["read"].add(threading.current_thread().name)
            yield arrays

    def decode_images(datas: Any, **kwargs: Any) -> Any:
        seen["decode"].add(threading.current_thread().name)
        return real_decode(datas, **kwargs)

    monkeypatch.setattr(DatasetView, "_iter_arrays", iter_arrays)
    monkeypatch.setattr(media, "decode_images", decode_images)
    batches = list(ds.batches(6))
    assert [len(b["img"]) for b in batches] == [6, 6, 6, 2]
    assert [n for b in batches for n in b["n"].tolist()] == list(range(20))
    assert all(image.shape == batches[0]["img"][0].shape for b in batches for image in b["img"])
    assert seen == {"read": {"lakefmt-read"}, "decode": {"lakefmt-decode"}}
    # media without decoding: one read-ahead thread reads the bytes, one batch per hand-over
    # (many batches of images at once would hold their bytes in memory ahead of the caller)
    from lakefmt.dataset import view

    chunks: list[int] = []
    real_read_ahead = view._read_ahead

    def read_ahead(source: Any, *args: Any, chunk: int = 1, **kwargs: Any) -> Any:
        chunks.append(chunk)
        return real_read_ahead(source, *args, chunk=chunk, **kwargs)

    seen["read"].clear()
    with monkeypatch.context() as m:
        m.setattr(view, "_read_ahead", read_ahead)
        assert len(list(ds.batches(6, decode=False))) == 4
    assert seen["read"] == {"lakefmt-read-ahead"}
    assert chunks == [1]
    # a scan of plain columns runs inline: their row groups are decoded ahead on the decode
    # pool, and a thread would only add hand-overs
    from lakefmt.format import fragments

    seen["read"].clear()
    with monkeypatch.context() as m:
        m.setattr(fragments._GROUPS, "max_bytes", 0)  # nothing stays decoded in RAM
        assert len(list(ds.batches(6, columns=["n"]))) == 4
    assert seen["read"] == {threading.current_thread().name}


def test_abandoned_image_batches_stop_both_threads(
    types_roundtrip: Roundtrip, types_jpeg: bytes
) -> None:
    import gc
    import time

    ds = types_roundtrip({"img": types.Image("uint8", "jpeg")}, {"img": [types_jpeg] * 40})
    for _ in range(3):
        iterator = ds.batches(2)
        next(iterator)
        iterator.close()
    broken = ds.batches(2)
    next(broken)
    del broken  # dropped without close()
    gc.collect()
    deadline = time.monotonic() + 10
    while _pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pipeline_threads() == []


def test_image_batches_raise_read_and_decode_errors(
    types_roundtrip: Roundtrip, types_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakefmt.dataset.view import DatasetView
    from lakefmt.errors import FormatError
    from lakefmt.types import media

    broken = types_png[:-30]  # header intact, body cut: fails to decode
    # appends refuse it now; one written by an older lakefmt must still fail clearly on read
    with monkeypatch.context() as older:
        older.setattr(media, "check_image_whole", lambda data, fmt: None)
        ds = types_roundtrip({"img": types.Image()}, {"img": [types_png] * 5 + [broken]})
    with pytest.raises(DecodeError, match="position 1"):
        list(ds.batches(4))  # row 5 is the second image of the second batch
    real_iter = DatasetView._iter_arrays

    def failing(self: Any, *args: Any) -> Any:
        iterator = real_iter(self, *args)
        yield next(iterator)
        raise FormatError("a data file is damaged")

    monkeypatch.setattr(DatasetView, "_iter_arrays", failing)
    batches = ds.batches(2)
    assert len(next(batches)["img"]) == 2
    with pytest.raises(FormatError, match="damaged"):
        next(batches)


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (b"", DecodeError, "empty"),
        (b"GIF89a" + b"\x00" * 40, DecodeError, "not a JPEG, PNG or TIFF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 5, DecodeError, "truncated PNG"),
        ("not bytes", TypeMismatchError, "expects png bytes"),
        (np.zeros((4, 4, 3), np.float32), TypeMismatchError, "uint8 image arrays"),
        (np.zeros((4, 4, 3), np.uint16), TypeMismatchError, "uint8 image arrays"),
        (np.zeros((4, 4, 2), np.uint8), TypeMismatchError, "shape"),
        (np.zeros((0, 4), np.uint8), TypeMismatchError, "size"),
    ],
)
def test_bad_images_raise_naming_column_and_row(
    types_url: str, types_png: bytes, bad: Any, error: type[Exception], match: str
) -> None:
    ds = lakefmt.create(types_url, schema={"img": types.Image(), "n": "int32"})
    ds.append({"img": [types_png], "n": [0]})
    with pytest.raises(error, match=match) as info:
        ds.append({"img": [types_png, types_png, bad], "n": [1, 2, 3]})
    assert "'img'" in str(info.value) and "row 2" in str(info.value)
    ds.flush()
    again = lakefmt.open_read_only(types_url)
    assert len(again) == 1 and again["n"][:].tolist() == [0]


def test_wrong_format_bytes_raise(types_url: str, types_jpeg: bytes, types_png: bytes) -> None:
    ds = lakefmt.create(types_url, schema={"img": types.Image("uint8", "png")})
    with pytest.raises(DecodeError, match=r"column 'img' row 1: expected png bytes, got a jpeg"):
        ds.append({"img": [types_png, types_jpeg]})
    jpeg_col = lakefmt.create(types_url + "-j", schema={"img": types.Image("uint8", "jpeg")})
    with pytest.raises(DecodeError, match="expected jpeg bytes, got a png"):
        jpeg_col.append({"img": types_png})
    assert len(ds) == 0 and len(jpeg_col) == 0


@pytest.mark.parametrize("as_arrow", [False, True, "sliced"])
def test_jpeg_columns_check_every_header_and_name_the_first_bad_row(
    types_url: str, types_jpeg: bytes, types_png: bytes, as_arrow: bool | str
) -> None:
    import pyarrow as pa

    sof = types_jpeg.index(b"\xff\xc0")
    twelve_bit = types_jpeg[: sof + 4] + b"\x0c" + types_jpeg[sof + 5 :]
    fill_bytes = types_jpeg[:2] + b"\xff\xff" + types_jpeg[2:]  # unusual but valid
    cases = [
        (twelve_bit, DecodeError, "row 5: unsupported 12-bit JPEG"),
        (types_png, DecodeError, "row 5: expected jpeg bytes, got a png"),
        (types_jpeg[:40], DecodeError, "row 5: truncated JPEG"),
        (b"", DecodeError, "row 5: image data is empty"),
    ]

    def given(values: list[bytes | None]) -> Any:
        if not as_arrow:
            return values
        if as_arrow == "sliced":
            return pa.array([types_jpeg, *values, types_png], pa.binary()).slice(1, len(values))
        return pa.array(values, pa.binary())

    ds = lakefmt.create(types_url, schema={"img": types.Image("uint8", "jpeg")})
    for bad, error, match in cases:
        rows = [types_jpeg, None, fill_bytes, types_jpeg, types_jpeg, bad, types_png]
        with pytest.raises(error, match=f"column 'img' {match}"):
            ds.append({"img": given(rows)})
    ds.append({"img": given([types_jpeg, None, fill_bytes])})
    ds.commit()
    again = lakefmt.open_read_only(types_url)
    assert [again["img"].get_bytes(i) for i in range(3)] == [types_jpeg, None, fill_bytes]


def test_corrupt_pixels_surface_on_read_as_decode_error(
    types_roundtrip: Roundtrip, types_png: bytes
) -> None:
    # header and end marker intact, a pixel byte flipped: the cheap ingest check passes it
    # (nothing is decoded on append), the read names the problem
    middle = len(types_png) // 2
    broken = types_png[:middle] + bytes([types_png[middle] ^ 0xFF]) + types_png[middle + 1 :]
    ds = types_roundtrip({"img": types.Image()}, {"img": [broken]})
    with pytest.raises(DecodeError):
        ds["img"][0]
    assert ds["img"].get_bytes(0) == broken


def test_image_type_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        types.Image("float32")
    with pytest.raises(TypeError):
        types.Image(sample_compression="gif")
    assert types.Image(sample_compression="JPG").params() == {
        "dtype": "uint8",
        "sample_compression": "jpeg",
    }


@given(
    pixels=hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 4])),
    )
)
def test_random_images_round_trip_through_png(pixels: np.ndarray) -> None:
    url = f"mem://types-img-{np.random.default_rng().integers(1 << 62)}"
    ds = lakefmt.create(url, schema={"img": types.Image("uint8", "png")})
    ds.append({"img": [pixels, None]})
    ds.flush()
    back = lakefmt.open_read_only(url)["img"][:]
    np.testing.assert_array_equal(back[0], pixels)
    assert back[1] is None


def test_scalar_scan_never_opens_the_media_file(
    types_url: str, types_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = lakefmt.create(types_url, schema={"img": types.Image(), "label": "int32"})
    ds.append({"img": [types_png] * 20, "label": list(range(20))})
    ds.commit()
    reader = lakefmt.open_read_only(types_url)
    (fragment,) = reader._manifest.fragments
    img_id = reader._snapshot().field("img").id
    media = [f.path for f in fragment.files if img_id in f.field_ids]
    plain = [f.path for f in fragment.files if img_id not in f.field_ids]
    assert len(media) == 1 and len(plain) == 1  # the image column has a file of its own

    opened: list[str] = []
    real = fragments.parquet_file

    def spy(storage: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        opened.append(path)
        return real(storage, path, *args, **kwargs)

    monkeypatch.setattr(fragments, "parquet_file", spy)
    labels = [int(v) for b in reader.batches(7, columns=["label"]) for v in b["label"]]
    assert labels == list(range(20))
    assert reader["label"][3] == 3
    assert opened and media[0] not in opened
    reader["img"][0]
    assert media[0] in opened


# --- Video ---------------------------------------------------------------------------------------


def test_video_clip_round_trip_with_frame_ranges(
    types_roundtrip: Roundtrip,
    types_clip_mp4: bytes,
    types_clip_frames: np.ndarray,
    types_frame_index: Callable[[np.ndarray], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = types_clip_frames[:6, :16, :16]
    ds = types_roundtrip({"clip": types.Video()}, {"clip": [types_clip_mp4, None, small]})
    clip = ds["clip"][0]
    assert isinstance(clip, types.VideoClip)
    assert len(clip) == 72 and clip.fps == pytest.approx(24.0) and clip.frame_rate == clip.fps
    assert clip.shape == (72, 48, 64, 3) and clip.duration == pytest.approx(3.0, abs=0.1)
    assert ds["clip"].get_bytes(0) == types_clip_mp4

    from lakefmt.codecs import video as codec

    decoded: list[int] = []
    real = codec._decode_range

    def spy(data: bytes, start: int, stop: int | None, step: int) -> Any:
        frames, count = real(data, start, stop, step)
        decoded.append(count)
        return frames, count

    monkeypatch.setattr(codec, "_decode_range", spy)
    part = clip[50:60]
    assert part.shape == (10, 48, 64, 3) and part.dtype == np.uint8
    assert [types_frame_index(f) for f in part] == list(range(50, 60))
    assert decoded[-1] < 40  # seeks to the keyframe at 48; never decodes from frame 0
    assert types_frame_index(clip[-1]) == 71
    assert [types_frame_index(f) for f in clip[10:20:5]] == [10, 15]
    everything = np.asarray(clip)
    assert everything.shape == (72, 48, 64, 3)
    assert [types_frame_index(f) for f in everything[::12]] == list(range(0, 72, 12))
    assert ds["clip"][1] is None
    assert np.asarray(ds["clip"][2]).shape == (6, 16, 16, 3)
    with pytest.raises(IndexError):
        clip[72]


def test_video_column_decode_is_lazy(types_roundtrip: Roundtrip, types_clip_mp4: bytes) -> None:
    ds = types_roundtrip({"clip": types.Video()}, {"clip": types_clip_mp4})
    clips = ds["clip"][:]
    assert repr(clips[0]).startswith("VideoClip(")  # nothing probed or decoded yet
    batch = next(ds.batches(1))
    assert len(batch["clip"][0]) == 72


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, DecodeError, "video"),
        (b"", DecodeError, "empty"),
        (np.zeros((2, 15, 16, 3), np.uint8), TypeMismatchError, "even"),
        (np.zeros((2, 16, 16, 3), np.float32), TypeMismatchError, "uint8"),
        (np.zeros((2, 16, 16), np.uint8), TypeMismatchError, "T, H, W, 3"),
        ("clip.mp4", TypeMismatchError, "MP4 bytes"),
    ],
)
def test_bad_videos_raise(types_url: str, bad: Any, error: type[Exception], match: str) -> None:
    ds = lakefmt.create(types_url, schema={"clip": types.Video()})
    with pytest.raises(error, match=match) as info:
        ds.append({"clip": [None, bad]})
    assert "'clip'" in str(info.value) and "row 1" in str(info.value)
    assert len(ds) == 0


def test_image_bytes_are_not_a_video(
    types_url: str, types_png: bytes, types_clip_frames: np.ndarray
) -> None:
    import av

    ds = lakefmt.create(types_url, schema={"clip": types.Video()})
    with pytest.raises(DecodeError, match="row 0"):
        ds.append({"clip": [types_png]})
    buf = io.BytesIO()  # a Matroska file: a readable video, but not the column's MP4
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in types_clip_frames[:3]:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    with pytest.raises(DecodeError, match="MP4"):
        ds.append({"clip": [buf.getvalue()]})


# --- Mesh ----------------------------------------------------------------------------------------


def test_stl_ply_and_trimesh_round_trip(types_roundtrip: Roundtrip) -> None:
    from lakefmt.codecs.mesh import encode_mesh

    box = trimesh.creation.box()
    sphere = trimesh.creation.icosphere(subdivisions=1)
    stl = encode_mesh(box, "stl")
    ply_ascii = sphere.export(file_type="ply", encoding="ascii")
    ds = types_roundtrip({"mesh": types.Mesh()}, {"mesh": [stl, ply_ascii, sphere, None]})
    meshes = ds["mesh"][:]
    assert all(isinstance(m, trimesh.Trimesh) for m in meshes[:3]) and meshes[3] is None
    assert len(meshes[0].faces) == 12
    np.testing.assert_allclose(
        meshes[0].vertices[meshes[0].faces], box.vertices[box.faces].astype(np.float32)
    )
    for mesh in meshes[1:3]:
        np.testing.assert_allclose(mesh.vertices, sphere.vertices, atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, sphere.faces)
    assert ds["mesh"].get_bytes(0) == stl and ds["mesh"].get_bytes(1) == ply_ascii
    assert ds["mesh"].get_bytes(2).startswith(b"ply\nformat binary_little_endian")
    assert len(ds["mesh"][1].faces) == len(sphere.faces)


@pytest.mark.parametrize(
    "bad,error",
    [
        (b"OFF\n3 1 0\n", DecodeError),
        (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n", DecodeError),
        (b"", DecodeError),
        ("box.stl", TypeMismatchError),
        (np.zeros((3, 3)), TypeMismatchError),
    ],
)
def test_bad_meshes_raise(types_url: str, bad: Any, error: type[Exception]) -> None:
    ds = lakefmt.create(types_url, schema={"mesh": types.Mesh()})
    with pytest.raises(error) as info:
        ds.append({"mesh": [trimesh.creation.box(), bad]})
    assert "'mesh'" in str(info.value) and "row 1" in str(info.value)
    assert len(ds) == 0
