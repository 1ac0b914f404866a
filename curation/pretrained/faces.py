"""InsightFace face detection and identity embeddings through ONNX Runtime (paper App. B.2).

The paper detects faces with the InsightFace toolbox. An InsightFace model pack (e.g.
``buffalo_l``: ``det_10g.onnx`` SCRFD detector, ``w600k_r50.onnx`` ArcFace recogniser) is
a directory of ONNX files; ``insightface.app.FaceAnalysis`` opens each with ONNX Runtime,
tells detector from recogniser by the graph's signature, and runs them. This module does
the same for the two models the pipeline needs with ONNX Runtime alone: the ``insightface``
package resolves packs by name and downloads missing ones, and its current release (2.1)
brings much code the pipeline does not use.

- a graph with >= 5 outputs is the detector (SCRFD; 6/9 outputs = 3 strides x 2 anchors,
  10/15 = 5 strides x 1 anchor; 9 and 15 carry five landmarks);
- 192 px inputs are landmark models, 96 px gender-age models, two-input 128 px graphs face
  swappers: not used;
- any other graph with one square input of side >= 112 and a multiple of 16 is the
  recogniser. The first file (sorted by name) of each role wins, as in FaceAnalysis.

Detection follows InsightFace's SCRFD: letterbox into ``det_size`` (top-left, zero pad),
``(rgb - 127.5) / 128``, anchors at ``(col, row) * stride``, distances times stride, score
threshold, then NMS at IoU 0.4. Recognition aligns the face by a similarity transform of
its five landmarks onto ArcFace's 112 px template and L2-normalises the embedding.
Frames are RGB (InsightFace reads BGR and swaps to RGB inside its blob step, so the
networks see RGB either way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.inputs import Box, check_frame

# ArcFace's five-point template in a 112 x 112 crop: eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]],
    dtype=np.float32,
)
_OTHER_MODEL_SIDES = (192, 96)  # landmark (1k3d68, 2d106det) and gender-age inputs
_SCRFD_LAYOUTS = {  # outputs -> (strides, anchors per cell, has landmarks)
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One detected face.

    Args:
        box: (x0, y0, x1, y1) in frame pixels, clipped to the frame.
        score: detector confidence in [0, 1].
        landmarks: float32 (5, 2) x, y of left eye, right eye, nose, left and right mouth
            corners (image left/right), in frame pixels; NaN when the detector predicts none.
        embedding: float32 (D,) L2-normalised ArcFace identity embedding (D = 512 for the
            InsightFace packs), or ``None`` when the pack has no recogniser or the detector
            no landmarks to align with.
    """

    box: Box
    score: float
    landmarks: np.ndarray = field(repr=False)
    embedding: np.ndarray | None = field(default=None, repr=False)


def distance_to_boxes(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """SCRFD box decoding: (N, 2) anchor centres and (N, 4) left/top/right/bottom distances
    -> (N, 4) x0, y0, x1, y1."""
    return np.concatenate([centers - distances[:, :2], centers + distances[:, 2:4]], axis=1)


def distance_to_points(centers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """SCRFD landmark decoding: (N, 2) centres and (N, 2K) offsets -> (N, K, 2) points."""
    return centers[:, None, :] + offsets.reshape(len(offsets), -1, 2)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, InsightFace's (+1 pixel area) convention.

    Returns:
        int64 indices of kept boxes, by descending score.
    """
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou_threshold]
    return np.asarray(keep, np.int64)


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """ArcFace alignment: similarity transform of five landmarks onto the template.

    Args:
        frame: uint8 RGB (H, W, 3).
        landmarks: (5, 2) points in frame pixels.
        size: crop side; 112 (or a multiple) as InsightFace's ``norm_crop``.

    Returns:
        uint8 RGB (size, size, 3).
    """
    import cv2
    from skimage.transform import SimilarityTransform

    if size % 112 == 0:
        template = ARCFACE_TEMPLATE * (size / 112)
    else:
        template = ARCFACE_TEMPLATE * (size / 128) + np.array([8 * size / 128, 0], np.float32)
    transform = SimilarityTransform.from_estimate(np.asarray(landmarks, np.float64), template)
    if not transform:  # skimage returns a falsy FailedEstimation for degenerate points
        raise ValueError(f"cannot align a face on degenerate landmarks {landmarks.tolist()}")
    return cv2.warpAffine(frame, transform.params[:2], (size, size), borderValue=0.0)


class InsightFaceAnalyzer:
    """SCRFD faces with ArcFace embeddings from an InsightFace model-pack directory.

    Args:
        model_dir: directory holding the pack's ``*.onnx`` files (e.g. ``~/.insightface/
            models/buffalo_l``).
        det_size: side of the square detector input, used when the detector graph has
            dynamic spatial axes.
        det_thresh: detector score threshold (FaceAnalysis' default 0.5).
        nms_thresh: IoU threshold of the detector's NMS (SCRFD's default 0.4).
        providers: ONNX Runtime execution providers.
    """

    def __init__(
        self,
        model_dir: str | Path,
        det_size: int = 640,
        det_thresh: float = 0.5,
        nms_thresh: float = 0.4,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime

        self.model_dir = Path(model_dir)
        files = sorted(self.model_dir.glob("*.onnx"))
        if not files:
            raise BackendLoadError(f"no .onnx model files in {self.model_dir}")
        self.detector = None
        self.recognizer = None
        for path in files:
            session = onnxruntime.InferenceSession(str(path), providers=list(providers))
            inputs, outputs = session.get_inputs(), session.get_outputs()
            shape = inputs[0].shape
            if len(outputs) >= 5 and self.detector is None:
                if len(outputs) not in _SCRFD_LAYOUTS:
                    raise BackendLoadError(
                        f"{path.name}: {len(outputs)} outputs is no SCRFD layout"
                    )
                self.detector, self.detector_file = session, path.name
            elif (
                len(inputs) == 1 and self.recognizer is None and isinstance(shape[2], int)
                and shape[2] == shape[3] and shape[2] >= 112 and shape[2] % 16 == 0
                and shape[2] not in _OTHER_MODEL_SIDES
            ):
                self.recognizer, self.recognizer_file = session, path.name
                self.rec_size = int(shape[2])
                self.rec_mean, self.rec_std = _arcface_normalisation(path)
        if self.detector is None:
            raise BackendLoadError(
                f"{self.model_dir} holds no face detector (an ONNX graph with >= 5 outputs); "
                f"files: {[p.name for p in files]}"
            )
        det_shape = self.detector.get_inputs()[0].shape
        fixed = isinstance(det_shape[2], int) and isinstance(det_shape[3], int)
        self.det_input = (int(det_shape[3]), int(det_shape[2])) if fixed else (det_size, det_size)
        self.det_thresh, self.nms_thresh = det_thresh, nms_thresh
        self.name = f"pretrained:insightface({self.model_dir})"

    def detect(self, frame: np.ndarray) -> list[FaceDetection]:
        """Faces in one frame, by descending score.

        Args:
            frame: uint8 RGB (H, W, 3).
        """
        frame = check_frame(frame)
        height, width = frame.shape[:2]
        boxes, scores, points = self._detect(frame)
        faces = []
        for box, score, landmarks in zip(boxes, scores, points, strict=True):
            x0, x1 = np.clip(box[[0, 2]], 0, width)
            y0, y1 = np.clip(box[[1, 3]], 0, height)
            if x1 <= x0 or y1 <= y0:
                continue
            embedding = None
            if self.recognizer is not None and np.isfinite(landmarks).all():
                embedding = self.embed(align_face(frame, landmarks, self.rec_size))
            faces.append(
                FaceDetection((float(x0), float(y0), float(x1), float(y1)), float(score),
                              landmarks.astype(np.float32), embedding)
            )
        return faces

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        """L2-normalised float32 (D,) embedding of one aligned uint8 RGB face crop."""
        if self.recognizer is None:
            raise BackendLoadError(f"{self.model_dir} holds no recognition model")
        crop = check_frame(aligned, "aligned face")
        if crop.shape[:2] != (self.rec_size, self.rec_size):
            raise ValueError(
                f"aligned face must be {self.rec_size}x{self.rec_size}, got {crop.shape}"
            )
        blob = ((crop.astype(np.float32) - self.rec_mean) / self.rec_std).transpose(2, 0, 1)[None]
        feature = self.recognizer.run(None, {self.recognizer.get_inputs()[0].name: blob})[0]
        feature = feature.reshape(-1).astype(np.float32)
        return feature / max(float(np.linalg.norm(feature)), 1e-12)

    def _detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SCRFD on one frame: boxes (K, 4), scores (K,), landmarks (K, 5, 2) in frame pixels."""
        import cv2

        in_w, in_h = self.det_input
        height, width = frame.shape[:2]
        if height / width > in_h / in_w:
            new_h, new_w = in_h, int(in_h / (height / width))
        else:
            new_w, new_h = in_w, int(in_w * height / width)
        scale = new_h / height
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h))
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outputs = self.detector.run(None, {self.detector.get_inputs()[0].name: blob})
        strides, anchors, has_points = _SCRFD_LAYOUTS[len(outputs)]
        if outputs[0].ndim == 3:  # batched export: (1, N, C)
            outputs = [out[0] for out in outputs]
        n = len(strides)
        all_boxes, all_scores, all_points = [], [], []
        for level, stride in enumerate(strides):
            rows, cols = in_h // stride, in_w // stride
            centers = np.stack(np.mgrid[:rows, :cols][::-1], axis=-1).astype(np.float32)
            centers = np.repeat((centers * stride).reshape(-1, 2), anchors, axis=0)
            scores = outputs[level].reshape(-1)
            keep = scores >= self.det_thresh
            all_scores.append(scores[keep])
            all_boxes.append(distance_to_boxes(centers, outputs[level + n] * stride)[keep])
            if has_points:
                points = distance_to_points(centers, outputs[level + 2 * n] * stride)[keep]
            else:
                points = np.full((int(keep.sum()), 5, 2), np.nan, np.float32)
            all_points.append(points)
        boxes = np.concatenate(all_boxes) / scale
        scores = np.concatenate(all_scores)
        points = np.concatenate(all_points) / scale
        kept = nms(boxes, scores, self.nms_thresh)
        return boxes[kept], scores[kept], points[kept]


def _arcface_normalisation(path: Path) -> tuple[float, float]:
    """InsightFace's rule: graphs converted from MXNet normalise inside (a Sub and a Mul
    among the first eight nodes) and take raw pixels; the others take (x - 127.5) / 127.5.

    InsightFace matches node names (``Sub*`` / ``_minus*``, ``Mul*`` / ``_mul*``); the op
    type is matched too, as exporters name nodes differently.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = [(node.name, node.op_type) for node in graph.node[:8]]
    has_sub = any(op == "Sub" or name.startswith(("Sub", "_minus")) for name, op in nodes)
    has_mul = any(op == "Mul" or name.startswith(("Mul", "_mul")) for name, op in nodes)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)
