"""OpenS2V GmeScore: GME-Qwen2-VL text-to-frame similarity (pretrained).

Definition (``eval/get_gmescore.py`` of OpenS2V-Nexus, with GME's embedding wrapper
``utils/gme/gme_model.py``): 32 frames sampled with ``linspace``; the prompt is embedded as
a query with the instruction "Find an image that matches the given text."; each frame is
embedded as a corpus item with the default instruction "You are a helpful assistant.";
GmeScore is the mean dot product of the unit-length text and frame embeddings.

A GME embedding is the last hidden state, at the sequence's last real token, of the
Qwen2-VL language model fed ``<|im_start|>system\\n{instruction}<|im_end|>\\n<|im_start|>user\\n
{content}<|im_end|>\\n<|im_start|>assistant\\n<|endoftext|>`` (content: the text, or
``<|vision_start|><|image_pad|><|vision_end|>`` for an image), L2-normalised. Images are first
resized to multiples of 28 px within [4, 16384] x 28² pixels, then the image processor keeps
them within [256, 1280] visual tokens.

The tokenizer and image processor are loaded separately rather than through
``Qwen2VLProcessor``, whose video half needs torchvision; the image-token expansion the
processor would do (one ``<|image_pad|>`` per merged patch) is done here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames
from evaluation.video import uniform_indices

NUM_FRAMES = 32
DEFAULT_INSTRUCTION = "You are a helpful assistant."
TEXT_TO_IMAGE_INSTRUCTION = "Find an image that matches the given text."
IMAGE_FACTOR = 28
_PRE_MIN_PIXELS, _PRE_MAX_PIXELS = 4 * 28 * 28, 16384 * 28 * 28
_IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"


def resize_to_factor(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: int = _PRE_MIN_PIXELS,
    max_pixels: int = _PRE_MAX_PIXELS,
) -> tuple[int, int]:
    """Nearest size with both sides multiples of ``factor`` and area within the bounds.

    Args:
        height, width: the image size.
        factor: side multiple.
        min_pixels, max_pixels: area bounds.

    Returns:
        (height, width) keeping the aspect ratio as closely as the constraints allow.
    """
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h = math.floor(height / scale / factor) * factor
        w = math.floor(width / scale / factor) * factor
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * scale / factor) * factor
        w = math.ceil(width * scale / factor) * factor
    return h, w


class GmeEmbedder:
    """GME-Qwen2-VL embeddings of texts and images.

    Args:
        model_path: hub id or directory (``Alibaba-NLP/gme-Qwen2-VL-7B-Instruct`` for OpenS2V).
        device: torch device string.
        dtype: torch dtype name for the weights (``float16`` on GPU as OpenS2V; float32 default).
        min_image_tokens, max_image_tokens: visual-token bounds per image.
        max_length: token limit per sequence.
    """

    def __init__(
        self,
        model_path: str | Path = "Alibaba-NLP/gme-Qwen2-VL-7B-Instruct",
        device: str = "cpu",
        dtype: str = "float32",
        min_image_tokens: int = 256,
        max_image_tokens: int = 1280,
        max_length: int = 1800,
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self._torch = torch
        self.device = device
        self.max_length = max_length
        self.model = (
            AutoModelForImageTextToText.from_pretrained(
                str(model_path), dtype=getattr(torch, dtype)
            )
            .to(device)
            .eval()
        )
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        # Right padding: the embedding is read at each row's last real token.
        self.tokenizer.padding_side = "right"
        pixels = IMAGE_FACTOR * IMAGE_FACTOR
        self.image_processor = AutoImageProcessor.from_pretrained(
            str(model_path),
            min_pixels=min_image_tokens * pixels,
            max_pixels=max_image_tokens * pixels,
        )
        self.image_token_id = self.model.config.image_token_id

    def embed_texts(
        self, texts: list[str], instruction: str = TEXT_TO_IMAGE_INSTRUCTION
    ) -> np.ndarray:
        """Unit-length query embeddings, float64 (N, D)."""
        return self._embed([_message(instruction, t) for t in texts], None)

    def embed_images(
        self, images: np.ndarray, instruction: str = DEFAULT_INSTRUCTION
    ) -> np.ndarray:
        """Unit-length corpus embeddings of uint8 (N, H, W, 3) RGB images, float64 (N, D)."""
        from PIL import Image

        pils = []
        for image in images:
            pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
            h, w = resize_to_factor(pil.height, pil.width)
            pils.append(pil.resize((w, h)))
        visual = self.image_processor(images=pils, return_tensors="pt")
        merge = self.image_processor.merge_size**2
        messages = [
            _message(
                instruction,
                _IMAGE_SLOT.replace("<|image_pad|>", "<|image_pad|>" * (int(grid.prod()) // merge)),
            )
            for grid in visual["image_grid_thw"]
        ]
        return self._embed(messages, visual)

    def _embed(self, messages: list[str], visual) -> np.ndarray:
        torch = self._torch
        enc = self.tokenizer(
            messages, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if visual is not None:
            inputs["pixel_values"] = visual["pixel_values"].to(self.model.dtype)
            inputs["image_grid_thw"] = visual["image_grid_thw"]
            inputs["mm_token_type_ids"] = (enc["input_ids"] == self.image_token_id).int()
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.no_grad():
            hidden = self.model.model(**inputs).last_hidden_state  # (N, L, D)
            last = inputs["attention_mask"].sum(dim=1) - 1
            emb = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            emb = torch.nn.functional.normalize(emb.float(), p=2, dim=1)
        return emb.double().cpu().numpy()


class GmeScore:
    """OpenS2V GmeScore (pretrained GME-Qwen2-VL).

    The value is a mean cosine in [-1, 1], not floored: a video unrelated to its prompt (noise)
    can score below 0, and :func:`evaluation.total_score.normalize_value` passes that through as
    OpenS2V's merge script does.
    """

    spec = MetricSpec(
        name="gme",
        key="gme",
        backend="pretrained",
        definition="OpenS2V-Eval v1.1 get_gmescore.py (GME-Qwen2-VL text-frame similarity)",
        is_proxy=False,
    )

    def __init__(
        self, embedder: GmeEmbedder, num_frames: int = NUM_FRAMES, batch_size: int = 8
    ) -> None:
        self.embedder = embedder
        self.num_frames = num_frames
        self.batch_size = batch_size

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        if not context.prompt.strip():
            raise ValueError("GmeScore needs the sample's prompt")
        text = self.embedder.embed_texts([context.prompt])[0]
        picked = frames[uniform_indices(len(frames), self.num_frames)]
        images = np.concatenate(
            [
                self.embedder.embed_images(picked[i : i + self.batch_size])
                for i in range(0, len(picked), self.batch_size)
            ]
        )
        return MetricValue(
            self.spec, float((images @ text).mean()), f"mean over {self.num_frames} sampled frames"
        )


def _message(instruction: str, content: str) -> str:
    return (
        f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n"
        f"<|im_start|>assistant\n<|endoftext|>"
    )
