"""Score one (benchmark, model): per-video metric rows and the model's score card.

The metrics are the ones ``evaluation.metrics.names`` lists, built with their options.
Every OpenS2V score that no listed metric computes with the benchmark's own definition is
added as a "not computed" entry naming why, so a report shows each of the seven scores
either with its value and backend or with the reason it has none. The timeline measure runs
on timeline benchmarks only; FaceSim only where the benchmark scores faces (OpenS2V: the
face and human samples).

The score card holds only values computed with a metric's benchmark definition
(``is_proxy=False``) normalised, and a TotalScore when they are complete; proxies are
reported by name with their mean raw value and never enter the total. When a weighted metric
is missing there is no TotalScore, only the :class:`~evaluation.total_score.PartialScore`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from evaluation.errors import IncompleteMetricsError
from evaluation.generation import GenerationRequest, video_key
from evaluation.metrics import benchmark_values
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, VideoMetric, not_computed
from evaluation.total_score import METRIC_KEYS, PartialScore, aggregate_videos, partial_score, total_score

SCORE_ROWS = pa.schema([
    ("benchmark", pa.string()), ("model", pa.string()), ("sample_id", pa.string()),
    ("metric", pa.string()), ("metric_key", pa.string()), ("backend", pa.string()),
    ("definition", pa.string()), ("is_proxy", pa.bool_()),
    ("value", pa.float64()),  # raw value; null when not computed
    ("note", pa.string()),
])
NOT_FACE_SAMPLE = "OpenS2V scores FaceSim only for face and human samples"


def build_metrics(names: Sequence[str], options: Mapping[str, Mapping[str, Any]], *, timeline: bool) -> list:
    """The configured metrics plus "not computed" stand-ins for uncovered OpenS2V scores.

    Args:
        names: metric names (``evaluation.metrics.METRIC_BUILDERS`` keys), in report order.
        options: per-metric backend arguments.
        timeline: whether the benchmark has timelines (the timeline measure runs only then).

    Returns:
        Metrics (``VideoMetric``) in order: configured ones, then stand-ins by OpenS2V key.
    """
    from evaluation.metrics import TIMELINE_METRICS
    from evaluation.metrics.unavailable import NotComputedMetric

    metrics = [_built(n, json.dumps(options.get(n, {}), sort_keys=True))
               for n in names if timeline or n not in TIMELINE_METRICS]
    covered = {m.spec.key for m in metrics if m.spec.key is not None and not m.spec.is_proxy}
    for key in METRIC_KEYS:
        if key not in covered:
            spec, reason = _benchmark_definition(key)
            metrics.append(NotComputedMetric(spec, reason))
    return metrics


@functools.lru_cache(maxsize=16)
def _built(name: str, options_json: str) -> VideoMetric:
    """A metric built once per process and options: loading detectors and weights is the slow part."""
    from evaluation.metrics import build_metric

    return build_metric(name, **json.loads(options_json))


def score_videos(
    store: Any, requests: Sequence[GenerationRequest], prefix: str, metrics: Sequence[VideoMetric],
) -> tuple[list[list[MetricValue]], list[str]]:
    """Run the metrics on every generated video of a benchmark.

    Returns:
        (metric values per video, sample id per video), in request order.

    Raises:
        VideoDecodeError: a video is missing frames or cannot be decoded.
        StorageError: a video or reference image is missing.
    """
    from core.progress import report
    from evaluation.video import probe_video, read_frames
    from core.images import decode_png

    per_video: list[list[MetricValue]] = []
    for n, request in enumerate(requests):
        report("benchmark_scores", n, len(requests), request.sample_id)
        with store.local_path(video_key(prefix, request.sample_id)) as path:
            fps = probe_video(path).fps
            frames = read_frames(path)
        context = SampleContext(
            prompt=request.prompt,
            reference_images=tuple(decode_png(store.get_bytes(k)) for k in request.reference_keys),
            events=() if request.timeline is None else request.timeline.actions,
            fps=fps,
            reference_labels=tuple(request.subjects),
            sample_id=request.sample_id,
        )
        values = []
        for metric in metrics:
            if metric.spec.key == "facesim" and not request.scores_face:
                values.append(not_computed(metric.spec, NOT_FACE_SAMPLE))
            else:
                values.append(metric(frames, context))
        per_video.append(values)
    report("benchmark_scores", len(requests), len(requests), "done")
    return faceless_sets_not_computed(per_video), [r.sample_id for r in requests]


def faceless_sets_not_computed(per_video: Sequence[Sequence[MetricValue]]) -> list[list[MetricValue]]:
    """A FaceSim proxy that found no face in any frame of any video is not computed, not 0.

    OpenS2V scores a video without a face 0, and that rule stays wherever some video of the
    set has a face. When none has one (``detections == 0`` for every video it scored), the
    zeros measure the detector, not the model: each of those values becomes "not computed"
    with the reason "no face detected in any frame of N videos". Videos the metric did not
    score (not a face sample) keep their own reason. The benchmark's own FaceSim
    (``is_proxy=False``) keeps its zeros: TotalScore is defined on them.

    Args:
        per_video: metric values per video, the same metrics in the same order for each.

    Returns:
        The values, with the faceless proxy values replaced.
    """
    out = [list(values) for values in per_video]
    if not out:
        return out
    for m, spec in enumerate(v.spec for v in out[0]):
        if spec.key != "facesim" or not spec.is_proxy:
            continue
        scored = [values[m] for values in out if values[m].value is not None]
        if scored and all(v.detections == 0 for v in scored):
            reason = f"no face detected in any frame of {len(scored)} videos"
            for values in out:
                if values[m].value is not None:
                    values[m] = not_computed(spec, reason)
    return out


def score_rows(benchmark: str, model: str, sample_ids: Sequence[str], per_video: Sequence[Sequence[MetricValue]]
               ) -> list[dict[str, Any]]:
    """One row per (video, metric) in :data:`SCORE_ROWS` shape."""
    return [
        {
            "benchmark": benchmark, "model": model, "sample_id": sid, "metric": v.spec.name,
            "metric_key": v.spec.key, "backend": v.spec.backend, "definition": v.spec.definition,
            "is_proxy": v.spec.is_proxy, "value": v.value, "note": v.note,
        }
        for sid, values in zip(sample_ids, per_video, strict=True) for v in values
    ]


@dataclass(frozen=True)
class ScoreCard:
    """Benchmark result of one model.

    Attributes:
        domain, version: the OpenS2V weights used.
        normalized: benchmark-definition metrics, normalised, by metric key.
        total_score: OpenS2V TotalScore, or None when a weighted metric is missing.
        partial: weighted sum over what is present, with the missing keys.
        proxies: proxy metric name to mean raw value over videos.
        not_computed: metric name to why it has no value for any video (the distinct
            reasons of its videos, joined with "; ").
        backends: metric name to the backend that produced it.
        videos: number of videos scored.
    """

    domain: str
    version: str
    normalized: dict[str, float]
    total_score: float | None
    partial: PartialScore
    proxies: dict[str, float]
    not_computed: dict[str, str]
    backends: dict[str, str]
    videos: int


def build_score_card(
    per_video: Sequence[Sequence[MetricValue]], domain: str = "open", version: str = "v1.1"
) -> ScoreCard:
    """Aggregate per-video metric values into a :class:`ScoreCard`.

    Args:
        per_video: the metric values of each video (same metrics for every video).
        domain: ``open``, ``single`` or ``human``.
        version: ``v1.0`` or ``v1.1``.

    Returns:
        The score card.
    """
    normalized = aggregate_videos([benchmark_values(values) for values in per_video])
    try:
        total: float | None = total_score(normalized, domain, version)
    except IncompleteMetricsError:
        total = None
    proxy_raw: dict[str, list[float]] = {}
    reasons: dict[str, dict[str, None]] = {}  # distinct reasons in order of appearance
    computed: set[str] = set()
    backends: dict[str, str] = {}
    for values in per_video:
        for value in values:
            backends[value.spec.name] = value.spec.backend
            if value.value is None:
                reasons.setdefault(value.spec.name, {})[value.note] = None
                continue
            computed.add(value.spec.name)
            if value.spec.is_proxy or value.spec.key is None:
                proxy_raw.setdefault(value.spec.name, []).append(value.value)
    return ScoreCard(
        domain=domain,
        version=version,
        normalized=normalized,
        total_score=total,
        partial=partial_score(normalized, domain, version),
        proxies={name: float(np.mean(v)) for name, v in proxy_raw.items()},
        not_computed={n: "; ".join(r) for n, r in reasons.items() if n not in computed},
        backends=backends,
        videos=len(per_video),
    )


def score_card_json(
    benchmark: str, model: str, per_video: Sequence[Sequence[MetricValue]], domain: str, version: str,
    model_record: Mapping[str, Any],
) -> dict[str, Any]:
    """The benchmark-level result of one model, every value with its backend.

    ``metrics`` lists each metric once: a benchmark-definition metric with its normalised
    OpenS2V value (``scale: normalised``), a proxy with its mean raw value
    (``scale: mean raw``), a metric without a value with the reason. ``total_score`` is
    OpenS2V's TotalScore only when every weighted score is present, else None with what is
    missing; ``partial`` is the weighted sum over what is present, labelled as not TotalScore.
    """
    card = build_score_card(per_video, domain, version)
    specs: dict[str, MetricSpec] = {}
    computed: dict[str, int] = {}
    for values in per_video:
        for v in values:
            specs.setdefault(v.spec.name, v.spec)
            computed[v.spec.name] = computed.get(v.spec.name, 0) + (v.value is not None)
    metrics = []
    for name, spec in specs.items():
        benchmark_def = spec.key is not None and not spec.is_proxy
        value = card.normalized.get(spec.key) if benchmark_def else card.proxies.get(name)
        metrics.append({
            "name": name, "key": spec.key, "backend": spec.backend, "definition": spec.definition,
            "is_proxy": spec.is_proxy, "value": value, "unit": spec.unit,
            "scale": "normalised" if benchmark_def else "mean raw",
            "videos_computed": computed[name], "reason": card.not_computed.get(name),
        })
    return {
        "benchmark": benchmark,
        "model": model,
        "model_record": dict(model_record),
        "domain": domain,
        "version": version,
        "videos": card.videos,
        "metrics": metrics,
        "total_score": card.total_score,
        "total_score_missing": list(card.partial.missing),
        "partial": {**asdict(card.partial), "label": "weighted sum over present metrics; not TotalScore"},
    }


def _benchmark_definition(key: str) -> tuple[MetricSpec, str]:
    """The benchmark's own metric for an OpenS2V key, and why it was not computed here."""
    from evaluation.metrics.curricularface import FaceSimCurricular
    from evaluation.metrics.motion import MotionAmplitude
    from evaluation.metrics.qalign import MotionSmoothnessQAlign
    from evaluation.metrics.unavailable import REASONS, unavailable_metrics

    if key in REASONS:
        spec = next(m.spec for m in unavailable_metrics() if m.spec.key == key)
        return spec, REASONS[key]
    spec = {"motion_smoothness": MotionSmoothnessQAlign.spec, "facesim": FaceSimCurricular.spec,
            "motion_amplitude": MotionAmplitude.spec}[key]
    return spec, f"{spec.name!r} ({spec.backend} backend) is not in evaluation.metrics.names"
