"""Reference-image preprocessing: letterbox onto the video canvas.

Reference crops come in any aspect ratio; resizing them to the video size would distort
the subject. They are scaled to fit inside ``height x width`` and centred on a white
canvas (white, like the cut-out subject images of S2V benchmarks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def reference_to_uint8(image: Any) -> np.ndarray:
    """PIL image, ``(H, W, 3)`` array (uint8 or float in ``[0, 1]``) or ``(3, H, W)`` tensor
    in ``[0, 1]`` to an ``(H, W, 3)`` uint8 array."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"a reference tensor must be (3, H, W) in [0, 1], got {tuple(image.shape)}"
            )
        image = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    array = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"a reference image must be RGB (H, W, 3), got shape {array.shape}")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    return array


def letterbox_reference(image: Any, height: int, width: int, fill: int = 255) -> torch.Tensor:
    """Fit ``image`` inside ``height x width`` keeping its aspect ratio, centred on ``fill``.

    Returns:
        ``(3, height, width)`` float tensor in ``[-1, 1]`` (the VAE's input range).
    """
    from PIL import Image

    array = reference_to_uint8(image)
    src_h, src_w = array.shape[:2]
    scale = min(height / src_h, width / src_w)
    new_h, new_w = max(1, round(src_h * scale)), max(1, round(src_w * scale))
    resized = np.asarray(Image.fromarray(array).resize((new_w, new_h), Image.Resampling.BICUBIC))
    canvas = np.full((height, width, 3), fill, dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return torch.from_numpy(canvas).permute(2, 0, 1).float() / 127.5 - 1.0
