"""Stand-ins for OpenS2V metrics that are not configured: they report "not computed" with the
reason, never a number.

Each has a pretrained backend that runs once it is listed in ``evaluation.metrics.names``
with its options; none has an embedded one:

* GmeScore — :mod:`.gme`, needs the GME-Qwen2-VL-7B weights.
* NexusScore — :mod:`.nexus`: the benchmark's YOLO-World image-prompt detector needs mmyolo
  (not installable here: torchvision); the Grounding DINO / ultralytics detectors are proxies.
* NaturalScore — :mod:`.natural`: GPT-4o through a chat API (``OPENAI_API_KEY``); other API
  models and a local Qwen2.5-VL are proxies.
* Aesthetics — :mod:`.aesthetics`, needs CLIP ViT-L/14 and the LAION aesthetic MLP weights.
"""

from __future__ import annotations

import numpy as np

from evaluation.metrics.aesthetics import AestheticScorer
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, not_computed
from evaluation.metrics.gme import GmeScore
from evaluation.metrics.natural import BENCHMARK_MODEL, api_spec
from evaluation.metrics.nexus import BENCHMARK_SPEC

GME = GmeScore.spec
NEXUS = BENCHMARK_SPEC
NATURAL = api_spec(BENCHMARK_MODEL)
AESTHETICS = AestheticScorer.spec

REASONS = {
    "gme": "needs GME-Qwen2-VL-7B weights (pretrained backend 'gme'); no embedded backend",
    "nexus": "needs YOLO-World's image-prompt detector (mmyolo, which needs torchvision) and "
    "GME-Qwen2-VL-7B (pretrained backend 'nexus'; 'nexus_grounding_dino_proxy' is a proxy); "
    "no embedded backend",
    "natural": f"needs {BENCHMARK_MODEL} through the chat API with OPENAI_API_KEY (backend "
    "'natural'; 'natural_qwen_proxy' is a proxy); no embedded backend",
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
