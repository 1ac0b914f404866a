"""Scene cuts: PySceneDetect's content-aware detector, refined by adjacent-frame feature
similarity (paper App. B.1), then segments of at least the minimum duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CutDetection:
    """Cut frame indices (a cut at f means a new shot starts at frame f)."""

    pyscenedetect: list[int]
    similarity: list[int]
    final: list[int]
    adjacent_similarity: np.ndarray  # (N-1,) cosine of frame i and i+1


def pyscenedetect_cuts(
    frames_rgb: np.ndarray, fps: float, *, detector: str, adaptive_threshold: float,
    content_threshold: float, min_scene_len: int,
) -> list[int]:
    """Run PySceneDetect on already-decoded frames (no second decode of the file).

    Args:
        frames_rgb: uint8 (N, H, W, 3), consecutive frames of the video.
    """
    from scenedetect import AdaptiveDetector, ContentDetector
    from scenedetect.common import FrameTimecode

    if detector == "adaptive":
        det = AdaptiveDetector(adaptive_threshold=adaptive_threshold, min_scene_len=min_scene_len)
    elif detector == "content":
        det = ContentDetector(threshold=content_threshold, min_scene_len=min_scene_len)
    else:
        raise ValueError(f"unknown detector {detector!r}; expected 'adaptive' or 'content'")
    cuts: list[int] = []
    last = None
    for i, frame in enumerate(frames_rgb):
        last = FrameTimecode(i, fps=fps)
        # PySceneDetect works on BGR frames as OpenCV decodes them.
        for tc in det.process_frame(last, np.ascontiguousarray(frame[..., ::-1])):
            cuts.append(int(tc.frame_num))
    if last is not None:
        for tc in det.post_process(last):
            cuts.append(int(tc.frame_num))
    return sorted({c for c in cuts if 0 < c < len(frames_rgb)})


def adjacent_cosine(features: np.ndarray) -> np.ndarray:
    """features: (N, D) L2-normalised -> (N-1,) cosine similarity of consecutive rows."""
    if len(features) < 2:
        return np.zeros(0, np.float32)
    return np.sum(features[1:] * features[:-1], axis=1)


def content_returns(features: np.ndarray, cut: int, threshold: float, lookahead: int) -> bool:
    """True when some frame within `lookahead` after `cut` looks like some frame within
    `lookahead` before it: a flash or a brief occlusion (entering or leaving it), not a
    shot change, whose two sides never resemble each other."""
    before = features[max(0, cut - lookahead) : cut]
    after = features[cut : cut + lookahead + 1]
    if not len(before) or not len(after):
        return False
    return bool(np.max(before @ after.T) >= threshold)


def similarity_cuts(features: np.ndarray, threshold: float, lookahead: int = 3) -> list[int]:
    """Cuts where adjacent-frame similarity drops below `threshold` and stays dissimilar."""
    sim = adjacent_cosine(features)
    return [
        int(i + 1)
        for i in np.nonzero(sim < threshold)[0]
        if not content_returns(features, int(i + 1), threshold, lookahead)
    ]


def merge_cuts(primary: list[int], extra: list[int], tolerance: int) -> list[int]:
    """Union of two cut lists; an extra cut within `tolerance` frames of a primary one is
    the same cut."""
    merged = sorted(primary)
    for c in sorted(extra):
        if all(abs(c - p) > tolerance for p in merged):
            merged.append(c)
            merged.sort()
    return merged


def detect_cuts(
    frames_rgb: np.ndarray, features: np.ndarray, fps: float, *, detector: str,
    adaptive_threshold: float, content_threshold: float, min_scene_len: int,
    similarity_threshold: float, tolerance: int,
) -> CutDetection:
    """Two-stage cut detection on one decode of the video.

    1. PySceneDetect proposes cuts from colour/brightness change; proposals after which
       the content returns (flashes) are dropped.
    2. Feature similarity inserts cuts PySceneDetect missed.
    """
    coarse = pyscenedetect_cuts(
        frames_rgb, fps, detector=detector, adaptive_threshold=adaptive_threshold,
        content_threshold=content_threshold, min_scene_len=min_scene_len,
    )
    coarse = [c for c in coarse if not content_returns(features, c, similarity_threshold, 3)]
    fine = similarity_cuts(features, similarity_threshold)
    return CutDetection(coarse, fine, merge_cuts(coarse, fine, tolerance), adjacent_cosine(features))


@dataclass(frozen=True)
class SceneSegment:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    duration_s: float
    kept: bool
    drop_reason: str | None


def segments_from_cuts(cuts: list[int], n_frames: int, fps: float, min_duration_s: float) -> list[SceneSegment]:
    """Split [0, n_frames) at `cuts`; keep segments of at least `min_duration_s`."""
    edges = [0, *sorted(c for c in cuts if 0 < c < n_frames), n_frames]
    out = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        dur = (b - a) / fps
        kept = dur + 1e-9 >= min_duration_s
        out.append(SceneSegment(k, a, b, round(dur, 4), kept, None if kept else "below_min_duration"))
    return out


def match_cuts(predicted: list[int], truth: list[int], tolerance: int = 2) -> tuple[int, int, int]:
    """Greedy one-to-one matching within ±`tolerance` frames -> (tp, fp, fn)."""
    unmatched = sorted(truth)
    tp = 0
    for p in sorted(predicted):
        best = min(unmatched, key=lambda t: abs(t - p), default=None)
        if best is not None and abs(best - p) <= tolerance:
            unmatched.remove(best)
            tp += 1
    return tp, len(predicted) - tp, len(unmatched)


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    """P/R/F1; a ratio with an empty denominator is None, not 0 or 1."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if p == 0 or r == 0 else None)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
