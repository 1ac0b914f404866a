"""Subject boxes and masks, embedded backend: a classical pipeline.

Per clip, on frames decoded once: a median background model, colour distance to it
(CIE Lab) for the moving foreground, morphological clean-up, connected components,
assignment of components to caption entities (the living subject takes the most salient
moving component; a colour word in the entity's fine label picks the component of that
colour), GrabCut refinement inside the box, and a final morphological clean-up keeping
the largest component (paper App. B.2 refines SAM masks morphologically the same way).
Verification: an entity is verified when it is found in enough frames along a coherent track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40), "blue": (40, 70, 200), "green": (40, 160, 60), "yellow": (220, 200, 40),
    "purple": (130, 50, 160), "orange": (230, 120, 30), "white": (235, 235, 235), "black": (30, 30, 30),
    "grey": (150, 150, 150), "gray": (150, 150, 150), "brown": (120, 80, 40), "pink": (230, 130, 170),
}


@dataclass
class SubjectTrack:
    """Detections of one entity over the sampled frames (boxes in analysis pixels)."""

    frame_indices: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def refine_mask(mask: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Clean a binary mask: open, close, keep the largest component, fill its holes.

    Opening removes specks and thin bridges, closing seals small gaps; the largest
    8-connected component is the subject and its holes are filled. Opening is skipped when
    it would erase the whole mask (a subject thinner than the kernel).

    Args:
        mask: bool (H, W).
        kernel: diameter in pixels of the elliptical structuring element, odd, >= 1.

    Returns:
        bool (H, W); all False when ``mask`` is.
    """
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"mask must be bool (H, W), got {mask.dtype} {mask.shape}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd number of pixels >= 1, got {kernel}")
    if not mask.any():
        return mask.copy()
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    work = mask.astype(np.uint8)
    opened = cv2.morphologyEx(work, cv2.MORPH_OPEN, element)
    work = opened if opened.any() else work
    # OpenCV's default border value leaves pixels at the image border untouched.
    work = cv2.morphologyEx(work, cv2.MORPH_CLOSE, element)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = labels == largest
    return _fill_holes(component)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set every background pixel not 4-connected to the image border."""
    import cv2

    background = (~mask).astype(np.uint8)
    _, labels = cv2.connectedComponents(background, connectivity=4)
    border = np.unique(
        np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    )
    outside = np.isin(labels, border[border > 0])
    return ~outside


def foreground_masks(frames: np.ndarray, threshold: float) -> np.ndarray:
    """(N, H, W, 3) RGB -> (N, H, W) bool: Lab distance to the per-pixel median frame."""
    import cv2

    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in frames]).astype(np.float32)
    background = np.median(lab, axis=0)
    return np.linalg.norm(lab - background, axis=-1) > threshold


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1
    return [labels == i for i in order if stats[i, cv2.CC_STAT_AREA] >= min_area]


def colour_share(frame: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int], tol: float = 45.0) -> float:
    """Share of the mask's pixels within `tol` (Lab distance) of a named colour."""
    import cv2

    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)[mask]
    ref = cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
    return float((np.linalg.norm(lab - ref, axis=1) < tol).mean()) if len(lab) else 0.0


def colour_of(fine_label: str) -> tuple[int, int, int] | None:
    words = fine_label.lower().replace("-", " ").split()
    return next((COLOURS[w] for w in words if w in COLOURS), None)


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def grabcut_refine(frame: np.ndarray, mask: np.ndarray, iterations: int) -> np.ndarray:
    """GrabCut initialised from a coarse foreground mask, limited to a margin around it."""
    import cv2

    if iterations <= 0:
        return mask
    h, w = mask.shape
    x0, y0, x1, y1 = _box(mask)
    pad = int(0.15 * max(x1 - x0, y1 - y0)) + 4
    gc = np.full((h, w), cv2.GC_BGD, np.uint8)
    gc[max(0, int(y0) - pad) : min(h, int(y1) + pad), max(0, int(x0) - pad) : min(w, int(x1) + pad)] = cv2.GC_PR_BGD
    gc[mask] = cv2.GC_PR_FGD
    core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    gc[core] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(frame[..., ::-1]), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return mask  # GrabCut needs both classes present; the coarse mask stands
    refined = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    return refined if refined.any() else mask


def track_entities(
    frames: np.ndarray, indices: np.ndarray, entities: list[tuple[str, str, str]], *,
    diff_threshold: float, min_area_fraction: float, grabcut_iterations: int, max_jump: float,
) -> dict[str, SubjectTrack]:
    """Boxes and masks of each entity over the sampled frames.

    Args:
        frames: uint8 (N, H, W, 3) RGB sampled frames of one clip.
        indices: (N,) clip frame index of each sampled frame.
        entities: (entity_id, category, fine_label) per caption entity; living first.
        max_jump: a detection whose centre moves more than this fraction of the frame
            width from the previous one breaks the track and is dropped.

    Returns:
        entity_id -> SubjectTrack (possibly empty).
    """
    n, h, w = frames.shape[:3]
    fg = foreground_masks(frames, diff_threshold) if n >= 3 else np.zeros((n, h, w), bool)
    min_area = max(16, int(min_area_fraction * h * w))
    tracks = {eid: SubjectTrack() for eid, _, _ in entities}
    order = sorted(entities, key=lambda e: e[1] != "living")
    last_centre: dict[str, tuple[float, float]] = {}
    for k in range(n):
        comps = _components(fg[k], min_area)
        taken = np.zeros((h, w), bool)
        for eid, _category, fine in order:
            free = [c for c in comps if (c & taken).sum() < 0.2 * c.sum()]
            if not free:
                continue
            rgb = colour_of(fine)
            if _category != "living":
                # Motion alone cannot tell an object from the rest of the moving scene: an
                # object needs its colour cue to be claimed, else it stays undetected.
                scored = [(colour_share(frames[k], c, rgb), i) for i, c in enumerate(free)] if rgb else []
                best = max(scored, default=(0.0, -1))
                if best[0] < 0.3:
                    continue
                pick = free[best[1]]
            elif rgb is not None and len(free) > 1:
                pick = max(free, key=lambda c: colour_share(frames[k], c, rgb))
            else:
                pick = free[0]
            mask = refine_mask(grabcut_refine(frames[k], pick, grabcut_iterations))
            if not mask.any():
                continue
            box = _box(mask)
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            prev = last_centre.get(eid)
            if prev is not None and np.hypot(centre[0] - prev[0], centre[1] - prev[1]) > max_jump * w:
                continue
            last_centre[eid] = centre
            taken |= mask
            t = tracks[eid]
            t.frame_indices.append(int(indices[k]))
            t.boxes.append(box)
            t.masks.append(mask)
            t.scores.append(float(mask.sum() / max(1.0, (box[2] - box[0]) * (box[3] - box[1]))))
    return tracks


def verify_track(track: SubjectTrack, n_frames: int, min_ratio: float) -> tuple[bool, float]:
    """Verified when the entity was found in at least `min_ratio` of the sampled frames."""
    ratio = len(track.frame_indices) / max(1, n_frames)
    return ratio >= min_ratio, round(ratio, 4)
