"""LAION improved-aesthetic predictor: an MLP on L2-normalised CLIP ViT-L/14 image
embeddings (the predictor the paper's "improved aesthetic predictor" refers to, and the
one OpenS2V-Eval's Aesthetics uses). Pretrained backend only: there is no embedded
aesthetic model, and the embedded report says "not computed" instead of a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_aesthetic_mlp(input_dim: int = 768):
    """The LAION MLP head. Its state-dict keys (`layers.0.weight` … `layers.7.bias`) match
    the published `sac+logos+ava1-l14-linearMSE.pth` checkpoint."""
    import torch.nn as nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_dim = input_dim
            self.layers = nn.Sequential(
                nn.Linear(input_dim, 1024),
                nn.Dropout(0.2),
                nn.Linear(1024, 128),
                nn.Dropout(0.2),
                nn.Linear(128, 64),
                nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            )

        def forward(self, x):  # x: (B, input_dim) L2-normalised -> (B, 1)
            return self.layers(x)

    return AestheticMLP()


def load_aesthetic_mlp(path: str | Path, input_dim: int = 768):
    """Load MLP weights from a `.pth`/`.pt` (torch) or `.safetensors` file.

    Raises:
        FileNotFoundError: the weights file is missing.
        RuntimeError: the weights do not fit the MLP (wrong input dim or keys).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"aesthetic MLP weights not found at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    mlp = build_aesthetic_mlp(input_dim)
    mlp.load_state_dict(state, strict=True)
    return mlp.eval()


class LaionAestheticScorer:
    """CLIP image encoder + LAION MLP, scoring frames on the LAION 1-10 scale.

    Args:
        clip_model: hub id (openai/clip-vit-large-patch14) or local directory with a
            CLIP checkpoint and its preprocessor config.
        mlp_path: the MLP weights file.
    """

    def __init__(self, clip_model: str, mlp_path: str | Path, device: str = "cpu") -> None:
        from transformers import CLIPImageProcessor, CLIPModel

        self.name = f"pretrained:clip+laion-mlp({clip_model})"
        self.processor = CLIPImageProcessor.from_pretrained(clip_model)
        self.clip = CLIPModel.from_pretrained(clip_model).to(device).eval()
        self.mlp = load_aesthetic_mlp(mlp_path, self.clip.config.projection_dim).to(device)
        self.device = device

    def score_frames(self, frames: np.ndarray) -> np.ndarray:
        """frames: uint8 (N, H, W, 3) RGB -> (N,) aesthetic scores."""
        import torch

        with torch.inference_mode():
            pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"].to(self.device)
            emb = self.clip.get_image_features(pixel_values=pixels)
            if not isinstance(emb, torch.Tensor):  # transformers 5 may return a model output
                emb = emb.pooler_output
            emb = emb / emb.norm(dim=-1, keepdim=True)
            return self.mlp(emb.float()).squeeze(-1).cpu().numpy()

    def score_clip(self, frames: np.ndarray, n_frames: int) -> float:
        """Mean score over `n_frames` uniformly sampled frames."""
        idx = np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int)
        return float(self.score_frames(frames[idx]).mean())
