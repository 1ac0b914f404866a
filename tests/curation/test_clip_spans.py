"""Clips read as spans of their source (curation/clip_spans.py): the frames the analysers see
are the frames of the written clip, a span is reached by a seek to the keyframe before it,
and only what curated_clips keeps is written."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from curation import video_io as vio
from curation.clip_spans import ClipSpan, SpanDecoder, constant_rate, copyable_packets, write_span
from curation.clip_writing import Segment, write_segments
from curation.frame_timing import REORDER_DEPTH, TimedFrame
from tests.curation.conformance import Case, _encode, read_ordinal

FPS = 20
N = 120


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Barcoded 20 fps videos with a keyframe every 20 frames and B-frames (MP4 and Matroska),
    and a variable-rate one; each with the timestamps and times of a whole decode pass."""
    root = tmp_path_factory.mktemp("spans")
    out = {}
    gop = {"x264-params": "keyint=20:min-keyint=20:scenecut=0:bframes=2"}
    cfr = Case("cfr", "cfr.mp4", tuple(k / FPS for k in range(N)))
    vfr = Case("vfr", "vfr.mkv", tuple([k * 0.04 for k in range(50)] + [2.0 + k * 0.08 for k in range(40)]),
               declares_frames=False)
    for name, case, fmt in (("mp4", cfr, "mp4"), ("mkv", Case("mkv", "cfr.mkv", cfr.times_s), "matroska"),
                            ("vfr", vfr, "matroska")):
        path = root / case.file
        _encode(path, case, fmt=fmt, options=gop)
        whole = list(vio.VideoDecoder(path))
        out[name] = (path, whole)
    return out


def _span(whole, start: int, end: int, rate=Fraction(FPS), pts: bool = True) -> ClipSpan:
    return ClipSpan(start, end, whole[start].time_s, whole[start].pts if pts else None, rate)


def _expected(whole, start: int, end: int, rate: float) -> list[int]:
    """The ordinals a clip of [start, end) shows at `rate`: per tick the source frame nearest in time."""
    t0 = whole[start].time_s
    last = whole[end - 1]
    n = max(1, round((last.time_s + last.duration_s - t0) * rate))
    return [max(j for j in range(start, end) if whole[j].time_s < t0 + (k + 0.5) / rate - 1e-6) for k in range(n)]


@pytest.mark.parametrize("name", ["mp4", "mkv"])
@pytest.mark.parametrize(("start", "end"), [(0, 30), (20, 40), (47, 83), (93, N)])
def test_a_span_shows_its_frames_after_a_seek_that_skips_what_precedes_it(videos, name, start, end):
    path, whole = videos[name]
    decoder = SpanDecoder(path, _span(whole, start, end))
    shown = [read_ordinal(d.image) for d in decoder]
    assert shown == list(range(start, end))  # a constant-rate source at its own rate: frame for frame
    assert decoder.seeked
    keyframe = start - start % 20
    # decoded from the keyframe before the span to its end and the frames the reorder buffer
    # (frame_timing.REORDER_DEPTH) and the decoder's delay hold past it
    assert decoder.source.frames_decoded <= end - keyframe + REORDER_DEPTH + 4
    if start >= 20:
        assert decoder.source.frames_decoded < end


def test_a_timestamp_that_is_not_a_frame_falls_back_to_a_pass_from_the_start(videos):
    path, whole = videos["mp4"]
    span = ClipSpan(47, 60, whole[47].time_s, whole[47].pts + 1, Fraction(FPS))
    decoder = SpanDecoder(path, span)
    assert [read_ordinal(d.image) for d in decoder] == list(range(47, 60))
    assert not decoder.seeked


def test_a_span_without_timestamps_is_read_from_the_start(videos):
    path, whole = videos["mkv"]
    decoder = SpanDecoder(path, _span(whole, 47, 60, pts=False))
    assert [read_ordinal(d.image) for d in decoder] == list(range(47, 60))
    assert not decoder.seeked and decoder.source.frames_decoded >= 60


@pytest.mark.parametrize(("start", "end", "rate"), [(10, 70, Fraction(25)), (30, 90, Fraction(30000, 1001)),
                                                    (0, 90, Fraction(10))])
def test_a_variable_rate_span_is_resampled_as_its_written_clip_is(videos, tmp_path, start, end, rate):
    path, whole = videos["vfr"]
    span = _span(whole, start, end, rate)
    analysed = [read_ordinal(d.image) for d in SpanDecoder(path, span)]
    assert analysed == _expected(whole, start, end, float(rate))
    # the clip writer of a single pass over the video writes the same frames
    dest = tmp_path / "clip.mp4"
    assert write_segments(path, [Segment(start, end, dest)], rate=rate) == [len(analysed)]
    assert [read_ordinal(f) for f in vio.decode_frames(dest).frames] == analysed
    spanned = tmp_path / "span.mp4"
    assert write_span(path, span, spanned, copy=True) == (len(analysed), False)  # resampled: encoded
    assert [read_ordinal(f) for f in vio.decode_frames(spanned).frames] == analysed
    info = vio.probe(spanned)
    assert info.fps == pytest.approx(float(rate))


def test_sampled_and_scaled_frames_are_the_clip_frames_at_those_times(videos):
    path, whole = videos["vfr"]
    span = _span(whole, 0, 90, Fraction(25))
    every = list(SpanDecoder(path, span, width=96))
    sampled = list(SpanDecoder(path, span, width=96, sample_fps=5))
    assert [d.index for d in sampled] == list(range(0, len(every), 5))
    assert all(np.array_equal(s.image, every[s.index].image) for s in sampled)
    assert sampled[0].image.shape[1] == 96
    batches = list(SpanDecoder(path, span, width=96, sample_fps=5).windows(4))
    assert [len(b.frames) for b in batches[:-1]] == [4] * (len(batches) - 1)
    assert batches[0].times[1] == pytest.approx(0.2)


def test_a_cropped_span_is_written_cropped(videos, tmp_path):
    path, whole = videos["mp4"]
    dest = tmp_path / "crop.mp4"
    write_span(path, _span(whole, 20, 40), dest, crop=(0, 0, 101, 60))
    info = vio.probe(dest)
    assert (info.width, info.height) == (100, 60)
    assert not list(tmp_path.glob(".*partial"))


def test_constant_rate_holds_each_frame_to_the_nearest_tick():
    # frames at 0, 0.1, 0.3 (lasting 0.1): at 10 fps ticks 0..3 show 0, 1, 1, 2
    frames = [TimedFrame(0, 0.0, 0.1, "a"), TimedFrame(1, 0.1, 0.2, "b"), TimedFrame(2, 0.3, 0.1, "c")]
    ticks = list(constant_rate(((f, f.payload) for f in frames), Fraction(10)))
    assert ticks == [(0, "a"), (1, "b"), (2, "b"), (3, "c")]
    assert list(constant_rate(iter(()), Fraction(10))) == []


@pytest.mark.parametrize(("start", "end", "copied"), [
    (20, 40, True), (20, 80, True), (100, N, True),  # whole groups of pictures (keyframe every 20)
    (0, 30, False), (47, 83, False), (20, 50, False), (93, N, False),  # start or end inside a group
])
def test_whole_groups_of_pictures_are_copied_and_show_the_same_frames(videos, tmp_path, start, end, copied):
    path, whole = videos["mp4"]
    span = _span(whole, start, end)
    dest = tmp_path / "clip.mp4"
    assert write_span(path, span, dest, copy=True) == (end - start, copied)
    decoded = vio.decode_frames(dest)
    assert [read_ordinal(f) for f in decoded.frames] == list(range(start, end))
    info = vio.probe(dest)
    assert info.frame_count == end - start and info.fps == pytest.approx(FPS)
    assert info.duration_s == pytest.approx((end - start) / FPS, abs=1e-6)
    if copied:  # the source's own packets: its pixels exactly
        source = [d.image for d in SpanDecoder(path, span)]
        assert all(np.array_equal(a, b) for a, b in zip(decoded.frames, source, strict=True))


def test_a_span_is_not_copied_when_resampled_cropped_or_not_an_h264_mp4(videos, tmp_path):
    mp4, whole = videos["mp4"]
    assert copyable_packets(mp4, _span(whole, 20, 40)) is not None
    assert copyable_packets(mp4, _span(whole, 20, 40, rate=Fraction(25))) is None  # other rate: resampled
    assert copyable_packets(mp4, _span(whole, 20, 40, pts=False)) is None
    assert write_span(mp4, _span(whole, 20, 40), tmp_path / "c.mp4", crop=(0, 0, 100, 60), copy=True)[1] is False
    mkv, whole_mkv = videos["mkv"]
    assert copyable_packets(mkv, _span(whole_mkv, 20, 40)) is None


def test_a_rotated_video_is_not_copied(tmp_path):
    path = tmp_path / "rotated.mp4"
    case = Case("rotated", "rotated.mp4", tuple(k / FPS for k in range(40)), display_size=(128, 192))
    _encode(path, case, fmt="mp4", rotation=-90, options={"x264-params": "keyint=20:min-keyint=20:scenecut=0"})
    whole = list(vio.VideoDecoder(path))
    assert copyable_packets(path, _span(whole, 20, 40)) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_a_written_clip_is_encoded_with_the_threads_asked_for(tmp_path, threads):
    """x264 writes its settings into the stream; a fixed thread count (params'
    `scene_clips.encode_threads`) is what makes a clip's bytes the same on every machine.
    (x264 takes one thread for frames under about 200 rows whatever it is asked: 320x240.)"""
    path = tmp_path / "src.mp4"
    writer = vio.ClipWriter(path, Fraction(FPS), 320, 240, crf=18)
    for k in range(30):
        writer.write(np.full((240, 320, 3), k * 8, np.uint8))
    writer.close()
    whole = list(vio.VideoDecoder(path))
    dest = tmp_path / f"t{threads}.mp4"
    assert write_span(path, _span(whole, 5, 25), dest, threads=threads) == (20, False)
    assert f" threads={threads} ".encode() in dest.read_bytes()
