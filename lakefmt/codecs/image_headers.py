"""Image headers: what a JPEG, PNG or TIFF holds, read without decoding pixels.

:func:`sniff_image` reports exactly the channels and native dtype
:func:`lakefmt.codecs.image.decode_image` produces (see there for the decoded layout), from
the header alone: JPEG and PNG headers are parsed directly, TIFF headers by Pillow without
reading pixel data. :func:`image_ends_whole` and :func:`jpegs_end_whole` tell from the
structure whether an image is complete; :func:`sniff_jpegs` sniffs many JPEGs stored back to
back at once. :mod:`lakefmt.codecs.image` re-exports all of these.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lakefmt.codecs._deps import require
from lakefmt.errors import DecodeError, InvalidArgumentError, TypeMismatchError

__all__ = [
    "IMAGE_FORMATS",
    "JPEG_END",
    "MAX_IMAGE_SIDE",
    "PNG_END",
    "ImageInfo",
    "JpegHeaders",
    "image_ends_whole",
    "image_shape",
    "jpegs_end_whole",
    "normalize_image_format",
    "sniff_image",
    "sniff_jpegs",
]

IMAGE_FORMATS = ("jpeg", "png", "tiff")
MAX_IMAGE_SIDE = 65535
_FORMAT_ALIASES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "tif": "tiff", "tiff": "tiff"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF

# PNG colour type -> (allowed bit depths, decoded channels)
_PNG_COLOR_TYPES = {
    0: ((1, 2, 4, 8, 16), 1),  # gray
    2: ((8, 16), 3),  # RGB
    3: ((1, 2, 4, 8), 3),  # palette (4 channels when it has a tRNS chunk)
    4: ((8, 16), 4),  # gray + alpha, decoded as RGBA
    6: ((8, 16), 4),  # RGBA
}
# SOFn markers carry the frame header; C4 (DHT), C8 (JPG) and CC (DAC) share the range
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# markers without a length field
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])

# Pillow mode -> (mode to convert to, channels, dtype)
_MODE_TARGETS: dict[str, tuple[str, int, str]] = {
    "1": ("L", 1, "uint8"),
    "L": ("L", 1, "uint8"),
    "I;16": ("I;16", 1, "uint16"),
    "I;16L": ("I;16", 1, "uint16"),
    "I;16B": ("I;16", 1, "uint16"),
    "I;16N": ("I;16", 1, "uint16"),
    "RGB": ("RGB", 3, "uint8"),
    "RGBX": ("RGB", 3, "uint8"),
    "CMYK": ("RGB", 3, "uint8"),
    "YCbCr": ("RGB", 3, "uint8"),
    "LAB": ("RGB", 3, "uint8"),
    "HSV": ("RGB", 3, "uint8"),
    "RGBA": ("RGBA", 4, "uint8"),
    "RGBa": ("RGBA", 4, "uint8"),
    "LA": ("RGBA", 4, "uint8"),
    "La": ("RGBA", 4, "uint8"),
    "PA": ("RGBA", 4, "uint8"),
}


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, as :func:`decode_image` will return it.

    Attributes:
        format: ``"jpeg"``, ``"png"`` or ``"tiff"``.
        width: Width in pixels.
        height: Height in pixels.
        channels: Channels of the decoded array (1, 3 or 4).
        dtype: Native dtype of the decoded array, ``"uint8"`` or ``"uint16"``.
    """

    format: str
    width: int
    height: int
    channels: int
    dtype: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """The decoded array's shape, ``(height, width, channels)``."""
        return (self.height, self.width, self.channels)


def normalize_image_format(name: str) -> str:
    """Return the canonical name of an image format.

    Args:
        name: A format name or file extension, any case, with or without a leading dot
            (``"JPG"``, ``".tif"``, ``"png"``).

    Returns:
        One of :data:`IMAGE_FORMATS`.

    Raises:
        InvalidArgumentError: The format is not one lakefmt stores.
    """
    key = str(name).strip().lower().lstrip(".")
    try:
        return _FORMAT_ALIASES[key]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown image format {name!r}; expected one of {', '.join(IMAGE_FORMATS)}"
        ) from None


# ---------------------------------------------------------------------------------------------
# header sniffing


def sniff_image(data: bytes) -> ImageInfo:
    """Identify an image and read its dimensions from the header, without decoding pixels.

    JPEG and PNG headers are parsed directly (a few microseconds); TIFF headers are read
    through Pillow's lazy ``Image.open``.

    Args:
        data: The encoded image.

    Returns:
        The format, size, channels and dtype :func:`decode_image` will produce.

    Raises:
        DecodeError: ``data`` is empty, not a JPEG/PNG/TIFF, its header is truncated or
            invalid, or a side is 0 or larger than 65535 pixels.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeMismatchError(f"image data must be bytes, got {type(data).__name__}")
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise DecodeError("image data is empty")
    if data.startswith(_PNG_SIGNATURE):
        info = _sniff_png(data)
    elif data.startswith(_JPEG_SOI):
        info = _sniff_jpeg(data)
    elif data[:4] in _TIFF_MAGICS:
        info = _sniff_tiff(data)
    else:
        raise DecodeError(
            f"not a JPEG, PNG or TIFF image (starts with {data[:8]!r}, {len(data)} bytes)"
        )
    _check_size(info.width, info.height, info.format)
    return info


def image_shape(data: bytes) -> tuple[int, int, int]:
    """Return ``(height, width, channels)`` of an encoded image from its header alone.

    Args:
        data: The encoded image.

    Returns:
        The shape :func:`decode_image` will return.

    Raises:
        DecodeError: As for :func:`sniff_image`.
    """
    info = sniff_image(data)
    return (info.height, info.width, info.channels)


def _check_size(width: int, height: int, fmt: str) -> None:
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise DecodeError(
            f"{fmt} image has implausible size {width}x{height} "
            f"(each side must be 1..{MAX_IMAGE_SIDE})"
        )


def _sniff_png(data: bytes) -> ImageInfo:
    if len(data) < 33:
        raise DecodeError(f"truncated PNG header ({len(data)} bytes)")
    length, ctype, width, height, depth, color, comp, filt, interlace = struct.unpack_from(
        ">I4sIIBBBBB", data, 8
    )
    if ctype != b"IHDR" or length != 13:
        raise DecodeError("invalid PNG: the first chunk is not a 13-byte IHDR")
    spec = _PNG_COLOR_TYPES.get(color)
    if spec is None or depth not in spec[0] or comp != 0 or filt != 0 or interlace > 1:
        raise DecodeError(f"invalid PNG header (bit depth {depth}, colour type {color})")
    channels = spec[1]
    if color == 3 and _png_has_trns(data):
        channels = 4
    dtype = "uint16" if color == 0 and depth == 16 else "uint8"
    return ImageInfo("png", width, height, channels, dtype)


def _png_has_trns(data: bytes) -> bool:
    # tRNS must come before the first IDAT, so only the (short) ancillary chunks are walked
    pos = 33
    end = len(data)
    while pos + 8 <= end:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if ctype == b"tRNS":
            return True
        if ctype in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    raise DecodeError("truncated PNG: no image data after the header")


def _sniff_jpeg(data: bytes) -> ImageInfo:
    end = len(data)
    pos = 2
    while True:
        if pos >= end:
            raise DecodeError("truncated JPEG header: no frame (SOF) marker found")
        if data[pos] != 0xFF:
            raise DecodeError(f"invalid JPEG: expected a marker at byte {pos}")
        while pos < end and data[pos] == 0xFF:  # fill bytes may pad markers
            pos += 1
        if pos >= end:
            raise DecodeError("truncated JPEG header")
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI / SOS before any frame header
            raise DecodeError("invalid JPEG: image data starts before a frame (SOF) header")
        if pos + 2 > end:
            raise DecodeError("truncated JPEG header")
        (seglen,) = struct.unpack_from(">H", data, pos)
        if seglen < 2:
            raise DecodeError(f"invalid JPEG: segment length {seglen} at byte {pos}")
        if marker in _JPEG_SOF_MARKERS:
            if pos + 8 > end or seglen < 8:
                raise DecodeError("truncated JPEG frame header")
            precision, height, width, ncomp = struct.unpack_from(">BHHB", data, pos + 2)
            if precision != 8:
                raise DecodeError(f"unsupported {precision}-bit JPEG (only 8-bit is supported)")
            if ncomp == 1:
                channels = 1
            elif ncomp in (3, 4):  # 4 = CMYK/YCCK, decoded to RGB
                channels = 3
            else:
                raise DecodeError(f"unsupported JPEG with {ncomp} components")
            return ImageInfo("jpeg", width, height, channels, "uint8")
        pos += seglen


#: The last 12 bytes of every complete PNG: the empty IEND chunk with its CRC.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
#: The last 2 bytes of a complete JPEG: the EOI marker.
JPEG_END = b"\xff\xd9"
_TIFF_EXTENTS = ((273, 279), (324, 325))  # StripOffsets/StripByteCounts, Tile*


def image_ends_whole(data: bytes, fmt: str) -> bool:
    """Whether an image's structure says it is complete, without decoding pixels.

    JPEG: the file ends with the EOI marker; PNG: it ends with the IEND chunk (both look at
    the last bytes only, O(1)). TIFF: every strip or tile its first directory lists lies
    inside the file (the directory is parsed, which TIFF ingest does anyway).

    ``False`` is not a verdict: a whole image may carry bytes after its end marker (some
    cameras append a trailer); :func:`check_image_whole` then decodes it to decide.
    """
    if fmt == "jpeg":
        return data.endswith(JPEG_END)
    if fmt == "png":
        return data.endswith(PNG_END)
    if fmt == "tiff":
        return _tiff_extents_inside(data)
    return False


def _tiff_extents_inside(data: bytes) -> bool:
    image_mod = require("PIL.Image")
    try:
        with image_mod.open(io.BytesIO(data), formats=["TIFF"]) as im:
            tags = im.tag_v2
            for offsets_tag, counts_tag in _TIFF_EXTENTS:
                offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
                if offsets is None or counts is None:
                    continue
                offsets = offsets if isinstance(offsets, tuple) else (offsets,)
                counts = counts if isinstance(counts, tuple) else (counts,)
                if len(offsets) != len(counts) or not offsets:
                    return False
                return max(o + c for o, c in zip(offsets, counts, strict=True)) <= len(data)
    except Exception:  # Pillow raises a zoo of types for bad files: decoding decides
        return False
    return False


def jpegs_end_whole(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """:func:`image_ends_whole` for many JPEGs stored back to back, vectorised: ``True``
    where an image ends with the EOI marker (see :func:`sniff_jpegs` for the arguments)."""
    values = np.asarray(values, dtype=np.uint8).reshape(-1)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    ends = offsets[1:]
    long_enough = ends - offsets[:-1] >= 2
    out = np.zeros(len(ends), dtype=bool)
    at = ends[long_enough]
    out[long_enough] = (values[at - 2] == 0xFF) & (values[at - 1] == 0xD9)
    return out


@dataclass(frozen=True)
class JpegHeaders:
    """The frame headers of many JPEGs, read at once by :func:`sniff_jpegs`.

    Attributes:
        valid: ``bool`` per image: ``True`` where the image is a JPEG whose header
            :func:`sniff_image` accepts, with the size and channels below; ``False`` where
            :func:`sniff_image` must decide (the header is invalid, or laid out unusually).
        width: Width in pixels (0 where not ``valid``).
        height: Height in pixels (0 where not ``valid``).
        channels: Channels of the decoded array, 1 or 3 (0 where not ``valid``).
    """

    valid: np.ndarray
    width: np.ndarray
    height: np.ndarray
    channels: np.ndarray


# what the vectorised walk does at a marker: 0 leave the image to sniff_image (fill bytes,
# markers without a length, image data before a frame header), 1 skip the segment, 2 read the
# frame header
_JPEG_MARKER_ACTIONS = np.array(
    [
        0
        if m == 0xFF or m in _JPEG_STANDALONE or m in (0xD9, 0xDA)
        else 2
        if m in _JPEG_SOF_MARKERS
        else 1
        for m in range(256)
    ],
    dtype=np.uint8,
)
#: Segments walked per image before :func:`sniff_jpegs` leaves an image to :func:`sniff_image`.
_JPEG_MAX_SEGMENTS = 64


def sniff_jpegs(values: np.ndarray, offsets: np.ndarray) -> JpegHeaders:
    """Check the headers of many JPEGs stored back to back, vectorised over the images.

    Walks the marker segments of every image in lockstep with numpy, which costs well under
    a microsecond per image (a Python walk costs a few). Only the common layout is vouched
    for: an image is ``valid`` exactly when :func:`sniff_image` would accept it as a JPEG with
    the same size and channels. Images it cannot vouch for (not a JPEG, a corrupt or
    truncated header, fill bytes, more than 64 segments before the frame header) come back
    with ``valid`` False; :func:`sniff_image` gives the answer, or the error, for those.

    Args:
        values: The images' bytes, back to back (``uint8``; an Arrow binary array's data).
        offsets: ``n + 1`` positions into ``values``; image ``i`` is
            ``values[offsets[i]:offsets[i + 1]]``.

    Returns:
        Validity, width, height and channels per image.
    """
    values = np.asarray(values, dtype=np.uint8).reshape(-1)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    ends_all = offsets[1:]
    count = len(ends_all)
    valid = np.zeros(count, dtype=bool)
    width = np.zeros(count, dtype=np.int64)
    height = np.zeros(count, dtype=np.int64)
    channels = np.zeros(count, dtype=np.int64)
    rows = np.flatnonzero(ends_all - offsets[:-1] >= 4)
    starts = offsets[:-1][rows]
    is_jpeg = (values[starts] == 0xFF) & (values[starts + 1] == 0xD8)
    rows, pos = rows[is_jpeg], starts[is_jpeg] + 2  # pos: the 0xFF of the next marker
    for _ in range(_JPEG_MAX_SEGMENTS):
        if not len(rows):
            break
        ends = ends_all[rows]
        fits = pos + 4 <= ends  # marker and segment length
        rows, pos, ends = rows[fits], pos[fits], ends[fits]
        action = np.where(values[pos] == 0xFF, _JPEG_MARKER_ACTIONS[values[pos + 1]], 0)
        length = (values[pos + 2].astype(np.int64) << 8) | values[pos + 3]
        frame = (action == 2) & (length >= 8) & (pos + 10 <= ends)
        if frame.any():
            at = pos[frame]
            precision = values[at + 4]
            h = (values[at + 5].astype(np.int64) << 8) | values[at + 6]
            w = (values[at + 7].astype(np.int64) << 8) | values[at + 8]
            ncomp = values[at + 9]
            good = (precision == 8) & ((ncomp == 1) | (ncomp == 3) | (ncomp == 4))
            good &= (h > 0) & (w > 0)
            done = rows[frame][good]
            valid[done] = True
            width[done] = w[good]
            height[done] = h[good]
            channels[done] = np.where(ncomp[good] == 1, 1, 3)
        skip = (action == 1) & (length >= 2)
        rows, pos = rows[skip], pos[skip] + 2 + length[skip]
    return JpegHeaders(valid, width, height, channels)


def _sniff_tiff(data: bytes) -> ImageInfo:
    image_mod = require("PIL.Image")
    try:
        with image_mod.open(io.BytesIO(data), formats=["TIFF"]) as im:
            width, height = im.size
            _, channels, dtype = _mode_target(im.mode, im.info)
    except DecodeError:
        raise
    except Exception as exc:  # Pillow raises a zoo of types for bad headers
        raise DecodeError(f"invalid TIFF header: {exc}") from exc
    return ImageInfo("tiff", width, height, channels, dtype)


def _mode_target(mode: str, info: Mapping[Any, Any]) -> tuple[str, int, str]:
    if mode == "P":
        return ("RGBA", 4, "uint8") if "transparency" in info else ("RGB", 3, "uint8")
    try:
        return _MODE_TARGETS[mode]
    except KeyError:
        raise DecodeError(f"unsupported image pixel mode {mode!r}") from None
