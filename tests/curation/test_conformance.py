"""The decoding conformance corpus through the real stages: raw_videos -> scene_clips ->
clip_quality -> clip_signatures -> clip_dedup -> curated_clips on a shard of the corpus, in a
local store, with tiny params and filters that pass every clip (so that every clip is written).

Nothing may be dropped or stretched silently: every frame a complete file holds is decoded,
in presentation order; clip times come from the timestamps and a written clip lasts its span
to one frame; a variable frame rate keeps its timing; a rotated video comes out upright; a
file that ends early is used as far as it goes (and says so) or quarantined with a reason.
"""

from __future__ import annotations

import pytest

from orchestration.params import load_params
from core.stage import run_stage
from core.storage import LocalObjectStore
from core.tables import read_table
from curation import video_io as vio
from curation.stages import STAGES
from tests.conftest import tiny_params, write_params
from tests.curation.conformance import build_corpus, is_upright, read_ordinal

SHARD = "conformance"
MIN_CLIP_S = 1.0


@pytest.fixture(scope="module")
def run(tmp_path_factory, base_params_raw):
    root = tmp_path_factory.mktemp("conformance")
    raw = tiny_params(root, base_params_raw, SHARD)
    # Decoding conformance, not detector accuracy (that is scored on real footage): the
    # corpus's flat colour cuts are what PySceneDetect + similarity finds frame-exactly, while
    # TransNetV2 calls the barcode-textured cut at frame 200 of `long` a short gradual
    # transition (its own whole-video prediction spans frames 196-204).
    raw["scene_clips"].update(min_duration_s=MIN_CLIP_S, shot_backend="pyscenedetect", compare_backends=False)
    raw["clip_quality"].update(ocr_backend="none", window_frames=8)
    # every clip passes (conformance, not curation): curated_clips writes each one
    raw["curated_clips"].update(min_motion=0.0, min_sharpness=0.0, min_brightness=0.0, max_brightness=1.0,
                                max_noise=1e6, max_blockiness=1e6, min_aesthetic=0.0)
    raw["clip_dedup"].update(max_frame_distance=0, min_coverage=1.0, min_overlap_s=1e6)
    params = load_params(write_params(root, raw))
    cases = build_corpus(params.resolve(params.raw_videos.pool_root) / SHARD)
    store = LocalObjectStore(params.resolve(params.storage.root))
    meta = {stage: run_stage(STAGES[stage], SHARD, params, store).metadata
            for stage in ("raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")}

    def table(name):
        return read_table(store, f"tables/{name}/{SHARD}.parquet").to_pylist()

    by_video = {r["source_path"].rsplit("/", 1)[-1]: r for r in table("raw_videos")}
    return {
        "cases": cases, "store": store, "params": params, "raw": by_video,
        "cuts": {r["video_id"]: r for r in table("scene_cuts")},
        "clips": table("scene_clips"), "quality": {r["clip_id"]: r for r in table("clip_quality")},
        "curated": {r["clip_id"]: r for r in table("curated_clips")}, "meta": meta,
    }


def _written(run, clip):
    """The clip file curated_clips wrote for a scene clip."""
    curated = run["curated"][clip["clip_id"]]
    assert curated["kept"], curated["reasons"]
    return run["store"].path(curated["clip_key"])


def _analysed(run, clip, **kwargs):
    """The frames clip_quality and clip_signatures read for a clip, from its source span."""
    from curation.clip_spans import ClipSpan, SpanDecoder

    decoder = SpanDecoder(clip["source_path"], ClipSpan.of(clip), **kwargs)
    return [d.image for d in decoder], decoder


def _span(times: tuple[float, ...], n: int) -> float:
    """First frame to the end of frame n - 1 (the last one lasting the interval before it)."""
    return times[n - 1] - times[0] + (times[n - 1] - times[n - 2])


COMPLETE = ["out_of_order", "vfr", "rotated", "ten_bit", "hevc", "vp9", "audio_first", "odd_size", "long", "av1"]
PARTIAL = ["truncated_mp4", "truncated_mkv"]


def _case(run, name):
    if name not in run["cases"]:
        pytest.skip(f"{name}: no encoder for it in this PyAV build")
    return run["cases"][name]


@pytest.mark.parametrize("name", COMPLETE + PARTIAL)
def test_every_frame_is_decoded_in_presentation_order(run, name):
    case = _case(run, name)
    row = run["raw"][case.file]
    n = case.frames_present or case.frames
    assert (row["status"], row["reason"]) == ("ok", None), row["detail"]
    assert row["frame_count"] == n
    assert row["frames_declared"] == (case.frames if case.declares_frames else None)
    assert row["complete"] is (case.frames_present is None)
    assert row["duration_s"] == pytest.approx(_span(case.times_s, n), abs=1e-3)
    cuts = run["cuts"][row["video_id"]]
    assert cuts["n_frames"] == n  # decoded: every frame present, none dropped
    assert (cuts["decode_errors"], cuts["frames_late"]) == (0, 0)
    assert cuts["cuts_final"] == list(case.cuts)  # at the right ordinals, found through the windows
    assert cuts["duration_s"] == pytest.approx(_span(case.times_s, n), abs=1e-3)


@pytest.mark.parametrize("name", PARTIAL)
def test_a_file_that_ends_early_is_used_as_far_as_it_goes_and_says_so(run, name):
    case = _case(run, name)
    row = run["raw"][case.file]
    assert row["detail"].startswith(f"ends early: {case.frames_present} frames (3.50 s) present of ")
    assert row["duration_declared_s"] == pytest.approx(_span(case.times_s, case.frames), abs=0.05)
    assert run["cuts"][row["video_id"]]["frames_declared"] == (case.frames if case.declares_frames else None)


@pytest.mark.parametrize(("name", "reason"), [("truncated_short", vio.TRUNCATED_SHORT), ("truncated_unreadable", vio.TRUNCATED)])
def test_a_file_with_too_little_to_use_is_quarantined_with_its_reason(run, name, reason):
    case = _case(run, name)
    row = run["raw"][case.file]
    assert (row["status"], row["reason"]) == ("quarantined", reason)
    assert row["video_id"] not in run["cuts"]
    if reason == vio.TRUNCATED_SHORT:
        assert row["detail"] == f"ends early: 10 frames (0.50 s) present of 120 declared frames, below 1.0 s"


@pytest.mark.parametrize("name", COMPLETE + PARTIAL)
def test_clips_span_their_shots_to_one_frame_and_show_the_right_frames(run, name):
    case = _case(run, name)
    raw = run["raw"][case.file]
    n = case.frames_present or case.frames
    clips = sorted((c for c in run["clips"] if c["video_id"] == raw["video_id"]), key=lambda c: c["scene_index"])
    edges = [0, *case.cuts, n]
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == list(zip(edges[:-1], edges[1:]))
    for clip in clips:
        a, b = clip["start_frame"], clip["end_frame"]
        end_s = case.times_s[b] if b < n else case.times_s[0] + _span(case.times_s, n)
        assert clip["start_s"] == pytest.approx(case.times_s[a], abs=1e-3)
        assert clip["end_s"] == pytest.approx(end_s, abs=1e-3)
        assert clip["duration_s"] == pytest.approx(end_s - case.times_s[a], abs=1e-3)
        assert clip["kept"] is (clip["duration_s"] >= MIN_CLIP_S)
        if not clip["kept"]:
            continue
        path = _written(run, clip)
        info = vio.probe(path)
        fps = clip["fps"]
        assert abs(info.duration_s - clip["duration_s"]) <= 1 / fps + 1e-6  # lasts its span, to one frame
        assert (info.width, info.height) == (clip["width"], clip["height"])
        batch = vio.decode_frames(path)
        shown = [read_ordinal(f) for f in batch.frames]
        # each output frame shows the source frame nearest its time (the earlier one on a tie)
        expected = [max(j for j in range(a, b) if case.times_s[j] < case.times_s[a] + (k + 0.5) / fps - 1e-6)
                    for k in range(len(shown))]
        assert shown == expected
        assert all(is_upright(f) for f in batch.frames)
        # the analysers read the same frames from the source, before the clip's compression
        analysed, _ = _analysed(run, clip)
        assert [read_ordinal(f) for f in analysed] == expected


def test_a_constant_rate_source_is_written_frame_for_frame(run):
    case = run["cases"]["hevc"]
    clips = [c for c in run["clips"] if c["video_id"] == run["raw"][case.file]["video_id"]]
    for clip in clips:
        assert clip["fps"] == pytest.approx(20.0)
        shown = [read_ordinal(f) for f in vio.decode_frames(_written(run, clip)).frames]
        assert shown == list(range(clip["start_frame"], clip["end_frame"]))


def test_variable_frame_rate_keeps_its_timing(run):
    case = run["cases"]["vfr"]
    [clip] = [c for c in run["clips"] if c["video_id"] == run["raw"][case.file]["video_id"]]
    assert clip["duration_s"] == pytest.approx(4.0, abs=1e-3)  # not 70 frames / 25 fps = 2.8 s
    batch = vio.decode_frames(_written(run, clip))
    assert len(batch.frames) == round(4.0 * clip["fps"])
    # 2.4 s into the clip is 0.8 s into the 12.5 fps half: source frame 40 + 10
    k = round(2.4 * clip["fps"])
    assert read_ordinal(batch.frames[k]) == 50


def test_portrait_phone_video_comes_out_upright(run):
    case = run["cases"]["rotated"]
    raw = run["raw"][case.file]
    assert raw["rotation"] == -90
    assert (raw["width"], raw["height"]) == case.display_size == (128, 192)
    for clip in (c for c in run["clips"] if c["video_id"] == raw["video_id"] and c["kept"]):
        info = vio.probe(_written(run, clip))
        assert (info.width, info.height, info.rotation) == (128, 192, 0)


def test_clip_quality_reads_every_clip_once_in_windows(run):
    kept = [c for c in run["clips"] if c["kept"]]
    assert set(run["quality"]) == {c["clip_id"] for c in kept}
    sample_fps = run["params"].clip_quality.sample_fps
    for clip in kept:
        q = run["quality"][clip["clip_id"]]
        assert q["decode_passes"] == 1
        assert abs(q["frames_analysed"] - clip["duration_s"] * sample_fps) <= 1.5


def test_only_the_clips_that_pass_are_written(run):
    kept = {c["clip_id"] for c in run["clips"] if c["kept"]}
    written = {k.rsplit("/", 1)[-1][:-4] for k in run["store"].list(f"clips/{SHARD}")}
    assert written == kept == {i for i, c in run["curated"].items() if c["kept"]}
    assert all(c["clip_key"] is None for c in run["curated"].values() if not c["kept"])
    written = run["meta"]["curated_clips"]
    assert written["clips_written"] == len(kept)
    # a clip of whole groups of pictures of an H.264 MP4 (x264 puts keyframes at the corpus's
    # cuts) is copied, not encoded; the frame checks above hold for it as for the rest
    assert 1 <= written["clips_copied"] < len(kept)


@pytest.mark.parametrize("name", ["long", "hevc", "vp9"])
def test_a_span_is_read_from_a_seek_to_the_keyframe_before_it(run, name):
    """A clip that starts inside its video is read from a seek to the keyframe before it (these
    files have one keyframe: the seek lands on the first frame) and shows the frames of its
    written clip; tests/curation/test_clip_spans.py checks that a seek skips what precedes."""
    case = _case(run, name)
    raw = run["raw"][case.file]
    later = [c for c in run["clips"] if c["video_id"] == raw["video_id"] and c["kept"] and c["start_frame"] > 0]
    assert later
    for clip in later:
        assert clip["start_pts"] is not None
        analysed, decoder = _analysed(run, clip, width=64)
        assert decoder.seeked
        assert [read_ordinal(f) for f in _analysed(run, clip)[0]] == \
            [read_ordinal(f) for f in vio.decode_frames(_written(run, clip)).frames]
