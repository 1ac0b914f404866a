"""Qwen2.5-VL video chat: the loading and input-building code shared by the VLM backends.

The paper captions clips, extracts fine entity labels and proposes timelines with
Qwen2.5-VL (App. B.1, B.2). ``Qwen2_5_VLProcessor`` is not used: its video half
(``Qwen2VLVideoProcessor``) imports torchvision, which has no CPU build here. This module
does what that processor does for one video, with numpy and PIL:

1. sample ``num_frames`` frames uniformly (an even count: Qwen2.5-VL patches two frames
   into one temporal step; an odd count repeats the last frame, as the processor does);
2. resize every frame to the same size whose sides are multiples of ``patch * merge``
   (28 px) with area within ``[min_pixels, max_pixels]`` (``smart_resize``, bicubic);
3. rescale to [0, 1], normalise with the checkpoint's ``image_mean`` / ``image_std`` and
   flatten into patches in the processor's (t, h-block, w-block, h-merge, w-merge) order;
4. expand ``<|video_pad|>`` to one token per merged patch and pass
   ``second_per_grid_ts = temporal_patch_size / sampled_fps`` so Qwen2.5-VL's absolute-time
   M-RoPE sees real timestamps.

The chat prompt is the Qwen2.5-VL chat template written out for one video and one question.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.inputs import check_frames

SYSTEM_PROMPT = "You are a helpful assistant."
# qwen-vl-utils samples videos at 2 FPS; used for timing when the caller gives no fps.
DEFAULT_SAMPLED_FPS = 2.0
# Per-frame pixel bounds: qwen-vl-utils' VIDEO_MIN_PIXELS and the model card's video example.
DEFAULT_MIN_PIXELS = 128 * 28 * 28
DEFAULT_MAX_PIXELS = 360 * 420
VIDEO_TOKEN_TYPE = 2  # mm_token_type_ids: text 0, image 1, video 2


def smart_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """Nearest size with both sides multiples of ``factor`` and area within the bounds.

    Args:
        height, width: the frame size in pixels.
        factor: side multiple (``patch_size * merge_size``).
        min_pixels, max_pixels: bounds on the resized area.

    Returns:
        ``(height, width)`` keeping the aspect ratio as closely as the constraints allow.
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of a {width}x{height} frame exceeds 200")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def sample_indices(num_total: int, num_frames: int) -> np.ndarray:
    """``min(num_total, num_frames)`` frame indices spread uniformly over a clip, int64."""
    if num_total < 1 or num_frames < 1:
        raise ValueError(f"need >= 1 frame and >= 1 sample, got {num_total} and {num_frames}")
    count = min(num_total, num_frames)
    return np.round(np.linspace(0, num_total - 1, count)).astype(np.int64)


def video_patches(
    frames: np.ndarray,
    size: tuple[int, int],
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Flatten a clip into Qwen2.5-VL video patches.

    Args:
        frames: uint8 RGB (T, H, W, 3).
        size: ``(height, width)`` to resize to, multiples of ``patch_size * merge_size``.
        patch_size, merge_size, temporal_patch_size: the vision tower's patching.
        mean, std: per-channel normalisation of [0, 1] pixels.

    Returns:
        ``(patches, (grid_t, grid_h, grid_w))`` with patches float32 of shape
        (grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size**2).
    """
    from PIL import Image

    height, width = size
    if height % (patch_size * merge_size) or width % (patch_size * merge_size):
        raise ValueError(f"size {size} is not a multiple of {patch_size * merge_size}")
    resized = np.stack(
        [np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames]
    )
    if pad := -len(resized) % temporal_patch_size:
        resized = np.concatenate([resized, np.repeat(resized[-1:], pad, axis=0)])
    pixels = (resized.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(
        std, np.float32
    )
    video = pixels.transpose(0, 3, 1, 2)  # (T, C, H, W)
    grid_t = len(video) // temporal_patch_size
    grid_h, grid_w = height // patch_size, width // patch_size
    m, p = merge_size, patch_size
    blocks = video.reshape(grid_t, temporal_patch_size, 3, grid_h // m, m, p, grid_w // m, m, p)
    # -> (t, h-block, w-block, h-merge, w-merge, C, temporal, p, p): the video processor's order
    blocks = blocks.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    patches = blocks.reshape(grid_t * grid_h * grid_w, 3 * temporal_patch_size * p * p)
    return np.ascontiguousarray(patches), (grid_t, grid_h, grid_w)


def chat_prompt(question: str, video_slot: str, system: str = SYSTEM_PROMPT) -> str:
    """The Qwen2.5-VL chat template for one video followed by one question."""
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{video_slot}{question}"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


class QwenVideoChat:
    """Qwen2.5-VL answering one question about one clip (greedy decoding).

    Args:
        model_path: hub id (``Qwen/Qwen2.5-VL-7B-Instruct``) or a local directory with the
            model, tokenizer and ``preprocessor_config.json``.
        device: torch device string.
        dtype: torch dtype name of the weights, or ``"auto"`` for the checkpoint's.
        num_frames: frames sampled per clip (rounded up to an even count by repetition).
        min_pixels, max_pixels: bounds on each resized frame's area.
        device_map: accelerate device map (``"auto"`` to shard a 32B / 72B model over the
            GPUs); when given, ``device`` is ignored.
    """

    @classmethod
    def reuse_or_load(cls, model: str | Path | QwenVideoChat, device: str, dtype: str, num_frames: int, *,
                      min_pixels: int, max_pixels: int) -> QwenVideoChat:
        """`model` itself when it is a loaded chat (one set of weights serves several
        backends), else a chat loaded from that path or hub id."""
        if isinstance(model, QwenVideoChat):
            return model
        return cls(model, device, dtype, num_frames, min_pixels=min_pixels, max_pixels=max_pixels)

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        dtype: str = "auto",
        num_frames: int = 8,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        device_map: str | dict | None = None,
    ) -> None:
        import torch
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoTokenizer,
            Qwen2_5_VLForConditionalGeneration,
        )

        if num_frames < 1 or not 0 < min_pixels <= max_pixels:
            raise ValueError(
                f"need num_frames >= 1 and 0 < min_pixels <= max_pixels, got {num_frames}, "
                f"{min_pixels}, {max_pixels}"
            )
        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "qwen2_5_vl":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'qwen2_5_vl'"
            )
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            self.model_path, dtype=torch_dtype, device_map=device_map
        )
        self.model = (model if device_map is not None else model.to(device)).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        processor = AutoImageProcessor.from_pretrained(self.model_path)
        self.patch_size = int(processor.patch_size)
        self.merge_size = int(processor.merge_size)
        self.temporal_patch_size = int(processor.temporal_patch_size)
        self.mean = tuple(float(v) for v in processor.image_mean)
        self.std = tuple(float(v) for v in processor.image_std)
        self.num_frames = num_frames
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        ids = (config.vision_start_token_id, config.video_token_id, config.vision_end_token_id)
        self._start, self._pad, self._end = self.tokenizer.convert_ids_to_tokens(list(ids))
        self.video_token_id = config.video_token_id

    @property
    def name(self) -> str:
        return f"pretrained:qwen2.5-vl({self.model_path})"

    def build_inputs(self, frames: np.ndarray, question: str, fps: float | None = None) -> dict:
        """Model inputs for one clip and one question.

        Args:
            frames: uint8 RGB (N, H, W, 3), the whole clip; ``num_frames`` are sampled.
            question: the user turn after the video.
            fps: the clip's frame rate; ``None`` assumes the sampled frames are 0.5 s apart.

        Returns:
            ``input_ids``, ``attention_mask`` (1, L), ``pixel_values_videos`` (P, D),
            ``video_grid_thw`` (1, 3), ``second_per_grid_ts`` (1,), ``mm_token_type_ids`` (1, L).
        """
        torch = self._torch
        frames = check_frames(frames)
        picked = frames[sample_indices(len(frames), self.num_frames)]
        size = smart_resize(
            frames.shape[1],
            frames.shape[2],
            self.patch_size * self.merge_size,
            self.min_pixels,
            self.max_pixels,
        )
        patches, grid = video_patches(
            picked, size, self.patch_size, self.merge_size, self.temporal_patch_size,
            self.mean, self.std,
        )
        if fps is None:
            sampled_fps = DEFAULT_SAMPLED_FPS
        elif fps > 0:
            sampled_fps = len(picked) / (len(frames) / fps)
        else:
            raise ValueError(f"fps must be positive, got {fps}")
        n_tokens = int(np.prod(grid)) // self.merge_size**2
        slot = f"{self._start}{self._pad * n_tokens}{self._end}"
        enc = self.tokenizer(chat_prompt(question, slot), return_tensors="pt")
        input_ids = enc["input_ids"]
        found = int((input_ids == self.video_token_id).sum())
        if found != n_tokens:
            raise BackendLoadError(
                f"tokenizer of {self.model_path} encodes {n_tokens} video slots as {found} "
                f"'{self._pad}' tokens; it must keep the special token whole"
            )
        return {
            "input_ids": input_ids,
            "attention_mask": enc["attention_mask"],
            "pixel_values_videos": torch.from_numpy(patches).to(self.model.dtype),
            "video_grid_thw": torch.tensor([grid], dtype=torch.long),
            "second_per_grid_ts": torch.tensor([self.temporal_patch_size / sampled_fps]),
            "mm_token_type_ids": (input_ids == self.video_token_id).int() * VIDEO_TOKEN_TYPE,
        }

    def ask(
        self, frames: np.ndarray, question: str, fps: float | None = None, max_new_tokens: int = 256
    ) -> str:
        """Greedy answer to ``question`` about the clip, special tokens removed, stripped."""
        torch = self._torch
        inputs = self.build_inputs(frames, question, fps)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
