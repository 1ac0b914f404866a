"""A metric added to the registry (evaluation.metrics.METRIC_BUILDERS) from outside the
package runs through the benchmark_scores logic with no other change: built by name, run on
each video, written as rows, reported on the score card with its backend."""

from __future__ import annotations

import numpy as np

from evaluation.benchmark_scores import build_metrics, score_card_json, score_rows
from evaluation.metrics import METRIC_BUILDERS, run_metrics
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames

SPEC = MetricSpec("mean_brightness_test", None, "embedded", "this test's mean pixel brightness", is_proxy=False)


class MeanBrightness:
    """Mean pixel value over all frames, as a fraction of 255."""

    spec = SPEC

    def __init__(self, scale: float = 255.0) -> None:
        self.scale = scale

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return MetricValue(SPEC, float(check_frames(frames).mean() / self.scale), "all frames")


def test_a_registered_metric_flows_through_scoring(monkeypatch):
    monkeypatch.setitem(METRIC_BUILDERS, SPEC.name, MeanBrightness)
    metrics = build_metrics([SPEC.name], {SPEC.name: {"scale": 255.0}}, timeline=False)
    assert isinstance(metrics[0], MeanBrightness)
    videos = [np.full((4, 8, 8, 3), level, np.uint8) for level in (51, 102)]
    per_video = [run_metrics(frames, SampleContext(), metrics) for frames in videos]
    rows = [r for r in score_rows("bench", "model", ["a", "b"], per_video) if r["metric"] == SPEC.name]
    assert [round(r["value"], 3) for r in rows] == [0.2, 0.4] and {r["backend"] for r in rows} == {"embedded"}
    card = score_card_json("bench", "model", per_video, "open", "v1.1", {"name": "model"})
    entry = next(m for m in card["metrics"] if m["name"] == SPEC.name)
    # a measure outside OpenS2V (key None) is reported by its mean raw value, never in TotalScore
    assert entry["scale"] == "mean raw" and round(entry["value"], 3) == 0.3
    assert card["total_score"] is None
