"""Media types: Image, Video and Mesh, stored as the encoded file bytes (Arrow ``binary``).

Raw file bytes are kept byte-for-byte: an append only checks them (a header sniff and an
end-marker check for images, a container probe and a box walk for videos, a parse for
meshes) and never re-encodes them. Arrays, PIL images and trimesh objects are encoded once
with the column's format. Decoding happens on read, images on a thread pool
(:func:`lakefmt.codecs.image.decode_images`).

All three are ``is_media`` types: they are written to a column group of their own,
uncompressed, with row groups sized by bytes, so scans of other columns never read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from lakefmt.codecs.image import check_image_whole, decode_image, decode_images, encode_image
from lakefmt.codecs.image_headers import jpegs_end_whole, sniff_image, sniff_jpegs
from lakefmt.codecs.mesh import decode_mesh, encode_mesh
from lakefmt.codecs.video import (
    VideoInfo,
    check_video_whole,
    decode_frames,
    encode_video,
    probe_video,
)
from lakefmt.errors import (
    DecodeError,
    InvalidArgumentError,
    InvalidIndexError,
    InvalidTypeError,
    TypeMismatchError,
)
from lakefmt.types._helpers import (
    arrow_input,
    as_extension,
    at_row,
    is_pil_image,
    storage_of,
    to_items,
)
from lakefmt.types.base import Type, mismatch
from lakefmt.types.registry import register_type

if TYPE_CHECKING:
    import trimesh

__all__ = ["Image", "Mesh", "Video", "VideoClip"]

_BYTES = (bytes, bytearray, memoryview)
_IMAGE_COMPRESSIONS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "tiff": "tiff", "tif": "tiff"}


def _binary(items: list[Any]) -> pa.Array:
    return pa.array(items, type=pa.binary())


@register_type
class Image(Type):
    """Images stored as JPEG, PNG or TIFF file bytes; read as ``(H, W, C)`` numpy arrays.

    Appended values may be encoded file bytes (kept byte-for-byte; checked with a header
    sniff: the format must be the column's and the size sane), ``(H, W)`` / ``(H, W, C)``
    numpy arrays of the column's dtype, or PIL images (both encoded once, with the column's
    compression). ``None`` is a null. Reads decode to ``(H, W, C)`` arrays of ``dtype`` (one
    channel for grayscale, 3 for RGB, 4 with alpha); ``col.get_bytes(i)`` gives the bytes.

    Args:
        dtype: ``"uint8"`` or ``"uint16"`` (16-bit grayscale PNG/TIFF). Decoded images are
            converted to it (16-bit files are scaled down for ``uint8`` columns).
        sample_compression: ``"jpeg"`` (or ``"jpg"``), ``"png"`` or ``"tiff"``.
    """

    name: ClassVar[str] = "lakefmt.image"
    is_extension: ClassVar[bool] = True
    is_media = True
    row_ndim = 3

    def __init__(self, dtype: str = "uint8", sample_compression: str = "png") -> None:
        try:
            dtype = np.dtype(dtype).name
        except (TypeError, ValueError):
            pass  # refused below, naming what was given
        if dtype not in ("uint8", "uint16"):
            raise InvalidTypeError(f"Image dtype must be 'uint8' or 'uint16', got {dtype!r}")
        key = str(sample_compression).lower()
        if key not in _IMAGE_COMPRESSIONS:
            raise InvalidTypeError(
                f"Image sample_compression must be 'jpeg', 'png' or 'tiff', got "
                f"{sample_compression!r}"
            )
        self.dtype = dtype
        self.sample_compression = _IMAGE_COMPRESSIONS[key]

    def params(self) -> dict[str, Any]:
        """``dtype`` and the canonical ``sample_compression`` (``jpg`` is stored as ``jpeg``)."""
        return {"dtype": self.dtype, "sample_compression": self.sample_compression}

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``binary``: the encoded file."""
        return pa.binary()

    def is_single(self, value: Any) -> bool:
        """Bytes, a PIL image, or an array of 2 or 3 dimensions is one image; lists are batches."""
        if isinstance(value, _BYTES) or is_pil_image(value):
            return True
        if isinstance(value, np.ndarray):
            return value.ndim in (2, 3)
        return not isinstance(value, (list, tuple)) and super().is_single(value)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Check image bytes (header and end marker) and encode arrays / PIL images.

        Raises:
            DecodeError: Bytes that are corrupt or not in the column's format.
            TypeMismatchError: Arrays of the wrong dtype or shape, other objects.
        """
        storage = arrow_input(values, self, column)
        if storage is not None:
            self._check_storage(storage, column, None)
            return as_extension(self, storage)
        items = to_items(values)
        if all(type(value) is bytes or value is None for value in items):
            # the common case, a list of file bytes: one copy into Arrow, checked there
            storage = _binary(items)
            self._check_storage(storage, column, items)
            return as_extension(self, storage)
        out: list[Any] = items
        for i, value in enumerate(items):
            if value is None:
                continue
            if type(value) is bytes:
                self._check_bytes(value, column, i)
                continue
            if out is items:
                out = list(items)
            if isinstance(value, _BYTES):
                out[i] = bytes(value)
                self._check_bytes(out[i], column, i)
            elif isinstance(value, np.ndarray) or is_pil_image(value):
                out[i] = self._encode(value, column, i)
            else:
                raise mismatch(
                    column,
                    i,
                    f"{self.sample_compression} bytes, a numpy array or a PIL image",
                    value,
                )
        return as_extension(self, _binary(out))

    def _check_storage(self, storage: pa.Array, column: str, items: list[Any] | None) -> None:
        """Check every image of a binary array, JPEG headers vectorised, in row order.

        Rows the vectorised JPEG check vouches for are valid; every other row gets the
        per-image check, so the first bad row raises exactly as a row-by-row check would.
        ``items``, when given, are the same values as Python objects.
        """
        if len(storage) == 0:
            return
        suspects = storage.is_valid().to_numpy(zero_copy_only=False)
        if self.sample_compression == "jpeg":
            _, offsets, data = storage.buffers()
            first = storage.offset
            starts = np.frombuffer(offsets, dtype=np.int32)[first : first + len(storage) + 1]
            payload = np.frombuffer(data if data is not None else b"", dtype=np.uint8)
            whole = sniff_jpegs(payload, starts).valid & jpegs_end_whole(payload, starts)
            suspects = suspects & ~whole
        for row in np.flatnonzero(suspects).tolist():
            value = items[row] if items is not None else storage[row].as_py()
            self._check_bytes(value, column, row)

    def _check_bytes(self, data: bytes, column: str, row: int) -> None:
        try:
            info = sniff_image(data)
        except (DecodeError, TypeMismatchError) as exc:
            raise at_row(exc, column, row) from exc
        if info.format != self.sample_compression:
            raise DecodeError(
                f"column '{column}' row {row}: expected {self.sample_compression} bytes, got a "
                f"{info.format} image ({info.width}x{info.height})"
            )
        try:
            check_image_whole(data, info.format)  # a cut body would fail every later read
        except DecodeError as exc:
            raise at_row(exc, column, row) from exc

    def _encode(self, value: Any, column: str, row: int) -> bytes:
        if isinstance(value, np.ndarray):
            if value.dtype != np.dtype(self.dtype):
                raise TypeMismatchError(
                    f"column '{column}' expects {self.dtype} image arrays, got {value.dtype} "
                    f"with shape {value.shape} at row {row}"
                )
            if value.ndim not in (2, 3):
                raise TypeMismatchError(
                    f"column '{column}' expects (H, W) or (H, W, C) image arrays, got shape "
                    f"{value.shape} at row {row}"
                )
        try:
            return encode_image(value, self.sample_compression)
        except (TypeMismatchError, DecodeError, ValueError) as exc:
            raise TypeMismatchError(f"column '{column}' row {row}: {exc}") from exc

    def decode(self, array: pa.Array) -> list[np.ndarray | None]:
        """Decode every image, in parallel on the shared decode pool."""
        datas = storage_of(array).to_pylist()
        return decode_images(datas, dtype=self.dtype)

    def decode_one(self, array: pa.Array, index: int) -> np.ndarray | None:
        """Decode one image on the calling thread."""
        data = storage_of(array)[index].as_py()
        return None if data is None else decode_image(data, dtype=self.dtype)


class VideoClip:
    """A video read from a ``Video`` column: decoded lazily, only the frames asked for.

    ``numpy.asarray(clip)`` decodes every frame into a ``(T, H, W, 3)`` ``uint8`` array;
    ``clip[10:20]`` (any slice) decodes only that range, seeking to the keyframe before it;
    ``clip[i]`` one ``(H, W, 3)`` frame. ``len(clip)`` is the frame count.

    Args:
        data: The encoded video (MP4 bytes).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._info: VideoInfo | None = None

    @property
    def info(self) -> VideoInfo:
        """Frame count, rate, size, codec and duration (probed once, nothing decoded)."""
        if self._info is None:
            self._info = probe_video(self.data)
        return self._info

    @property
    def fps(self) -> float:
        """Average frame rate (frames per second)."""
        return self.info.fps

    @property
    def frame_rate(self) -> float:
        """Same as :attr:`fps`."""
        return self.info.fps

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.info.duration

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 3)``: the shape ``numpy.asarray(clip)`` has."""
        info = self.info
        return (info.frames, info.height, info.width, 3)

    @property
    def dtype(self) -> np.dtype[Any]:
        """``uint8``."""
        return np.dtype(np.uint8)

    def __len__(self) -> int:
        return self.info.frames

    def __getitem__(self, key: int | slice) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step < 1:
                raise InvalidArgumentError("video clips can only be sliced forwards (step >= 1)")
            return decode_frames(self.data, start, stop, step)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self)
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"frame {i} is out of range for a clip of {n} frames")
            i = i + n if i < 0 else i
            return decode_frames(self.data, i, i + 1)[0]
        raise InvalidIndexError(
            f"video clips are indexed by int or slice, not {type(key).__name__}"
        )

    def numpy(self) -> np.ndarray:
        """Every frame, as a ``(T, H, W, 3)`` ``uint8`` array."""
        return decode_frames(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        frames = self.numpy()
        return frames if dtype is None else frames.astype(dtype)

    def __iter__(self) -> Any:
        return iter(self.numpy())

    def __repr__(self) -> str:
        if self._info is None:
            return f"VideoClip({len(self.data)} bytes)"
        info = self._info
        return (
            f"VideoClip(frames={info.frames}, {info.width}x{info.height}, fps={info.fps:g}, "
            f"codec={info.codec!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (VideoClip, (self.data,))


def _is_mp4(data: bytes) -> bool:
    # ISO base media files start with a box whose type is 'ftyp' (sometimes after a 'wide'
    # or 'free' box written by old muxers)
    return data[4:8] == b"ftyp" or (
        data[4:8] in (b"wide", b"free", b"skip") and b"ftyp" in data[:64]
    )


@register_type
class Video(Type):
    """Videos stored as MP4 (H.264) files; read as lazy :class:`VideoClip` objects.

    Appended values may be MP4 bytes (kept as-is; the container is probed, nothing decoded)
    or ``(T, H, W, 3)`` ``uint8`` arrays (encoded once as H.264 MP4 at 30 fps with a
    keyframe every second).

    Args:
        compression: ``"mp4"`` (the only container supported).
    """

    name: ClassVar[str] = "lakefmt.video"
    is_extension: ClassVar[bool] = True
    is_media = True
    row_ndim = 4
    #: Frame rate used to encode appended frame arrays.
    ENCODE_FPS: ClassVar[float] = 30.0

    def __init__(self, compression: str = "mp4") -> None:
        if str(compression).lower() != "mp4":
            raise InvalidTypeError(f"Video compression must be 'mp4', got {compression!r}")
        self.compression = "mp4"

    def params(self) -> dict[str, Any]:
        """``compression``."""
        return {"compression": self.compression}

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``binary``: the MP4 file."""
        return pa.binary()

    def is_single(self, value: Any) -> bool:
        """Bytes, a :class:`VideoClip` or a 4-dimensional array is one video."""
        if isinstance(value, (*_BYTES, VideoClip)):
            return True
        if isinstance(value, np.ndarray):
            return value.ndim == 4
        return not isinstance(value, (list, tuple)) and super().is_single(value)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Probe MP4 bytes, encode frame arrays.

        Raises:
            DecodeError: Bytes that are not a readable MP4 video.
            TypeMismatchError: Arrays that are not ``(T, H, W, 3)`` ``uint8`` with even sides.
        """
        storage = arrow_input(values, self, column)
        items = storage.to_pylist() if storage is not None else to_items(values)
        out: list[bytes | None] = []
        for i, value in enumerate(items):
            if value is None:
                out.append(None)
                continue
            if isinstance(value, VideoClip):
                value = value.data
            if isinstance(value, _BYTES):
                data = value if isinstance(value, bytes) else bytes(value)
                try:
                    probe_video(data)
                    check_video_whole(data)
                except (DecodeError, TypeMismatchError) as exc:
                    raise at_row(exc, column, i) from exc
                if not _is_mp4(data):
                    raise DecodeError(
                        f"column '{column}' row {i}: expected an MP4 file (an 'ftyp' box at "
                        f"the start), got another video container"
                    )
                out.append(data)
            elif isinstance(value, np.ndarray):
                try:
                    out.append(encode_video(value, fps=self.ENCODE_FPS))
                except (TypeMismatchError, ValueError) as exc:
                    raise TypeMismatchError(f"column '{column}' row {i}: {exc}") from exc
            else:
                raise mismatch(column, i, "MP4 bytes or a (T, H, W, 3) uint8 array", value)
        return as_extension(self, _binary(out))

    def decode(self, array: pa.Array) -> list[VideoClip | None]:
        """Return a lazy :class:`VideoClip` per row (nothing is decoded yet)."""
        return [None if d is None else VideoClip(d) for d in storage_of(array).to_pylist()]

    def decode_one(self, array: pa.Array, index: int) -> VideoClip | None:
        """Return one lazy :class:`VideoClip`."""
        data = storage_of(array)[index].as_py()
        return None if data is None else VideoClip(data)


@register_type
class Mesh(Type):
    """Triangle meshes stored as STL or PLY file bytes; read as ``trimesh.Trimesh``.

    Appended values may be STL/PLY bytes (kept as-is, fully parsed once to check them) or
    any object with ``vertices`` and ``faces`` (a ``trimesh.Trimesh``), encoded as binary
    PLY.
    """

    name: ClassVar[str] = "lakefmt.mesh"
    is_extension: ClassVar[bool] = True
    is_media = True

    @property
    def storage_type(self) -> pa.DataType:
        """Arrow ``binary``: the STL or PLY file."""
        return pa.binary()

    def is_single(self, value: Any) -> bool:
        """Bytes or an object with ``vertices`` and ``faces`` is one mesh."""
        if isinstance(value, _BYTES) or (hasattr(value, "vertices") and hasattr(value, "faces")):
            return True
        return super().is_single(value)

    def convert(self, values: Any, *, column: str) -> pa.Array:
        """Parse STL/PLY bytes (to check them), encode mesh objects as PLY.

        Raises:
            DecodeError: Bytes that are not a well-formed STL or PLY mesh.
            TypeMismatchError: Objects that are not meshes.
        """
        storage = arrow_input(values, self, column)
        items = storage.to_pylist() if storage is not None else to_items(values)
        out: list[bytes | None] = []
        for i, value in enumerate(items):
            if value is None:
                out.append(None)
            elif isinstance(value, _BYTES):
                data = value if isinstance(value, bytes) else bytes(value)
                try:
                    decode_mesh(data)  # sniffs first; a full parse is cheap for meshes
                except (DecodeError, TypeMismatchError) as exc:
                    raise at_row(exc, column, i) from exc
                out.append(data)
            elif hasattr(value, "vertices") and hasattr(value, "faces"):
                try:
                    out.append(encode_mesh(value, "ply"))
                except (TypeMismatchError, ValueError) as exc:
                    raise TypeMismatchError(f"column '{column}' row {i}: {exc}") from exc
            else:
                raise mismatch(column, i, "STL/PLY bytes or a mesh (trimesh)", value)
        return as_extension(self, _binary(out))

    def decode(self, array: pa.Array) -> list[trimesh.Trimesh | None]:
        """Decode every mesh (``None`` for nulls)."""
        return [None if d is None else decode_mesh(d) for d in storage_of(array).to_pylist()]

    def decode_one(self, array: pa.Array, index: int) -> trimesh.Trimesh | None:
        """Decode one mesh."""
        data = storage_of(array)[index].as_py()
        return None if data is None else decode_mesh(data)
