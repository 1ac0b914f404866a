"""A clip as a span of its source video, and the frames its written clip shows.

scene_clips records every clip as a span (frame range, times, the timestamp of its first
frame, the constant output rate) and writes nothing; its decode of the whole video also feeds
each clip's frames to clip_quality's analysers (`curation.clip_analysis.SceneQualityPass`,
through the push-based `ConstantRate` and `TickSampler`). A clip that pass left out is read
straight from the source by clip_quality (`SpanDecoder`: a seek to the keyframe before it,
then a stream of its frames), whose pass also feeds the embedded duplicate signature
(`on_tick`); curated_clips writes only the clips that pass every filter (`write_span`). Analysis and writing go through the same
resampling (`constant_rate`), so the frames the analysers score are, frame for frame, the
frames of the written clip before its compression.

Resampling onto a constant rate keeps a clip's real duration: each tick of the output rate
shows the source frame nearest in time (`frame_timing.hold_ticks`), and the last frame fills
the clip up to the end of its span (`frame_timing.clip_ticks`). A constant-rate source at the
output rate maps frame for frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from curation.frame_timing import TimedFrame, TimeGrid, clip_ticks, hold_ticks
from curation.video_io import (DecodedFrame, FrameBatch, VideoDecoder, VideoSource, _display_transform, _open_video,
                               frame_windows)

Crop = tuple[int, int, int, int]  # x, y, w, h in source pixels (as displayed)


@dataclass(frozen=True)
class ClipSpan:
    """Frames [start_frame, end_frame) of a source video (presentation ordinals), to be shown at
    a constant `rate`.

    Attributes:
        start_s: time of the first frame, from the video's first frame.
        start_pts: timestamp of the first frame in the stream's time base, or None when the
            source's timestamps cannot be trusted to find it again (some frame without one, or
            not increasing): the span is then read by decoding from the video's start.
    """

    start_frame: int
    end_frame: int
    start_s: float
    start_pts: int | None
    rate: Fraction

    @classmethod
    def of(cls, row: dict[str, Any]) -> ClipSpan:
        """The span of a scene_clips row."""
        return cls(int(row["start_frame"]), int(row["end_frame"]), float(row["start_s"]),
                   None if row["start_pts"] is None else int(row["start_pts"]),
                   Fraction(int(row["fps_num"]), int(row["fps_den"])))


class ConstantRate:
    """Timed source frames pushed one at a time, resampled onto a constant rate: `push` and
    `finish` return the (tick, image of the frame it shows) that the frames so far settle.

    Tick k (at the first frame's time + k / rate) shows the latest source frame starting less
    than half a tick after it; the last frame is held to the end of its own duration. A
    frame's ticks are known when the next frame arrives (or at `finish`)."""

    def __init__(self, rate: Fraction) -> None:
        self.fps = float(rate)
        self.start_s: float | None = None
        self.held: Any = None
        self.held_end_s = 0.0
        self.ticks = 0

    def push(self, frame: TimedFrame | DecodedFrame, image: Any) -> list[tuple[int, Any]]:
        out = []
        if self.start_s is None:
            self.start_s = frame.time_s
        else:
            for _ in range(hold_ticks(self.start_s, self.fps, self.ticks, frame.time_s)):
                out.append((self.ticks, self.held))
                self.ticks += 1
        self.held, self.held_end_s = image, frame.time_s + frame.duration_s
        return out

    def finish(self) -> list[tuple[int, Any]]:
        if self.start_s is None:
            return []
        out = []
        for _ in range(clip_ticks(self.held_end_s - self.start_s, self.fps) - self.ticks):
            out.append((self.ticks, self.held))
            self.ticks += 1
        return out


def constant_rate(frames: Iterable[tuple[TimedFrame | DecodedFrame, Callable[[], np.ndarray]]], rate: Fraction,
                  ) -> Iterator[tuple[int, Callable[[], np.ndarray]]]:
    """Resample timed source frames onto a constant rate: (tick, image of the frame it shows),
    as `ConstantRate` does."""
    resampler = ConstantRate(rate)
    for frame, image in frames:
        yield from resampler.push(frame, image)
    yield from resampler.finish()


class TickSampler:
    """The frames of a constant-rate clip that a pass at `sample_fps` keeps, tick by tick:
    `tick(k, image)` gives the `DecodedFrame` of tick k (at k / rate, its image converted
    then) or None when the sampling skips it; `on_tick` sees every tick either way."""

    def __init__(self, rate: Fraction, sample_fps: float | None,
                 on_tick: Callable[[int, Callable[..., np.ndarray]], None] | None = None) -> None:
        self.fps = float(rate)
        self.period = 1 / self.fps
        self.grid = TimeGrid(sample_fps, tolerance_s=0.05 / self.fps)
        self.on_tick = on_tick

    def tick(self, tick: int, image: Callable[..., np.ndarray]) -> DecodedFrame | None:
        if self.on_tick is not None:
            self.on_tick(tick, image)
        time_s = tick / self.fps
        return DecodedFrame(tick, time_s, self.period, image()) if self.grid.keep(time_s) else None


class SpanDecoder:
    """The frames of a span as its written clip shows them, decoded from the source.

    Mirrors `curation.video_io.VideoDecoder` over the written clip: iterating yields
    `DecodedFrame`s numbered 0, 1, ... at times k / rate, `windows(n)` yields `FrameBatch`es,
    `sample_fps` keeps about that many frames per second of clip time, and only the frames
    kept are converted to images. The source is read from a seek to the keyframe before the
    span (one decode pass, memory flat in the video's length).

    Args:
        width: downscale to this width (aspect kept, even sizes); None: the source size, cut
            to even width and height as a written clip is.
        crop: keep only this region of each frame (source pixels); only without `width`.
        on_tick: called with (tick, image function) for every frame of the clip as iteration
            passes it, kept by `sample_fps` or not: a second analyser of the same pass
            (`image(width)` gives the frame at its own width, as a pass at that width would).
    """

    def __init__(self, src: VideoSource, span: ClipSpan, *, width: int | None = None, sample_fps: float | None = None,
                 crop: Crop | None = None,
                 on_tick: Callable[[int, Callable[..., np.ndarray]], None] | None = None) -> None:
        if crop is not None and width is not None:
            raise ValueError("a span is cropped at its source size: give crop or width, not both")
        self.span = span
        self.on_tick = on_tick
        self.crop = crop
        self.sample_fps = sample_fps
        self.rate = span.rate
        self.fps = float(span.rate)
        self.source = VideoDecoder(src, width=width, start_frame=span.start_frame, end_frame=span.end_frame,
                                   start_pts=span.start_pts, start_s=span.start_s)
        self.width = width

    @property
    def source_size(self) -> tuple[int, int]:
        """(width, height) of the written clip's frames."""
        if self.crop is not None:
            return self.crop[2] - self.crop[2] % 2, self.crop[3] - self.crop[3] % 2
        w, h = self.source.source_size
        return w - w % 2, h - h % 2

    @property
    def seeked(self) -> bool:
        return self.source.seeked

    def _image(self, convert: Callable[[], np.ndarray]) -> np.ndarray:
        image = convert()
        if self.crop is not None:
            x, y, w, h = self.crop
            image = image[y : y + h, x : x + w]
        if self.width is None:
            image = image[: image.shape[0] - image.shape[0] % 2, : image.shape[1] - image.shape[1] % 2]
        return image

    def ticks(self) -> Iterator[tuple[int, Callable[..., np.ndarray]]]:
        """Every frame of the clip as (tick, function giving its image): a source frame is
        converted once, when a tick that shows it is first asked for its image. The function
        takes an optional other width (uncropped; not cached)."""
        cache: list = [None, None]  # the source frame converted last, and its image

        def image(convert: Callable[..., np.ndarray], width: int | None) -> np.ndarray:
            if width is not None and width != self.width:
                if self.crop is not None:
                    raise ValueError("a cropped span gives its frames at the source size only")
                return convert(width)
            if cache[0] is not convert:
                cache[0], cache[1] = convert, self._image(convert)
            return cache[1]

        for tick, convert in constant_rate(self.source.lazy_frames(), self.rate):
            yield tick, (lambda width=None, convert=convert: image(convert, width))

    def __iter__(self) -> Iterator[DecodedFrame]:
        sampler = TickSampler(self.rate, self.sample_fps, self.on_tick)
        for tick, image in self.ticks():
            decoded = sampler.tick(tick, image)
            if decoded is not None:
                yield decoded

    def windows(self, size: int) -> Iterator[FrameBatch]:
        """The frames in consecutive batches of up to `size`."""
        return frame_windows(self, size)


def copyable_packets(src: VideoSource, span: ClipSpan) -> list | None:
    """The source's compressed packets of a span, in decoding order, when the written clip can
    be exactly these packets; None when it must be re-encoded.

    A span is copied only when copying changes no frame: the source is 8-bit 4:2:0 H.264 in
    MP4/MOV, upright, with even width and height; the span is whole groups of pictures (it
    starts on a keyframe and ends where the next keyframe or the video starts or ends) whose
    packets are exactly the span's frames (no leading picture of an open group, none missing);
    and its frames are at a constant rate equal to the clip's, so that resampling onto that
    rate (`constant_rate`) shows each frame once, in order.
    """
    import av


    if span.start_pts is None:
        return None
    n = span.end_frame - span.start_frame
    container = _open_video(src)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ({"mp4", "mov"} & set(container.format.name.split(","))) or ctx.name != "h264" \
                or ctx.pix_fmt not in ("yuv420p", "yuvj420p") or ctx.width % 2 or ctx.height % 2 \
                or stream.time_base is None or n < 2 or not _upright(container, stream):
            return None
        container.seek(span.start_pts, stream=stream, backward=True, any_frame=False)
        packets, next_pts = [], None
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None or packet.dts is None:
                if packet.size == 0:
                    continue
                return None
            if not packets:
                if not packet.is_keyframe or packet.pts != span.start_pts:
                    return None  # the span starts inside a group of pictures
            elif packet.is_keyframe and len(packets) >= n:
                next_pts = packet.pts  # the next group starts: the span must end here
                break
            packets.append(packet)
            if len(packets) > n:
                return None  # the span ends inside a group of pictures
        if len(packets) != n:
            return None
        pts = sorted(p.pts for p in packets)
        if pts[0] != span.start_pts or (next_pts is not None and next_pts <= pts[-1]):
            return None
        tb = stream.time_base
        # the last frame lasts until the next one, or at the video's end the interval before it
        ends = [*pts[1:], next_pts if next_pts is not None else 2 * pts[-1] - pts[-2]]
        if any((e - p) * tb != 1 / span.rate for p, e in zip(pts, ends)):
            return None
        # the clip writer's plan, checked: every tick shows the frame at its own index
        frames = [TimedFrame(k, float((p - pts[0]) * tb), float((e - p) * tb), k) for k, (p, e) in enumerate(zip(pts, ends))]
        if [frame for _, frame in constant_rate(((f, f.payload) for f in frames), span.rate)] != list(range(n)):
            return None
        return packets
    except av.FFmpegError:
        return None
    finally:
        container.close()


def _upright(container, stream) -> bool:
    """The video's first frame carries no display matrix that turns or flips it (a copied
    packet would keep its coded orientation)."""
    frame = next(container.decode(stream), None)
    return frame is not None and _display_transform(frame) == (False, 1, 1)


def copy_span(src: VideoSource, span: ClipSpan, dest: Path) -> int | None:
    """Write a span by copying the source's compressed packets (`copyable_packets`), timed from
    zero; None (nothing written) when the span must be re-encoded.

    Returns:
        frames written, or None.
    """
    import av


    packets = copyable_packets(src, span)
    if packets is None:
        return None
    source = _open_video(src)
    try:
        template = source.streams.video[0]
        with av.open(str(dest), "w", format="mp4") as out:
            stream = out.add_stream_from_template(template)
            for packet in packets:
                packet.pts -= span.start_pts
                packet.dts -= span.start_pts
                packet.stream = stream
                out.mux(packet)
    finally:
        source.close()
    return len(packets)


def write_span(src: VideoSource, span: ClipSpan, dest: Path, *, crop: Crop | None = None, crf: int = 20,
               preset: str = "veryfast", copy: bool = False, threads: int = 0) -> tuple[int, bool]:
    """Write a span as a constant-rate H.264 MP4 (the frames `SpanDecoder` gives), cropped to
    `crop` when given. With `copy`, a span that is whole groups of pictures of a constant-rate
    H.264 source at the clip's rate is written by copying the source's packets
    (`copy_span`: the source's quality, no encode); anything else is encoded. Written to a
    hidden `.partial` name beside `dest` and renamed into place once complete; a failed write
    removes it. `threads`: x264's threads (`core.video.ClipWriter`; 0 = x264's choice).

    Returns:
        (frames written, whether they were copied rather than encoded).
    """
    from core.video import ClipWriter

    tmp = dest.with_name(f".{dest.name}.partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if copy and crop is None:
        try:
            copied = copy_span(src, span, tmp)
            if copied is not None:
                tmp.replace(dest)
                return copied, True
        finally:
            tmp.unlink(missing_ok=True)
    writer = None
    frames = 0
    try:
        for decoded in SpanDecoder(src, span, crop=crop):
            if writer is None:
                writer = ClipWriter(tmp, span.rate, decoded.image.shape[1], decoded.image.shape[0], crf, preset,
                                    threads=threads)
            writer.write(decoded.image)
            frames += 1
        if writer is None:
            raise ValueError(f"span [{span.start_frame}, {span.end_frame}) of the source decoded to no frame")
        writer.close()
        tmp.replace(dest)
    finally:
        if writer is not None and tmp.exists():
            with contextlib.suppress(Exception):
                writer.container.close()
        tmp.unlink(missing_ok=True)
    return frames, False
