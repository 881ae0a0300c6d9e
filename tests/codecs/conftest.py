"""Fixtures shared by the codec tests (all prefixed ``codec_``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH, CLIP_FPS = 72, 48, 64, 24.0


def moving_square_clip(
    frames: int = CLIP_FRAMES, height: int = CLIP_HEIGHT, width: int = CLIP_WIDTH
) -> np.ndarray:
    """A grey background with a red square sliding left to right.

    The bottom 8 rows are a flat grey "frame counter" whose level encodes the frame index
    (see :func:`frame_index`), so a decoded frame can be identified despite lossy coding.
    """
    clip = np.full((frames, height, width, 3), 40, np.uint8)
    side = max(2, height // 4)
    for t in range(frames):
        x = round(t * (width - side) / max(1, frames - 1))
        clip[t, height // 4 : height // 4 + side, x : x + side] = (230, 30, 30)
        clip[t, height - 8 :] = _counter_level(t, frames)
    return clip


def _counter_level(index: int, frames: int) -> int:
    return round(index * _COUNTER_RANGE / max(1, frames - 1))


def frame_index(frame: np.ndarray, frames: int) -> int:
    """Recover which frame of a :func:`moving_square_clip` of ``frames`` frames this is."""
    level = float(frame[-6:-2].mean())  # away from the strip's edge, where chroma bleeds
    return round(level * max(1, frames - 1) / _COUNTER_RANGE)


_COUNTER_RANGE = 240


@pytest.fixture(scope="session")
def codec_clip_frames() -> np.ndarray:
    """The raw RGB frames of the standard 3 s, 24 fps, 64x48 test clip."""
    return moving_square_clip()


@pytest.fixture(scope="session")
def codec_clip_mp4(codec_clip_frames: np.ndarray) -> bytes:
    """The standard test clip encoded by :func:`lakefmt.codecs.video.encode_video`."""
    from lakefmt.codecs.video import encode_video

    return encode_video(codec_clip_frames, fps=CLIP_FPS)


@pytest.fixture(scope="session")
def codec_clip_decoded(codec_clip_mp4: bytes) -> np.ndarray:
    """Every frame of the standard test clip, decoded from frame 0."""
    from lakefmt.codecs.video import decode_frames

    return decode_frames(codec_clip_mp4)


@pytest.fixture(scope="session")
def codec_frame_index() -> Callable[[np.ndarray, int], int]:
    """:func:`frame_index`: which frame of a generated clip a decoded frame is."""
    return frame_index


@pytest.fixture(scope="session")
def codec_make_clip() -> Callable[..., np.ndarray]:
    """The clip generator itself, for tests that need other sizes or lengths."""
    return moving_square_clip
