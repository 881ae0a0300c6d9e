"""Bad arguments to the codec helpers raise lakefmt errors (still ValueErrors), naming them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from lakefmt.codecs.image import decode_image, decode_images, encode_image
from lakefmt.codecs.image_headers import normalize_image_format
from lakefmt.codecs.mesh import normalize_mesh_format
from lakefmt.codecs.video import decode_frames, encode_video
from lakefmt.errors import InvalidArgumentError

PIXELS = np.zeros((4, 4, 3), np.uint8)
CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("image dtype", lambda: decode_image(b"x", dtype="float32"), "dtype"),
    ("images dtype", lambda: decode_images([b"x"], dtype="int8"), "dtype"),
    ("images threads", lambda: decode_images([b"x"], threads=0), "threads"),
    ("image quality", lambda: encode_image(PIXELS, "jpeg", quality=0), "quality"),
    ("image format", lambda: normalize_image_format("gif9"), "gif9"),
    ("mesh format", lambda: normalize_mesh_format("dwg"), "dwg"),
    ("video fps", lambda: encode_video(np.zeros((2, 16, 16, 3), np.uint8), fps=0), "fps"),
    ("video crf", lambda: encode_video(np.zeros((2, 16, 16, 3), np.uint8), crf=99), "crf"),
    ("video step", lambda: decode_frames(b"x", 0, 1, 0), "step"),
]


@pytest.mark.parametrize(("name", "call", "word"), CASES, ids=[c[0] for c in CASES])
def test_bad_codec_argument(name: str, call: Callable[[], Any], word: str) -> None:
    with pytest.raises(InvalidArgumentError, match=word) as info:
        call()
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working
