"""Timeline alignment from optical flow (embedded; a proxy, not an official IPVG measure).

IPVG Track 2 scores "action-timeline alignment" without publishing how; this measure checks
the generated motion against the timeline's windows with optical flow only:

1. Frames are converted to grey and resized to width 128 (height keeps the aspect ratio).
   Farnebäck flow (OpenS2V's parameters) between each consecutive pair gives a feature
   ``f = (mean dx, mean dy, mean |flow|)`` in pixels per frame at that width, stamped at the
   pair's midpoint time ``(t + 0.5) / fps``.
2. Each sub-action ``k`` gets the mean feature ``d_k`` of the pairs whose time lies in
   ``[start_k, end_k)``. A sub-action with no pair inside (the video is too short) has no
   descriptor and counts as inactive.
3. **Activity** = fraction of sub-actions whose mean ``|flow|`` is at least
   ``min_motion`` (default 0.1 px/frame at width 128): every described action should move.
4. **Boundary contrast** = mean over consecutive sub-actions of
   ``|d_k+1 - d_k| / (|d_k| + |d_k+1|)`` (0 when both are zero; a missing descriptor
   counts 0). It lies in [0, 1]: 0 when the motion does not change at the boundary, about
   0.7 when the direction reverses at equal speed, 1 when motion starts or stops.
5. Score = activity for a one-action timeline, else ``(activity + boundary contrast) / 2``.

It sees only motion, not what moves or whether it matches the description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics.base import (
    MetricSpec,
    MetricValue,
    SampleContext,
    check_frames,
    not_computed,
)
from evaluation.metrics.motion import farneback_flow

ANALYSIS_WIDTH = 128
MIN_MOTION = 0.1


@dataclass(frozen=True)
class TimelineAlignment:
    """Parts of the timeline alignment score of one video."""

    score: float
    activity: float
    boundary_contrast: float | None  # None for a one-action timeline
    window_motion: tuple[float | None, ...]  # mean |flow| per sub-action (None: no frames)


def motion_features(frames: np.ndarray, width: int = ANALYSIS_WIDTH) -> np.ndarray:
    """Per-pair flow features at a fixed analysis width.

    Args:
        frames: uint8 (T, H, W, 3) RGB, T >= 2.
        width: analysis width in pixels.

    Returns:
        float64 (T - 1, 3): mean dx, mean dy, mean magnitude for each consecutive pair.
    """
    import cv2

    frames = check_frames(frames, minimum=2)
    height = max(1, round(frames.shape[1] * width / frames.shape[2]))
    grays = [
        cv2.resize(
            cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA
        )
        for f in frames
    ]
    features = []
    for a, b in zip(grays[:-1], grays[1:], strict=True):
        flow = farneback_flow(a, b)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        features.append((flow[..., 0].mean(), flow[..., 1].mean(), magnitude.mean()))
    return np.asarray(features, dtype=np.float64)


def timeline_alignment(
    features: np.ndarray,
    fps: float,
    events: Sequence[TimelineEvent],
    min_motion: float = MIN_MOTION,
) -> TimelineAlignment:
    """Score how the motion follows a timeline (see module docstring).

    Args:
        features: (P, 3) output of :func:`motion_features`.
        fps: frame rate of the video.
        events: the sub-actions, in seconds.
        min_motion: mean flow magnitude a sub-action's window needs to count as active.

    Returns:
        A :class:`TimelineAlignment`.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not events:
        raise ValueError("timeline has no events")
    times = (np.arange(len(features)) + 0.5) / fps
    descriptors: list[np.ndarray | None] = []
    for event in events:
        inside = (times >= event.start) & (times < event.end)
        descriptors.append(features[inside].mean(axis=0) if inside.any() else None)
    motion = tuple(None if d is None else float(d[2]) for d in descriptors)
    activity = sum(m is not None and m >= min_motion for m in motion) / len(events)
    if len(events) == 1:
        return TimelineAlignment(activity, activity, None, motion)
    contrasts = [_contrast(a, b) for a, b in zip(descriptors[:-1], descriptors[1:], strict=True)]
    contrast = float(np.mean(contrasts))
    return TimelineAlignment((activity + contrast) / 2, activity, contrast, motion)


def _contrast(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(b - a) / scale) if scale > 0 else 0.0


class TimelineAlignmentFlowProxy:
    """Embedded timeline-alignment measure from optical flow (see module docstring)."""

    spec = MetricSpec(
        name="timeline_alignment_flow_proxy",
        key=None,
        backend="embedded",
        definition="per-sub-action flow activity and motion change at timeline boundaries "
        "(this project's measure; IPVG publishes none)",
        is_proxy=True,
    )

    def __init__(self, min_motion: float = MIN_MOTION, width: int = ANALYSIS_WIDTH) -> None:
        self.min_motion = min_motion
        self.width = width

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        if not context.events:
            return not_computed(self.spec, "sample has no timeline")
        result = timeline_alignment(
            motion_features(frames, self.width), context.fps, context.events, self.min_motion
        )
        contrast = "n/a" if result.boundary_contrast is None else f"{result.boundary_contrast:.3f}"
        return MetricValue(
            self.spec, result.score, f"activity={result.activity:.3f} boundary_contrast={contrast}"
        )
