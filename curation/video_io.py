"""Video probing and frame-exact decoding (PyAV).

Decoding never loses or reorders a frame. Frames come out in presentation order, restored
from their timestamps when a decoder delivers them out of order (packed B-frames); every
frame is kept; a frame's index is its presentation ordinal and its time in seconds comes
from its timestamp (`curation.frame_timing`), so variable-frame-rate video keeps its real
timing. The display matrix is applied, so a portrait phone video comes out upright and its
size is reported as displayed. Any video stream decodes, wherever it sits among the streams.
A decoding error in one packet is counted and decoding goes on; a file that ends early is
decoded as far as it goes, and the shortfall against what the container declares is recorded
(`VideoProbe.complete`, `VideoDecoder.frames_decoded`).

Clips are written from these frames by `curation.clip_writing`.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

import numpy as np

from core.video import ClipWriter  # noqa: F401  (curation's writer, used as video_io.ClipWriter)
from curation.frame_timing import PresentationOrder, TimedFrame, TimeGrid

if TYPE_CHECKING:
    from core.storage import ObjectStore

# Machine-readable quarantine reasons for raw videos.
EMPTY_FILE = "empty_file"
NOT_A_VIDEO = "not_a_video"
TRUNCATED = "truncated"
TRUNCATED_SHORT = "truncated_short"  # ends early, and the part that decodes is below the minimum duration
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
    """What a raw video is, read from its container and first frame.

    Attributes:
        duration_s: span of the frames present, from their timestamps (first frame to the
            end of the last one).
        width, height: as displayed (rotation applied).
        frame_count: frames present in the file (video packets that carry data).
        rotation: counter-clockwise degrees the display matrix turns the coded frames.
        frames_declared: frames the container's index or header declares (None: it declares
            no count, as Matroska/WebM).
        duration_declared_s: the video stream's duration the container declares, or None.
        complete: False when the file ends before what it declares (truncated).
    """

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
    frames_declared: int | None = None
    duration_declared_s: float | None = None
    complete: bool = True


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


def _declared_duration(container, stream) -> float | None:
    """The video stream's duration as the container declares it, in seconds, or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska keeps it as a per-track tag
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            return None
    if container.duration and len(container.streams) == 1:  # else it may be another stream's
        return container.duration / 1_000_000
    return None


def _display_transform(frame) -> tuple[bool, int, int]:
    """(transpose, row step, column step) that turn a decoded frame upright, from the display
    matrix side data. The matrix maps a coded pixel (x, y) to the displayed
    (a x + c y, b x + d y); right-angle rotations and mirrors are what cameras write."""
    from av.sidedata.sidedata import Type

    data = frame.side_data.get(Type.DISPLAYMATRIX)
    if data is None:
        return False, 1, 1
    a, b, _, c, d = (int(v) for v in np.frombuffer(bytes(data), "<i4")[:5])
    if abs(b) > abs(a):  # turned by about 90 degrees one way or the other: rows become columns
        return True, -1 if b < 0 else 1, -1 if c < 0 else 1
    return False, -1 if d < 0 else 1, -1 if a < 0 else 1


def _upright(image: np.ndarray, transform: tuple[bool, int, int]) -> np.ndarray:
    transpose, rows, cols = transform
    if not transpose and rows > 0 and cols > 0:
        return image
    if transpose:
        image = image.transpose(1, 0, 2)
    return np.ascontiguousarray(image[::rows, ::cols])


def probe(src: VideoSource) -> VideoProbe:
    """Read a video's properties and check how much of it is present and decodable.

    Demuxes every packet of the video stream (cheap: no decoding) to count the frames present
    and measure their span from the timestamps, compares them with what the container
    declares, and decodes the first frame to read the rotation and prove the stream decodes.
    A file that ends before what it declares is returned with `complete=False` (the caller
    decides whether the part present is enough).

    Args:
        src: a path, or a seekable binary stream (`ObjectStore.open_stream`): probed in place,
            never copied whole.

    Raises:
        ProbeError: with reason missing_file, empty_file, not_a_video, truncated (nothing of
            the video stream can be read), no_video_stream or undecodable.
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
        declared = int(stream.frames or 0) or None
        declared_duration = _declared_duration(container, stream)
        packets = 0
        first = last = before_last = None
        last_packet_duration = 0
        demux_error = None
        # The first frame (its display matrix) is decoded from the packets as they are counted:
        # one open of the file, not a second one for the frame.
        first_frame, frame_error = None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packets += 1
                if first_frame is None and frame_error is None:
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as exc:
                        frame_error = _why(exc)
                    else:
                        first_frame = frames[0] if frames else None
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    continue
                first = pts if first is None else min(first, pts)
                if last is None or pts > last:
                    before_last, last, last_packet_duration = last, pts, packet.duration or 0
                elif before_last is None or pts > before_last:
                    before_last = pts
        except av.FFmpegError as exc:
            demux_error = _why(exc)
        if packets == 0:
            raise ProbeError(TRUNCATED, "video stream has no packets" + (f" ({demux_error})" if demux_error else ""))
        tb = stream.time_base
        if last is None or tb is None:
            span = float(packets / rate)
        else:
            # the last frame lasts as long as the interval before it (what a player shows)
            tail = (last - before_last) if before_last is not None else (last_packet_duration or 1 / (rate * tb))
            span = float((last - first + tail) * tb)
        # A declared count is exact; a declared duration (all Matroska/WebM give) is checked only
        # without one, with two frames of slack for how long the last frame lasts.
        if declared:
            complete = demux_error is None and packets >= declared
        else:
            complete = demux_error is None and not (declared_duration and span + 2 / float(rate) < declared_duration)
        if first_frame is None and frame_error is None:  # the frames the decoder still holds
            try:
                first_frame = next(iter(stream.decode(None)), None)
            except av.FFmpegError as exc:
                frame_error = _why(exc)
        if frame_error is not None:
            raise ProbeError(UNDECODABLE, f"first frame does not decode ({frame_error})")
        if first_frame is None:
            raise ProbeError(UNDECODABLE, "no frame could be decoded")
        rotation = int(getattr(first_frame, "rotation", 0) or 0)
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        if _display_transform(first_frame)[0]:
            width, height = height, width
        fmt = container.format.name
    return VideoProbe(
        duration_s=round(span, 4),
        fps=float(rate),
        fps_num=rate.numerator,
        fps_den=rate.denominator,
        width=int(width),
        height=int(height),
        codec=codec,
        frame_count=int(packets),
        rotation=rotation,
        container=fmt,
        size_bytes=size,
        frames_declared=declared,
        duration_declared_s=round(declared_duration, 4) if declared_duration else None,
        complete=complete,
    )


@dataclass(frozen=True)
class FrameBatch:
    """Decoded, downscaled RGB frames of one video (or one clip or window of it).

    Attributes:
        frames: uint8 array (N, H, W, 3), RGB, upright.
        indices: int array (N,), presentation ordinal of each frame in the source video.
        fps: the source's nominal (container average) frame rate.
        source_size: (width, height) of the source frames as displayed.
        times: float array (N,), presentation time of each frame in seconds, from the
            timestamps. A batch built by hand without times gets indices / fps.
    """

    frames: np.ndarray
    indices: np.ndarray
    fps: float
    source_size: tuple[int, int]
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.times is None:
            object.__setattr__(self, "times", np.asarray(self.indices, np.float64) / self.fps)

    @property
    def scale(self) -> float:
        """Factor from source pixels to these frames' pixels."""
        return self.frames.shape[2] / self.source_size[0] if len(self.frames) else 1.0

    def subsample(self, every: int) -> FrameBatch:
        return FrameBatch(self.frames[::every], self.indices[::every], self.fps, self.source_size, self.times[::every])


# Every frame asked for at this width or narrower is scaled once by swscale to this width,
# and then by an area average to its own: a pass that feeds analysers at several widths (shot
# detection at 160 px, the quality analysers at 320, the signature at 96) runs swscale, which
# reads the whole source frame, once per frame instead of once per width (0.36 ms a 720p
# frame each). A frame at a given width is the same pixels whatever else its pass converts.
BASE_WIDTH = 320


def _area_scaled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (upright) at `size` (width, height) by an area average; a copy at its own size."""
    import cv2

    if (image.shape[1], image.shape[0]) == size:
        return image.copy()
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _scaled_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """Output size for a `target_width` (even, aspect kept); the source size when None."""
    if not target_width or target_width >= width:
        return (width - width % 2, height - height % 2) if target_width else (width, height)
    h = max(2, int(round(height * target_width / width / 2)) * 2)
    return target_width - target_width % 2, h


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame: presentation ordinal, time and duration in seconds, RGB image (upright)."""

    index: int
    time_s: float
    duration_s: float
    image: np.ndarray
    pts: int | None = None  # the frame's own timestamp (stream time base); None when it carries none


class VideoDecoder:
    """One decode pass over a video, frame-exact: presentation order, timestamps, rotation.

    Iterating yields `DecodedFrame`s; `windows(n)` yields `FrameBatch`es of up to n frames, so
    a consumer holds one window at a time whatever the video's length.

    Args:
        src: a path or a seekable binary stream.
        width: downscale to this width (aspect kept, even sizes); None keeps the source size.
        sample_fps: keep about this many frames per second of video time; None keeps all.
        start_frame, end_frame: presentation ordinals [start, end) to yield.
        start_pts, start_s: the timestamp and time of frame `start_frame`, recorded by an
            earlier whole pass (`DecodedFrame.pts`, `.time_s`): the decoder seeks to the
            keyframe before it instead of decoding everything before it, checks that the first
            frame it keeps is that one, and numbers and times the frames as the whole pass
            did. A seek that does not land before that frame falls back to a pass from the start.

    Attributes (set once iteration starts; counts grow as it goes):
        fps, rate: the nominal (container average) frame rate, float and exact fraction.
        source_size: (width, height) of the source as displayed.
        frames_decoded: frames the decoder produced (every one, yielded or not).
        frames_late: frames whose timestamp came after a later frame had been released.
        decode_errors: packets that failed to decode (skipped, as players do) plus a demux
            error that ended the stream early; `first_error` says what the first one was.
        end_s: end of the last frame decoded (its time plus its duration).
    """

    def __init__(self, src: VideoSource, *, width: int | None = None, sample_fps: float | None = None,
                 start_frame: int = 0, end_frame: int | None = None, start_pts: int | None = None,
                 start_s: float = 0.0) -> None:
        self.src = src
        self.width = width
        self.sample_fps = sample_fps
        self.start_frame = start_frame
        self.end_frame = end_frame
        self.start_pts = start_pts
        self.start_s = start_s
        self.seeked = False  # the pass started at a keyframe near start_frame, not at the first frame
        self._order_late = 0
        self.rate = Fraction(0)
        self.fps = 0.0
        self.source_size = (0, 0)
        self.frames_decoded = 0
        self.frames_late = 0
        self.decode_errors = 0
        self.first_error: str | None = None
        self.end_s = 0.0

    def _error(self, what: str) -> None:
        self.decode_errors += 1
        self.first_error = self.first_error or what

    def _decoded(self, container, stream) -> Iterator:
        """Every frame the decoder produces, in the order it produces them."""
        import av

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    self._error(f"packet at {packet.pts}: {_why(exc)}")
                    continue
                yield from frames
        except av.FFmpegError as exc:  # the file ends early: what the decoder still holds comes out
            self._error(f"demux: {_why(exc)}")
            try:
                yield from stream.decode(None)
            except av.FFmpegError as flush_exc:
                self._error(f"flush: {_why(flush_exc)}")

    def __iter__(self) -> Iterator[DecodedFrame]:
        for timed, image in self.lazy_frames():
            yield DecodedFrame(timed.index, timed.time_s, timed.duration_s, image(), _pts(timed.payload))

    def lazy_frames(self) -> Iterator[tuple[TimedFrame, Callable[..., np.ndarray]]]:
        """The frames this pass yields, each with a function that converts it to its RGB image
        (upright, scaled): a consumer that shows only some frames converts only those.

        The function takes an optional other width (`image(96)`): a second consumer of the
        same pass gets the frame at its own size, the pixels a pass at that width gives."""
        from av.video.reformatter import VideoReformatter

        yielded = 0
        container = _open_video(self.src)
        try:
            stream = container.streams.video[0]
            # Slice threads only: with frame threads FFmpeg drops the frames still in flight
            # when a packet fails (a truncated file's last ones) without reporting an error.
            stream.thread_type = "SLICE"
            self.rate = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
            self.fps = float(self.rate)
            self.source_size = (stream.codec_context.width, stream.codec_context.height)
            timed_frames = None
            if self.start_pts is not None:
                timed_frames = self._seek(container, stream)
                if timed_frames is None:  # no keyframe before the frame: decode from the start
                    container.close()
                    container = _open_video(self.src)
                    stream = container.streams.video[0]
                    stream.thread_type = "SLICE"
            if timed_frames is None:
                order: PresentationOrder = PresentationOrder(stream.time_base or Fraction(1, 1000), self.rate)
                timed_frames = self._timed(container, stream, order)
            grid = TimeGrid(self.sample_fps, tolerance_s=0.05 / self.fps if self.fps else 0.0)
            # Per output width: (transform, coded output size) from the first frame converted,
            # and one scaler for the pass: a frame's own `to_ndarray(width=...)` builds a new
            # swscale context per frame (0.85 ms a 720p frame to 160 px, against 0.29 ms
            # through a shared one, the same pixels).
            scalers: dict = {}
            base: list = [None, None]  # the frame converted at BASE_WIDTH last, and its image

            def convert(frame, width: int | None) -> np.ndarray:
                width = self.width if width is None else width
                if width is not None and width <= BASE_WIDTH:
                    if base[0] is not frame:
                        base[0], base[1] = frame, swscale(frame, BASE_WIDTH)
                    return _area_scaled(base[1], _scaled_size(*self.source_size, width))
                return swscale(frame, width)

            def swscale(frame, width: int | None) -> np.ndarray:
                if width not in scalers:
                    transform = _display_transform(frame)
                    w, h = (frame.height, frame.width) if transform[0] else (frame.width, frame.height)
                    self.source_size = (w, h)
                    out_w, out_h = _scaled_size(w, h, width)
                    scalers[width] = (transform, (out_h, out_w) if transform[0] else (out_w, out_h), VideoReformatter())
                transform, out_size, reformatter = scalers[width]
                scaled = reformatter.reformat(frame, width=out_size[0], height=out_size[1], format="rgb24")
                return _upright(scaled.to_ndarray(), transform)

            try:
                for timed in timed_frames:
                    self.end_s = timed.time_s + timed.duration_s
                    if self.end_frame is not None and timed.index >= self.end_frame:
                        break
                    if timed.index < self.start_frame or not grid.keep(timed.time_s):
                        continue
                    yielded += 1
                    yield timed, (lambda width=None, frame=timed.payload: convert(frame, width))
            finally:
                self.frames_late = self._order_late
                DECODE_STATS.record(_label(self.src), yielded)
        finally:
            container.close()

    def _seek(self, container, stream) -> Iterator[TimedFrame] | None:
        """Frames from `start_frame` on, renumbered and timed as a whole pass gives them, after a
        seek to a keyframe before `start_pts`; None when no seek lands before that frame.

        A container's index may be ordered by decoding time, so a keyframe found for a timestamp
        can be shown after it: the seek then goes back one second, then ten, before giving up."""
        import av

        tb = stream.time_base or Fraction(1, 1000)
        second = max(1, int(round(1 / tb)))
        for back in (0, second, 10 * second):
            try:
                container.seek(self.start_pts - back, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                return None
            order: PresentationOrder = PresentationOrder(tb, self.rate)
            frames = self._timed(container, stream, order)
            for timed in frames:
                key = _pts(timed.payload)
                if key is None or key < self.start_pts:
                    continue
                if key == self.start_pts:
                    self.seeked = True
                    return self._renumbered(timed, frames)
                break  # the seek landed after the frame: go back further
        return None

    def _renumbered(self, first: TimedFrame, rest: Iterator[TimedFrame]) -> Iterator[TimedFrame]:
        shift, offset = self.start_frame - first.index, self.start_s - first.time_s
        yield TimedFrame(self.start_frame, self.start_s, first.duration_s, first.payload)
        for timed in rest:
            yield TimedFrame(timed.index + shift, timed.time_s + offset, timed.duration_s, timed.payload)

    def _timed(self, container, stream, order: PresentationOrder) -> Iterator[TimedFrame]:
        for frame in self._decoded(container, stream):
            self.frames_decoded += 1
            # PyAV 18 exposes no best_effort_timestamp: the frame's pts, else its packet's dts,
            # which is what FFmpeg's own guess starts from
            pts = frame.pts if frame.pts is not None else frame.dts
            yield from order.push(pts, frame)
            self._order_late = order.late
        yield from order.flush()

    def windows(self, size: int) -> Iterator[FrameBatch]:
        """The frames in consecutive batches of up to `size`."""
        return frame_windows(self, size)


def frame_batch(chunk: list[DecodedFrame], fps: float, source_size: tuple[int, int]) -> FrameBatch:
    """Decoded frames stacked into one batch with their indices and times."""
    return FrameBatch(np.stack([d.image for d in chunk]), np.asarray([d.index for d in chunk], np.int64), fps,
                      source_size, np.asarray([d.time_s for d in chunk], np.float64))


def frame_windows(decoder, size: int) -> Iterator[FrameBatch]:
    """A decoder's frames in consecutive batches of up to `size` (one batch in memory at a
    time). Its `fps` and `source_size` are read per batch: they are known once decoding starts."""
    chunk: list[DecodedFrame] = []
    for decoded in decoder:
        chunk.append(decoded)
        if len(chunk) == size:
            yield frame_batch(chunk, decoder.fps, decoder.source_size)
            chunk = []
    if chunk:
        yield frame_batch(chunk, decoder.fps, decoder.source_size)


def _pts(frame) -> int | None:
    """A decoded frame's timestamp: its pts, else its packet's dts (what PresentationOrder orders by)."""
    return frame.pts if frame.pts is not None else frame.dts


def iter_frames(
    path: VideoSource,
    *,
    width: int | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
    sample_fps: float | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, RGB uint8 frame) over one decode pass, downscaled to `width`.

    Indices are presentation ordinals. For each frame's time in seconds (from its timestamp,
    right for variable-frame-rate video), iterate a `VideoDecoder` with the same arguments:
    it yields `DecodedFrame(index, time_s, duration_s, image)`.

    Args:
        sample_fps: keep about this many frames per second of video time; None keeps all.
    """
    for decoded in VideoDecoder(path, width=width, sample_fps=sample_fps, start_frame=start_frame, end_frame=end_frame):
        yield decoded.index, decoded.image


def decode_frames(
    path: VideoSource,
    *,
    width: int | None = None,
    sample_fps: float | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
) -> FrameBatch:
    """Decode a video once into a `FrameBatch` (downscaled, optionally sub-sampled by time).

    Holds every frame it keeps: for a whole long video, iterate `VideoDecoder.windows`."""
    decoder = VideoDecoder(path, width=width, sample_fps=sample_fps, start_frame=start_frame, end_frame=end_frame)
    chunk = list(decoder)
    if not chunk:
        return FrameBatch(np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), decoder.fps, decoder.source_size,
                          np.zeros(0, np.float64))
    return frame_batch(chunk, decoder.fps, decoder.source_size)
