"""Reference crops of an annotated subject: which frames to crop, its box at a frame, the
crop itself, and decoding just those frames of its clip.

Training crops a sample's references with these (training.samples), and the evaluation demo
sets crop their reference images of held-out subjects the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def valid_box(box: Sequence[float] | None) -> bool:
    """A box [x0, y0, x1, y1] of four finite numbers with x1 > x0 and y1 > y0."""
    if box is None or len(box) != 4 or not all(v is not None and math.isfinite(v) for v in box):
        return False
    return box[2] > box[0] and box[3] > box[1]


def choose_reference_frames(row: dict[str, Any], policy: str, k: int) -> list[int]:
    """Up to k frames (ascending) of the subject to crop references from.

    Args:
        policy: "representative": the face's representative frames (in confidence order) that
            have a subject box, topped up by the largest masks; "largest_mask": the frames
            where the subject is largest; "uniform": evenly spaced over the boxed frames.

    Returns:
        Frame indices with a valid box; empty when there is none.
    """
    frames = list(row.get("frame_indices") or [])
    boxes = list(row.get("boxes") or [])
    valid = [i for i, b in enumerate(boxes[: len(frames)]) if valid_box(b)]
    if not valid:
        return []
    fractions = row.get("mask_area_fractions") or []
    if len(fractions) == len(frames) and all(f is not None and math.isfinite(f) for f in fractions):
        size = {i: fractions[i] for i in valid}
    else:  # no usable mask: the box area ranks the frames
        size = {i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]) for i in valid}
    by_size = sorted(valid, key=lambda i: (-size[i], frames[i]))
    if policy == "largest_mask":
        chosen = by_size[:k]
    elif policy == "uniform":
        chosen = [valid[int(round(x))] for x in np.linspace(0, len(valid) - 1, min(k, len(valid)))]
    elif policy == "representative":
        at = {frames[i]: i for i in valid}
        chosen = [at[f] for f in (row.get("representative_frames") or []) if f in at][:k]
        chosen += [i for i in by_size if i not in chosen][: k - len(chosen)]
    else:
        raise ValueError(f"training_samples.reference_frames: unknown policy {policy!r}")
    return sorted({frames[i] for i in chosen})


def box_at(row: dict[str, Any], frame: int) -> list[float] | None:
    frames = row.get("frame_indices") or []
    boxes = row.get("boxes") or []
    return boxes[frames.index(frame)] if frame in frames and frames.index(frame) < len(boxes) else None


def crop_subject(
    frame: np.ndarray, box: Sequence[float] | None, *, padding: float, size: int
) -> np.ndarray | None:
    """Crop a subject's box, grown by `padding` of its width/height on each side and clipped
    to the frame, resized so its longest side is `size` (aspect kept).

    Args:
        frame: (H, W, 3) uint8 RGB.
        box: [x0, y0, x1, y1] in frame pixels.

    Returns:
        (h, w, 3) uint8 RGB with max(h, w) == size, or None when the box is missing or
        covers less than 2 x 2 pixels of the frame.
    """
    import cv2

    if not valid_box(box):
        return None
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    px, py = padding * (x1 - x0), padding * (y1 - y0)
    left, top = max(0, int(math.floor(x0 - px))), max(0, int(math.floor(y0 - py)))
    right, bottom = min(w, int(math.ceil(x1 + px))), min(h, int(math.ceil(y1 + py)))
    if right - left < 2 or bottom - top < 2:
        return None
    crop = frame[top:bottom, left:right]
    scale = size / max(crop.shape[:2])
    out = (max(1, int(round(crop.shape[1] * scale))), max(1, int(round(crop.shape[0] * scale))))
    return cv2.resize(crop, out, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def read_frames(path: str | Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Decode only the wanted frames of a clip (one pass, stopping after the last).

    Returns:
        {frame index: (H, W, 3) uint8 RGB at the clip's size}; frames past the end are absent.
    """
    from curation.video_io import iter_frames

    wanted = set(indices)
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    last = max(wanted)
    for idx, frame in iter_frames(path, end_frame=last + 1):
        if idx in wanted:
            out[idx] = frame
    return out
