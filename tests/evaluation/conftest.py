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


GME_WORDS = [
    "a",
    "red",
    "cat",
    "dog",
    "runs",
    "on",
    "grass",
    "find",
    "an",
    "image",
    "that",
    "matches",
    "the",
    "given",
    "text",
    ".",
    "you",
    "are",
    "helpful",
    "assistant",
    "system",
    "user",
]
GME_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "[UNK]",
]


@pytest.fixture(scope="session")
def tiny_gme_dir(tmp_path_factory):
    """Random tiny Qwen2-VL + word-level tokenizer + image processor, saved like the real repo."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
    )

    root = tmp_path_factory.mktemp("gme")
    vocab = {w: i for i, w in enumerate(GME_WORDS + GME_SPECIAL)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        additional_special_tokens=GME_SPECIAL[1:7],
    ).save_pretrained(root)
    Qwen2VLImageProcessor().save_pretrained(root)
    torch.manual_seed(0)
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},
            bos_token_id=None,
            eos_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=32,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            in_chans=3,
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
    )
    Qwen2VLForConditionalGeneration(config).save_pretrained(root)
    return root
