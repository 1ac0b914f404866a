"""Clips cut from a source video and written as constant-rate H.264 MP4 (PyAV).

Written clips keep their real duration by resampling onto a constant output rate (params
`scene_clips.output_fps`; by default the source's average rate): each output frame shows the
source frame nearest in time (`frame_timing.hold_ticks`), so a clip lasts as long as its
span in the source (start_s..end_s from the timestamps) to one frame, a variable-frame-rate
source keeps its timing, and a constant-rate source at its own rate is written frame for
frame. A constant rate is what every later stage assumes (frame index / fps is a time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.video import ClipWriter
from curation.frame_timing import clip_ticks, hold_ticks
from curation.video_io import VideoDecoder, VideoSource


@dataclass(frozen=True)
class Segment:
    """A frame range [start, end) of a source (presentation ordinals) to write as its own clip."""

    start: int
    end: int
    dest: Path
    crop: tuple[int, int, int, int] | None = None  # x, y, w, h in source pixels (as displayed)


@dataclass
class _Open:
    """A segment being written: its writer, the frame it shows now and the ticks written."""

    writer: ClipWriter
    tmp: Path
    start_s: float
    held: np.ndarray
    held_end_s: float
    ticks: int = 0


def write_segments(
    src: VideoSource, segments: Sequence[Segment], *, crf: int = 20, preset: str = "veryfast",
    rate: Fraction | float | None = None, threads: int = 0,
) -> list[int]:
    """Write every segment of `src` as a constant-rate H.264 MP4 in one decode pass.

    A segment spans start_s (time of its first frame) to end_s (end of its last frame), from
    the timestamps; its clip has round((end_s - start_s) * rate) frames, each tick showing
    the source frame nearest in time (`frame_timing.hold_ticks`): the clip lasts as long as
    the span to one frame, and variable-frame-rate sources keep their real timing. At the
    source's own constant rate every frame is written once.

    Each clip is written to a hidden `.partial` name beside its destination and renamed into
    place once complete; a failed write removes it.

    Args:
        rate: output frame rate; None: the source's nominal (container average) rate.

    Returns:
        frames written per segment.
    """
    if not segments:
        return []
    written = [0] * len(segments)
    tmp_paths = {i: s.dest.with_name(f".{s.dest.name}.partial") for i, s in enumerate(segments)}
    open_: dict[int, _Open] = {}
    decoder = VideoDecoder(src, start_frame=min(s.start for s in segments), end_frame=max(s.end for s in segments))
    out_rate: Fraction | None = None

    def hold(i: int, state: _Open, ticks: int) -> None:
        for _ in range(ticks):
            state.writer.write(state.held)
        state.ticks += max(0, ticks)
        written[i] = state.ticks

    def finish(i: int) -> None:
        state = open_[i]
        # the last frame fills the clip up to its span
        hold(i, state, clip_ticks(state.held_end_s - state.start_s, float(out_rate)) - state.ticks)
        state.writer.close()
        state.tmp.replace(segments[i].dest)
        del open_[i]

    try:
        for decoded in decoder:
            if out_rate is None:
                out_rate = Fraction(rate).limit_denominator(1001) if rate else decoder.rate
            # a clip is closed as soon as the video passes its end: only the encoders of
            # overlapping segments are open at once, however many clips a video gives
            for i in [i for i in open_ if decoded.index >= segments[i].end]:
                finish(i)
            for i, seg in enumerate(segments):
                if not seg.start <= decoded.index < seg.end:
                    continue
                image = decoded.image
                if seg.crop is not None:
                    x, y, w, h = seg.crop
                    image = image[y : y + h, x : x + w]
                image = image[: image.shape[0] - image.shape[0] % 2, : image.shape[1] - image.shape[1] % 2]
                state = open_.get(i)
                if state is None:
                    seg.dest.parent.mkdir(parents=True, exist_ok=True)
                    writer = ClipWriter(tmp_paths[i], out_rate, image.shape[1], image.shape[0], crf, preset,
                                        threads=threads)
                    open_[i] = _Open(writer, tmp_paths[i], decoded.time_s, image, decoded.time_s + decoded.duration_s)
                    continue
                hold(i, state, hold_ticks(state.start_s, float(out_rate), state.ticks, decoded.time_s))
                state.held, state.held_end_s = image, decoded.time_s + decoded.duration_s
        for i in list(open_):
            finish(i)
    finally:
        for state in open_.values():
            with contextlib.suppress(Exception):
                state.writer.container.close()
        for p in tmp_paths.values():
            p.unlink(missing_ok=True)
    return written
