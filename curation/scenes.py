"""Scene segments from shot boundaries, and the pieces of cut detection shared by the
detectors in curation/shot_detectors.py: the flash check of the feature-similarity
refinement (paper App. B.1), merging of cut lists, and precision / recall / F1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def content_returns(features: np.ndarray, cut: int, threshold: float, lookahead: int) -> bool:
    """True when some frame within `lookahead` after `cut` looks like some frame within
    `lookahead` before it: a flash or a brief occlusion (entering or leaving it), not a
    shot change, whose two sides never resemble each other."""
    before = features[max(0, cut - lookahead) : cut]
    after = features[cut : cut + lookahead + 1]
    if not len(before) or not len(after):
        return False
    return bool(np.max(before @ after.T) >= threshold)


def merge_cuts(primary: list[int], extra: list[int], tolerance: int) -> list[int]:
    """Union of two cut lists; an extra cut within `tolerance` frames of a primary one is
    the same cut."""
    merged = sorted(primary)
    for c in sorted(extra):
        if all(abs(c - p) > tolerance for p in merged):
            merged.append(c)
            merged.sort()
    return merged


@dataclass(frozen=True)
class SceneSegment:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    duration_s: float
    kept: bool
    drop_reason: str | None


def segments_from_boundaries(cuts: list[int], transitions, n_frames: int, fps: float,
                             min_duration_s: float, transition_margin: int = 0, *,
                             times: np.ndarray | None = None, end_s: float | None = None) -> list[SceneSegment]:
    """Split [0, n_frames) into shots at hard `cuts` and around gradual `transitions`
    (objects with start_frame / end_frame, frames [start, end)), whose frames, widened by
    `transition_margin` on each side, belong to no shot; keep shots of at least
    `min_duration_s`.

    A shot's duration comes from the frames' timestamps when `times` (n_frames seconds) is
    given: [a, b) lasts times[b] - times[a], the last shot until `end_s` (the end of the last
    frame), right for variable-frame-rate video; else from `fps`."""
    if times is not None and (len(times) != n_frames or end_s is None):
        raise ValueError(f"times: need one timestamp per frame ({len(times)} for {n_frames}) and end_s")
    spans = sorted([(c, c) for c in cuts if 0 < c < n_frames]
                   + [(max(0, t.start_frame - transition_margin), min(n_frames, t.end_frame + transition_margin))
                      for t in transitions])
    shots, start = [], 0
    for a, b in spans:
        if a > start:
            shots.append((start, a))
        start = max(start, b)
    if start < n_frames:
        shots.append((start, n_frames))
    out = []
    for k, (a, b) in enumerate(shots):
        if times is None:
            dur = (b - a) / fps
        else:
            dur = (float(times[b]) if b < n_frames else end_s) - float(times[a])
        kept = dur + 1e-9 >= min_duration_s
        out.append(SceneSegment(k, a, b, round(dur, 4), kept, None if kept else "below_min_duration"))
    return out


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    """P/R/F1; a ratio with an empty denominator is None, not 0 or 1."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if p == 0 or r == 0 else None)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
