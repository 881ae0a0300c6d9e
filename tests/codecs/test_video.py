"""Tests for lakefmt.codecs.video."""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakefmt.codecs import video as cv
from lakefmt.codecs.image import encode_image
from lakefmt.errors import DecodeError, TypeMismatchError

FRAMES, HEIGHT, WIDTH, FPS = 72, 48, 64, 24.0


def _encode_with_pyav(
    frames: np.ndarray, container: str, *, b_frames: bool, variable_rate: bool = False
) -> bytes:
    """Encode outside lakefmt: B-frames, non-MP4 containers, irregular timestamps."""
    buf = io.BytesIO()
    time_base = Fraction(1, 1000)
    steps = np.random.default_rng(7).integers(20, 90, len(frames)) if variable_rate else None
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream("h264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.gop_size = 20
        stream.codec_context.time_base = time_base
        if not b_frames:
            stream.codec_context.max_b_frames = 0
        pts = 0
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            pts += int(steps[i]) if steps is not None else 42
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


# --- probe ---------------------------------------------------------------------------------------
def test_probe(codec_clip_mp4: bytes) -> None:
    info = cv.probe_video(codec_clip_mp4)
    assert info == cv.VideoInfo(
        frames=FRAMES, fps=FPS, width=WIDTH, height=HEIGHT, codec="h264", duration=3.0
    )
    assert codec_clip_mp4[4:8] == b"ftyp"


@pytest.mark.parametrize("fps", [24.0, 25.0, 29.97, 30.0, 60.0, 7.5])
def test_probe_frame_count_is_exact_for_any_rate(
    fps: float, codec_make_clip: Callable[..., np.ndarray]
) -> None:
    clip = codec_make_clip(frames=31, height=16, width=64)
    info = cv.probe_video(cv.encode_video(clip, fps=fps))
    assert info.frames == 31
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(31 / fps, rel=1e-3)


@settings(max_examples=8, deadline=None)
@given(
    frames=st.integers(1, 12),
    height=st.integers(1, 12).map(lambda n: 2 * n),
    width=st.integers(4, 12).map(lambda n: 2 * n),
)
def test_random_sizes_round_trip(frames: int, height: int, width: int) -> None:
    clip = np.random.default_rng(frames * 1000 + height * 10 + width).integers(
        0, 256, (frames, height, width, 3), dtype=np.uint8
    )
    data = cv.encode_video(clip, fps=10)
    info = cv.probe_video(data)
    assert (info.frames, info.height, info.width) == (frames, height, width)
    assert cv.decode_frames(data).shape == clip.shape


# --- decode --------------------------------------------------------------------------------------
def test_decode_all_frames(
    codec_clip_frames: np.ndarray,
    codec_clip_decoded: np.ndarray,
    codec_frame_index: Callable[[np.ndarray], int],
) -> None:
    decoded = codec_clip_decoded
    assert decoded.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert decoded.dtype == np.uint8
    # lossy, but close (crf 18)
    assert np.abs(decoded.astype(int) - codec_clip_frames.astype(int)).mean() < 3
    assert [codec_frame_index(f) for f in decoded] == list(range(FRAMES))
    # the red square is where it was drawn
    for t in (0, 35, 71):
        red = (decoded[t, :, :, 0] > 150) & (decoded[t, :, :, 1] < 100)
        truth = (codec_clip_frames[t, :, :, 0] > 150) & (codec_clip_frames[t, :, :, 1] < 100)
        assert np.argwhere(red).mean(axis=0) == pytest.approx(
            np.argwhere(truth).mean(axis=0), abs=1.0
        )


RANGES = [
    (0, 10, 1),
    (1, 2, 1),
    (23, 30, 1),
    (24, 25, 1),
    (50, 60, 1),
    (47, 49, 1),
    (5, None, 7),
    (60, None, 1),
    (71, None, 1),
    (-5, None, 1),
    (-10, -2, 3),
    (70, 500, 1),
    (10, 5, 1),
    (500, None, 1),
]


@pytest.mark.parametrize(("start", "stop", "step"), RANGES)
def test_range_equals_slice_of_full_decode(
    codec_clip_mp4: bytes,
    codec_clip_decoded: np.ndarray,
    codec_frame_index: Callable[[np.ndarray], int],
    start: int,
    stop: int | None,
    step: int,
) -> None:
    got = cv.decode_frames(codec_clip_mp4, start, stop, step)
    expected = codec_clip_decoded[start:stop:step]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert [codec_frame_index(f) for f in got] == list(range(FRAMES))[start:stop:step]


def test_range_decode_seeks_instead_of_decoding_from_zero(codec_clip_mp4: bytes) -> None:
    # one keyframe per second (24 frames): frames 60..61 need at most 24 + 2 decodes
    frames, decoded = cv._decode_range(codec_clip_mp4, 60, 62, 1)
    assert frames.shape[0] == 2
    assert decoded <= 26
    _, decoded_from_zero = cv._decode_range(codec_clip_mp4, 0, 62, 1)
    assert decoded_from_zero >= 62


def test_keyframe_every_frame_decodes_only_the_range(
    codec_clip_frames: np.ndarray, codec_frame_index: Callable[[np.ndarray], int]
) -> None:
    data = cv.encode_video(codec_clip_frames[:30], fps=FPS, keyframe_interval=1)
    frames, decoded = cv._decode_range(data, 17, 19, 1)
    assert [codec_frame_index(f) for f in frames] == [17, 18]
    assert decoded == 2


def test_empty_range_has_frame_shape(codec_clip_mp4: bytes) -> None:
    assert cv.decode_frames(codec_clip_mp4, 10, 10).shape == (0, HEIGHT, WIDTH, 3)


def test_bad_step(codec_clip_mp4: bytes) -> None:
    for step in (0, -1):
        with pytest.raises(ValueError, match="step"):
            cv.decode_frames(codec_clip_mp4, 0, None, step)


@pytest.mark.parametrize(
    ("container", "b_frames", "variable_rate"),
    [("mp4", True, False), ("mp4", True, True), ("matroska", True, True), ("mov", False, True)],
)
def test_foreign_videos_are_frame_accurate(
    codec_make_clip: Callable[..., np.ndarray],
    codec_frame_index: Callable[[np.ndarray], int],
    container: str,
    b_frames: bool,
    variable_rate: bool,
) -> None:
    clip = codec_make_clip(frames=60, height=32, width=64)
    data = _encode_with_pyav(clip, container, b_frames=b_frames, variable_rate=variable_rate)
    assert cv.probe_video(data).frames == 60
    full = cv.decode_frames(data)
    assert [codec_frame_index(f) for f in full] == list(range(60))
    for start, stop in ((37, 45), (59, 60), (21, 22)):
        np.testing.assert_array_equal(cv.decode_frames(data, start, stop), full[start:stop])


# --- corrupt input -------------------------------------------------------------------------------
def test_corrupt_bytes_raise(codec_clip_mp4: bytes) -> None:
    data = codec_clip_mp4
    cases = {
        "empty": b"",
        "garbage": b"\x00" * 200,
        "text": b"definitely not a video\n" * 20,
        "header only": data[:40],
        "half": data[: len(data) // 2],
        "90%": data[: len(data) * 9 // 10],
        "image": encode_image(np.zeros((8, 8, 3), np.uint8), "png"),
        "jpeg": encode_image(np.zeros((8, 8, 3), np.uint8), "jpeg"),
    }
    for name, bad in cases.items():
        with pytest.raises(DecodeError):
            cv.probe_video(bad)
            pytest.fail(f"probe_video accepted {name}")
        with pytest.raises(DecodeError):
            cv.decode_frames(bad)
            pytest.fail(f"decode_frames accepted {name}")


def test_corrupt_frame_data_raises_on_decode(codec_clip_mp4: bytes) -> None:
    data = bytearray(codec_clip_mp4)
    mdat = data.index(b"mdat")
    data[mdat + 4 : mdat + 2004] = bytes(2000)
    assert cv.probe_video(bytes(data)).frames == FRAMES  # the index is intact
    with pytest.raises(DecodeError):
        cv.decode_frames(bytes(data))


def test_audio_only_is_not_a_video() -> None:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(DecodeError, match="no video stream"):
        cv.probe_video(buf.getvalue())


def test_non_bytes_input() -> None:
    with pytest.raises(TypeMismatchError):
        cv.probe_video("clip.mp4")  # type: ignore[arg-type]


# --- encode errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((3, 47, 64, 3), np.uint8), "even"),
        (np.zeros((3, 48, 63, 3), np.uint8), "even"),
        (np.zeros((3, 48, 64, 3), np.float32), "uint8"),
        (np.zeros((3, 48, 64, 3), np.uint16), "uint8"),
        (np.zeros((48, 64, 3), np.uint8), "shape"),
        (np.zeros((3, 48, 64), np.uint8), "shape"),
        (np.zeros((3, 48, 64, 4), np.uint8), "shape"),
        (np.zeros((0, 48, 64, 3), np.uint8), "at least one"),
    ],
)
def test_encode_rejects_bad_frames(frames: np.ndarray, match: str) -> None:
    with pytest.raises(TypeMismatchError, match=match):
        cv.encode_video(frames)


def test_encode_rejects_non_arrays() -> None:
    with pytest.raises(TypeMismatchError, match="numpy array"):
        cv.encode_video([[[[0, 0, 0]]]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"fps": -5},
        {"fps": float("nan")},
        {"crf": 52},
        {"crf": -1},
        {"keyframe_interval": 0},
        {"codec": "no-such-codec"},
    ],
)
def test_encode_rejects_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        cv.encode_video(np.zeros((2, 16, 16, 3), np.uint8), **kwargs)  # type: ignore[arg-type]


def test_crf_controls_quality(codec_clip_frames: np.ndarray) -> None:
    clip = codec_clip_frames[:12]
    small = cv.encode_video(clip, crf=40)
    large = cv.encode_video(clip, crf=5)
    assert len(small) < len(large)
    err_small = np.abs(cv.decode_frames(small).astype(int) - clip).mean()
    err_large = np.abs(cv.decode_frames(large).astype(int) - clip).mean()
    assert err_large < err_small
