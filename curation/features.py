"""Frame descriptors for adjacent-frame similarity (scene-cut refinement).

Two backends behind one call, `FrameEmbedder.embed(frames) -> (N, D) L2-normalised`, built by
name with `build_frame_embedder` (registry `FRAME_EMBEDDERS`):
- embedded: a colour + texture descriptor (HSV histogram and a spatial grid of gradient-
  orientation histograms), classical and CPU-cheap;
- pretrained: DINOv2 CLS features through transformers (paper App. B.1), loaded with
  `from_pretrained` from a hub id or a local directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from core.backends import BackendRegistry


class FrameEmbedder(Protocol):
    name: str

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """frames: uint8 (N, H, W, 3) RGB -> float32 (N, D), rows L2-normalised."""
        ...


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


class ColourTextureEmbedder:
    """HSV colour histogram (8x4x4) + 4x4 grid of 8-bin gradient-orientation histograms.

    Colour catches palette changes, the oriented-gradient grid catches layout changes
    that keep the palette (a cut between two shots of the same place).
    """

    name = "embedded:colour-texture"

    def __init__(self, size: int = 96) -> None:
        self.size = size

    def _one(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.size, max(8, int(self.size * h / w))), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        colour = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy)
        ori = (np.arctan2(gy, gx) % np.pi) / np.pi * 8
        bins = np.minimum(ori.astype(np.int32), 7)
        gh, gw = mag.shape
        texture = np.zeros((4, 4, 8), np.float32)
        for i in range(4):
            for j in range(4):
                sl = (slice(i * gh // 4, (i + 1) * gh // 4), slice(j * gw // 4, (j + 1) * gw // 4))
                texture[i, j] = np.bincount(bins[sl].ravel(), weights=mag[sl].ravel(), minlength=8)[:8]
        return np.concatenate([_l2(np.sqrt(colour)), _l2(np.sqrt(texture.ravel()))]).astype(np.float32)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros((0, 256), np.float32)
        return _l2(np.stack([self._one(f) for f in frames]))


class Dinov2Embedder:
    """DINOv2 CLS-token features (transformers `AutoModel`), as the paper refines cuts.

    Args:
        model_path: hub id (e.g. "facebook/dinov2-small") or a local directory with
            `config.json`, weights and `preprocessor_config.json`.
        batch_size: frames per forward pass.
    """

    def __init__(self, model_path: str, batch_size: int = 16, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModel

        self.name = f"pretrained:dinov2({model_path})"
        self.processor = AutoImageProcessor.from_pretrained(model_path)
        self.model = AutoModel.from_pretrained(model_path).to(device).eval()
        self.batch_size = batch_size
        self.device = device

    def embed(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                batch = self.processor(images=list(frames[i : i + self.batch_size]), return_tensors="pt")
                hidden = self.model(pixel_values=batch["pixel_values"].to(self.device)).last_hidden_state
                out.append(hidden[:, 0].float().cpu().numpy())  # CLS token, (B, D)
        if not out:
            return np.zeros((0, self.model.config.hidden_size), np.float32)
        return _l2(np.concatenate(out))


def _colour_texture(model_path: str, device: str) -> FrameEmbedder:
    return ColourTextureEmbedder()


def _dinov2(model_path: str, device: str) -> FrameEmbedder:
    return Dinov2Embedder(model_path, device=device)


# Every params key that chooses a frame embedder allows exactly these names.
FRAME_EMBEDDERS: BackendRegistry[Callable[[str, str], FrameEmbedder]] = BackendRegistry(
    "frame embedder",
    ("scene_clips.similarity_backend", "training_samples.similarity_backend", "difficulty.appearance_backend"),
    {"embedded": _colour_texture, "pretrained": _dinov2},
)


def build_frame_embedder(backend: str, model_path: str, device: str = "cpu", *,
                         params_key: str | None = None) -> FrameEmbedder:
    """The frame embedder registered as `backend`.

    Args:
        model_path: the pretrained model (hub id or local directory); embedded backends ignore it.
        params_key: the key `backend` was read from, named by the error for an unknown name.

    Raises:
        ParamsError: no frame embedder is registered as `backend`.
    """
    return FRAME_EMBEDDERS.get(backend, params_key)(model_path, device)
