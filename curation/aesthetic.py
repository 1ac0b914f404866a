"""LAION improved-aesthetic predictor: an MLP on L2-normalised CLIP ViT-L/14 image
embeddings. It is the paper's "improved aesthetic predictor" (App. B.1) and OpenS2V-Eval's
Aesthetics model, so curation and evaluation share this one implementation.

Pretrained backend only: there is no embedded aesthetic model, and the embedded report
says "not computed" instead of a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MLP_HIDDEN = (1024, 128, 64, 16)
MLP_DROPOUT = (0.2, 0.2, 0.1)


def build_aesthetic_mlp(embed_dim: int):
    """The LAION head; parameter names (`layers.0.weight` … `layers.7.bias`) match its
    released state dict (`sac+logos+ava1-l14-linearMSE.pth`, OpenS2V's `aesthetic-model.pth`).

    Returns:
        A `torch.nn.Module` mapping (N, embed_dim) -> (N, 1).
    """
    from torch import nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            h1, h2, h3, h4 = MLP_HIDDEN
            d1, d2, d3 = MLP_DROPOUT
            self.layers = nn.Sequential(
                nn.Linear(embed_dim, h1),
                nn.Dropout(d1),
                nn.Linear(h1, h2),
                nn.Dropout(d2),
                nn.Linear(h2, h3),
                nn.Dropout(d3),
                nn.Linear(h3, h4),
                nn.Linear(h4, 1),
            )

        def forward(self, embeds):
            return self.layers(embeds)

    return AestheticMLP()


def load_state_dict(path: Path) -> dict:
    """Read MLP weights from `.pth`/`.pt` (torch, weights only) or `.safetensors`."""
    if not path.is_file():
        raise FileNotFoundError(f"aesthetic MLP weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state)


class LaionAestheticScorer:
    """CLIP image tower + aesthetic MLP, loaded from a hub id / directory and a weights file.

    Args:
        mlp_path: the MLP state dict file; its input width is read from the weights, so
            the real 768-d head and a tiny test head load through the same code.
        clip_path: `from_pretrained` source of `CLIPVisionModelWithProjection` and
            `CLIPImageProcessor` (`openai/clip-vit-large-patch14` for the real model).
        device: torch device string.
    """

    def __init__(self, mlp_path: str | Path, clip_path: str | Path = "openai/clip-vit-large-patch14",
                 device: str = "cpu") -> None:
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        self._torch = torch
        self.name = f"pretrained:clip+laion-mlp({clip_path})"
        self.device = device
        self.clip = CLIPVisionModelWithProjection.from_pretrained(str(clip_path)).to(device).eval()
        self.processor = CLIPImageProcessor.from_pretrained(str(clip_path))
        state = load_state_dict(Path(mlp_path))
        if "layers.0.weight" not in state:
            raise ValueError(f"{mlp_path}: not an aesthetic MLP state dict (no layers.0.weight)")
        embed_dim = state["layers.0.weight"].shape[1]
        if embed_dim != self.clip.config.projection_dim:
            raise ValueError(
                f"{mlp_path}: MLP takes {embed_dim}-d input but the CLIP projection is "
                f"{self.clip.config.projection_dim}-d"
            )
        self.mlp = build_aesthetic_mlp(embed_dim)
        self.mlp.load_state_dict(state)
        self.mlp.to(device).eval()

    def score_images(self, images: np.ndarray) -> np.ndarray:
        """images: uint8 (N, H, W, 3) RGB -> float64 (N,) scores on the LAION 1-10 scale."""
        inputs = self.processor(images=list(images), return_tensors="pt")
        with self._torch.no_grad():
            embeds = self.clip(pixel_values=inputs["pixel_values"].to(self.device)).image_embeds
            embeds = embeds / self._torch.linalg.vector_norm(embeds, dim=-1, keepdim=True)
            return self.mlp(embeds).squeeze(1).double().cpu().numpy()

    def score_clip(self, frames: np.ndarray, n_frames: int) -> float:
        """Mean score over `n_frames` uniformly sampled frames of a clip."""
        idx = np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int)
        return float(self.score_images(frames[idx]).mean())
