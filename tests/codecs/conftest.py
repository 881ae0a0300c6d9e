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

    The bottom 8 rows are a binary frame counter (8x8 black/white blocks, least significant
    bit on the left; needs ``width >= 8 * bits``), so a decoded frame can be identified
    despite lossy coding; see :func:`frame_index`.
    """
    clip = np.full((frames, height, width, 3), 40, np.uint8)
    side = max(2, height // 4)
    bits = min(8, width // 8)
    for t in range(frames):
        x = round(t * (width - side) / max(1, frames - 1))
        clip[t, height // 4 : height // 4 + side, x : x + side] = (230, 30, 30)
        for bit in range(bits):
            clip[t, height - 8 :, bit * 8 : bit * 8 + 8] = 255 if (t >> bit) & 1 else 0
    return clip


def frame_index(frame: np.ndarray) -> int:
    """Read the frame counter of a decoded :func:`moving_square_clip` frame."""
    height, width = frame.shape[:2]
    # sample block centres, away from edges where compression blurs
    centres = frame[height - 6 : height - 2, :, :].mean(axis=(0, 2))
    bits = min(8, width // 8)
    return sum(1 << bit for bit in range(bits) if centres[bit * 8 + 2 : bit * 8 + 6].mean() > 128)


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
def codec_frame_index() -> Callable[[np.ndarray], int]:
    """:func:`frame_index`: which frame of a generated clip a decoded frame is."""
    return frame_index


@pytest.fixture(scope="session")
def codec_make_clip() -> Callable[..., np.ndarray]:
    """The clip generator itself, for tests that need other sizes or lengths."""
    return moving_square_clip
