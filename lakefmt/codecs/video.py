"""Video codec (PyAV/FFmpeg): probe, frame-accurate range decoding, MP4 encoding.

Frames are numbered in presentation order, 0-based: frame ``i`` is the ``i``-th smallest
presentation timestamp of the first video stream. This numbering is exact for any container
FFmpeg reads, including variable frame rate video and B-frame reordering, because it is
derived from packet timestamps rather than from ``timestamp * fps``.

:func:`decode_frames` seeks to the keyframe before the first requested frame and decodes
forward from there, so reading a short range late in a long clip costs about one keyframe
interval of decoding, not the whole prefix. :func:`encode_video` writes a keyframe every
second by default to keep that interval short.
"""

from __future__ import annotations

import bisect
import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from lakefmt.codecs._deps import require
from lakefmt.errors import DecodeError, InvalidArgumentError, TypeMismatchError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

__all__ = [
    "VideoInfo",
    "check_video_whole",
    "decode_frames",
    "encode_video",
    "mp4_boxes_whole",
    "probe_video",
]

# codecs whose FFmpeg encoders take a "crf" option
_CRF_CODECS = frozenset(["h264", "libx264", "hevc", "h265", "libx265"])


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about its first video stream.

    Attributes:
        frames: Exact number of frames.
        fps: Average frame rate (frames per second); 0.0 if the container does not say.
        width: Frame width in pixels.
        height: Frame height in pixels.
        codec: FFmpeg codec name, e.g. ``"h264"``.
        duration: Duration in seconds.
    """

    frames: int
    fps: float
    width: int
    height: int
    codec: str
    duration: float


def _av_errors() -> tuple[type[BaseException], ...]:
    av = require("av")
    # FFmpeg errors, plus what PyAV raises for malformed streams it parses itself
    return (av.error.FFmpegError, ValueError, EOFError, OSError, IndexError, RuntimeError)


def _open(data: bytes) -> tuple[InputContainer, VideoStream]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeMismatchError(f"video data must be bytes, got {type(data).__name__}")
    if not len(data):
        raise DecodeError("video data is empty")
    av = require("av")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except _av_errors() as exc:
        raise DecodeError(f"not a readable video: {exc}") from exc
    fmt = container.format.name
    # FFmpeg happily opens a single PNG/JPEG as a one-frame "video"; that is an image
    if fmt == "image2" or fmt.endswith("_pipe"):
        container.close()
        raise DecodeError(f"not a video: the data is a single image ({fmt})")
    if not container.streams.video:
        container.close()
        raise DecodeError(f"not a video: the {fmt!r} container has no video stream")
    stream = container.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        container.close()
        raise DecodeError("corrupt video: the video stream has no frame size")
    return container, stream


def _packet_counts(packet: Any) -> bool:
    # the demuxer ends with an empty packet that only flushes the decoder; packets cut by
    # an edit list are flagged discard and never come out of the decoder
    return packet.size > 0 and not packet.is_discard


def _indexed_frames(container: InputContainer, stream: VideoStream) -> int:
    # only the MP4/MOV sample table is exact; e.g. AVI counts time ticks, MKV says nothing
    if "mp4" in container.format.name.split(","):
        return max(0, int(stream.frames))
    return 0


def _frame_count(data: bytes) -> int:
    container, stream = _open(data)
    with container:
        indexed = _indexed_frames(container, stream)
        if indexed:
            return indexed
        try:
            return sum(1 for packet in container.demux(stream) if _packet_counts(packet))
        except _av_errors() as exc:
            raise DecodeError(f"corrupt video: {exc}") from exc


#: Top-level boxes walked at most by :func:`mp4_boxes_whole` (fragmented MP4s have many).
_MAX_TOP_LEVEL_BOXES = 1 << 16


def mp4_boxes_whole(data: bytes) -> bool:
    """Whether the top-level boxes of an ISO media file (MP4) tile it exactly.

    Each box starts with its size, so a file cut anywhere (or with bytes missing) leaves the
    last box running past the end. Walks the top-level boxes only (a handful: ``ftyp``,
    ``moov``, ``mdat``...), never their contents. ``False`` is not a verdict: a whole video
    may carry bytes after its last box; :func:`check_video_whole` then decodes it.
    """
    pos, end = 0, len(data)
    for _ in range(_MAX_TOP_LEVEL_BOXES):
        if pos == end:
            return True
        if pos + 8 > end:
            return False
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 0:  # the last box, running to the end of the file
            return True
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > end:
                return False
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            if size < 16:
                return False
        elif size < 8:
            return False
        pos += size
    return False


def check_video_whole(data: bytes) -> None:
    """Refuse a video that is cut short: its boxes must tile the file, or it must decode.

    Raises:
        DecodeError: The boxes do not tile the file and decoding every frame fails.
    """
    if mp4_boxes_whole(data):
        return
    try:
        decode_frames(data)
    except DecodeError as exc:
        raise DecodeError(
            f"truncated or damaged video ({len(data)} bytes; its boxes do not end with the "
            f"file): {exc}"
        ) from exc


def probe_video(data: bytes) -> VideoInfo:
    """Read a video's frame count, rate, size, codec and duration without decoding it.

    The frame count comes from the sample table for MP4/MOV, and otherwise from demuxing
    every packet, which reads the data but decodes nothing.

    Args:
        data: The encoded video (any container FFmpeg can read).

    Returns:
        The first video stream's properties.

    Raises:
        DecodeError: ``data`` is empty, corrupt, an image, or has no video stream/frames.
    """
    container, stream = _open(data)
    av = require("av")
    with container:
        cc = stream.codec_context
        width, height, codec = int(cc.width), int(cc.height), str(cc.name)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = _indexed_frames(container, stream)
    if frames <= 0:
        frames = _frame_count(data)
    if frames <= 0:
        raise DecodeError("corrupt video: the video stream has no frames")
    if not duration and fps:
        duration = frames / fps
    return VideoInfo(frames, fps, width, height, codec, duration)


def decode_frames(
    data: bytes, start: int = 0, stop: int | None = None, step: int = 1
) -> np.ndarray:
    """Decode frames ``[start:stop:step]`` of a video to RGB.

    ``start`` and ``stop`` follow Python slice rules (negative values count from the end,
    out-of-range values are clipped). For ``start > 0`` the decoder seeks to the keyframe
    before ``start`` instead of decoding from the first frame.

    Args:
        data: The encoded video.
        start: Index of the first frame.
        stop: Index one past the last frame; ``None`` for the end of the clip.
        step: Take every ``step``-th frame; at least 1.

    Returns:
        A ``(T, H, W, 3)`` ``uint8`` array (``T`` may be 0).

    Raises:
        DecodeError: ``data`` is not a decodable video, or it ends before its index says.
        InvalidArgumentError: ``step`` is less than 1.
    """
    frames, _ = _decode_range(data, start, stop, step)
    return frames


def _decode_range(data: bytes, start: int, stop: int | None, step: int) -> tuple[np.ndarray, int]:
    """Decode a range of frames; also returns how many frames the decoder produced."""
    if step < 1:
        raise InvalidArgumentError(f"step must be at least 1, got {step}")
    total = _frame_count(data)
    wanted = range(*slice(start, stop, step).indices(total))
    container, stream = _open(data)
    try:
        sink = _FrameSink(len(wanted), stream.codec_context.height, stream.codec_context.width)
        if not wanted:
            return sink.out, 0
        decoded = _decode_after_seek(container, stream, wanted, sink) if wanted.start else None
        if decoded is None:  # start at 0, no timestamps, or the seek overshot
            container.close()
            container, stream = _open(data)
            decoded = _decode_sequential(container, stream, wanted, sink)
    except DecodeError:
        raise
    except _av_errors() as exc:
        raise DecodeError(f"corrupt video: {exc}") from exc
    finally:
        container.close()
    if sink.filled < len(wanted):
        raise DecodeError(
            f"truncated video: frame {wanted[sink.filled]} is missing "
            f"(the container lists {total} frames)"
        )
    return sink.out, decoded


class _FrameSink:
    """Converts decoded frames to RGB straight into the preallocated result."""

    def __init__(self, count: int, height: int, width: int) -> None:
        self.out = np.empty((count, height, width, 3), np.uint8)
        self.filled = 0

    def add(self, frame: Any) -> bool:
        """Store the next frame; True once the result is full."""
        rgb = frame.to_ndarray(format="rgb24")
        if rgb.shape != self.out.shape[1:]:
            raise DecodeError(
                f"frame size changes mid-stream ({rgb.shape[1]}x{rgb.shape[0]} instead of "
                f"{self.out.shape[2]}x{self.out.shape[1]}); not supported"
            )
        self.out[self.filled] = rgb
        self.filled += 1
        return self.filled == len(self.out)


def _target_pts(container: InputContainer, stream: VideoStream, index: int) -> int | None:
    """Presentation timestamp of frame ``index``, by demuxing as few packets as possible."""
    seen: list[int] = []
    for packet in container.demux(stream):
        if not _packet_counts(packet):
            continue
        if packet.pts is None:
            return None
        # pts >= dts for every packet, so once a packet's dts passes the candidate, no later
        # packet can land before it and its rank is final
        if len(seen) > index and packet.dts is not None and seen[index] < packet.dts:
            return seen[index]
        bisect.insort(seen, packet.pts)
    return seen[index] if index < len(seen) else None


def _decode_after_seek(
    container: InputContainer, stream: VideoStream, wanted: range, sink: _FrameSink
) -> int | None:
    """Seek to the keyframe before ``wanted.start`` and decode forward; None to fall back."""
    target = _target_pts(container, stream, wanted.start)
    if target is None:
        return None
    container.seek(target, stream=stream, backward=True, any_frame=False)
    decoded = 0
    index = wanted.start
    for frame in container.decode(stream):
        decoded += 1
        if frame.pts is None:
            sink.filled = 0
            return None
        if frame.pts < target:  # between the keyframe and the first wanted frame
            continue
        if index == wanted.start and frame.pts != target:
            return None  # the seek landed past the target; start over from frame 0
        if index in wanted and sink.add(frame):
            break
        index += 1
    return decoded


def _decode_sequential(
    container: InputContainer, stream: VideoStream, wanted: range, sink: _FrameSink
) -> int:
    """Decode from the first frame, counting frames in presentation order."""
    decoded = 0
    for index, frame in enumerate(container.decode(stream)):
        decoded += 1
        if index in wanted and sink.add(frame):
            break
    return decoded


def encode_video(
    frames: np.ndarray,
    *,
    fps: float = 30.0,
    codec: str = "h264",
    crf: int = 18,
    keyframe_interval: int | None = None,
) -> bytes:
    """Encode RGB frames as an MP4 video, in memory.

    The stream has no B-frames, so every input frame becomes exactly one packet in order
    and frame counts and seeking are exact.

    Args:
        frames: ``(T, H, W, 3)`` ``uint8`` RGB frames; ``T >= 1`` and ``H``, ``W`` even
            (YUV 4:2:0 subsamples chroma by 2 in both directions).
        fps: Frame rate, > 0.
        codec: FFmpeg encoder or codec name (``"h264"`` uses libx264).
        crf: Constant rate factor, 0 (lossless) .. 51 (worst); used by H.264/HEVC only.
        keyframe_interval: Frames between keyframes; ``None`` for one keyframe per second.
            Shorter intervals make :func:`decode_frames` of a range cheaper and files larger.

    Returns:
        The MP4 file's bytes.

    Raises:
        TypeMismatchError: ``frames`` is not a ``(T, H, W, 3)`` ``uint8`` array with even
            ``H`` and ``W`` and at least one frame.
        InvalidArgumentError: ``fps``, ``crf``, ``keyframe_interval`` or ``codec`` is invalid.
    """
    _check_frames(frames)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InvalidArgumentError(f"fps must be a positive number, got {fps!r}")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InvalidArgumentError(f"crf must be an integer in 0..51, got {crf!r}")
    rate = Fraction(fps).limit_denominator(1001)
    if keyframe_interval is None:
        keyframe_interval = max(1, round(fps))
    if keyframe_interval < 1:
        raise InvalidArgumentError(f"keyframe_interval must be at least 1, got {keyframe_interval}")
    av = require("av")
    count, height, width = frames.shape[:3]
    buf = io.BytesIO()
    try:
        with av.open(buf, mode="w", format="mp4") as out:
            try:
                stream = out.add_stream(codec, rate=rate)
            except (ValueError, av.error.FFmpegError) as exc:
                raise InvalidArgumentError(f"cannot encode with codec {codec!r}: {exc}") from exc
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            cc = stream.codec_context
            cc.max_b_frames = 0
            cc.gop_size = keyframe_interval
            if codec in _CRF_CODECS or cc.name in _CRF_CODECS:
                stream.options = {"crf": str(crf)}
            for i in range(count):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    except av.error.FFmpegError as exc:
        raise InvalidArgumentError(f"video encoding failed: {exc}") from exc
    return buf.getvalue()


def _check_frames(frames: Any) -> None:
    if not isinstance(frames, np.ndarray):
        raise TypeMismatchError(f"video frames must be a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise TypeMismatchError(
            f"video frames must have shape (T, H, W, 3) (RGB); got {frames.shape}"
        )
    if frames.dtype != np.uint8:
        raise TypeMismatchError(f"video frames must be uint8, got {frames.dtype}")
    count, height, width = frames.shape[:3]
    if count < 1 or height < 1 or width < 1:
        raise TypeMismatchError(f"video must have at least one non-empty frame; got {frames.shape}")
    if height % 2 or width % 2:
        raise TypeMismatchError(
            f"video frame size {width}x{height} must be even in both directions "
            f"(yuv420p subsamples chroma by 2); crop or pad to "
            f"{width + width % 2}x{height + height % 2}"
        )
