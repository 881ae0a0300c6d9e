"""Tests for lakefmt.codecs.image."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile

from lakefmt.codecs import image as ci
from lakefmt.errors import DecodeError, LakefmtError, MissingDependencyError, TypeMismatchError


def gradient(height: int, width: int, channels: int) -> np.ndarray:
    """A smooth (JPEG-friendly) ``(height, width, channels)`` uint8 image."""
    yy, xx = np.mgrid[0:height, 0:width]
    planes = [
        xx * 255 // max(1, width - 1),
        yy * 255 // max(1, height - 1),
        (xx + yy) * 255 // max(1, width + height - 2),
        np.full((height, width), 200),
    ]
    return np.stack(planes[:channels], axis=-1).astype(np.uint8)


def pil_bytes(im: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload)
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def raw_png(width: int, height: int, depth: int = 8, color: int = 2) -> bytes:
    """A PNG with a hand-made IHDR (so invalid sizes can be written) and a dummy IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0"))
        + png_chunk(b"IEND", b"")
    )


rng = np.random.default_rng(1234)
NOISE_RGB = rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)
NOISE_RGBA = rng.integers(0, 256, (29, 41, 4), dtype=np.uint8)
NOISE_GRAY = rng.integers(0, 256, (29, 41), dtype=np.uint8)
NOISE_GRAY16 = rng.integers(0, 65536, (29, 41), dtype=np.uint16)


# --- formats -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jpg", "jpeg"),
        ("JPEG", "jpeg"),
        (".jpg", "jpeg"),
        ("PNG", "png"),
        ("tif", "tiff"),
        ("TIFF", "tiff"),
    ],
)
def test_normalize_image_format(name: str, expected: str) -> None:
    assert ci.normalize_image_format(name) == expected


@pytest.mark.parametrize("name", ["gif", "bmp", "", "webp", "jpe g"])
def test_normalize_image_format_rejects_unknown(name: str) -> None:
    with pytest.raises(ValueError, match="unknown image format"):
        ci.normalize_image_format(name)


# --- lossless round trips ------------------------------------------------------------------------
@given(
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    channels=st.sampled_from([0, 1, 3, 4]),  # 0 = a plain (H, W) array
    fmt=st.sampled_from(["png", "tiff"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossless_round_trip_uint8(
    height: int, width: int, channels: int, fmt: str, seed: int
) -> None:
    shape = (height, width) if channels == 0 else (height, width, channels)
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    data = ci.encode_image(array, fmt)
    decoded = ci.decode_image(data)
    expected = array.reshape(height, width, -1)
    assert decoded.dtype == np.uint8
    assert decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)
    assert ci.sniff_image(data) == ci.ImageInfo(fmt, width, height, expected.shape[2], "uint8")
    assert ci.image_shape(data) == expected.shape


@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    fmt=st.sampled_from(["png", "tiff"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossless_round_trip_uint16_gray(height: int, width: int, fmt: str, seed: int) -> None:
    array = np.random.default_rng(seed).integers(0, 65536, (height, width), dtype=np.uint16)
    data = ci.encode_image(array, fmt)
    info = ci.sniff_image(data)
    assert (info.dtype, info.channels) == ("uint16", 1)
    decoded = ci.decode_image(data, dtype="uint16")
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded[:, :, 0], array)


def test_uint16_scaled_to_uint8_by_default() -> None:
    array = np.array([[0, 128, 129, 257, 32767, 65278, 65535]], np.uint16)
    decoded = ci.decode_image(ci.encode_image(array, "png"))
    assert decoded.dtype == np.uint8
    # value / 257, rounded to nearest
    np.testing.assert_array_equal(decoded[0, :, 0], [0, 0, 1, 1, 127, 254, 255])


def test_uint8_scaled_to_uint16_on_request() -> None:
    decoded = ci.decode_image(ci.encode_image(NOISE_RGB, "png"), dtype="uint16")
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, NOISE_RGB.astype(np.uint16) * 257)


def test_big_endian_uint16_input() -> None:
    array = NOISE_GRAY16.astype(">u2")
    decoded = ci.decode_image(ci.encode_image(array, "png"), dtype="uint16")
    np.testing.assert_array_equal(decoded[:, :, 0], NOISE_GRAY16)


def test_non_contiguous_input() -> None:
    view = NOISE_RGB[::2, ::-1]
    np.testing.assert_array_equal(ci.decode_image(ci.encode_image(view, "png")), view)


# --- JPEG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(channels: int) -> None:
    array = gradient(61, 83, channels)
    data = ci.encode_image(array, "jpg", quality=95)
    assert data[:2] == b"\xff\xd8"
    decoded = ci.decode_image(data)
    assert decoded.shape == (61, 83, channels)
    diff = np.abs(decoded.astype(int) - array.astype(int))
    assert diff.mean() < 2.0
    assert diff.max() <= 24
    assert ci.sniff_image(data) == ci.ImageInfo("jpeg", 83, 61, channels, "uint8")


def test_jpeg_quality_changes_size() -> None:
    array = gradient(64, 64, 3) // 2 + NOISE_RGB[:1, :1] // 2
    assert len(ci.encode_image(array, "jpeg", quality=30)) < len(
        ci.encode_image(array, "jpeg", quality=95)
    )


def test_jpeg_2d_array_is_grayscale() -> None:
    data = ci.encode_image(gradient(20, 30, 1)[:, :, 0], "jpeg")
    assert Image.open(io.BytesIO(data)).mode == "L"
    assert ci.decode_image(data).shape == (20, 30, 1)


# --- sniffing agrees with Pillow and with decode ------------------------------------------------


def _pil_variants() -> list[tuple[str, bytes]]:
    rgb = Image.fromarray(gradient(37, 53, 3))
    rgba = Image.fromarray(NOISE_RGBA)
    gray = Image.fromarray(NOISE_GRAY)
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: must not be applied
    exif[0x010E] = "x" * 3000  # a long APP1 segment before the frame header
    return [
        ("jpeg baseline", pil_bytes(rgb, "JPEG")),
        ("jpeg progressive", pil_bytes(rgb, "JPEG", progressive=True)),
        ("jpeg exif", pil_bytes(rgb, "JPEG", exif=exif)),
        ("jpeg gray", pil_bytes(gray, "JPEG")),
        ("jpeg cmyk", pil_bytes(rgb.convert("CMYK"), "JPEG")),
        ("jpeg 444", pil_bytes(rgb, "JPEG", subsampling=0)),
        ("png rgb", pil_bytes(rgb, "PNG")),
        ("png interlaced", pil_bytes(rgb, "PNG", interlace=1)),
        ("png rgba", pil_bytes(rgba, "PNG")),
        ("png gray", pil_bytes(gray, "PNG")),
        ("png 1-bit", pil_bytes(gray.convert("1"), "PNG")),
        ("png gray16", pil_bytes(Image.fromarray(NOISE_GRAY16), "PNG")),
        ("png gray+alpha", pil_bytes(gray.convert("LA"), "PNG")),
        ("png palette", pil_bytes(pal, "PNG")),
        ("png palette+tRNS", pil_bytes(pal_t, "PNG")),
        ("tiff rgb", pil_bytes(rgb, "TIFF")),
        ("tiff rgba lzw", pil_bytes(rgba, "TIFF", compression="tiff_lzw")),
        ("tiff gray", pil_bytes(gray, "TIFF")),
        ("tiff gray16", pil_bytes(Image.fromarray(NOISE_GRAY16), "TIFF")),
        ("tiff 1-bit", pil_bytes(gray.convert("1"), "TIFF")),
        ("tiff palette", pil_bytes(pal, "TIFF")),
        ("tiff cmyk", pil_bytes(rgb.convert("CMYK"), "TIFF")),
    ]


PIL_VARIANTS = _pil_variants()


@pytest.mark.parametrize(("label", "data"), PIL_VARIANTS, ids=[v[0] for v in PIL_VARIANTS])
def test_sniff_matches_pil_and_decode(label: str, data: bytes) -> None:
    info = ci.sniff_image(data)
    with Image.open(io.BytesIO(data)) as im:
        assert (info.width, info.height) == im.size
        assert info.format == im.format.lower()
    decoded = ci.decode_image(data, dtype=info.dtype)
    assert decoded.shape == info.shape == ci.image_shape(data)
    assert decoded.dtype == np.dtype(info.dtype)
    assert decoded.flags.c_contiguous


def test_channel_layout_of_special_modes() -> None:
    by_label = dict(PIL_VARIANTS)
    assert ci.sniff_image(by_label["jpeg cmyk"]).channels == 3
    assert ci.sniff_image(by_label["png palette"]).channels == 3
    assert ci.sniff_image(by_label["png palette+tRNS"]).channels == 4
    assert ci.sniff_image(by_label["png gray+alpha"]).channels == 4
    assert ci.sniff_image(by_label["png gray16"]).dtype == "uint16"
    # 1-bit images decode to 0/255 grayscale
    assert set(np.unique(ci.decode_image(by_label["png 1-bit"]))) <= {0, 255}
    # palette transparency becomes real alpha
    alpha = ci.decode_image(by_label["png palette+tRNS"])[:, :, 3]
    assert set(np.unique(alpha)) == {0, 255}


def test_gray_alpha_decodes_to_rgba() -> None:
    la = np.stack([NOISE_GRAY, 255 - NOISE_GRAY], axis=-1)
    decoded = ci.decode_image(pil_bytes(Image.fromarray(la, "LA"), "PNG"))
    np.testing.assert_array_equal(decoded[:, :, 0], NOISE_GRAY)
    np.testing.assert_array_equal(decoded[:, :, 2], NOISE_GRAY)
    np.testing.assert_array_equal(decoded[:, :, 3], 255 - NOISE_GRAY)


def test_exif_orientation_is_not_applied() -> None:
    data = dict(PIL_VARIANTS)["jpeg exif"]
    assert ci.decode_image(data).shape == (37, 53, 3)


# --- the vectorised JPEG header check agrees with sniff_image ----------------------------------
def packed(datas: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Images back to back and their offsets (an Arrow binary array's layout)."""
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in datas])]).astype(np.int64)
    return np.frombuffer(b"".join(datas), dtype=np.uint8), offsets


def assert_agrees_with_sniff(datas: list[bytes]) -> ci.JpegHeaders:
    headers = ci.sniff_jpegs(*packed(datas))
    assert len(headers.valid) == len(datas)
    for i, data in enumerate(datas):
        if headers.valid[i]:
            # vouched for: exactly what the per-image sniff says
            info = ci.sniff_image(data)
            assert info.format == "jpeg"
            got = (headers.width[i], headers.height[i], headers.channels[i])
            assert got == (info.width, info.height, info.channels)
    return headers


def test_sniff_jpegs_vouches_for_common_jpegs() -> None:
    jpegs = [data for label, data in PIL_VARIANTS if label.startswith("jpeg")]
    jpegs.append(pil_bytes(Image.fromarray(gradient(1, 1, 3)), "JPEG"))
    headers = assert_agrees_with_sniff(jpegs)
    assert headers.valid.all()


def test_sniff_jpegs_leaves_other_images_and_unusual_jpegs_to_sniff_image() -> None:
    jpeg = dict(PIL_VARIANTS)["jpeg baseline"]
    unusual = [
        b"",
        b"\xff\xd8",
        jpeg[:3],
        jpeg[:30],  # truncated before the frame header
        dict(PIL_VARIANTS)["png rgb"],
        dict(PIL_VARIANTS)["tiff rgb"],
        jpeg[:2] + b"\xff\xff" + jpeg[2:],  # fill bytes before a marker (valid)
        jpeg[:2] + b"\xff\x01" + jpeg[2:],  # a standalone marker (valid)
        jpeg[:2] + b"\xff\xfe\x00\x04ab" * 70 + jpeg[2:],  # 70 comments (valid)
        jpeg[:2] + b"\xff\xda\x00\x02" + jpeg[2:],  # scan before the frame header
    ]
    headers = assert_agrees_with_sniff([jpeg, *unusual, jpeg])
    assert headers.valid.tolist() == [True] + [False] * len(unusual) + [True]
    for data in unusual[6:9]:
        assert ci.sniff_image(data).shape == (37, 53, 3)  # the slow path still accepts them


def test_sniff_jpegs_rejects_what_sniff_image_rejects() -> None:
    jpeg = bytearray(dict(PIL_VARIANTS)["jpeg baseline"])
    sof = jpeg.index(b"\xff\xc0")
    twelve_bit = bytearray(jpeg)
    twelve_bit[sof + 4] = 12
    two_components = bytearray(jpeg)
    two_components[sof + 9] = 2
    zero_height = bytearray(jpeg)
    zero_height[sof + 5 : sof + 7] = b"\x00\x00"
    short_frame = bytearray(jpeg)
    short_frame[sof + 2 : sof + 4] = b"\x00\x07"
    bad = [bytes(b) for b in (twelve_bit, two_components, zero_height, short_frame)]
    for data in bad:
        with pytest.raises(DecodeError):
            ci.sniff_image(data)
    assert not assert_agrees_with_sniff(bad).valid.any()


def test_sniff_jpegs_handles_offsets_into_a_larger_buffer() -> None:
    jpeg = dict(PIL_VARIANTS)["jpeg gray"]
    values, offsets = packed([b"junk" * 10, jpeg, jpeg])
    headers = ci.sniff_jpegs(values, offsets[1:])  # the first image is not part of the batch
    assert headers.valid.tolist() == [True, True]
    assert headers.channels.tolist() == [1, 1]
    assert ci.sniff_jpegs(np.zeros(0, np.uint8), np.zeros(1, np.int64)).valid.shape == (0,)


@given(
    edits=st.lists(
        st.tuples(st.integers(0, 700), st.integers(0, 255), st.sampled_from(["set", "ins", "del"])),
        max_size=6,
    ),
    cut=st.one_of(st.none(), st.integers(0, 800)),
    which=st.sampled_from([0, 2, 3, 4]),
)
def test_sniff_jpegs_agrees_with_sniff_image_on_damaged_headers(
    edits: list[tuple[int, int, str]], cut: int | None, which: int
) -> None:
    jpegs = [data for label, data in PIL_VARIANTS if label.startswith("jpeg")]
    data = bytearray(jpegs[which])
    for at, byte, op in edits:
        at = min(at, len(data))
        if op == "set" and at < len(data):
            data[at] = byte
        elif op == "ins":
            data.insert(at, byte)
        elif op == "del" and at < len(data):
            del data[at]
    damaged = bytes(data if cut is None else data[:cut])
    headers = assert_agrees_with_sniff([jpegs[1], damaged, jpegs[1]])
    assert headers.valid[0] and headers.valid[2]
    if not headers.valid[1]:
        try:
            info = ci.sniff_image(damaged)
        except DecodeError:
            return
        # accepted by the slow path only: an unusual layout the fast path leaves alone
        assert info.format != "jpeg" or b"\xff\xff" in damaged or _has_odd_marker(damaged)


def _has_odd_marker(data: bytes) -> bool:
    """A standalone marker (TEM or RSTn) or more segments than the vectorised walk follows."""
    return any(bytes([0xFF, m]) in data for m in (0x01, *range(0xD0, 0xD8))) or (
        data.count(b"\xff") > 60
    )


# --- errors on bad bytes -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"\x00" * 100,
        b"GIF89a" + b"\x00" * 50,
        b"BM" + b"\x00" * 60,
        b"%PDF-1.4",
    ],
)
def test_sniff_and_decode_reject_non_images(data: bytes) -> None:
    with pytest.raises(DecodeError):
        ci.sniff_image(data)
    with pytest.raises(DecodeError):
        ci.decode_image(data)


def test_gif_is_rejected() -> None:
    data = pil_bytes(Image.fromarray(NOISE_RGB), "GIF")
    with pytest.raises(DecodeError, match="not a JPEG, PNG or TIFF"):
        ci.decode_image(data)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff"])
@pytest.mark.parametrize("keep", [1, 4, 9, 20, 30])
def test_truncated_header_raises(fmt: str, keep: int) -> None:
    data = ci.encode_image(NOISE_RGB, fmt)[:keep]
    with pytest.raises(DecodeError):
        ci.sniff_image(data)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_body_raises_on_decode(fmt: str, fraction: float) -> None:
    data = ci.encode_image(NOISE_RGB if fmt == "png" else gradient(64, 64, 3), fmt)
    cut = data[: int(len(data) * fraction)]
    ci.sniff_image(cut)  # the header is intact...
    with pytest.raises(DecodeError):
        ci.decode_image(cut)  # ...but the pixels are not


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_tiff_raises(fraction: float) -> None:
    data = ci.encode_image(NOISE_RGB, "tiff")
    # Pillow writes the directory after the pixels, so a cut loses the header
    with pytest.raises(DecodeError):
        ci.decode_image(data[: int(len(data) * fraction)])


def test_corrupt_tiff_pixels_raise() -> None:
    data = bytearray(ci.encode_image(NOISE_RGB, "tiff"))
    data[20:200] = bytes(180)  # inside the deflate-compressed strip
    ci.sniff_image(bytes(data))
    with pytest.raises(DecodeError, match="cannot decode tiff"):
        ci.decode_image(bytes(data))


def test_jpeg_without_end_marker_raises() -> None:
    data = ci.encode_image(gradient(32, 32, 3), "jpeg")
    with pytest.raises(DecodeError):
        ci.decode_image(data[:-2])


def test_truncated_jpeg_raises_even_if_pillow_is_lenient_globally() -> None:
    data = ci.encode_image(gradient(64, 64, 3), "jpeg")[:-200]
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(DecodeError):
            ci.decode_image(data)
        with pytest.raises(DecodeError):
            ci.decode_images([data] * 6)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old
    assert ImageFile.LOAD_TRUNCATED_IMAGES is old


@pytest.mark.parametrize(
    ("width", "height"), [(0, 10), (10, 0), (70000, 10), (10, 65536), (2**31 - 1, 2**31 - 1)]
)
def test_absurd_png_dimensions_raise(width: int, height: int) -> None:
    with pytest.raises(DecodeError, match="implausible size"):
        ci.sniff_image(raw_png(width, height))
    with pytest.raises(DecodeError):
        ci.decode_image(raw_png(width, height))


def test_max_png_dimension_is_accepted_by_sniff() -> None:
    assert ci.image_shape(raw_png(65535, 1)) == (1, 65535, 3)


def test_absurd_jpeg_dimensions_raise() -> None:
    data = bytearray(ci.encode_image(gradient(16, 16, 3), "jpeg"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">H", data, sof + 5, 0)  # height 0 ("defined later by DNL")
    with pytest.raises(DecodeError, match="implausible size"):
        ci.sniff_image(bytes(data))


@pytest.mark.parametrize(("depth", "color"), [(16, 3), (3, 0), (8, 5), (4, 2)])
def test_invalid_png_header_raises(depth: int, color: int) -> None:
    with pytest.raises(DecodeError, match="invalid PNG header"):
        ci.sniff_image(raw_png(4, 4, depth, color))


def test_png_with_bad_first_chunk_raises() -> None:
    data = bytearray(ci.encode_image(NOISE_RGB, "png"))
    data[12:16] = b"IHDX"
    with pytest.raises(DecodeError):
        ci.sniff_image(bytes(data))


def test_jpeg_without_frame_header_raises() -> None:
    with pytest.raises(DecodeError):
        ci.sniff_image(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda\x00\x02")
    with pytest.raises(DecodeError):
        ci.sniff_image(b"\xff\xd8\x12\x34")


def test_corrupt_png_data_raises() -> None:
    data = bytearray(ci.encode_image(NOISE_RGB, "png"))
    idat = data.index(b"IDAT")
    data[idat + 10 : idat + 60] = bytes(50)
    with pytest.raises(DecodeError):
        ci.decode_image(bytes(data))


def test_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ci.decode_image(b"nope")
    assert issubclass(DecodeError, LakefmtError)


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeMismatchError):
        ci.sniff_image("not bytes")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = ci.encode_image(NOISE_RGB, "png")
    assert ci.image_shape(bytearray(data)) == ci.image_shape(memoryview(data)) == (29, 41, 3)


def test_decode_rejects_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        ci.decode_image(ci.encode_image(NOISE_RGB, "png"), dtype="float32")


# --- encode errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("array", "fmt", "match"),
    [
        (NOISE_RGB.astype(np.float32), "png", "uint8"),
        (NOISE_RGB.astype(np.int16), "png", "uint8"),
        (NOISE_RGB.astype(bool), "png", "uint8"),
        (NOISE_RGB[:, :, :2], "png", "shape"),
        (NOISE_RGB[None], "png", "shape"),
        (NOISE_RGB[0, 0], "png", "shape"),
        (np.zeros((0, 5, 3), np.uint8), "png", "size"),
        (np.zeros((1, 70000), np.uint8), "png", "size"),
        (NOISE_RGBA, "jpeg", "alpha"),
        (NOISE_GRAY16, "jpeg", "16-bit"),
        (np.stack([NOISE_GRAY16] * 3, axis=-1), "png", "single-channel"),
    ],
)
def test_encode_rejects_bad_arrays(array: np.ndarray, fmt: str, match: str) -> None:
    with pytest.raises(TypeMismatchError, match=match):
        ci.encode_image(array, fmt)


def test_encode_rejects_non_arrays() -> None:
    with pytest.raises(TypeMismatchError, match="numpy array or a PIL image"):
        ci.encode_image(NOISE_RGB.tolist(), "png")  # type: ignore[arg-type]


def test_encode_rejects_bad_format_and_quality() -> None:
    with pytest.raises(ValueError, match="unknown image format"):
        ci.encode_image(NOISE_RGB, "webp")
    for quality in (0, 101, 95.0, True):
        with pytest.raises(ValueError, match="quality"):
            ci.encode_image(NOISE_RGB, "jpeg", quality=quality)  # type: ignore[arg-type]


def test_encode_pil_images() -> None:
    rgb = Image.fromarray(NOISE_RGB)
    np.testing.assert_array_equal(ci.decode_image(ci.encode_image(rgb, "png")), NOISE_RGB)
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    decoded = ci.decode_image(ci.encode_image(pal, "png"))
    np.testing.assert_array_equal(decoded, np.asarray(pal.convert("RGB")))
    cmyk = ci.decode_image(ci.encode_image(rgb.convert("CMYK"), "tiff"))
    assert cmyk.shape == (29, 41, 3)
    gray16 = ci.decode_image(ci.encode_image(Image.fromarray(NOISE_GRAY16), "tiff"), dtype="uint16")
    np.testing.assert_array_equal(gray16[:, :, 0], NOISE_GRAY16)
    assert ci.sniff_image(ci.encode_image(pal, "jpeg")).channels == 3


def test_encode_pil_rejects_alpha_for_jpeg_and_float_modes() -> None:
    with pytest.raises(TypeMismatchError, match="alpha"):
        ci.encode_image(Image.fromarray(NOISE_RGBA), "jpeg")
    with pytest.raises(TypeMismatchError, match="mode"):
        ci.encode_image(Image.fromarray(NOISE_RGB[:, :, 0].astype(np.float32)), "png")


# --- batch decode --------------------------------------------------------------------------------
def test_decode_images_preserves_order_and_none() -> None:
    arrays = [np.full((8 + i, 5 + i, 3), i * 20, np.uint8) for i in range(10)]
    datas: list[bytes | None] = [ci.encode_image(a, "png") for a in arrays]
    datas[3] = None
    datas[7] = None
    for threads in (None, 1, 2, 64):
        out = ci.decode_images(datas, threads=threads)
        assert len(out) == 10
        for i, (got, want) in enumerate(zip(out, arrays, strict=True)):
            if i in (3, 7):
                assert got is None
            else:
                assert got is not None
                np.testing.assert_array_equal(got, want)


def test_decode_images_small_and_empty_lists() -> None:
    assert ci.decode_images([]) == []
    assert ci.decode_images([None, None]) == [None, None]
    (one,) = ci.decode_images([ci.encode_image(NOISE_GRAY, "png")])
    assert one is not None and one.shape == (29, 41, 1)


def test_decode_images_dtype() -> None:
    data = ci.encode_image(NOISE_GRAY16, "png")
    out = ci.decode_images([data] * 5, dtype="uint16")
    assert all(o is not None and o.dtype == np.uint16 for o in out)


def test_decode_images_reports_failing_position() -> None:
    good = ci.encode_image(NOISE_RGB, "png")
    datas: list[bytes | None] = [good] * 8
    datas[5] = b"garbage"
    with pytest.raises(DecodeError, match="position 5"):
        ci.decode_images(datas)
    with pytest.raises(ValueError, match="threads"):
        ci.decode_images([good] * 8, threads=0)


def test_decode_images_uses_shared_pool() -> None:
    data = ci.encode_image(NOISE_RGB, "png")
    ci.decode_images([data] * 6)
    pool = ci._shared_pool()
    ci.decode_images([data] * 6)
    assert ci._shared_pool() is pool


# --- import hygiene and missing dependencies -----------------------------------------------------
def test_importing_codecs_does_not_import_media_packages() -> None:
    code = (
        "import sys, lakefmt.codecs, lakefmt.codecs.image, lakefmt.codecs.video, "
        "lakefmt.codecs.mesh; "
        "print(sorted(m for m in ('PIL', 'av', 'trimesh') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_missing_pillow_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lakefmt\[media\]'") as info:
        ci.decode_image(raw_png(4, 4))
    assert isinstance(info.value, ImportError)
