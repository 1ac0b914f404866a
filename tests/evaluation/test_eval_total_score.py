import math

import pytest

from evaluation.errors import IncompleteMetricsError
from evaluation.total_score import (
    aggregate_videos,
    normalize_metrics,
    normalize_value,
    partial_score,
    total_score,
    weights_for,
)

NORMALIZED = {
    "aesthetics": 0.5,
    "motion_smoothness": 0.9,
    "motion_amplitude": 0.3,
    "facesim": 0.6,
    "gme": 0.4,
    "nexus": 0.2,
    "natural": 0.7,
}


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("aesthetics", 5.5, 0.5),
        ("aesthetics", 3.0, 0.0),
        ("aesthetics", 8.2, 1.0),
        ("motion_amplitude", -0.3, 0.3),
        ("motion_amplitude", 1.7, 1.0),
        ("motion_smoothness", 0.9, 0.9),
        ("facesim", 0.6, 0.6),
        ("facesim", 1.2, 1.0),
        ("gme", 0.4, 0.4),
        ("gme", 1.3, 1.0),
        # capped from above only, as merge_result.py: negatives pass through unchanged
        ("gme", -0.07, -0.07),
        ("gme", -1.0, -1.0),
        ("facesim", -0.2, -0.2),
        ("nexus", -0.01, -0.2),  # min(-0.01, 0.05) / 0.05
        ("nexus", 0.01, 0.2),
        ("nexus", 0.08, 1.0),
        ("natural", 3.8, 0.7),
        ("natural", 0.5, 0.0),
        ("natural", 6.0, 1.0),
    ],
)
def test_normalize_value(key, raw, expected):
    assert normalize_value(key, raw) == pytest.approx(expected)


def test_normalize_metrics_maps_every_key():
    raw = {
        "aesthetics": 5.5,
        "motion_smoothness": 0.9,
        "motion_amplitude": 0.3,
        "facesim": 0.6,
        "gme": 0.4,
        "nexus": 0.01,
        "natural": 3.8,
    }
    assert normalize_metrics(raw) == pytest.approx(NORMALIZED)


@pytest.mark.parametrize(
    ("key", "raw", "error"),
    [
        ("gme", -1.2, ValueError),  # below any cosine
        ("nexus", -1.5, ValueError),
        ("facesim", -1.01, ValueError),
        ("gme", math.nan, ValueError),
        ("aesthetic", 5.0, KeyError),
    ],
)
def test_normalize_rejects(key, raw, error):
    with pytest.raises(error):
        normalize_value(key, raw)


@pytest.mark.parametrize(
    ("domain", "version", "expected"),
    [
        # 0.16*.5 + 0.06*.9 + 0.02*.3 + 0.20*.6 + 0.12*.4 + 0.20*.2 + 0.24*.7
        ("open", "v1.1", 0.516),
        ("single", "v1.1", 0.516),
        # 0.18*.5 + 0.09*.9 + 0.03*.3 + 0.25*.6 + 0.15*.4 + 0.30*.7 (no nexus)
        ("human", "v1.1", 0.600),
        # 0.12*.5 + 0.12*motion(=amplitude .3) + 0.20*.6 + 0.12*.4 + 0.20*.2 + 0.24*.7
        ("open", "v1.0", 0.472),
        ("single", "v1.0", 0.472),
        # 0.15*.5 + 0.15*.3 + 0.25*.6 + 0.15*.4 + 0.30*.7
        ("human", "v1.0", 0.540),
    ],
)
def test_total_score_hand_computed(domain, version, expected):
    assert total_score(NORMALIZED, domain, version) == pytest.approx(expected)


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
@pytest.mark.parametrize("domain", ["open", "single", "human"])
def test_weights_sum_to_one(domain, version):
    assert sum(weights_for(domain, version).values()) == pytest.approx(1.0)


def test_v10_ignores_smoothness_and_human_ignores_nexus():
    changed = {**NORMALIZED, "motion_smoothness": 0.0, "nexus": 1.0}
    assert total_score(changed, "human", "v1.0") == pytest.approx(0.540)
    assert "motion_smoothness" not in weights_for("open", "v1.0")


def test_missing_metric_is_not_a_total_score():
    partial = {k: v for k, v in NORMALIZED.items() if k not in ("gme", "natural")}
    with pytest.raises(IncompleteMetricsError, match=r"missing \['gme', 'natural'\]"):
        total_score(partial)
    result = partial_score(partial, "open", "v1.1")
    assert result.missing == ("gme", "natural")
    assert result.covered_weight == pytest.approx(0.64)
    assert result.value == pytest.approx(0.516 - 0.12 * 0.4 - 0.24 * 0.7)


def test_human_total_does_not_need_nexus():
    without_nexus = {k: v for k, v in NORMALIZED.items() if k != "nexus"}
    assert total_score(without_nexus, "human") == pytest.approx(0.600)


@pytest.mark.parametrize(
    ("normalized", "error"),
    [
        ({**NORMALIZED, "facesim": 1.4}, ValueError),
        ({**NORMALIZED, "aesthetics": -0.1}, ValueError),  # only cosine scores go below 0
        ({**NORMALIZED, "gme": -1.1}, ValueError),
        ({**NORMALIZED, "clip": 0.3}, KeyError),
    ],
)
def test_total_score_rejects_bad_input(normalized, error):
    with pytest.raises(error):
        total_score(normalized)


def test_unknown_domain_or_version():
    with pytest.raises(ValueError, match="no OpenS2V weights"):
        total_score(NORMALIZED, "animal")
    with pytest.raises(ValueError, match="no OpenS2V weights"):
        total_score(NORMALIZED, "open", "v2")


def test_aggregate_clamps_per_video_and_skips_zero_nexus():
    videos = [
        {"aesthetics": 3.0, "nexus": 0.0, "motion_amplitude": -2.0},
        {"aesthetics": 6.0, "nexus": 0.02, "motion_amplitude": 0.5},
    ]
    result = aggregate_videos(videos)
    # per-video clamp: 4 and 6 -> mean 5 -> 1/3 (clamping the mean 4.5 would give 1/6)
    assert result["aesthetics"] == pytest.approx(1 / 3)
    assert result["nexus"] == pytest.approx(0.4)
    assert result["motion_amplitude"] == pytest.approx((1.0 + 0.5) / 2)


def test_negative_gme_and_nexus_lower_the_total_as_in_merge_result():
    # a noise video's GmeScore and a mismatched crop's NexusScore below 0 pass through
    videos = [
        {"gme": -0.2, "nexus": -0.01, "facesim": 0.5},
        {"gme": 0.4, "nexus": 0.03, "facesim": 0.7},
    ]
    result = aggregate_videos(videos)
    assert result["gme"] == pytest.approx((-0.2 + 0.4) / 2)  # 0.1
    assert result["nexus"] == pytest.approx((-0.2 + 0.6) / 2)  # 0.2
    assert result["facesim"] == pytest.approx(0.6)
    # every video negative: the mean is negative too, not 0
    assert aggregate_videos([{"gme": -0.1}, {"gme": -0.3}])["gme"] == pytest.approx(-0.2)
    normalized = {**NORMALIZED, "gme": -0.05, "nexus": -0.2}
    # 0.16*.5 + 0.06*.9 + 0.02*.3 + 0.20*.6 + 0.12*(-.05) + 0.20*(-.2) + 0.24*.7
    assert total_score(normalized, "open", "v1.1") == pytest.approx(0.382)
    # 0.18*.5 + 0.09*.9 + 0.03*.3 + 0.25*.6 + 0.15*(-.05) + 0.30*.7 (no nexus)
    assert total_score(normalized, "human", "v1.1") == pytest.approx(0.5325)
    partial = partial_score({"gme": -0.05, "natural": 0.7}, "open", "v1.1")
    assert partial.value == pytest.approx(0.12 * -0.05 + 0.24 * 0.7)
