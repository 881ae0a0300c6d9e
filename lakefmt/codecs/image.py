"""Image codec: JPEG, PNG and TIFF bytes <-> ``numpy`` arrays.

Decoded images are always ``(height, width, channels)`` arrays:

* grayscale (and 1-bit) images have 1 channel,
* RGB, CMYK and YCbCr images, and palette images without transparency, have 3 channels (RGB),
* images with alpha (RGBA, gray+alpha, palette with transparency) have 4 channels (RGBA),
* 16-bit grayscale images are ``uint16`` natively; everything else is ``uint8``.

:func:`sniff_image` reports exactly the channels and native dtype :func:`decode_image`
produces, without decoding any pixel data. EXIF orientation is not applied: the pixel grid
is returned as stored, so that the sniffed width and height match the decoded array.

8-bit grayscale and YCbCr/RGB JPEGs are decoded with ``simplejpeg`` (libjpeg-turbo, which
releases the GIL, about twice as fast as Pillow) when it is installed; it gives the same
pixels as Pillow. Everything else (CMYK JPEGs, PNG, TIFF), and any JPEG ``simplejpeg``
declines, is decoded by Pillow.

Header sniffing (:func:`sniff_image`, :func:`image_shape`, :func:`image_ends_whole`,
:func:`sniff_jpegs`...) lives in :mod:`lakefmt.codecs.image_headers` and is re-exported here,
so this module stays the one import for images.
"""

from __future__ import annotations

import functools
import importlib
import io
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from lakefmt._pool import pool_size, shared_pool
from lakefmt.codecs._deps import require
from lakefmt.codecs.image_headers import (
    IMAGE_FORMATS,
    MAX_IMAGE_SIDE,
    ImageInfo,
    JpegHeaders,
    _mode_target,
    image_ends_whole,
    image_shape,
    jpegs_end_whole,
    normalize_image_format,
    sniff_image,
    sniff_jpegs,
)
from lakefmt.errors import DecodeError, InvalidArgumentError, TypeMismatchError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_FORMATS",
    "MAX_IMAGE_SIDE",
    "ImageInfo",
    "JpegHeaders",
    "check_image_whole",
    "decode_image",
    "decode_images",
    "encode_image",
    "image_ends_whole",
    "image_shape",
    "jpegs_end_whole",
    "normalize_image_format",
    "sniff_image",
    "sniff_jpegs",
]

IMAGE_DTYPES = ("uint8", "uint16")

_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}
_PIL_FORMATS = tuple(_PIL_FORMAT.values())


def check_image_whole(data: bytes, fmt: str) -> None:
    """Refuse an image that is cut short or damaged after its header.

    Cheap where the structure vouches for the image (:func:`image_ends_whole`); otherwise
    the image is decoded once, so one with a trailer after its end marker is still taken.

    Raises:
        DecodeError: The image does not decode (for example its body was cut off).
    """
    if image_ends_whole(data, fmt):
        return
    try:
        decode_image(data)
    except DecodeError as exc:
        raise DecodeError(f"truncated or damaged {fmt} image ({len(data)} bytes): {exc}") from exc


# ---------------------------------------------------------------------------------------------
# decoding


class _StrictTruncation:
    """Keeps ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` False while any decode runs.

    The flag is process-global; a refcount lets concurrent decodes share one override and
    restores the caller's value when the last decode finishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        image_file: Any = require("PIL.ImageFile")  # a module whose flag is set below
        with self._lock:
            if self._depth == 0:
                self._saved = image_file.LOAD_TRUNCATED_IMAGES
                image_file.LOAD_TRUNCATED_IMAGES = False
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    image_file.LOAD_TRUNCATED_IMAGES = self._saved


_strict_truncation = _StrictTruncation()


def decode_image(data: bytes, *, dtype: str = "uint8") -> np.ndarray:
    """Decode a JPEG, PNG or TIFF image to a ``(height, width, channels)`` array.

    Args:
        data: The encoded image.
        dtype: ``"uint8"`` or ``"uint16"``; the dtype of the result. 16-bit images are
            rounded to ``uint8`` (``value / 257``) when ``"uint8"`` is asked for, and 8-bit
            images are scaled to the full ``uint16`` range (``value * 257``) when
            ``"uint16"`` is asked for.

    Returns:
        A C-contiguous array; see the module docstring for the channel layout.

    Raises:
        DecodeError: ``data`` is empty, not a supported image, corrupt, or truncated.
        InvalidArgumentError: ``dtype`` is not ``"uint8"`` or ``"uint16"``.
    """
    if dtype not in IMAGE_DTYPES:
        raise InvalidArgumentError(f"dtype must be 'uint8' or 'uint16', got {dtype!r}")
    # the sniff rejects non-images and absurd sizes before a decoder allocates anything
    info = sniff_image(data)
    if info.format == "jpeg":
        fast = _decode_jpeg_turbo(data, info)
        if fast is not None:
            return _convert_dtype(fast, dtype)
    image_mod = require("PIL.Image")
    try:
        with _strict_truncation(), image_mod.open(io.BytesIO(data), formats=_PIL_FORMATS) as im:
            im.load()
            target, _, _ = _mode_target(im.mode, im.info)
            # 16-bit modes only differ in byte order, which numpy fixes below
            if im.mode != target and target != "I;16":
                im = im.convert(target)
            array = np.asarray(im)
    except DecodeError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise DecodeError(f"cannot decode {info.format} image: {exc}") from exc
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return _convert_dtype(np.ascontiguousarray(array), dtype)


@functools.cache
def _simplejpeg() -> ModuleType | None:
    try:
        return importlib.import_module("simplejpeg")
    except ImportError:
        return None


# simplejpeg header colorspace -> (channels of the decoded array, colorspace to decode to);
# CMYK and YCCK are left to Pillow, whose conversion to RGB libjpeg-turbo does not do
_TURBO_COLORSPACES = {"Gray": (1, "GRAY"), "YCbCr": (3, "RGB"), "RGB": (3, "RGB")}


def _decode_jpeg_turbo(data: bytes, info: ImageInfo) -> np.ndarray | None:
    """Decode a sniffed 8-bit JPEG with simplejpeg; ``None`` hands it to Pillow instead.

    ``strict=True`` makes libjpeg-turbo's warnings (a truncated scan, corrupt data) errors,
    and every error falls back to Pillow, so an image decodes here only when it is intact,
    and Pillow gives the same error as before for anything broken.
    """
    turbo = _simplejpeg()
    if turbo is None:
        return None
    try:
        _, _, colorspace, _ = turbo.decode_jpeg_header(data)
        channels, target = _TURBO_COLORSPACES.get(colorspace, (0, ""))
        if channels != info.channels:
            return None
        array = turbo.decode_jpeg(data, colorspace=target, strict=True)
    except MemoryError:
        raise
    except Exception:  # ValueError for bad or unusual data; Pillow has the last word
        return None
    if array.shape != info.shape or array.dtype != np.uint8:
        return None
    return array


def _convert_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    if array.dtype == np.dtype(dtype):
        return array
    if dtype == "uint8":
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return array.astype(np.uint16) * np.uint16(257)


_INLINE_BELOW = 4


def _shared_pool() -> ThreadPoolExecutor:
    """The shared ``image`` pool (``lakefmt._pool``: one thread per core, fork-safe)."""
    return shared_pool("image")


def decode_images(
    datas: Sequence[bytes | None], *, dtype: str = "uint8", threads: int | None = None
) -> list[np.ndarray | None]:
    """Decode many images in parallel; ``None`` entries stay ``None``.

    Pillow and simplejpeg release the GIL while decoding, so the images are decoded on a
    shared, process-wide thread pool with ``os.cpu_count()`` workers. Fewer than 4 images
    are decoded on the calling thread.

    Args:
        datas: Encoded images, or ``None`` for missing values.
        dtype: As for :func:`decode_image`.
        threads: At most this many images are decoded at once (capped by the pool size);
            ``None`` uses the whole pool, ``1`` decodes on the calling thread.

    Returns:
        One array (or ``None``) per input, in input order.

    Raises:
        DecodeError: An image could not be decoded; the message names its position.
        InvalidArgumentError: ``dtype`` is invalid or ``threads`` is less than 1.
    """
    if dtype not in IMAGE_DTYPES:
        raise InvalidArgumentError(f"dtype must be 'uint8' or 'uint16', got {dtype!r}")
    if threads is not None and threads < 1:
        raise InvalidArgumentError(f"threads must be at least 1, got {threads}")
    results: list[np.ndarray | None] = [None] * len(datas)
    todo = [i for i, data in enumerate(datas) if data is not None]

    def decode_one(i: int) -> None:
        try:
            results[i] = decode_image(cast("bytes", datas[i]), dtype=dtype)  # todo skips None
        except DecodeError as exc:
            raise DecodeError(f"image at position {i}: {exc}") from exc

    if len(todo) < _INLINE_BELOW or threads == 1:
        for i in todo:
            decode_one(i)
        return results
    pool = _shared_pool()
    workers = min(len(todo), pool_size("image"), threads or len(todo))
    _run_shared(pool, todo, decode_one, workers)
    return results


def _run_shared(
    pool: ThreadPoolExecutor, items: list[int], func: Callable[[int], None], workers: int
) -> None:
    # each worker pulls from one queue, so slow images do not stall a fixed chunk
    lock = threading.Lock()
    position = 0
    failed = threading.Event()

    def worker() -> None:
        nonlocal position
        while not failed.is_set():
            with lock:
                if position >= len(items):
                    return
                item = items[position]
                position += 1
            try:
                func(item)
            except BaseException:
                failed.set()
                raise

    futures = [pool.submit(worker) for _ in range(workers)]
    first_error: BaseException | None = None
    for future in futures:
        exc = future.exception()
        if exc is not None and first_error is None:
            first_error = exc
    if first_error is not None:
        raise first_error


# ---------------------------------------------------------------------------------------------
# encoding


def encode_image(
    array_or_pil: np.ndarray | PILImage.Image, format: str, *, quality: int = 95
) -> bytes:
    """Encode an array or a Pillow image as JPEG, PNG or TIFF.

    Args:
        array_or_pil: A ``uint8`` array of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)``
            or ``(H, W, 4)`` (RGB/RGBA), a single-channel ``uint16`` array (PNG and TIFF
            only), or a ``PIL.Image.Image``.
        format: ``"jpeg"``/``"jpg"``, ``"png"`` or ``"tiff"``/``"tif"``.
        quality: JPEG quality, 1..100 (ignored for PNG and TIFF, which are lossless; TIFF
            is deflate-compressed).

    Returns:
        The encoded bytes.

    Raises:
        TypeMismatchError: The array has the wrong type, number of dimensions, channels,
            dtype or size, or has an alpha channel / 16 bits and ``format`` is JPEG.
        InvalidArgumentError: ``format`` or ``quality`` is invalid.
    """
    fmt = normalize_image_format(format)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidArgumentError(f"quality must be an integer in 1..100, got {quality!r}")
    image_mod = require("PIL.Image")
    if isinstance(array_or_pil, np.ndarray):
        pil = image_mod.fromarray(_check_array(array_or_pil, fmt))
    elif isinstance(array_or_pil, image_mod.Image):
        pil = _normalize_pil(array_or_pil, fmt)
    else:
        raise TypeMismatchError(
            f"expected a numpy array or a PIL image, got {type(array_or_pil).__name__}"
        )
    _check_size_for_encode(pil.size[0], pil.size[1])
    buf = io.BytesIO()
    if fmt == "jpeg":
        pil.save(buf, "JPEG", quality=quality)
    elif fmt == "png":
        pil.save(buf, "PNG")
    else:
        pil.save(buf, "TIFF", compression="tiff_adobe_deflate")
    return buf.getvalue()


def _check_size_for_encode(width: int, height: int) -> None:
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise TypeMismatchError(
            f"image size {width}x{height} is not storable (each side must be 1..{MAX_IMAGE_SIDE})"
        )


def _check_array(array: np.ndarray, fmt: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise TypeMismatchError(
            f"image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
            f"got {array.shape}"
        )
    height, width = array.shape[:2]
    _check_size_for_encode(width, height)
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind != "u" or size not in (1, 2):
        raise TypeMismatchError(
            f"image array must be uint8 (or single-channel uint16 for png/tiff); got {array.dtype}"
        )
    if size == 2:
        if fmt == "jpeg":
            raise TypeMismatchError("JPEG cannot store 16-bit samples; use png or tiff")
        if array.ndim == 3:
            raise TypeMismatchError(
                f"16-bit images must be single-channel (Pillow cannot write 16-bit colour); "
                f"got shape {array.shape}"
            )
        array = array.astype(np.uint16, copy=False)  # native byte order
    if fmt == "jpeg" and array.ndim == 3 and array.shape[2] == 4:
        raise TypeMismatchError("JPEG has no alpha channel; drop alpha or use png/tiff for RGBA")
    return np.ascontiguousarray(array)


def _normalize_pil(pil: PILImage.Image, fmt: str) -> PILImage.Image:
    if fmt == "png" and pil.mode in ("1", "P"):
        return pil  # stored natively; decodes to the same pixels
    try:
        target, channels, dtype = _mode_target(pil.mode, pil.info)
    except DecodeError:
        raise TypeMismatchError(f"cannot encode a PIL image of mode {pil.mode!r}") from None
    if fmt == "jpeg" and channels == 4:
        raise TypeMismatchError(
            f"JPEG has no alpha channel; PIL image mode {pil.mode!r} has transparency"
        )
    if fmt == "jpeg" and dtype == "uint16":
        raise TypeMismatchError("JPEG cannot store 16-bit samples; use png or tiff")
    return pil if pil.mode == target else pil.convert(target)
