"""Metric backends behind one interface (:class:`~evaluation.metrics.base.VideoMetric`).

====================================  ==========  ==============================================
name                                  backend     definition
====================================  ==========  ==============================================
``motion_amplitude``                  embedded    OpenS2V (Farnebäck), the benchmark's own
``motion_smoothness_flowwarp_proxy``  embedded    VBench scoring, Farnebäck warping: proxy
``facesim_dlib_proxy``                embedded    OpenS2V aggregation, dlib descriptors: proxy
``timeline_alignment_flow_proxy``     embedded    this project's timeline measure: proxy
``motion_smoothness``                 pretrained  OpenS2V v1.1 (Q-Align), needs ``q_align``
``motion_smoothness_vbench_amt``      pretrained  VBench (AMT-S), needs ``vbench``
``aesthetics``                        pretrained  OpenS2V (CLIP ViT-L/14 + LAION MLP)
``facesim``                           pretrained  OpenS2V (InsightFace + CurricularFace)
``gme``                               pretrained  OpenS2V (GME-Qwen2-VL)
``nexus``                             pretrained  OpenS2V (YOLO-World image prompt + GME), mmyolo
``nexus_grounding_dino_proxy``        pretrained  NexusScore with Grounding DINO: proxy
``nexus_yolo_world_text_proxy``       pretrained  NexusScore, ultralytics YOLO-World text: proxy
``natural``                           pretrained  OpenS2V (GPT-4o through a chat API, 3 runs)
``natural_api_proxy``                 pretrained  OpenS2V's prompt, another API model: proxy
``natural_qwen_proxy``                pretrained  OpenS2V's prompt, local Qwen2.5-VL: proxy
``clip_t_global``                     pretrained  CLIP-T, prompt vs frames (ReactID Table 4)
``clip_t_subaction``                  pretrained  CLIP-T per timeline sub-action window
``videoscore_tva``                    pretrained  VideoScore TVA (ReactID Table 4)
``videoscore_tc``                     pretrained  VideoScore TC (ReactID Table 4)
``videoscore_tva_subaction``          pretrained  VideoScore TVA per timeline sub-action window
====================================  ==========  ==============================================

A benchmark score no listed metric computes with its own definition is reported "not
computed" with the reason (``unavailable``, ``evaluation.benchmark_scores.build_metrics``).

Pretrained backends that share weights (GME for ``gme`` and NexusScore, CLIP for both CLIP-T
metrics, VideoScore for its three metrics) are loaded once per process and set of options.

Importing this package loads numpy only; OpenCV, dlib and torch load when a metric runs or
is built.
"""

from __future__ import annotations

import json
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


_SHARED: dict[tuple[str, str], Any] = {}


def _shared(kind: str, factory: Callable[..., Any], **options: Any) -> Any:
    """One loaded model per (kind, options) in this process: metrics that use the same weights
    (GME for GmeScore and NexusScore, CLIP for both CLIP-T metrics) share them."""
    key = (kind, json.dumps(options, sort_keys=True, default=str))
    if key not in _SHARED:
        _SHARED[key] = factory(**options)
    return _SHARED[key]


def _gme_embedder(**options: Any) -> Any:
    from evaluation.metrics.gme import GmeEmbedder

    return _shared("gme", GmeEmbedder, **options)


def _gme(num_frames: int = 32, **options: Any) -> VideoMetric:
    from evaluation.metrics.gme import GmeScore

    return GmeScore(_gme_embedder(**options), num_frames=num_frames)


def _nexus(detector: Callable[..., Any], spec_name: str) -> Callable[..., VideoMetric]:
    def build(detector_options: dict | None = None, gme: dict | None = None, **options: Any) -> VideoMetric:
        from evaluation.metrics import nexus

        spec = {s.name: s for s in (nexus.BENCHMARK_SPEC, nexus.GROUNDING_DINO_SPEC,
                                    nexus.YOLO_WORLD_TEXT_SPEC)}[spec_name]
        return nexus.NexusScore(detector(**(detector_options or {})), _gme_embedder(**(gme or {})),
                                spec, **options)

    return build


def _yolo_world_image(**options: Any) -> Any:
    from evaluation.metrics.nexus import YoloWorldImagePromptDetector

    return YoloWorldImagePromptDetector(**options)


def _yolo_world_text(**options: Any) -> Any:
    from evaluation.metrics.nexus import YoloWorldTextDetector

    return YoloWorldTextDetector(**options)


def _grounding_dino(**options: Any) -> Any:
    from evaluation.metrics.nexus import GroundingDinoDetector

    return GroundingDinoDetector(**options)


def _natural(**options: Any) -> VideoMetric:
    from evaluation.metrics.natural import build_api

    return build_api(require_gpt4o=True, **options)


def _natural_api_proxy(model: str, **options: Any) -> VideoMetric:
    from evaluation.metrics.natural import build_api

    return build_api(model, require_gpt4o=False, **options)


def _natural_qwen_proxy(model_path: str, **options: Any) -> VideoMetric:
    from evaluation.metrics.natural import build_qwen

    return build_qwen(model_path, **options)


def _clip_t(mode: str) -> Callable[..., VideoMetric]:
    def build(**options: Any) -> VideoMetric:
        from evaluation.metrics.clip_t import ClipT, load_clip

        return ClipT(_shared("clip", load_clip, **options), mode)

    return build


def _videoscore(kind: str) -> Callable[..., VideoMetric]:
    def build(**options: Any) -> VideoMetric:
        from evaluation.metrics.videoscore import VideoScoreMetric, VideoScoreModel

        return VideoScoreMetric(_shared("videoscore", VideoScoreModel, **options), kind)

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
    "nexus": _nexus(_yolo_world_image, "nexus"),
    "nexus_grounding_dino_proxy": _nexus(_grounding_dino, "nexus_grounding_dino_proxy"),
    "nexus_yolo_world_text_proxy": _nexus(_yolo_world_text, "nexus_yolo_world_text_proxy"),
    "natural": _natural,
    "natural_api_proxy": _natural_api_proxy,
    "natural_qwen_proxy": _natural_qwen_proxy,
    "clip_t_global": _clip_t("global"),
    "clip_t_subaction": _clip_t("subaction"),
    "videoscore_tva": _videoscore("tva"),
    "videoscore_tc": _videoscore("tc"),
    "videoscore_tva_subaction": _videoscore("tva_subaction"),
}

# Metrics that score a timeline and have nothing to say about a sample without one.
TIMELINE_METRICS = frozenset({
    "timeline_alignment_flow_proxy", "clip_t_subaction", "videoscore_tva_subaction",
})


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
    "TIMELINE_METRICS",
    "benchmark_values",
    "build_metric",
    "embedded_suite",
    "run_metrics",
]
