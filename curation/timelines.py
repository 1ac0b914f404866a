"""Action timelines, embedded backend: change-point segmentation of a subject's track.

The track's boxes give, per step between sampled frames, the horizontal velocity (frame
widths per second), the scale rate (d log(box height) / dt) and the vertical speed
(frame heights per second). Optimal partitioning (dynamic programming over a
piecewise-constant model, squared error + a penalty per segment) splits the track where
its motion changes; each segment is described from its mean motion. Descriptions are
motion-derived ("walks to the left", "jumps up and down"), never copied from a caption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionSegment:
    start_s: float
    end_s: float
    description: str


def motion_features(times: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T,) times and (T, 4) boxes -> (T-1, 3) [vx, scale rate, |vy|] per step."""
    dt = np.maximum(np.diff(times), 1e-6)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 / width
    top = boxes[:, 1] / height
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    return np.stack([np.diff(cx) / dt, np.diff(np.log(h)) / dt, np.abs(np.diff(top)) / dt], axis=1)


def optimal_partition(x: np.ndarray, penalty: float, min_len: int) -> list[tuple[int, int]]:
    """Segments [a, b) of `x` (T, D) minimising within-segment squared error + penalty
    per segment, each at least `min_len` long (exact dynamic programming, O(T^2))."""
    t = len(x)
    if t == 0:
        return []
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    csq = np.concatenate([[0.0], np.cumsum((x**2).sum(axis=1))])

    def cost(a: int, b: int) -> float:
        s = csum[b] - csum[a]
        return float(csq[b] - csq[a] - (s @ s) / (b - a))

    best = np.full(t + 1, np.inf)
    best[0] = -penalty
    prev = np.zeros(t + 1, int)
    for b in range(min_len, t + 1):
        for a in range(0, b - min_len + 1):
            if best[a] == np.inf:
                continue
            c = best[a] + penalty + cost(a, b)
            if c < best[b]:
                best[b], prev[b] = c, a
    if best[t] == np.inf:
        return [(0, t)]
    out, b = [], t
    while b > 0:
        out.append((prev[b], b))
        b = prev[b]
    return out[::-1]


def describe(mean: np.ndarray, *, walk: float, run: float, scale: float, bob: float) -> str:
    """A sub-action description from a segment's mean [vx, scale rate, |vy|]."""
    vx, vs, vy = (float(v) for v in mean)
    if vs > scale and abs(vs) * 0.5 > abs(vx):
        return "walks toward the camera"
    if vs < -scale and abs(vs) * 0.5 > abs(vx):
        return "steps back from the camera"
    if abs(vx) >= run:
        return "runs to the right" if vx > 0 else "runs to the left"
    if abs(vx) >= walk:
        return "walks to the right" if vx > 0 else "walks to the left"
    if vy >= bob:
        return "jumps up and down"
    return "stands still"


def segment_track(
    times: np.ndarray, boxes: np.ndarray, width: int, height: int, *, penalty: float, min_segment_s: float,
    walk: float, run: float, scale: float, bob: float,
) -> list[MotionSegment]:
    """Sub-actions of one subject from its track; adjacent equal descriptions merge."""
    if len(times) < 3:
        return []
    feats = motion_features(times, boxes, width, height)
    step = float(np.median(np.diff(times)))
    scale_vec = np.array([walk, scale, bob])  # comparable units for the squared error
    parts = optimal_partition(feats / scale_vec, penalty, max(1, int(round(min_segment_s / step))))
    segs: list[MotionSegment] = []
    for a, b in parts:
        desc = describe(feats[a:b].mean(axis=0), walk=walk, run=run, scale=scale, bob=bob)
        start, end = float(times[a]), float(times[b])
        if segs and segs[-1].description == desc:
            segs[-1] = MotionSegment(segs[-1].start_s, end, desc)
        else:
            segs.append(MotionSegment(start, end, desc))
    return segs


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match_events(pred: list[tuple[float, float, str]], truth: list[tuple[float, float, str]],
                 min_tiou: float) -> tuple[int, int, int]:
    """Paper Table 7 style: a predicted sub-action is a true positive when its description
    matches a ground-truth one and their temporal IoU is at least `min_tiou` (one-to-one)."""
    unmatched = list(truth)
    tp = 0
    for p in pred:
        cands = [(temporal_iou(p[:2], t[:2]), i) for i, t in enumerate(unmatched) if t[2] == p[2]]
        best = max(cands, default=(0.0, -1))
        if best[0] >= min_tiou:
            unmatched.pop(best[1])
            tp += 1
    return tp, len(pred) - tp, len(unmatched)
