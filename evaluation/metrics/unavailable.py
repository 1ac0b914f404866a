"""Metrics with no embedded backend: they report "not computed" with the reason, never a number.

* GmeScore — GME-Qwen2-VL-7B text-to-frame similarity; the pretrained backend is
  :mod:`.gme`, which needs the 7B weights.
* NexusScore — YOLO-World detection (mmdet/mmyolo, not transformers) plus GME similarity of
  the crops (``eval/get_nexusscore.py``).
* NaturalScore — GPT-4o rates realism 1-5 from 16 frames, three runs averaged
  (``eval/get_naturalscore.py``): a network service.
* Aesthetics without weights — the CLIP + LAION head is in :mod:`.aesthetics` (pretrained).
"""

from __future__ import annotations

import numpy as np

from evaluation.metrics.aesthetics import AestheticScorer
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, not_computed
from evaluation.metrics.gme import GmeScore

GME = GmeScore.spec
NEXUS = MetricSpec(
    "nexus",
    "nexus",
    "pretrained",
    "OpenS2V-Eval v1.1 get_nexusscore.py (YOLO-World + GME)",
    is_proxy=False,
)
NATURAL = MetricSpec(
    "natural",
    "natural",
    "pretrained",
    "OpenS2V-Eval v1.1 get_naturalscore.py (GPT-4o rating, 3 runs)",
    is_proxy=False,
)
AESTHETICS = AestheticScorer.spec

REASONS = {
    "gme": "needs GME-Qwen2-VL-7B weights (pretrained backend); no embedded backend",
    "nexus": "needs YOLO-World (mmdet/mmyolo) and GME-Qwen2-VL-7B; no embedded backend",
    "natural": "needs the GPT-4o API (network); no embedded backend",
    "aesthetics": "needs CLIP ViT-L/14 and the LAION aesthetic MLP weights (pretrained backend)",
}


class NotComputedMetric:
    """Stands in for a metric that cannot run here, so reports list it with its reason."""

    def __init__(self, spec: MetricSpec, reason: str) -> None:
        self.spec = spec
        self.reason = reason

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return not_computed(self.spec, self.reason)


def unavailable_metrics() -> list[NotComputedMetric]:
    """The OpenS2V metrics the embedded suite cannot compute."""
    return [
        NotComputedMetric(spec, REASONS[spec.name]) for spec in (AESTHETICS, GME, NEXUS, NATURAL)
    ]
