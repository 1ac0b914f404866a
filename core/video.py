"""The one H.264/MP4 writer every package uses (PyAV, imported on first use).

Curation writes clips with it, the model pipeline writes generated videos, evaluation
writes submission fixtures. Whole-video writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np


class ClipWriter:
    """Encode RGB frames one by one to an MP4 (yuv420p; CRF rate control for x264).

    Args:
        dest: output path (written in place; use `write_video` for an atomic whole write).
        rate: frame rate; floats are turned into a fraction (30000/1001 stays exact).
        codec: FFmpeg encoder (`libx264` for H.264; others only to build bad inputs).
        threads: x264's threads; 0 lets x264 choose from the machine's core count, and then the
            bytes it writes depend on that count. A fixed count writes the same bytes on every
            machine.
    """

    def __init__(self, dest: str | os.PathLike, rate: Fraction | float, width: int, height: int,
                 crf: int = 18, preset: str = "veryfast", codec: str = "libx264", threads: int = 0) -> None:
        import av

        if width % 2 or height % 2:
            raise ValueError(f"{width}x{height}: yuv420p needs even width and height")
        rate = rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)
        self.container = av.open(str(dest), "w", format="mp4")
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset, **({"threads": str(threads)} if threads else {})}
        self.n = 0
        self.size = (height, width)

    def write(self, rgb: np.ndarray) -> None:
        import av

        if rgb.ndim != 3 or rgb.shape[:2] != self.size:
            raise ValueError(f"frame of shape {rgb.shape} does not fit a {self.size[1]}x{self.size[0]} clip")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.n
        self.n += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 16, *, codec: str = "libx264",
                crf: int = 18, preset: str = "medium") -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to `path` atomically.

    Raises:
        ValueError: frames are not uint8 (T, H, W, 3) with T > 0 and even H, W.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T > 0, got {frames.dtype} {frames.shape}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=dest.parent, prefix=f".{dest.stem}.")
    os.close(fd)
    try:
        writer = ClipWriter(tmp, fps, frames.shape[2], frames.shape[1], crf=crf, preset=preset, codec=codec)
        try:
            for image in frames:
                writer.write(image)
        finally:
            writer.close()
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
