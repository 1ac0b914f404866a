"""OpenS2V FaceSim-Cur with its own models: InsightFace alignment + CurricularFace IR-101.

Pipeline (``eval/get_facesim.py``): InsightFace ``FaceAnalysis`` (det_size 320) finds faces
in the BGR image; the largest face's 5 keypoints drive ``face_align.norm_crop`` to a 224 x 224
crop, converted to RGB; the crop is resized to 112 x 112, scaled to [-1, 1] and embedded by
the CurricularFace IR-101 backbone (``glint360k_curricular_face_r101_backbone.bin``); the
embedding is L2-normalised. Aggregation over frames is
:func:`evaluation.metrics.facesim.video_facesim`.

:class:`IRBackbone` is the IR ("improved residual") network of TFace's ``model_irse``, written
here with the same module names so the released state dict loads; its depth and widths are
parameters so tests can build a tiny one. InsightFace's detector needs the ``insightface``
package and its ``buffalo_l`` ONNX models; without them :class:`InsightFaceAligner` raises
:class:`MetricUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext
from evaluation.metrics.facesim import NUM_FRAMES, score_faces

INPUT_SIZE = 112
ALIGNED_SIZE = 224

# RGB uint8 (H, W, 3) -> aligned RGB uint8 (224, 224, 3) of the largest face, or None
FaceAligner = Callable[[np.ndarray], np.ndarray | None]


@dataclass(frozen=True)
class IRConfig:
    """Shape of an IR backbone; the default is IR-101 (TFace ``IR_101``) at 112 x 112."""

    stage_units: tuple[int, ...] = (3, 13, 30, 3)
    stage_channels: tuple[int, ...] = (64, 128, 256, 512)
    stem_channels: int = 64
    embedding_dim: int = 512


def build_ir_backbone(config: IRConfig = IRConfig()):
    """IR backbone mapping (N, 3, 112, 112) in [-1, 1] to (N, embedding_dim).

    Args:
        config: stage depths and widths.

    Returns:
        A ``torch.nn.Module`` with ``input_layer``, ``body`` and ``output_layer``.
    """
    from torch import nn

    class IRUnit(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.shortcut_layer = (
                nn.MaxPool2d(1, stride)
                if cin == cout
                else nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )
            )
            self.res_layer = nn.Sequential(
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.PReLU(cout),
                nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
            )

        def forward(self, x):
            return self.res_layer(x) + self.shortcut_layer(x)

    class IRBackbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_layer = nn.Sequential(
                nn.Conv2d(3, config.stem_channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(config.stem_channels),
                nn.PReLU(config.stem_channels),
            )
            units, cin = [], config.stem_channels
            for count, cout in zip(config.stage_units, config.stage_channels, strict=True):
                units += [IRUnit(cin, cout, 2)] + [IRUnit(cout, cout, 1) for _ in range(count - 1)]
                cin = cout
            self.body = nn.Sequential(*units)
            side = INPUT_SIZE // 2 ** len(config.stage_units)  # 7 after four stride-2 stages
            self.output_layer = nn.Sequential(
                nn.BatchNorm2d(cin),
                nn.Dropout(0.4),
                nn.Flatten(),
                nn.Linear(cin * side * side, config.embedding_dim),
                nn.BatchNorm1d(config.embedding_dim, affine=False),
            )

        def forward(self, x):  # (N, 3, 112, 112) -> (N, D)
            return self.output_layer(self.body(self.input_layer(x)))

    return IRBackbone()


def load_curricularface(weights: str | Path, config: IRConfig = IRConfig(), device: str = "cpu"):
    """Build the IR backbone and load a CurricularFace state dict into it (eval mode).

    Args:
        weights: ``glint360k_curricular_face_r101_backbone.bin`` (a torch state dict).
        config: backbone shape; IR-101 by default.
        device: torch device string.

    Returns:
        The loaded backbone.
    """
    import torch

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"CurricularFace weights not found: {weights}")
    model = build_ir_backbone(config)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval()


def embed_aligned(model, aligned_rgb: np.ndarray, device: str = "cpu") -> np.ndarray:
    """CurricularFace embedding of an aligned RGB face crop.

    Args:
        model: a loaded backbone.
        aligned_rgb: uint8 (H, W, 3) aligned face (224 x 224 from ``norm_crop``).
        device: torch device string.

    Returns:
        float64 unit vector (D,).
    """
    import cv2
    import torch

    face = cv2.resize(aligned_rgb, (INPUT_SIZE, INPUT_SIZE))
    x = torch.from_numpy(np.ascontiguousarray(face.transpose(2, 0, 1))).float()[None]
    x = (x / 255.0 - 0.5) / 0.5
    with torch.no_grad():
        emb = model(x.to(device))[0].double().cpu().numpy()
    return emb / np.linalg.norm(emb)


class InsightFaceAligner:
    """Largest face by box area, aligned with InsightFace ``norm_crop`` to 224 x 224 RGB.

    Args:
        root: directory holding InsightFace's ``models/<name>`` (OpenS2V: ``face_extractor``).
        name: model pack name.
        ctx_id: -1 for CPU, else the GPU index.

    Raises:
        MetricUnavailableError: when ``insightface`` is not installed.
    """

    def __init__(self, root: str | Path, name: str = "buffalo_l", ctx_id: int = -1) -> None:
        try:
            from insightface.app import FaceAnalysis
            from insightface.utils import face_align
        except ImportError as exc:
            raise MetricUnavailableError(
                "FaceSim-Cur alignment needs the 'insightface' package and its buffalo_l models"
            ) from exc
        providers = ["CPUExecutionProvider"] if ctx_id < 0 else ["CUDAExecutionProvider"]
        self.app = FaceAnalysis(name=name, root=str(root), providers=providers)
        self.app.prepare(ctx_id=ctx_id, det_size=(320, 320))
        self._norm_crop = face_align.norm_crop

    def __call__(self, image_rgb: np.ndarray) -> np.ndarray | None:
        bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        faces = self.app.get(bgr)
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        crop = self._norm_crop(bgr, landmark=face.kps, image_size=ALIGNED_SIZE)
        return np.ascontiguousarray(crop[..., ::-1])


class CurricularFaceEmbedder:
    """Aligner + CurricularFace backbone as a face embedder for :func:`video_facesim`."""

    def __init__(self, align: FaceAligner, model, device: str = "cpu") -> None:
        self.align, self.model, self.device = align, model, device

    def __call__(self, image_rgb: np.ndarray) -> np.ndarray | None:
        aligned = self.align(image_rgb)
        return None if aligned is None else embed_aligned(self.model, aligned, self.device)


class FaceSimCurricular:
    """OpenS2V FaceSim-Cur (pretrained: InsightFace + CurricularFace IR-101)."""

    spec = MetricSpec(
        name="facesim",
        key="facesim",
        backend="pretrained",
        definition="OpenS2V-Eval v1.1 get_facesim.py cur_score (InsightFace + CurricularFace)",
        is_proxy=False,
    )

    def __init__(self, embedder: CurricularFaceEmbedder, num_frames: int = NUM_FRAMES) -> None:
        self.embed = embedder
        self.num_frames = num_frames

    @classmethod
    def from_weights(cls, weights_dir: str | Path, device: str = "cpu") -> FaceSimCurricular:
        """Load from OpenS2V's weight folder (``face_extractor/`` + the IR-101 ``.bin``)."""
        weights_dir = Path(weights_dir)
        align = InsightFaceAligner(
            weights_dir / "face_extractor", ctx_id=-1 if device == "cpu" else 0
        )
        model = load_curricularface(
            weights_dir / "glint360k_curricular_face_r101_backbone.bin", device=device
        )
        return cls(CurricularFaceEmbedder(align, model, device))

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return score_faces(self.spec, self.embed, frames, context, self.num_frames)
