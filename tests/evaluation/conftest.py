"""Fixtures for the evaluation tests: synthetic clips with known motion, small encoded videos.

The project runs pytest with ``--import-mode=importlib``, so helpers reach the tests as
fixtures (returning functions) rather than as an importable module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def _texture(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture: enough structure everywhere for dense optical flow."""
    import cv2

    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def _shifting_clip(frames: int, dx: int, dy: int, base: np.ndarray | None = None) -> np.ndarray:
    """A texture moved (dx, dy) pixels per frame (wrapping at the border): known flow."""
    base = _texture() if base is None else base
    return np.stack([np.roll(base, (t * dy, t * dx), axis=(0, 1)) for t in range(frames)])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def texture() -> Callable[..., np.ndarray]:
    return _texture


@pytest.fixture(scope="session")
def shifting_clip() -> Callable[..., np.ndarray]:
    return _shifting_clip


@pytest.fixture(scope="session")
def h264_video(tmp_path_factory) -> Path:
    """A 1.5 s (24 frames at 16 fps) 64x48 H.264 MP4 of a texture moving 2 px/frame."""
    from evaluation.video import write_video

    clip = _shifting_clip(24, 2, 0, _texture(48, 64))
    return write_video(tmp_path_factory.mktemp("videos") / "good.mp4", clip, fps=16)
