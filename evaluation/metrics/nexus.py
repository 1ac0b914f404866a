"""OpenS2V NexusScore: is the reference subject in the video, and does it look like the reference?

Definition (``eval/get_nexusscore.py`` of OpenS2V-Nexus v1.1):

1. 32 frames sampled with ``linspace(0, T - 1, 32)`` truncated to int.
2. For every frame and every reference image (in ``img_paths`` order, with its ``class_label``):
   entries whose id contains ``face`` skip references labelled ``Man`` / ``Woman``; entries
   whose id contains ``human`` use the label ``human`` for them. YOLO-World v2-L with the
   image-prompt adapter (mmyolo; prompted with the reference image's CLIP ViT-B/32 embedding)
   detects the subject: NMS at IoU 0.7, boxes with score > 0.5, at most 100 boxes. A
   (frame, reference) pair with at least one box counts once in ``frame_obj``.
3. Every box is cropped from its frame (PIL ``crop``: coordinates rounded). GME-Qwen2-VL
   embeds the crops and the references as corpus images and the labels as queries
   ("Find an image that matches the given text.").
4. A crop is kept when its detection confidence > 0.6, its GME text-to-crop similarity > 0.30
   and its GME reference-to-crop similarity is not exactly 0. NexusScore is the mean
   reference-to-crop similarity of the kept crops **divided by** ``frame_obj``; 0 when no crop
   is kept (the merge script then skips the video; :func:`evaluation.total_score.aggregate_videos`
   does the same). The normalisation is ``min(x, 0.05) / 0.05``.

The aggregation (:func:`nexus_from_similarities`) and the reference rule
(:func:`nexus_references`) are plain functions. Detectors:

===========================  ============================================  =====================
metric name                  detector                                      status
===========================  ============================================  =====================
``nexus``                    YOLO-World v2-L image-prompt adapter (mmyolo)  the benchmark's own
``nexus_yolo_world_text_``   YOLO-World (ultralytics), prompted with the   proxy
``proxy``                    class label as text
``nexus_grounding_dino_``    Grounding DINO (transformers), prompted with   proxy
``proxy``                    the class label as text
===========================  ============================================  =====================

The proxies keep OpenS2V's frames, crops, GME similarities, thresholds and aggregation but
detect with another model and a text prompt; their confidences are calibrated differently, so
the 0.5 / 0.6 thresholds do not mean the same thing. Their numbers are never NexusScore: the
spec says ``is_proxy=True`` and :func:`evaluation.metrics.benchmark_values` keeps them out of
TotalScore. mmyolo / mmdet and ultralytics need torchvision, which has no CPU build here: the
first two detectors raise :class:`MetricUnavailableError` naming the missing package.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import (
    MetricSpec,
    MetricValue,
    SampleContext,
    check_frames,
    not_computed,
)
from evaluation.video import uniform_indices

NUM_FRAMES = 32
SCORE_THRESHOLD = 0.5  # detector output filter (yoloworld_inference score_thr)
NMS_IOU = 0.7
MAX_BOXES = 100
CONF_THRESHOLD = 0.6  # kept crops: detection confidence above this
TEXT_THRESHOLD = 0.30  # kept crops: GME label-to-crop similarity above this
LABEL_INSTRUCTION = "Find an image that matches the given text."
PERSON_LABELS = ("Man", "Woman")

Box = tuple[float, float, float, float]


class Detector(Protocol):
    """Boxes of one reference subject in one frame."""

    name: str

    def detect(self, frame: np.ndarray, reference: np.ndarray, label: str) -> list[tuple[Box, float]]:
        """``[(box, confidence)]`` with boxes (x0, y0, x1, y1) in frame pixels."""
        ...


class Embedder(Protocol):
    """GME-style embeddings (see :class:`evaluation.metrics.gme.GmeEmbedder`)."""

    def embed_texts(self, texts: list[str], instruction: str = ...) -> np.ndarray: ...

    def embed_images(self, images) -> np.ndarray: ...


# --------------------------------------------------------------------------- definition


def nexus_references(sample_id: str, labels: Sequence[str]) -> list[tuple[int, str]]:
    """The references NexusScore looks for, with the label it uses for each.

    Args:
        sample_id: the benchmark entry's id (``singleface_3``, ``human_12``, ...).
        labels: class label of each reference image.

    Returns:
        ``(reference index, label)`` pairs: references labelled Man/Woman are skipped in
        ``face`` entries and relabelled ``human`` in ``human`` entries.
    """
    out = []
    for index, label in enumerate(labels):
        if label in PERSON_LABELS:
            if "face" in sample_id:
                continue
            if "human" in sample_id:
                label = "human"
        out.append((index, label))
    return out


def nexus_from_similarities(
    confidences: Sequence[float],
    text_similarities: Sequence[float],
    image_similarities: Sequence[float],
    frames_with_detection: int,
    conf_threshold: float = CONF_THRESHOLD,
    text_threshold: float = TEXT_THRESHOLD,
) -> tuple[float, int]:
    """NexusScore of one video from its crops (OpenS2V's aggregation).

    Args:
        confidences: detection confidence of each crop.
        text_similarities: GME similarity of each crop with its reference's label.
        image_similarities: GME similarity of each crop with its reference image.
        frames_with_detection: (frame, reference) pairs with at least one box (``frame_obj``).
        conf_threshold, text_threshold: the keep rule's thresholds.

    Returns:
        ``(score, kept crops)``; the score is 0.0 when no crop is kept.
    """
    conf = np.asarray(confidences, np.float64)
    text = np.asarray(text_similarities, np.float64)
    image = np.asarray(image_similarities, np.float64)
    if not conf.shape == text.shape == image.shape or conf.ndim != 1:
        raise ValueError(f"one value per crop expected, got {conf.shape}, {text.shape}, {image.shape}")
    keep = (conf > conf_threshold) & (text > text_threshold) & (image != 0)
    if not keep.any():
        return 0.0, 0
    if frames_with_detection < 1:
        raise ValueError("kept crops but no frame with a detection")
    return float(image[keep].mean() / frames_with_detection), int(keep.sum())


def crop(frame: np.ndarray, box: Box) -> np.ndarray:
    """The box's pixels, coordinates rounded as PIL ``crop`` rounds them, clipped to the frame
    and at least one pixel wide and high."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, x1 = min(max(x0, 0), width - 1), min(max(x1, 0), width)
    y0, y1 = min(max(y0, 0), height - 1), min(max(y1, 0), height)
    return frame[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (torchvision's rule:
    a box is dropped when its IoU with a kept box is above ``iou``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def filter_detections(
    boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_iou: float, max_boxes: int
) -> list[tuple[Box, float]]:
    """OpenS2V's post-processing: NMS, then score > threshold, then the ``max_boxes`` best."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    kept = nms(boxes, scores, nms_iou)
    kept = kept[scores[kept] > score_threshold]
    kept = kept[np.argsort(-scores[kept], kind="stable")][:max_boxes]
    return [(tuple(float(v) for v in boxes[i]), float(scores[i])) for i in kept]


# --------------------------------------------------------------------------- the metric


@dataclass(frozen=True)
class NexusCrops:
    """Every box found in one video, with what the score needs."""

    crops: list[np.ndarray]
    reference_of_crop: list[int]  # index into the used references
    confidences: list[float]
    frames_with_detection: int


class NexusScore:
    """NexusScore with a given detector and GME embedder (see the module docstring).

    Args:
        detector: finds the reference subject in a frame.
        embedder: GME (``embed_texts`` with an instruction, ``embed_images``).
        spec: the metric's identity (``BENCHMARK_SPEC`` only for the benchmark's detector).
        num_frames, conf_threshold, text_threshold: OpenS2V's values by default.
        batch_size: crops per GME call.
    """

    def __init__(
        self,
        detector: Detector,
        embedder: Embedder,
        spec: MetricSpec,
        num_frames: int = NUM_FRAMES,
        conf_threshold: float = CONF_THRESHOLD,
        text_threshold: float = TEXT_THRESHOLD,
        batch_size: int = 8,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.spec = spec
        self.num_frames = num_frames
        self.conf_threshold = conf_threshold
        self.text_threshold = text_threshold
        self.batch_size = batch_size

    def find(self, frames: np.ndarray, references: Sequence[np.ndarray], labels: Sequence[str]) -> NexusCrops:
        """Detect every reference in the sampled frames and crop the boxes."""
        crops, owner, conf = [], [], []
        frame_obj = 0
        for index in uniform_indices(len(frames), self.num_frames):
            frame = frames[index]
            for k, (reference, label) in enumerate(zip(references, labels, strict=True)):
                boxes = self.detector.detect(frame, reference, label)
                frame_obj += bool(boxes)
                for box, confidence in boxes:
                    crops.append(crop(frame, box))
                    owner.append(k)
                    conf.append(float(confidence))
        return NexusCrops(crops, owner, conf, frame_obj)

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        if not context.reference_images:
            return not_computed(self.spec, "sample has no reference image")
        if len(context.reference_labels) != len(context.reference_images):
            return not_computed(
                self.spec,
                f"NexusScore needs a class label per reference image; the sample has "
                f"{len(context.reference_labels)} labels for {len(context.reference_images)} images",
            )
        used = nexus_references(context.sample_id, context.reference_labels)
        if not used:
            return not_computed(self.spec, "OpenS2V skips Man/Woman references of face entries; none left")
        references = [np.asarray(context.reference_images[i], np.uint8) for i, _ in used]
        labels = [label for _, label in used]
        found = self.find(frames, references, labels)
        detector = getattr(self.detector, "name", type(self.detector).__name__)
        if not found.crops:
            return MetricValue(self.spec, 0.0, f"no detection by {detector} (a 0 is skipped when averaging)")
        reference_emb = self._images(references)
        label_emb = self.embedder.embed_texts(labels, instruction=LABEL_INSTRUCTION)
        crop_emb = self._images(found.crops)
        owner = np.asarray(found.reference_of_crop)
        image_sims = np.sum(crop_emb * reference_emb[owner], axis=1)
        text_sims = np.sum(crop_emb * label_emb[owner], axis=1)
        value, kept = nexus_from_similarities(
            found.confidences, text_sims, image_sims, found.frames_with_detection,
            self.conf_threshold, self.text_threshold,
        )
        return MetricValue(
            self.spec,
            value,
            f"{kept} of {len(found.crops)} crops kept; {found.frames_with_detection} frame-reference "
            f"pairs with a detection; detector {detector}",
        )

    def _images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([
            np.asarray(self.embedder.embed_images(list(images[i : i + self.batch_size])), np.float64)
            for i in range(0, len(images), self.batch_size)
        ])


BENCHMARK_SPEC = MetricSpec(
    name="nexus",
    key="nexus",
    backend="pretrained",
    definition="OpenS2V-Eval v1.1 get_nexusscore.py (YOLO-World v2-L image-prompt detector + GME-Qwen2-VL)",
    is_proxy=False,
)
GROUNDING_DINO_SPEC = MetricSpec(
    name="nexus_grounding_dino_proxy",
    key="nexus",
    backend="pretrained",
    definition="NexusScore with a Grounding DINO detector (class label as text prompt) instead of "
    "YOLO-World (reference image as prompt); OpenS2V's frames, GME similarities, thresholds and "
    "aggregation",
    is_proxy=True,
)
YOLO_WORLD_TEXT_SPEC = MetricSpec(
    name="nexus_yolo_world_text_proxy",
    key="nexus",
    backend="pretrained",
    definition="NexusScore with ultralytics YOLO-World (class label as text prompt) instead of "
    "OpenS2V's YOLO-World image-prompt adapter; OpenS2V's frames, GME similarities, thresholds and "
    "aggregation",
    is_proxy=True,
)


# --------------------------------------------------------------------------- detectors


class YoloWorldImagePromptDetector:
    """OpenS2V's detector: mmyolo YOLO-World v2-L with the image-prompt adapter.

    The reference image is embedded with CLIP ViT-B/32's vision tower (L2-normalised, then the
    adapter's projector) and set as the only class embedding; the frame goes through the
    config's test pipeline. Needs ``mmengine``, ``mmdet``, ``mmyolo``, ``torchvision`` and the
    ``yolo_world`` package shipped in OpenS2V's ``eval/utils/yoloworld`` on ``sys.path``.

    Args:
        config_path: ``yolo_world_v2_l_vlpan_bn_2e-4_80e_8gpus_image_prompt_demo.py``.
        checkpoint_path: ``yolo_world_v2_l_image_prompt_adapter-719a7afb.pth``.
        clip_path: CLIP used for the image prompt (``openai/clip-vit-base-patch32``).
        device: torch device string.

    Raises:
        MetricUnavailableError: when one of those packages is missing.
    """

    name = "yolo-world-v2-l-image-prompt(mmyolo)"

    def __init__(
        self,
        config_path: str | Path,
        checkpoint_path: str | Path,
        clip_path: str | Path = "openai/clip-vit-base-patch32",
        device: str = "cuda",
        score_threshold: float = SCORE_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
    ) -> None:
        missing = [m for m in ("mmengine", "mmdet", "mmyolo", "torchvision", "yolo_world")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise MetricUnavailableError(
                f"NexusScore's YOLO-World image-prompt detector needs {missing} (mmyolo stack and "
                "OpenS2V's eval/utils/yoloworld package; torchvision has no CPU build here)"
            )
        import torch
        from mmengine.config import Config
        from mmengine.dataset import Compose
        from mmengine.runner import Runner
        from mmyolo.registry import RUNNERS
        from transformers import AutoProcessor, CLIPVisionModelWithProjection

        self._torch = torch
        cfg = Config.fromfile(str(config_path))
        cfg.work_dir = tempfile.mkdtemp(prefix="yolo_world_")
        cfg.load_from = str(checkpoint_path)
        cfg.text_model_name = str(clip_path)
        cfg.model.vision_model = str(clip_path)
        cfg.model.backbone.text_model.model_name = str(clip_path)
        runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
        runner.call_hook("before_run")
        runner.load_or_resume()
        pipeline = cfg.test_dataloader.dataset.pipeline
        pipeline[0].type = "mmdet.LoadImageFromNDArray"
        self.pipeline = Compose(pipeline)
        self.model = runner.model.eval()
        self.processor = AutoProcessor.from_pretrained(str(clip_path))
        self.vision = CLIPVisionModelWithProjection.from_pretrained(str(clip_path)).to(device).eval()
        self.projector = getattr(getattr(self.model, "image_prompt_encoder", None), "projector", None)
        self.device = device
        self.score_threshold, self.nms_iou, self.max_boxes = score_threshold, nms_iou, max_boxes
        self._prompt_key: tuple | None = None

    def _set_prompt(self, reference: np.ndarray) -> None:
        from PIL import Image

        torch = self._torch
        key = (reference.shape, hash(reference.tobytes()))
        if key == self._prompt_key:
            return
        with torch.no_grad():
            inputs = self.processor(images=[Image.fromarray(reference)], return_tensors="pt").to(self.device)
            emb = self.vision(**inputs).image_embeds.view(1, -1)
            emb = emb / emb.norm(p=2, dim=-1, keepdim=True)
            if self.projector is not None:
                emb = self.projector(emb)
            emb = emb / emb.norm(p=2, dim=-1, keepdim=True)
        self.model.num_test_classes = emb.shape[0]
        self.model.setembeddings(emb[None])
        self._prompt_key = key

    def detect(self, frame: np.ndarray, reference: np.ndarray, label: str) -> list[tuple[Box, float]]:
        from mmengine.runner.amp import autocast

        torch = self._torch
        self._set_prompt(np.ascontiguousarray(reference, dtype=np.uint8))
        data = self.pipeline({"img_id": 0, "img": np.ascontiguousarray(frame), "texts": [["object"], [" "]]})
        sample = data["data_samples"]
        if "texts" in sample:
            del sample["texts"]
        with autocast(enabled=False), torch.no_grad():
            pred = self.model.test_step({"inputs": data["inputs"].unsqueeze(0), "data_samples": [sample]})[0]
        boxes = pred.pred_instances.bboxes.float().cpu().numpy()
        scores = pred.pred_instances.scores.float().cpu().numpy()
        return filter_detections(boxes, scores, self.score_threshold, self.nms_iou, self.max_boxes)


class YoloWorldTextDetector:
    """ultralytics YOLO-World prompted with the class label as text (a proxy detector).

    Args:
        weights: a local ``.pt`` file (e.g. ``yolov8l-worldv2.pt``); nothing is downloaded.
        device: torch device string.

    Raises:
        MetricUnavailableError: ``ultralytics`` is not installed (it needs torchvision) or the
            weights file is missing.
    """

    def __init__(
        self,
        weights: str | Path,
        device: str = "cpu",
        score_threshold: float = SCORE_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
    ) -> None:
        try:
            from ultralytics import YOLOWorld
        except ImportError as exc:
            raise MetricUnavailableError(
                "the YOLO-World text-prompt detector needs the 'ultralytics' package (which needs "
                "torchvision; there is no CPU build of it here)"
            ) from exc
        if not Path(weights).is_file():
            raise MetricUnavailableError(f"YOLO-World weights {str(weights)!r} not found (nothing is downloaded)")
        self.model = YOLOWorld(str(weights))
        self.name = f"yolo-world(ultralytics:{Path(weights).name})"
        self.device = device
        self.score_threshold, self.nms_iou, self.max_boxes = score_threshold, nms_iou, max_boxes
        self._label: str | None = None

    def detect(self, frame: np.ndarray, reference: np.ndarray, label: str) -> list[tuple[Box, float]]:
        if label != self._label:
            self.model.set_classes([label])
            self._label = label
        # ultralytics reads numpy images as BGR
        result = self.model.predict(
            np.ascontiguousarray(frame[..., ::-1]), conf=self.score_threshold, iou=self.nms_iou,
            max_det=self.max_boxes, device=self.device, verbose=False,
        )[0]
        boxes = result.boxes.xyxy.float().cpu().numpy()
        scores = result.boxes.conf.float().cpu().numpy()
        return filter_detections(boxes, scores, self.score_threshold, self.nms_iou, self.max_boxes)


class GroundingDinoDetector:
    """Grounding DINO (transformers) prompted with the class label as text (a proxy detector).

    Args:
        model_path: hub id or directory (``IDEA-Research/grounding-dino-base``).
        device: torch device string.
        score_threshold, nms_iou, max_boxes: OpenS2V's post-processing values by default.
    """

    def __init__(
        self,
        model_path: str | Path = "IDEA-Research/grounding-dino-base",
        device: str = "cpu",
        score_threshold: float = SCORE_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoProcessor, GroundingDinoForObjectDetection

        from curation.pretrained.errors import BackendLoadError

        self._torch = torch
        self.model_path = str(model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        if config.model_type != "grounding-dino":
            raise BackendLoadError(
                f"{self.model_path} holds a {config.model_type!r} model, expected 'grounding-dino'"
            )
        self.model = GroundingDinoForObjectDetection.from_pretrained(self.model_path).to(device).eval()
        self.processor = AutoProcessor.from_pretrained(self.model_path)
        self.device = device
        self.score_threshold, self.nms_iou, self.max_boxes = score_threshold, nms_iou, max_boxes
        self.name = f"grounding-dino({self.model_path})"

    def detect(self, frame: np.ndarray, reference: np.ndarray, label: str) -> list[tuple[Box, float]]:
        from PIL import Image

        torch = self._torch
        if not label.strip():
            raise ValueError("Grounding DINO needs a non-empty class label")
        inputs = self.processor(images=Image.fromarray(frame), text=[label.strip()], return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.no_grad():
            outputs = self.model(**inputs)
        result = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0,
            target_sizes=[frame.shape[:2]],
        )[0]
        boxes = result["boxes"].float().cpu().numpy()
        scores = result["scores"].float().cpu().numpy()
        height, width = frame.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        return filter_detections(boxes, scores, self.score_threshold, self.nms_iou, self.max_boxes)
