"""Faces of human subjects, embedded backend: dlib (HOG detector, 5/68-point landmarks,
128-d ResNet identity embeddings), whose models ship in `face_recognition_models`.

Paper App. B.2: detection at 2 FPS, NMS with 25% overlap, outlier removal, five
representative frames by confidence, face masks. DH-FaceVid region processing: face
resolution, a crop covering face and torso; the occluding-hands filter needs a hand
detector, which no embedded backend has (recorded as not computed).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Box = tuple[float, float, float, float]


def model_file(name: str) -> Path:
    """A dlib model file inside face_recognition_models, found without importing it (its
    import needs pkg_resources, absent from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face_recognition_models is not installed; it carries the dlib models")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model {path} missing")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(model_file("shape_predictor_5_face_landmarks.dat"))),
        dlib.shape_predictor(str(model_file("shape_predictor_68_face_landmarks.dat"))),
        dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat"))),
    )


@dataclass(frozen=True)
class Face:
    frame_index: int
    box: Box
    score: float


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(faces: list[Face], overlap: float) -> list[Face]:
    """Greedy non-maximum suppression per frame: drop a face overlapping a better one by
    more than `overlap` IoU (the paper uses 25%)."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if all(k.frame_index != f.frame_index or iou(k.box, f.box) <= overlap for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: (f.frame_index, -f.score))


def detect_faces(frame: np.ndarray, frame_index: int, upsample: int = 1) -> list[Face]:
    detector = _dlib_models()[0]
    rects, scores, _ = detector.run(frame, upsample, 0.0)
    return [Face(frame_index, (float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s))
            for r, s in zip(rects, scores, strict=True)]


def face_embedding(frame: np.ndarray, box: Box) -> np.ndarray:
    """128-d dlib identity embedding (L2 distance < ~0.6 means the same person)."""
    import dlib

    _, sp5, _, rec = _dlib_models()
    rect = dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    return np.asarray(rec.compute_face_descriptor(frame, sp5(frame, rect)), np.float32)


def face_mask(frame: np.ndarray, box: Box) -> np.ndarray:
    """Face region: convex hull of the 68 landmarks, extended up to the eyebrows' top."""
    import cv2
    import dlib

    _, _, sp68, _ = _dlib_models()
    shape = sp68(frame, dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3])))
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.int32)
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    return mask.astype(bool)


def remove_outliers(faces: list[Face], embeddings: list[np.ndarray], max_distance: float) -> list[int]:
    """Indices of faces that belong to the clip's main identity: within `max_distance` of
    the median embedding and of a plausible size (within 2x of the median box side)."""
    if not faces:
        return []
    emb = np.stack(embeddings)
    centre = np.median(emb, axis=0)
    sides = np.array([min(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces])
    med = np.median(sides)
    keep = (np.linalg.norm(emb - centre, axis=1) <= max_distance) & (np.abs(np.log(sides / med)) <= np.log(2))
    return [i for i in range(len(faces)) if keep[i]]


def face_torso_crop(boxes: list[Box], width: int, height: int) -> tuple[int, int, int, int]:
    """A crop (x, y, w, h) holding every face and the torso below it (DH-FaceVid region
    processing): 1.5 face widths to each side, half a face above, 2.5 faces below."""
    x0 = min(b[0] - 1.5 * (b[2] - b[0]) for b in boxes)
    x1 = max(b[2] + 1.5 * (b[2] - b[0]) for b in boxes)
    y0 = min(b[1] - 0.5 * (b[3] - b[1]) for b in boxes)
    y1 = max(b[3] + 2.5 * (b[3] - b[1]) for b in boxes)
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    w, h = (x1 - x0) - (x1 - x0) % 2, (y1 - y0) - (y1 - y0) % 2
    return x0, y0, w, h
