"""The metric interface: what a metric is, what it returns, and what it was given.

Every number carries its :class:`MetricSpec`: the metric's name, the backend that produced it
(``embedded`` runs on a CPU with nothing downloaded, ``pretrained`` loads named weights), whose
definition it computes, and whether it is a proxy. A proxy never stands in for the benchmark's
metric: :func:`evaluation.metrics.benchmark_values` refuses to hand proxies to TotalScore.
A metric that cannot run reports ``value=None`` with the reason — never a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from evaluation.benchmarks import TimelineEvent

Backend = Literal["embedded", "pretrained"]


@dataclass(frozen=True)
class MetricSpec:
    """Identity of a metric implementation.

    Attributes:
        name: reported with every value, e.g. ``motion_smoothness_flowwarp_proxy``.
        key: the OpenS2V score key it measures (``total_score.METRIC_KEYS``), or None for a
            measure outside OpenS2V.
        backend: ``embedded`` or ``pretrained``.
        definition: whose definition it computes, e.g. ``OpenS2V-Eval v1.1 get_motion_amplitude``.
        is_proxy: True when it approximates ``key`` with a different method.
        unit: what a raw value is: ``fraction`` (a share or a cosine, shown in % by reports)
            or a named scale such as ``rating 1-5`` (shown as is).
    """

    name: str
    key: str | None
    backend: Backend
    definition: str
    is_proxy: bool
    unit: str = "fraction"


@dataclass(frozen=True)
class MetricValue:
    """One metric's result for one video; ``value`` is None when it was not computed.

    Attributes:
        spec: the metric that produced it.
        value: the raw value, or None.
        note: how it was computed, or why it was not.
        detections: for a metric that first detects its subject in sampled frames, in how
            many it found one (FaceSim: frames with a detected face); None for the others.
            A value resting on no detection at all is a rule's default (FaceSim's 0), which
            :func:`evaluation.benchmark_scores.faceless_sets_not_computed` tells apart from a score.
    """

    spec: MetricSpec
    value: float | None
    note: str = ""
    detections: int | None = None

    @property
    def computed(self) -> bool:
        return self.value is not None

    def __str__(self) -> str:
        tag = f"{self.spec.backend}{', proxy' if self.spec.is_proxy else ''}"
        if self.value is None:
            return f"{self.spec.name}: not computed [{tag}] ({self.note})"
        return f"{self.spec.name}={self.value:.4f} [{tag}]"


def not_computed(spec: MetricSpec, reason: str) -> MetricValue:
    """A result that says why there is no number."""
    return MetricValue(spec, None, reason)


@dataclass(frozen=True)
class SampleContext:
    """What a metric may need besides the frames.

    Attributes:
        prompt: the text prompt (global prompt for timeline samples).
        reference_images: RGB uint8 (H, W, 3) reference images, the face reference first
            when the benchmark names one.
        events: timeline of sub-actions in seconds (timeline benchmarks only).
        fps: frame rate of the generated video (to map seconds to frames).
        reference_labels: the benchmark's class label of each reference image, in the order
            of ``reference_images`` (OpenS2V ``class_label``; NexusScore needs them).
        sample_id: the benchmark entry's id (OpenS2V's NexusScore treats ``face`` / ``human``
            entries differently).
    """

    prompt: str = ""
    reference_images: tuple[np.ndarray, ...] = field(default=())
    events: tuple[TimelineEvent, ...] = ()
    fps: float = 16.0
    reference_labels: tuple[str, ...] = ()
    sample_id: str = ""


class VideoMetric(Protocol):
    """A metric over one generated video."""

    spec: MetricSpec

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        """Score one video.

        Args:
            frames: uint8 (T, H, W, 3) RGB, every frame of the video.
            context: prompt, references, timeline and fps of the sample.

        Returns:
            A :class:`MetricValue` carrying this metric's spec.
        """
        ...


def check_frames(frames: np.ndarray, minimum: int = 1) -> np.ndarray:
    """Validate a (T, H, W, 3) uint8 RGB clip with at least ``minimum`` frames."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (T, H, W, 3) RGB, got {frames.dtype} {frames.shape}"
        )
    if frames.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} frames, got {frames.shape[0]}")
    return frames
