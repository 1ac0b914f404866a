"""Write generated frames as H.264 MP4 (the IPVG submission format) with PyAV."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def frames_to_uint8(frames: Any) -> np.ndarray:
    """``(F, H, W, 3)`` float in ``[0, 1]`` or uint8 to uint8 RGB."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {array.shape}")
    if array.dtype == np.uint8:
        return array
    return (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column where a side is odd: yuv420p needs even sizes."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_h264_mp4(
    frames: Any, path: str | os.PathLike, fps: float, *, crf: int = 18, preset: str = "medium"
) -> Path:
    """Encode frames as H.264 (libx264, yuv420p) in MP4, written atomically.

    Args:
        frames: ``(F, H, W, 3)`` uint8 or float in ``[0, 1]``.
        path: destination ``.mp4``; written to a temporary file in the same folder first.
        fps: frame rate.
        crf: x264 constant rate factor.

    Returns:
        The destination path.
    """
    from core.video import write_video

    data = pad_to_even(frames_to_uint8(frames))
    if data.shape[0] == 0:
        raise ValueError("cannot write a video with no frames")
    return write_video(path, data, fps, crf=crf, preset=preset)


def probe_video(path: str | os.PathLike) -> dict[str, Any]:
    """Codec, pixel format, size and decoded frame count of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": frames,
            "fps": float(stream.average_rate) if stream.average_rate else None,
        }
