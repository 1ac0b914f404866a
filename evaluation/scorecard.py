"""A model's benchmark result: OpenS2V metrics, TotalScore when complete, proxies apart.

Only values computed with a metric's benchmark definition (``is_proxy=False``) are normalised
and can make a TotalScore; proxies are reported by name with their mean raw value and never
enter the total. When a weighted metric is missing there is no TotalScore, only the
:class:`~evaluation.scores.PartialScore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.errors import IncompleteMetricsError
from evaluation.metrics import benchmark_values
from evaluation.metrics.base import MetricValue
from evaluation.scores import PartialScore, aggregate_videos, partial_score, total_score


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
