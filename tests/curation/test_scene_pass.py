"""clip_quality's analyses made in scene_clips' decode (`curation.clip_analysis.SceneQualityPass`):
the rows equal what clip_quality's own decode of every span gives, on the procedural demo
shard (text overlays, cuts, flashes, static shots) and on the decoding conformance corpus
(variable frame rate, rotation, odd sizes, broken files); boundaries TransNetV2 settles while
streaming are the ones it finds at the end; past the pending-frame limit, and under other
settings, clip_quality decodes the spans itself."""

from __future__ import annotations

import types

import numpy as np
import pytest

from core.stage import run_stage
from core.storage import LocalObjectStore
from core.tables import read_table
from curation.stages import STAGES
from orchestration.params import load_params, parse_params
from tests.conftest import tiny_params, write_params

SHARD = "pass-000"


def _project(root, base_raw, pool: str, **quality):
    raw = tiny_params(root, base_raw, SHARD)
    raw["clip_quality"].update(window_frames=8, **quality)  # several windows per clip: the chaining is exercised
    if pool == "conformance":
        raw["scene_clips"].update(min_duration_s=1.0)
    params = load_params(write_params(root, raw))
    store = LocalObjectStore(params.resolve(params.storage.root))
    if pool == "conformance":
        from tests.curation.conformance import build_corpus

        build_corpus(params.resolve(params.raw_videos.pool_root) / SHARD)
    else:
        run_stage(STAGES["demo_pool"], SHARD, params, store)
    return params, store


def _quality(store) -> list[dict]:
    return read_table(store, f"tables/clip_quality/{SHARD}.parquet").to_pylist()


def _decode_every_span(params, store) -> tuple[list[dict], dict]:
    """clip_quality again without the scene pass's rows: its own decode of every span."""
    store.delete_prefix(f"tables/scene_quality/{SHARD}.parquet")
    meta = run_stage(STAGES["clip_quality"], SHARD, params, store, force=True).metadata
    return _quality(store), meta


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert [r["clip_id"] for r in a] == [r["clip_id"] for r in b]
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k != "decode_passes"} == {k: v for k, v in y.items() if k != "decode_passes"}


@pytest.mark.parametrize("pool", ["procedural", "conformance"])
def test_scene_pass_rows_are_what_a_decode_of_each_span_gives(tmp_path, base_params_raw, pool):
    params, store = _project(tmp_path, base_params_raw, pool)
    for stage in ("raw_videos", "scene_clips"):
        run_stage(STAGES[stage], SHARD, params, store)
    meta = run_stage(STAGES["clip_quality"], SHARD, params, store).metadata
    in_pass = _quality(store)
    assert len(in_pass) >= 4
    decoded, own = _decode_every_span(params, store)
    _same_rows(in_pass, decoded)
    if pool == "procedural":  # every video decodes cleanly: every clip comes from the scene pass
        assert meta["clips_from_scene_pass"] == len(in_pass) and meta["clips_decoded_here"] == 0
        assert all(r["decode_passes"] == 0 for r in in_pass)
        assert any(r["has_text"] for r in in_pass) and any(r["signature_samples"] for r in in_pass)
    else:  # a video whose decode met an error would leave its clips to clip_quality's own decode
        assert meta["clips_from_scene_pass"] + meta["clips_decoded_here"] == len(in_pass)
        assert meta["clips_from_scene_pass"] > 0
    assert own["clips_decoded_here"] == len(decoded) and all(r["decode_passes"] == 1 for r in decoded)


def test_past_the_pending_limit_the_rest_of_a_video_is_decoded_by_clip_quality(tmp_path, base_params_raw, monkeypatch):
    import curation.clip_analysis as ca

    params, store = _project(tmp_path, base_params_raw, "procedural")
    monkeypatch.setattr(ca, "MAX_PENDING_FRAMES", 30)  # < TransNetV2's lag at its first window
    run_stage(STAGES["raw_videos"], SHARD, params, store)
    scene = run_stage(STAGES["scene_clips"], SHARD, params, store).metadata
    assert scene["videos_past_pending_limit"] > 0
    meta = run_stage(STAGES["clip_quality"], SHARD, params, store).metadata
    assert meta["clips_decoded_here"] > 0
    assert meta["clips_from_scene_pass"] + meta["clips_decoded_here"] == meta["clips_in"]
    _same_rows(_quality(store), _decode_every_span(params, store)[0])


def test_rows_made_under_other_settings_are_not_used(tmp_path, base_params_raw):
    params, store = _project(tmp_path, base_params_raw, "procedural")
    for stage in ("raw_videos", "scene_clips", "clip_quality"):
        run_stage(STAGES[stage], SHARD, params, store)
    raw = params.model_dump()
    raw["clip_quality"]["ocr_confidence"] = 0.9
    other = parse_params(raw)
    other._base_dir = params._base_dir
    assert run_stage(STAGES["scene_clips"], SHARD, other, store).skipped  # its fingerprint does not hold them
    meta = run_stage(STAGES["clip_quality"], SHARD, other, store).metadata
    assert meta["clips_from_scene_pass"] == 0 and meta["clips_decoded_here"] == meta["clips_in"] > 0


@pytest.mark.parametrize("seed", range(20))
def test_boundaries_settled_while_streaming_are_the_final_ones(seed):
    """Probabilities arriving a window at a time: every boundary `settled` reports before its
    frontier is one `transnet_boundaries` finds over the whole video, and every final boundary
    before the frontier has been reported."""
    from curation.shot_transnetv2 import TransNetV2Detector, transnet_boundaries

    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 600))
    # runs of confident frames of every length among quiet ones, some faint
    single = np.where(rng.random(n) < 0.06, rng.random(n), rng.random(n) * 0.2).astype(np.float32)
    many = np.clip(np.convolve(rng.random(n) < 0.03, np.ones(int(rng.integers(1, 12))), "same") * rng.random(n), 0, 1)
    many = many.astype(np.float32)
    kw = {"threshold": 0.5, "transition_threshold": 0.5, "extend_threshold": 0.25, "min_transition_frames": 3,
          "min_peak": 0.2}
    cuts, transitions = transnet_boundaries(single, many, **kw)
    det = TransNetV2Detector(None, **kw)  # probabilities given by hand: no model runs
    det.n_frames = n
    k = 0
    while k < n:
        k = min(n, k + int(rng.integers(1, 80)))
        det._single, det._many = single[:k].tolist(), many[:k].tolist()
        frontier = det.settled()
        assert frontier <= k
        assert det.cuts == [c for c in cuts if c <= frontier]
        assert det.transitions == [t for t in transitions if t.end_frame <= frontier]
        assert all(c > frontier or c in det.cuts for c in cuts)


def test_a_pass_with_no_frames_settles_nothing():
    from curation.clip_analysis import SceneQualityPass

    params = types.SimpleNamespace(
        clip_quality=types.SimpleNamespace(analysis_width=64, sample_fps=5.0, window_frames=8, ocr_fps=1.0),
        clip_signatures=types.SimpleNamespace(backend="embedded", width=32, sample_fps=2.0, zooms=[1.0]),
        scene_clips=types.SimpleNamespace(transition_margin_frames=1))
    from fractions import Fraction

    quality = SceneQualityPass(params, Fraction(10), (64, 48), lambda: None)
    quality.finish(0, [], [])
    assert quality.rows == {} and quality.spilled_at is None
