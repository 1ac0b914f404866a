"""Video probing, shared decoding and H.264 clip writing (PyAV).

Decoding is instrumented: every pass over a file's frames is counted in `DECODE_STATS`,
so stages can show that the analysers of a clip share one decode.

Probing, decoding and clip writing read a `VideoSource`: a file path, or a seekable binary
file object such as `ObjectStore.open_stream(key)` (on S3, ranged GETs: no local copy of the
video).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

import numpy as np

from core.video import ClipWriter

if TYPE_CHECKING:
    from core.storage import ObjectStore

# Machine-readable quarantine reasons for raw videos.
EMPTY_FILE = "empty_file"
NOT_A_VIDEO = "not_a_video"
TRUNCATED = "truncated"
NO_VIDEO_STREAM = "no_video_stream"
UNDECODABLE = "undecodable"
LOW_RESOLUTION = "low_resolution"
BAD_FPS = "bad_fps"
TOO_SHORT = "too_short"
UNSUPPORTED_EXTENSION = "unsupported_extension"
MISSING_FILE = "missing_file"

# Leading bytes of containers we recognise: a file that starts like a video but cannot be
# opened has lost its index or tail (truncated), rather than not being a video at all.
_CONTAINER_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (4, b"moov"),
    (4, b"mdat"),
)


class ProbeError(Exception):
    """A file is not a usable video; `reason` is one of the module's reason codes."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoProbe:
    """What a raw video is, read from its container and first frame."""

    duration_s: float
    fps: float
    fps_num: int
    fps_den: int
    width: int
    height: int
    codec: str
    frame_count: int
    rotation: int
    container: str
    size_bytes: int


@dataclass
class DecodeStats:
    """Counts of decode passes (file openings for decoding) and decoded frames."""

    passes: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, path: Path | str, frames: int) -> None:
        with self._lock:
            key = str(path)
            self.passes[key] = self.passes.get(key, 0) + 1
            self.frames += frames

    def reset(self) -> None:
        with self._lock:
            self.passes.clear()
            self.frames = 0

    def total_passes(self) -> int:
        return sum(self.passes.values())


DECODE_STATS = DecodeStats()

# A path, or a seekable binary file object (what ObjectStore.open_stream yields).
VideoSource = Union[str, Path, IO[bytes]]


def _is_stream(src: VideoSource) -> bool:
    return hasattr(src, "read") and hasattr(src, "seek")


def _open_video(src: VideoSource):
    """Open `src` for decoding with PyAV: a path by name, a file object from its start."""
    import av

    if _is_stream(src):
        src.seek(0)
        return av.open(src, mode="r")
    return av.open(str(src))


@contextlib.contextmanager
def open_location(store: ObjectStore, location: str) -> Iterator[VideoSource]:
    """The video at `location` for the functions of this module: an absolute path on disk as
    is, an object key of `store` as a seekable stream (on S3 ranged reads, never a whole copy).

    Raw videos are located so (raw_videos `source_path`, curation/registry.py): a local pool
    gives absolute paths, a store pool object keys, which are always relative.
    """
    if Path(location).is_absolute():
        yield Path(location)
        return
    with store.open_stream(location) as stream:
        yield stream


def _label(src: VideoSource) -> str:
    """What DECODE_STATS and messages call a source."""
    if _is_stream(src):
        return str(getattr(src, "name", None) or f"<stream {id(src):x}>")
    return str(Path(src))


def _why(exc: Exception) -> str:
    """FFmpeg's own words, without the file path PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


def _looks_like_container(src: VideoSource) -> bool:
    if _is_stream(src):
        src.seek(0)
        head = src.read(16)
    else:
        with open(src, "rb") as fh:
            head = fh.read(16)
    return any(head[off : off + len(sig)] == sig for off, sig in _CONTAINER_SIGNATURES)


def _size(src: VideoSource) -> int:
    """Bytes of the source.

    Raises:
        ProbeError: missing_file, for a path that is not a file.
    """
    if _is_stream(src):
        return src.seek(0, io.SEEK_END)
    path = Path(src)
    if not path.is_file():
        raise ProbeError(MISSING_FILE, f"{path} does not exist")
    return path.stat().st_size


def probe(src: VideoSource) -> VideoProbe:
    """Read a video's properties and check that it is complete and decodable.

    Demuxes every packet of the video stream (cheap: no decoding) to detect truncation,
    and decodes the first frame to read rotation and prove the stream decodes.

    Args:
        src: a path, or a seekable binary stream (`ObjectStore.open_stream`): probed in place,
            never copied whole.

    Raises:
        ProbeError: with reason missing_file, empty_file, not_a_video, truncated,
            no_video_stream or undecodable.
    """
    import av

    size = _size(src)
    if size == 0:
        raise ProbeError(EMPTY_FILE, "file has zero bytes")
    try:
        container = _open_video(src)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        if _looks_like_container(src):
            raise ProbeError(TRUNCATED, f"container header present but unreadable ({_why(exc)})") from None
        raise ProbeError(NOT_A_VIDEO, f"not a recognised media container ({_why(exc)})") from None
    with container:
        if not container.streams.video:
            raise ProbeError(NO_VIDEO_STREAM, f"container {container.format.name} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise ProbeError(UNDECODABLE, "video stream declares no frame rate")
        rate = Fraction(rate)
        declared = int(stream.frames or 0)
        packets = 0
        last_end = 0.0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packets += 1
                if packet.pts is not None and packet.time_base is not None:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    last_end = max(last_end, end)
        except av.FFmpegError as exc:
            raise ProbeError(TRUNCATED, f"demux failed after {packets} packets ({_why(exc)})") from None
        if packets == 0:
            raise ProbeError(TRUNCATED, "video stream has no packets")
        if declared and packets < declared:
            raise ProbeError(TRUNCATED, f"index declares {declared} frames, only {packets} present")
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        fmt = container.format.name
    rotation = 0
    try:
        with _open_video(src) as c2:
            first = next(c2.decode(video=0), None)
            if first is None:
                raise ProbeError(UNDECODABLE, "no frame could be decoded")
            rotation = int(getattr(first, "rotation", 0) or 0)
    except av.FFmpegError as exc:
        raise ProbeError(UNDECODABLE, f"first frame does not decode ({_why(exc)})") from None
    frame_count = declared or packets
    duration = float(frame_count / rate)
    return VideoProbe(
        duration_s=round(duration, 4),
        fps=float(rate),
        fps_num=rate.numerator,
        fps_den=rate.denominator,
        width=int(width),
        height=int(height),
        codec=codec,
        frame_count=int(frame_count),
        rotation=rotation,
        container=fmt,
        size_bytes=size,
    )


@dataclass(frozen=True)
class FrameBatch:
    """Decoded, downscaled RGB frames of one video (or one clip of it).

    Attributes:
        frames: uint8 array (N, H, W, 3), RGB.
        indices: int array (N,), frame index in the source video.
        fps: source frame rate.
        source_size: (width, height) of the source frames.
    """

    frames: np.ndarray
    indices: np.ndarray
    fps: float
    source_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Factor from source pixels to these frames' pixels."""
        return self.frames.shape[2] / self.source_size[0] if len(self.frames) else 1.0

    def subsample(self, every: int) -> FrameBatch:
        return FrameBatch(self.frames[::every], self.indices[::every], self.fps, self.source_size)


def _scaled_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    if not target_width or target_width >= width:
        return width - width % 2, height - height % 2
    h = max(2, int(round(height * target_width / width / 2)) * 2)
    return target_width - target_width % 2, h


def iter_frames(
    path: VideoSource,
    *,
    width: int | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
    step: float = 1.0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, RGB uint8 frame) over one decode pass, downscaled to `width`.

    Args:
        step: keep about one frame every `step` source frames (>= 1).
    """
    count = 0
    with _open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate or stream.guessed_rate)
        start_pts = stream.start_time or 0
        tb = stream.time_base
        out_w = out_h = None
        next_keep = float(start_frame)
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else 0
                idx = int(round(float((pts - start_pts) * tb * rate)))
                if idx < start_frame:
                    continue
                if end_frame is not None and idx >= end_frame:
                    break
                if idx + 1e-6 < next_keep:
                    continue
                next_keep += step * max(1, int((idx - next_keep) // step) + 1)
                if out_w is None:
                    out_w, out_h = _scaled_size(frame.width, frame.height, width)
                arr = frame.to_ndarray(width=out_w, height=out_h, format="rgb24")
                count += 1
                yield idx, arr
        finally:
            DECODE_STATS.record(_label(path), count)


def decode_frames(
    path: VideoSource,
    *,
    width: int | None = None,
    sample_fps: float | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
) -> FrameBatch:
    """Decode a video once into a `FrameBatch` (downscaled, optionally sub-sampled)."""
    with _open_video(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate)
        size = (stream.codec_context.width, stream.codec_context.height)
    step = max(1.0, fps / sample_fps) if sample_fps else 1.0
    idx, frames = [], []
    for i, arr in iter_frames(path, width=width, start_frame=start_frame, end_frame=end_frame, step=step):
        idx.append(i)
        frames.append(arr)
    if not frames:
        return FrameBatch(np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), fps, size)
    return FrameBatch(np.stack(frames), np.asarray(idx, np.int64), fps, size)


@dataclass(frozen=True)
class Segment:
    """A frame range [start, end) of a source to write as its own clip."""

    start: int
    end: int
    dest: Path
    crop: tuple[int, int, int, int] | None = None  # x, y, w, h in source pixels


def write_segments(
    src: VideoSource, segments: Sequence[Segment], *, crf: int = 20, preset: str = "veryfast"
) -> list[int]:
    """Write every segment of `src` as an H.264 MP4 in one decode pass.

    Each clip is written to a temporary name and renamed into place once complete.

    Returns:
        frames written per segment.
    """
    if not segments:
        return []
    ordered = sorted(range(len(segments)), key=lambda i: segments[i].start)
    with _open_video(src) as c:
        rate = Fraction(c.streams.video[0].average_rate or c.streams.video[0].guessed_rate)
    writers: dict[int, ClipWriter] = {}
    written = [0] * len(segments)
    tmp_paths = {i: s.dest.with_name(f".{s.dest.name}.partial") for i, s in enumerate(segments)}
    try:
        end_all = max(s.end for s in segments)
        start_all = min(s.start for s in segments)
        for idx, frame in iter_frames(src, start_frame=start_all, end_frame=end_all):
            for i in ordered:
                seg = segments[i]
                if not seg.start <= idx < seg.end:
                    continue
                if seg.crop is not None:
                    x, y, w, h = seg.crop
                    frame_i = frame[y : y + h, x : x + w]
                else:
                    frame_i = frame
                h2, w2 = frame_i.shape[0] - frame_i.shape[0] % 2, frame_i.shape[1] - frame_i.shape[1] % 2
                frame_i = frame_i[:h2, :w2]
                if i not in writers:
                    seg.dest.parent.mkdir(parents=True, exist_ok=True)
                    writers[i] = ClipWriter(tmp_paths[i], rate, w2, h2, crf, preset)
                writers[i].write(frame_i)
                written[i] += 1
        for i, writer in writers.items():
            writer.close()
            tmp_paths[i].replace(segments[i].dest)
        writers.clear()
    finally:
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.container.close()
        for p in tmp_paths.values():
            p.unlink(missing_ok=True)
    return written
