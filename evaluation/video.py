"""Video decoding, probing and writing with PyAV (imported inside the functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.video import write_video  # noqa: F401  (re-exported for callers of this module)
from evaluation.errors import VideoDecodeError

# ISO base-media brands of MP4 files; 'qt  ' (QuickTime .mov) is deliberately absent.
MP4_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "M4V ", "dash", "mmp4"}
)


@dataclass(frozen=True)
class VideoProbe:
    """What a full decode of a video found."""

    brand: str  # ftyp major brand ('' when the file has no ftyp box first)
    container: str  # PyAV/FFmpeg demuxer name
    codec: str  # decoder name of the first video stream
    width: int
    height: int
    fps: float
    frames: int  # frames actually decoded
    duration_s: float  # frames / fps


def uniform_indices(total: int, num: int) -> np.ndarray:
    """Frame indices sampled as OpenS2V does: ``linspace(0, total - 1, num)`` truncated to int.

    Args:
        total: number of frames in the video (> 0).
        num: number of indices wanted (> 0); repeats occur when ``num > total``.

    Returns:
        int64 array of shape (num,).
    """
    if total <= 0 or num <= 0:
        raise ValueError(f"need total > 0 and num > 0, got total={total} num={num}")
    return np.linspace(0, total - 1, num, dtype=int)


def read_frames(path: str | Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames of a video as RGB.

    Args:
        path: the video file.
        indices: frame numbers to keep (repeats allowed, any order); None keeps all.

    Returns:
        uint8 array (T, H, W, 3), RGB, in the order of ``indices``.

    Raises:
        VideoDecodeError: when the file cannot be opened or has no video frames.
    """
    import av

    wanted = None if indices is None else {int(i) for i in indices}
    kept: dict[int, np.ndarray] = {}
    all_frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            for n, frame in enumerate(container.decode(video=0)):
                if wanted is None:
                    all_frames.append(frame.to_ndarray(format="rgb24"))
                elif n in wanted:
                    kept[n] = frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise VideoDecodeError(f"{path}: cannot decode video ({exc})") from exc
    if wanted is None:
        if not all_frames:
            raise VideoDecodeError(f"{path}: no video frames")
        return np.stack(all_frames)
    missing = sorted(wanted - kept.keys())
    if missing:
        raise VideoDecodeError(f"{path}: frames {missing[:5]} not in video ({len(kept)} found)")
    return np.stack([kept[int(i)] for i in indices])


def count_frames(path: str | Path) -> int:
    """Number of decodable frames (decodes the whole stream; container counts can lie)."""
    return probe_video(path).frames


def probe_video(path: str | Path) -> VideoProbe:
    """Open a video, check its first bytes and decode every frame.

    Args:
        path: the video file.

    Returns:
        A :class:`VideoProbe`.

    Raises:
        VideoDecodeError: when the file cannot be opened or decoded.
    """
    import av

    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(12)
    brand = head[8:12].decode("latin-1") if head[4:8] == b"ftyp" else ""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            frames = 0
            width = height = 0
            for frame in container.decode(stream):
                frames += 1
                width, height = frame.width, frame.height
            fmt = container.format.name
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"{path}: cannot decode video ({exc})") from exc
    return VideoProbe(
        brand=brand,
        container=fmt,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        duration_s=frames / fps if fps > 0 else 0.0,
    )
