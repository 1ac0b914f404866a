"""OpenS2V Aesthetics: LAION improved-aesthetic MLP on CLIP ViT-L/14 image embeddings.

Definition (``eval/get_aesscore.py`` of OpenS2V-Nexus v1.1): 32 frames sampled with
``linspace(0, T - 1, 32)``; each frame goes through ``CLIPProcessor`` and
``CLIPVisionModelWithProjection`` (``openai/clip-vit-large-patch14``); the 768-d projected
embedding is L2-normalised and scored by the MLP
``Linear(768,1024)-Dropout(0.2)-Linear(1024,128)-Dropout(0.2)-Linear(128,64)-Dropout(0.1)-
Linear(64,16)-Linear(16,1)`` (``aesthetic-model.pth``); the video's score is the mean over the
frames, on the LAION 1-10 scale (normalised later by :mod:`evaluation.total_score`).

Only the image half of CLIP is needed, so the processor is ``CLIPImageProcessor`` (the image
part of ``CLIPProcessor``, same preprocessing). The MLP's input width is read from its
weights, so the real 768-d head and a tiny test head load through the same code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames
from evaluation.video import uniform_indices

NUM_FRAMES = 32


class AestheticScorer:
    """CLIP image tower + aesthetic MLP, loaded from a hub id / directory and a weights file.

    Args:
        mlp_path: the MLP state dict file (OpenS2V's ``aesthetic-model.pth``, the LAION
            ``sac+logos+ava1-l14-linearMSE.pth``; ``.safetensors`` also read).
        clip_path: ``from_pretrained`` source of ``CLIPVisionModelWithProjection`` and
            ``CLIPImageProcessor`` (``openai/clip-vit-large-patch14`` for the benchmark).
        device: torch device string.
        num_frames: frames sampled per video.
    """

    spec = MetricSpec(
        name="aesthetics",
        key="aesthetics",
        backend="pretrained",
        definition="OpenS2V-Eval v1.1 get_aesscore.py (CLIP ViT-L/14 + LAION aesthetic MLP)",
        is_proxy=False,
    )

    def __init__(
        self,
        mlp_path: str | Path,
        clip_path: str | Path = "openai/clip-vit-large-patch14",
        device: str = "cpu",
        num_frames: int = NUM_FRAMES,
    ) -> None:
        from curation.aesthetic import LaionAestheticScorer

        self.num_frames = num_frames
        self.model = LaionAestheticScorer(mlp_path, clip_path, device)

    def score_images(self, images: np.ndarray) -> np.ndarray:
        """Aesthetic score of each image: uint8 (N, H, W, 3) RGB -> float64 (N,)."""
        return self.model.score_images(images)

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        picked = frames[uniform_indices(len(frames), self.num_frames)]
        value = float(self.score_images(picked).mean())
        return MetricValue(self.spec, value, f"mean over {self.num_frames} sampled frames")

