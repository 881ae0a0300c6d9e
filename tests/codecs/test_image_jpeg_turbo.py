"""JPEGs decoded by simplejpeg (libjpeg-turbo) give exactly Pillow's pixels, or go to Pillow."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import simplejpeg
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lakefmt.codecs import image as ci
from lakefmt.errors import DecodeError


def pillow_reference(data: bytes) -> np.ndarray:
    """What Pillow alone decodes (the decoder lakefmt used before simplejpeg)."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode == "L":
            return np.asarray(im)[:, :, np.newaxis]
        return np.asarray(im.convert("RGB"))


def pixels(height: int, width: int, channels: int, seed: int, noisy: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if noisy:
        return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 6.28, channels)
    planes = [127 + 120 * np.sin(xx * 0.2 + yy * 0.1 + p) for p in phase]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def pil_jpeg(array: np.ndarray, **options: Any) -> bytes:
    im = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


@pytest.fixture
def turbo_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per JPEG decode, whether simplejpeg decoded it (True) or Pillow (False)."""
    calls: list[bool] = []
    real = ci._decode_jpeg_turbo

    def spy(data: bytes, info: ci.ImageInfo) -> np.ndarray | None:
        out = real(data, info)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(ci, "_decode_jpeg_turbo", spy)
    return calls


RGB = pixels(61, 47, 3, seed=1, noisy=False)
GRAY = pixels(61, 47, 1, seed=2, noisy=False)

PILLOW_CASES = {
    "rgb 4:2:0": (RGB, {"quality": 85}),
    "rgb 4:2:2": (RGB, {"subsampling": 1}),
    "rgb 4:4:4": (RGB, {"subsampling": 0, "quality": 100}),
    "rgb progressive": (RGB, {"progressive": True}),
    "rgb progressive 4:4:4": (RGB, {"progressive": True, "subsampling": 0}),
    "rgb optimized": (RGB, {"optimize": True, "quality": 30}),
    "rgb quality 1": (RGB, {"quality": 1}),
    "rgb noise": (pixels(33, 35, 3, seed=3, noisy=True), {"quality": 95}),
    "rgb stored as RGB (Adobe)": (RGB, {"keep_rgb": True}),
    "rgb restart markers": (RGB, {"restart_marker_blocks": 3}),
    "rgb with ICC profile and EXIF": (
        RGB,
        {"icc_profile": bytes(range(256)) * 300, "exif": b"Exif\x00\x00" + bytes(64)},
    ),
    "rgb 1x1": (pixels(1, 1, 3, seed=4, noisy=True), {}),
    "rgb odd size": (pixels(255, 257, 3, seed=5, noisy=False), {}),
    "rgb tall": (pixels(131, 3, 3, seed=6, noisy=True), {"subsampling": 2}),
    "gray": (GRAY, {}),
    "gray progressive": (GRAY, {"progressive": True}),
    "gray noise odd size": (pixels(17, 9, 1, seed=7, noisy=True), {"quality": 70}),
}


@pytest.mark.parametrize("case", list(PILLOW_CASES))
def test_pillow_written_jpegs_decode_to_pillows_pixels(case: str, turbo_calls: list[bool]) -> None:
    array, options = PILLOW_CASES[case]
    data = pil_jpeg(array, **options)
    out = ci.decode_image(data)
    expected = pillow_reference(data)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.shape == expected.shape == ci.sniff_image(data).shape
    np.testing.assert_array_equal(out, expected)
    assert turbo_calls == [True]


@pytest.mark.parametrize("subsampling", ["444", "422", "420", "440", "411"])
@pytest.mark.parametrize("fastdct", [False, True])
def test_turbo_written_jpegs_decode_to_pillows_pixels(
    subsampling: str, fastdct: bool, turbo_calls: list[bool]
) -> None:
    array = pixels(45, 77, 3, seed=8, noisy=False)
    data = simplejpeg.encode_jpeg(array, quality=80, colorsubsampling=subsampling, fastdct=fastdct)
    np.testing.assert_array_equal(ci.decode_image(data), pillow_reference(data))
    assert turbo_calls == [True]


def test_uint16_output_matches_pillow_scaled(turbo_calls: list[bool]) -> None:
    data = pil_jpeg(RGB)
    out = ci.decode_image(data, dtype="uint16")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, pillow_reference(data).astype(np.uint16) * 257)
    assert turbo_calls == [True]


def test_cmyk_jpegs_are_left_to_pillow(turbo_calls: list[bool]) -> None:
    cmyk = Image.fromarray(pixels(20, 30, 4, seed=9, noisy=False), "CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG")
    data = buf.getvalue()
    out = ci.decode_image(data)
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, pillow_reference(data))
    assert turbo_calls == [False]


def test_jpeg_libjpeg_warns_about_still_decodes_like_pillow(turbo_calls: list[bool]) -> None:
    # junk before the scan's marker: libjpeg-turbo warns (simplejpeg raises), Pillow skips it
    # and decodes; lakefmt must not fail where Pillow worked
    data = pil_jpeg(RGB)
    sos = data.index(b"\xff\xda")
    padded = data[:sos] + b"\x00\x01\x02" + data[sos:]
    with pytest.raises(ValueError, match="extraneous bytes"):
        simplejpeg.decode_jpeg(padded, strict=True)
    np.testing.assert_array_equal(ci.decode_image(padded), pillow_reference(padded))
    assert turbo_calls == [False]


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_jpegs_still_raise(fraction: float, turbo_calls: list[bool]) -> None:
    data = pil_jpeg(pixels(64, 64, 3, seed=10, noisy=True))
    cut = data[: int(len(data) * fraction)]
    with pytest.raises(DecodeError, match="cannot decode jpeg"):
        ci.decode_image(cut)
    assert turbo_calls == [False]


def test_without_simplejpeg_pillow_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pil_jpeg(RGB, progressive=True)
    monkeypatch.setattr(ci, "_simplejpeg", lambda: None)
    np.testing.assert_array_equal(ci.decode_image(data), pillow_reference(data))
    assert ci._decode_jpeg_turbo(data, ci.sniff_image(data)) is None


def test_decode_images_in_parallel_matches_one_by_one() -> None:
    datas: list[bytes | None] = [
        pil_jpeg(pixels(40 + i % 7, 30 + i % 5, 1 if i % 3 == 0 else 3, seed=i, noisy=i % 2 == 0))
        for i in range(40)
    ]
    datas[7] = None
    out = ci.decode_images(datas)
    for data, array in zip(datas, out, strict=True):
        if data is None:
            assert array is None
        else:
            np.testing.assert_array_equal(array, pillow_reference(data))


@given(
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    channels=st.sampled_from([1, 3]),
    subsampling=st.sampled_from([0, 1, 2]),
    progressive=st.booleans(),
    quality=st.integers(1, 100),
    seed=st.integers(0, 2**16),
    noisy=st.booleans(),
)
def test_any_gray_or_rgb_jpeg_decodes_to_pillows_pixels(
    height: int,
    width: int,
    channels: int,
    subsampling: int,
    progressive: bool,
    quality: int,
    seed: int,
    noisy: bool,
) -> None:
    array = pixels(height, width, channels, seed, noisy)
    data = pil_jpeg(array, subsampling=subsampling, progressive=progressive, quality=quality)
    assert ci._decode_jpeg_turbo(data, ci.sniff_image(data)) is not None
    out = ci.decode_image(data)
    assert out.shape == (height, width, channels)
    np.testing.assert_array_equal(out, pillow_reference(data))
