import subprocess
import sys

import numpy as np
import pytest

from evaluation.errors import MetricUnavailableError
from evaluation.metrics import benchmark_values, build_metric, embedded_suite, run_metrics
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, not_computed
from evaluation.benchmark_scores import build_score_card

RAW = {
    "aesthetics": 5.5,
    "motion_smoothness": 0.9,
    "motion_amplitude": 0.3,
    "facesim": 0.6,
    "gme": 0.4,
    "nexus": 0.01,
    "natural": 3.8,
}


def benchmark_value(key: str, value: float) -> MetricValue:
    return MetricValue(MetricSpec(key, key, "pretrained", "OpenS2V", is_proxy=False), value)


def test_complete_benchmark_values_give_total_score():
    card = build_score_card([[benchmark_value(k, v) for k, v in RAW.items()]] * 2, "open", "v1.1")
    assert card.total_score == pytest.approx(0.516)
    assert card.partial.missing == () and card.videos == 2


def test_proxies_never_enter_the_total():
    proxy = MetricValue(
        MetricSpec("facesim_dlib_proxy", "facesim", "embedded", "proxy", True), 0.95
    )
    values = [benchmark_value(k, v) for k, v in RAW.items() if k != "facesim"] + [proxy]
    assert "facesim" not in benchmark_values(values)
    card = build_score_card([values], "open", "v1.1")
    assert card.total_score is None
    assert card.partial.missing == ("facesim",)
    assert card.proxies == {"facesim_dlib_proxy": 0.95}
    assert card.backends["facesim_dlib_proxy"] == "embedded"


def test_not_computed_metrics_are_listed_with_reasons():
    gme = MetricSpec("gme", "gme", "pretrained", "OpenS2V", False)
    card = build_score_card(
        [[not_computed(gme, "needs weights"), benchmark_value("aesthetics", 6.1)]]
    )
    assert card.not_computed == {"gme": "needs weights"}
    assert card.normalized == {"aesthetics": pytest.approx(0.7)}
    assert card.total_score is None


def test_duplicate_benchmark_values_are_an_error():
    with pytest.raises(ValueError, match="two benchmark values"):
        benchmark_values([benchmark_value("gme", 0.3), benchmark_value("gme", 0.4)])


def test_embedded_suite_on_a_clip(shifting_clip):
    values = run_metrics(shifting_clip(9, 2, 0), SampleContext(), embedded_suite())
    by_name = {v.spec.name: v for v in values}
    assert by_name["motion_amplitude"].value == pytest.approx(1.0, abs=0.05)
    assert by_name["motion_smoothness_flowwarp_proxy"].value > 0.99
    for name in (
        "aesthetics",
        "gme",
        "nexus",
        "natural",
        "facesim_dlib_proxy",
        "timeline_alignment_flow_proxy",
    ):
        assert by_name[name].value is None, name
    card = build_score_card([values])
    assert card.total_score is None
    assert set(card.not_computed) >= {"aesthetics", "gme", "nexus", "natural"}
    assert np.isclose(
        card.normalized["motion_amplitude"], by_name["motion_amplitude"].value, atol=1e-9
    )


def test_build_metric_by_name(monkeypatch):
    assert build_metric("motion_amplitude").spec.name == "motion_amplitude"
    assert build_metric("timeline_alignment_flow_proxy", min_motion=0.2).min_motion == 0.2
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MetricUnavailableError, match="OPENAI_API_KEY"):
        build_metric("natural")
    with pytest.raises(KeyError, match="unknown metric 'clip_score'"):
        build_metric("clip_score")
    with pytest.raises(MetricUnavailableError, match="q_align"):
        build_metric("motion_smoothness")


def test_importing_the_package_stays_light():
    code = (
        "import sys, evaluation, evaluation.cli, evaluation.metrics, evaluation.total_score, "
        "evaluation.submission, evaluation.packaging, evaluation.benchmark_scores, evaluation.benchmarks\n"
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'dlib', 'av') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_leaderboard_shows_raw_scales_as_they_are():
    from evaluation.leaderboard import build_leaderboard

    def metric(name, value, unit, key=None, proxy=False, scale="mean raw"):
        return {"name": name, "key": key, "backend": "pretrained", "definition": f"def of {name}",
                "is_proxy": proxy, "value": value, "scale": scale, "unit": unit, "videos_computed": 1,
                "reason": None}

    card = {
        "benchmark": "ipvg_track2", "model": "phase_1", "domain": "open", "version": "v1.1", "videos": 1,
        "metrics": [metric("videoscore_tva", 2.71, "VideoScore 1-4"), metric("clip_t_global", 0.247, "fraction"),
                    metric("natural_qwen_proxy", 3.5, "rating 1-5", key="natural", proxy=True),
                    metric("natural", 0.625, "rating 1-5", key="natural", scale="normalised")],
        "total_score": None, "total_score_missing": ["gme"], "partial": {"covered_weight": 0.2},
        "model_record": {"name": "phase_1", "kind": "phase", "variant": "reactid", "phase": 1, "global_step": 8},
    }
    md = build_leaderboard([card], {}, "reactid", {"identities": [], "checked": False}).markdown
    assert ("| videoscore_tva [pretrained] (VideoScore 1-4) | clip_t_global [pretrained] (%) | "
            "natural_qwen_proxy [pretrained, proxy] (rating 1-5) | natural [pretrained] (%) |") in md
    assert "| phase_1 | curriculum phase | 8 | 2.71 | 24.70 | 3.50 | 62.50 | n/a |" in md
    assert "mean raw value (VideoScore 1-4)" in md


DLIB = MetricSpec("facesim_dlib_proxy", "facesim", "embedded", "dlib proxy", is_proxy=True)
CUR = MetricSpec("facesim", "facesim", "pretrained", "OpenS2V", is_proxy=False)


def face_value(spec: MetricSpec, value: float, faces: int) -> MetricValue:
    return MetricValue(spec, value, f"{faces} of 32 sampled frames had a face", detections=faces)


def test_faceless_proxy_set_is_not_computed_not_zero():
    from evaluation.benchmark_scores import NOT_FACE_SAMPLE, faceless_sets_not_computed

    per_video = [
        [face_value(DLIB, 0.0, 0), benchmark_value("motion_amplitude", 0.4)],
        [not_computed(DLIB, NOT_FACE_SAMPLE), benchmark_value("motion_amplitude", 0.2)],
        [face_value(DLIB, 0.0, 0), benchmark_value("motion_amplitude", 0.3)],
    ]
    out = faceless_sets_not_computed(per_video)
    reason = "no face detected in any frame of 2 videos"
    assert [v[0].note for v in out] == [reason, NOT_FACE_SAMPLE, reason]
    assert all(v[0].value is None for v in out)
    assert [v[1] for v in out] == [v[1] for v in per_video]  # other metrics untouched
    card = build_score_card(out)
    assert "facesim_dlib_proxy" not in card.proxies
    assert card.not_computed["facesim_dlib_proxy"] == f"{reason}; {NOT_FACE_SAMPLE}"
    assert card.normalized["motion_amplitude"] == pytest.approx(0.3)


def test_one_video_with_a_face_keeps_the_opens2v_zero_of_the_others():
    from evaluation.benchmark_scores import faceless_sets_not_computed

    per_video = [[face_value(DLIB, 0.0, 0)], [face_value(DLIB, 0.8, 5)], [face_value(DLIB, 0.0, 0)]]
    out = faceless_sets_not_computed(per_video)
    assert out == [list(v) for v in per_video]
    assert build_score_card(out).proxies["facesim_dlib_proxy"] == pytest.approx(0.8 / 3)


def test_benchmark_facesim_keeps_its_zeros_for_totalscore():
    from evaluation.benchmark_scores import faceless_sets_not_computed

    per_video = [[face_value(CUR, 0.0, 0)], [face_value(CUR, 0.0, 0)]]
    out = faceless_sets_not_computed(per_video)
    assert out == [list(v) for v in per_video]
    assert build_score_card(out).normalized == {"facesim": 0.0}
