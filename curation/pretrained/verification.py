"""SigLIP post-verification of detected subjects (paper App. B.2, App. E.1).

A detected box is kept when its crop and the entity label are close in SigLIP's
image-text space. SigLIP is trained with a per-pair sigmoid loss, so
``sigmoid(logit_scale * cos(image, text) + logit_bias)`` is a probability that the crop
matches the text, independent of the other crops in the batch. Texts are padded to the
model's full text length (64 tokens) and encoded without an attention mask, as SigLIP was
trained: its text tower pools the last position, which is padding.

The real checkpoints (``google/siglip-so400m-patch14-384``) ship a SentencePiece
tokenizer, so loading them needs the ``sentencepiece`` package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.inputs import check_frame

PROMPT = "a photo of a {label}"


class SiglipVerifier:
    """Sigmoid label-crop match probabilities from SigLIP.

    Args:
        model_path: hub id or directory of a SigLIP checkpoint (model + processor).
        device: torch device string.
        batch_size: crops per forward pass.
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", batch_size: int = 32) -> None:
        import torch
        from transformers import AutoConfig, AutoProcessor, SiglipModel

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "siglip":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'siglip'"
            )
        self.model = SiglipModel.from_pretrained(self.model_path).to(device).eval()
        self.processor = AutoProcessor.from_pretrained(self.model_path)
        self.text_length = int(config.text_config.max_position_embeddings)
        self.device = device
        self.batch_size = batch_size
        self.name = f"pretrained:siglip({self.model_path})"

    def score(self, crops: list[np.ndarray], label: str) -> np.ndarray:
        """Probability that each crop shows ``label``.

        Args:
            crops: uint8 RGB images (H_i, W_i, 3) of any sizes.
            label: entity label; the text is ``"a photo of a {label}"``.

        Returns:
            float64 (len(crops),) in (0, 1).
        """
        from PIL import Image

        torch = self._torch
        if not label.strip():
            raise ValueError("score needs a non-empty label")
        images = [Image.fromarray(check_frame(c, f"crop {i}")) for i, c in enumerate(crops)]
        if not images:
            return np.zeros(0, np.float64)
        text = self.processor(
            text=[PROMPT.format(label=label.strip())],
            padding="max_length",
            max_length=self.text_length,
            truncation=True,
            return_tensors="pt",
        )
        scores = []
        with torch.no_grad():
            text_embeds = self.model.get_text_features(
                input_ids=text["input_ids"].to(self.device)
            ).pooler_output
            text_embeds = torch.nn.functional.normalize(text_embeds, dim=-1)  # (1, D)
            for start in range(0, len(images), self.batch_size):
                pixels = self.processor(
                    images=images[start : start + self.batch_size], return_tensors="pt"
                )["pixel_values"].to(self.device, self.model.dtype)
                image_embeds = self.model.get_image_features(pixel_values=pixels).pooler_output
                image_embeds = torch.nn.functional.normalize(image_embeds, dim=-1)  # (B, D)
                logits = (image_embeds @ text_embeds.T)[:, 0] * self.model.logit_scale.exp()
                scores.append(torch.sigmoid(logits + self.model.logit_bias).double().cpu())
        return torch.cat(scores).numpy()
