"""Metric backends behind one interface (:class:`~evaluation.metrics.base.VideoMetric`).

=====================================  ==========  =====================================
name                                   backend     definition
=====================================  ==========  =====================================
``motion_amplitude``                   embedded    OpenS2V (Farnebäck), the benchmark's own
``motion_smoothness_flowwarp_proxy``   embedded    VBench scoring, Farnebäck warping: proxy
``facesim_dlib_proxy``                 embedded    OpenS2V aggregation, dlib descriptors: proxy
``timeline_alignment_flow_proxy``      embedded    this project's timeline measure: proxy
``motion_smoothness``                  pretrained  OpenS2V v1.1 (Q-Align), needs ``q_align``
``motion_smoothness_vbench_amt``       pretrained  VBench (AMT-S), needs ``vbench``
``aesthetics``                         pretrained  OpenS2V (CLIP ViT-L/14 + LAION MLP)
``facesim``                            pretrained  OpenS2V (InsightFace + CurricularFace)
``gme``                                pretrained  OpenS2V (GME-Qwen2-VL)
``nexus``, ``natural``                 pretrained  not computed here (see ``unavailable``)
=====================================  ==========  =====================================

Importing this package loads numpy only; OpenCV, dlib and torch load when a metric runs or
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, VideoMetric


def _motion_amplitude() -> VideoMetric:
    from evaluation.metrics.motion import MotionAmplitude

    return MotionAmplitude()


def _flowwarp() -> VideoMetric:
    from evaluation.metrics.motion import MotionSmoothnessFlowWarpProxy

    return MotionSmoothnessFlowWarpProxy()


def _facesim_dlib(**options: Any) -> VideoMetric:
    from evaluation.metrics.facesim import FaceSimDlibProxy

    return FaceSimDlibProxy(**options)


def _timeline(**options: Any) -> VideoMetric:
    from evaluation.metrics.timeline import TimelineAlignmentFlowProxy

    return TimelineAlignmentFlowProxy(**options)


def _qalign(model_path: str = "q-future/one-align", device: str = "cpu") -> VideoMetric:
    from evaluation.metrics.qalign import MotionSmoothnessQAlign, QAlignScorer

    return MotionSmoothnessQAlign(QAlignScorer(model_path, device))


def _vbench_amt(config_path: str, checkpoint_path: str, device: str = "cpu") -> VideoMetric:
    from evaluation.metrics.motion import AMTInterpolator, MotionSmoothnessVBench

    return MotionSmoothnessVBench(AMTInterpolator(config_path, checkpoint_path, device))


def _aesthetics(**options: Any) -> VideoMetric:
    from evaluation.metrics.aesthetics import AestheticScorer

    return AestheticScorer(**options)


def _facesim_cur(weights_dir: str, device: str = "cpu") -> VideoMetric:
    from evaluation.metrics.curricularface import FaceSimCurricular

    return FaceSimCurricular.from_weights(weights_dir, device)


def _gme(num_frames: int = 32, **options: Any) -> VideoMetric:
    from evaluation.metrics.gme import GmeEmbedder, GmeScore

    return GmeScore(GmeEmbedder(**options), num_frames=num_frames)


def _unavailable(name: str) -> Callable[[], VideoMetric]:
    def build() -> VideoMetric:
        from evaluation.metrics.unavailable import unavailable_metrics

        return next(m for m in unavailable_metrics() if m.spec.name == name)

    return build


EMBEDDED_METRICS = (
    "motion_amplitude",
    "motion_smoothness_flowwarp_proxy",
    "facesim_dlib_proxy",
    "timeline_alignment_flow_proxy",
)

METRIC_BUILDERS: dict[str, Callable[..., VideoMetric]] = {
    "motion_amplitude": _motion_amplitude,
    "motion_smoothness_flowwarp_proxy": _flowwarp,
    "facesim_dlib_proxy": _facesim_dlib,
    "timeline_alignment_flow_proxy": _timeline,
    "motion_smoothness": _qalign,
    "motion_smoothness_vbench_amt": _vbench_amt,
    "aesthetics": _aesthetics,
    "facesim": _facesim_cur,
    "gme": _gme,
    "nexus": _unavailable("nexus"),
    "natural": _unavailable("natural"),
}


def build_metric(name: str, **options: Any) -> VideoMetric:
    """Build a metric by name, e.g. from ``params.yaml``.

    Args:
        name: a key of :data:`METRIC_BUILDERS` (the table above).
        **options: the backend's arguments (weights paths, device, frame counts).

    Returns:
        The metric; pretrained ones load their weights here.

    Raises:
        KeyError: for an unknown name.
        MetricUnavailableError: when a pretrained backend's package is missing.
    """
    if name not in METRIC_BUILDERS:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRIC_BUILDERS)}")
    return METRIC_BUILDERS[name](**options)


def embedded_suite() -> list[VideoMetric]:
    """Every metric that runs on a CPU with nothing downloaded, plus "not computed" entries.

    Returns:
        Motion amplitude, the flow-warp smoothness proxy, the dlib FaceSim proxy, the
        timeline proxy, and not-computed stand-ins for Aesthetics, GME, Nexus and Natural.
    """
    from evaluation.metrics.unavailable import unavailable_metrics

    return [build_metric(name) for name in EMBEDDED_METRICS] + list(unavailable_metrics())


def run_metrics(
    frames: np.ndarray, context: SampleContext, metrics: Iterable[VideoMetric]
) -> list[MetricValue]:
    """Run each metric on one decoded video; a metric that fails raises, it is not zeroed.

    Args:
        frames: uint8 (T, H, W, 3) RGB, every frame.
        context: prompt, references, timeline, fps.
        metrics: the metrics to run.

    Returns:
        One value per metric, in order.
    """
    return [metric(frames, context) for metric in metrics]


def benchmark_values(values: Iterable[MetricValue]) -> dict[str, float]:
    """Raw values that may enter OpenS2V normalisation: computed, non-proxy, keyed by metric key.

    Args:
        values: one video's metric values.

    Returns:
        Metric key to raw value.

    Raises:
        ValueError: when two non-proxy values claim the same key.
    """
    out: dict[str, float] = {}
    for value in values:
        if value.value is None or value.spec.is_proxy or value.spec.key is None:
            continue
        if value.spec.key in out:
            raise ValueError(f"two benchmark values for {value.spec.key!r}")
        out[value.spec.key] = value.value
    return out


__all__ = [
    "MetricSpec",
    "MetricValue",
    "SampleContext",
    "VideoMetric",
    "EMBEDDED_METRICS",
    "METRIC_BUILDERS",
    "benchmark_values",
    "build_metric",
    "embedded_suite",
    "run_metrics",
]
