"""Validation of the frames, crops and boxes the backends receive."""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate a clip.

    Args:
        frames: uint8 RGB frames, shape (N, H, W, 3), N >= 1.

    Returns:
        The same frames as a contiguous array.

    Raises:
        ValueError: naming the offending shape or dtype.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be uint8 RGB of shape (N>=1, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    return np.ascontiguousarray(frames)


def check_frame(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    """Validate one uint8 RGB image of shape (H, W, 3) with H, W >= 1."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or min(frame.shape[:2]) == 0:
        raise ValueError(f"{what} must be uint8 RGB of shape (H>=1, W>=1, 3), got {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 RGB, got dtype {frame.dtype}")
    return np.ascontiguousarray(frame)


def check_box(box: Box, width: int, height: int) -> Box:
    """Validate an (x0, y0, x1, y1) pixel box that overlaps a width x height frame.

    Returns:
        The box as floats.

    Raises:
        ValueError: the box is not four finite numbers, is empty, or lies outside the frame.
    """
    values = tuple(float(v) for v in box)
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"box must be four finite numbers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {values} is empty: needs x1 > x0 and y1 > y0")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"box {values} lies outside the {width}x{height} frame")
    return x0, y0, x1, y1
