"""SAM2.1 box-prompted masks and their morphological refinement (paper App. B.2, E.1).

``Sam2Masker`` loads ``Sam2Model`` (e.g. ``facebook/sam2.1-hiera-large``) with
``from_pretrained``. ``Sam2Processor`` is not used: its image processor imports
torchvision, which has no CPU build here. Its preprocessing is reproduced from the
checkpoint's ``preprocessor_config.json``: resize to the model's square input (1024 px,
bilinear, aspect ratio not kept), rescale to [0, 1], normalise (ImageNet mean/std); boxes
are scaled into that square per axis; the low-resolution mask logits are resized
(bilinear) to the frame and thresholded at 0, as ``post_process_masks`` does.

``refine_mask`` is the pure numpy/OpenCV refinement the paper applies to every mask
(opening and closing, hole filling, largest component); the embedded backend uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.subjects import refine_mask  # noqa: F401  (the morphological clean-up both backends use)

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.inputs import Box, check_box, check_frame

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)



class Sam2Masker:
    """SAM2.1 masks from box prompts.

    Args:
        model_path: hub id or directory of a transformers-format SAM2 / SAM2.1 checkpoint.
        device: torch device string.
        mask_threshold: logit threshold of a mask pixel (SAM's 0).
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", mask_threshold: float = 0.0):
        import torch
        from transformers import AutoConfig, Sam2Model
        from transformers.image_processing_base import ImageProcessingMixin

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "sam2":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'sam2'"
            )
        self.model = Sam2Model.from_pretrained(self.model_path).to(device).eval()
        processor, _ = ImageProcessingMixin.get_image_processor_dict(self.model_path)
        size = processor.get("size") or {"height": 1024, "width": 1024}
        self.input_size = (int(size["height"]), int(size["width"]))
        expected = int(config.prompt_encoder_config.image_size)
        if self.input_size != (expected, expected):
            raise BackendLoadError(
                f"{self.model_path}: preprocessor size {self.input_size} differs from the "
                f"prompt encoder's image size {expected}"
            )
        self.mean = np.asarray(processor.get("image_mean", _IMAGENET_MEAN), np.float32)
        self.std = np.asarray(processor.get("image_std", _IMAGENET_STD), np.float32)
        self.rescale = float(processor.get("rescale_factor", 1 / 255))
        self.mask_threshold = mask_threshold
        self.device = device
        self.name = f"pretrained:sam2.1({self.model_path})"

    def predict(
        self, frame: np.ndarray, boxes: Sequence[Box]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Masks and SAM's predicted IoU for each box prompt.

        Args:
            frame: uint8 RGB (H, W, 3).
            boxes: (x0, y0, x1, y1) pixel boxes inside the frame.

        Returns:
            ``(masks, iou)``: one bool (H, W) mask per box; float32 (len(boxes),) predicted IoU.
        """
        torch = self._torch
        frame = check_frame(frame)
        height, width = frame.shape[:2]
        if len(boxes) == 0:
            return [], np.zeros(0, np.float32)
        logits, iou = self.low_res_logits(frame, boxes)
        with torch.no_grad():
            logits = torch.nn.functional.interpolate(
                torch.from_numpy(logits)[:, None], (height, width), mode="bilinear",
                align_corners=False,
            )[:, 0]
        return list((logits > self.mask_threshold).numpy()), iou

    def low_res_logits(
        self, frame: np.ndarray, boxes: Sequence[Box]
    ) -> tuple[np.ndarray, np.ndarray]:
        """SAM's mask logits at its own resolution, before the resize to the frame.

        Args:
            frame: uint8 RGB (H, W, 3).
            boxes: at least one (x0, y0, x1, y1) pixel box inside the frame.

        Returns:
            float32 (n, h', w') logits (h' = w' = input side / 4) and float32 (n,) IoU.
        """
        from PIL import Image

        torch = self._torch
        frame = check_frame(frame)
        height, width = frame.shape[:2]
        boxes = [check_box(box, width, height) for box in boxes]
        if not boxes:
            raise ValueError("low_res_logits needs at least one box")
        in_h, in_w = self.input_size
        resized = np.asarray(Image.fromarray(frame).resize((in_w, in_h), Image.BILINEAR))
        pixels = (resized.astype(np.float32) * self.rescale - self.mean) / self.std
        pixel_values = torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy())  # (1, 3, h, w)
        scale = np.array([in_w / width, in_h / height, in_w / width, in_h / height], np.float32)
        prompts = torch.from_numpy(np.asarray(boxes, np.float32) * scale)[None]  # (1, n, 4)
        with torch.no_grad():
            out = self.model(
                pixel_values=pixel_values.to(self.device, self.model.dtype),
                input_boxes=prompts.to(self.device),
                multimask_output=False,
            )
        logits = out.pred_masks[0, :, 0].float().cpu().numpy()  # (n, h', w')
        return logits, out.iou_scores[0, :, 0].float().cpu().numpy()

    def masks(self, frame: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One bool (H, W) mask per (x0, y0, x1, y1) box prompt."""
        return self.predict(frame, boxes)[0]
