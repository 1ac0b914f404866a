import subprocess
import sys

import numpy as np
import pytest

from evaluation.errors import MetricUnavailableError
from evaluation.metrics import benchmark_values, build_metric, embedded_suite, run_metrics
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, not_computed
from evaluation.scorecard import build_score_card

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


def test_build_metric_by_name():
    assert build_metric("motion_amplitude").spec.name == "motion_amplitude"
    assert build_metric("timeline_alignment_flow_proxy", min_motion=0.2).min_motion == 0.2
    natural = build_metric("natural")
    assert natural(np.zeros((2, 4, 4, 3), np.uint8), SampleContext()).value is None
    with pytest.raises(KeyError, match="unknown metric 'clip_score'"):
        build_metric("clip_score")
    with pytest.raises(MetricUnavailableError, match="q_align"):
        build_metric("motion_smoothness")


def test_importing_the_package_stays_light():
    code = (
        "import sys, evaluation, evaluation.cli, evaluation.metrics, evaluation.scores, "
        "evaluation.submission, evaluation.packaging, evaluation.scorecard, evaluation.benchmarks\n"
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'dlib', 'av') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
