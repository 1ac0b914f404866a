"""Face similarity: OpenS2V's per-frame aggregation and the embedded dlib proxy.

OpenS2V FaceSim-Cur (``eval/get_facesim.py``): 32 frames sampled with ``linspace``; in each,
the largest detected face is aligned and embedded; the cosine with the reference face's
embedding is floored at 0; frames without a face, and frames whose floored score is 0, are
dropped; the video's score is the mean of the rest, or 0.0 when no frame is left. Every
image (reference and frames) where no face is found is retried once padded by 25 % with
grey; a reference without a face removes the sample from the metric. Only samples of the
face families are scored (:attr:`evaluation.benchmarks.SubjectSample.scores_face`).

Each value carries ``detections``, the sampled frames with a detected face. The per-video
rule stays OpenS2V's: a video without a face scores 0 and counts in the mean, so a model
that loses the face where other videos of the set keep it is marked down. For the proxy,
when no frame of any video of a (benchmark, model) shows a face, the zeros say that the
detector found nothing (dlib's HOG detector finds no face in very small frames), not how
alike the faces are: :func:`evaluation.benchmark_scores.faceless_sets_not_computed` then reports
the metric as not computed, "no face detected in any frame of N videos". The benchmark's
own FaceSim keeps its zeros, which is what OpenS2V's TotalScore is defined on.

:class:`FaceSimDlibProxy` applies that aggregation to dlib's 128-d ResNet face descriptors
(HOG detector, 5-point alignment; models shipped in ``face_recognition_models``). dlib's
descriptors are trained for Euclidean distance, so cosines run higher than CurricularFace's
and the value is a proxy, named ``facesim_dlib_proxy``. The benchmark's own embedder is in
:mod:`evaluation.metrics.curricularface`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
REFERENCE_PAD_SCALE = 1.25

# RGB uint8 (H, W, 3) -> embedding of the largest face, or None when there is no face
FaceEmbedder = Callable[[np.ndarray], np.ndarray | None]


def facesim_from_similarities(similarities: Sequence[float]) -> tuple[float, int]:
    """OpenS2V's per-video FaceSim from per-frame cosines of frames that had a face.

    Args:
        similarities: cosine similarity of each frame with a detected face.

    Returns:
        (mean of the cosines floored at 0 with zeros dropped — 0.0 when none is left,
        number of frames that counted).
    """
    kept = [s for s in (max(0.0, float(x)) for x in similarities) if s != 0.0]
    return (float(np.mean(kept)) if kept else 0.0), len(kept)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def pad_for_detection(image: np.ndarray, scale: float = REFERENCE_PAD_SCALE) -> np.ndarray:
    """Grey border of ``(scale - 1)`` x the size on every side; helps tightly cropped faces."""
    h, w = image.shape[:2]
    py, px = int(h * (scale - 1.0)), int(w * (scale - 1.0))
    return np.pad(image, ((py, py), (px, px), (0, 0)), constant_values=128)


@dataclass(frozen=True)
class VideoFaceSim:
    """FaceSim of one video and what it rests on.

    Attributes:
        score: OpenS2V's per-video FaceSim (0.0 when no frame counted).
        counted: frames whose floored cosine was above 0 (the mean is over these).
        with_face: sampled frames in which a face was detected.
        sampled: frames sampled.
    """

    score: float
    counted: int
    with_face: int
    sampled: int


def video_facesim(
    frames: np.ndarray,
    reference: np.ndarray,
    embed: FaceEmbedder,
    num_frames: int = NUM_FRAMES,
) -> VideoFaceSim | None:
    """FaceSim of a video against a reference image with a given face embedder.

    Args:
        frames: uint8 (T, H, W, 3) RGB.
        reference: uint8 (H, W, 3) RGB reference image.
        embed: returns the largest face's embedding, or None.
        num_frames: frames sampled with ``linspace``.

    Returns:
        A :class:`VideoFaceSim`, or None when the reference shows no face.
    """
    frames = check_frames(frames)
    ref = embed_with_padding(embed, reference)
    if ref is None:
        return None
    picked = uniform_indices(len(frames), num_frames)
    sims = []
    for frame in frames[picked]:
        emb = embed_with_padding(embed, frame)
        if emb is not None:
            sims.append(cosine(ref, emb))
    score, counted = facesim_from_similarities(sims)
    return VideoFaceSim(score, counted, len(sims), len(picked))


def embed_with_padding(embed: FaceEmbedder, image: np.ndarray) -> np.ndarray | None:
    """Embed the largest face, retrying on a grey-padded copy as OpenS2V does for every image.

    The retry aligns the face inside the padded image (OpenS2V maps the landmarks back and
    aligns in the original, so out-of-frame pixels are black there and grey here).
    """
    found = embed(image)
    return found if found is not None else embed(pad_for_detection(image))


def dlib_model_dir() -> Path:
    """Directory of the ``.dat`` models inside the installed ``face_recognition_models``.

    Found by path: importing the package needs ``pkg_resources``, gone from setuptools >= 81.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MetricUnavailableError("face_recognition_models is not installed")
    return Path(spec.origin).parent / "models"


class DlibFaceEmbedder:
    """dlib HOG face detector + 5-point landmarks + 128-d ResNet descriptor.

    Args:
        model_dir: directory with ``shape_predictor_5_face_landmarks.dat`` and
            ``dlib_face_recognition_resnet_model_v1.dat``; the packaged models by default.
        upsample: times the detector upsamples the image (finds smaller faces, slower).
    """

    def __init__(self, model_dir: Path | None = None, upsample: int = 1) -> None:
        import dlib

        model_dir = model_dir or dlib_model_dir()
        landmarks = model_dir / "shape_predictor_5_face_landmarks.dat"
        resnet = model_dir / "dlib_face_recognition_resnet_model_v1.dat"
        for path in (landmarks, resnet):
            if not path.is_file():
                raise MetricUnavailableError(f"dlib model file missing: {path}")
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(landmarks))
        self.resnet = dlib.face_recognition_model_v1(str(resnet))
        self.upsample = upsample

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        faces = self.detector(image, self.upsample)
        if len(faces) == 0:
            return None
        largest = max(faces, key=lambda r: r.width() * r.height())
        shape = self.landmarks(image, largest)
        return np.asarray(self.resnet.compute_face_descriptor(image, shape), dtype=np.float64)


class FaceSimDlibProxy:
    """FaceSim with OpenS2V's aggregation over dlib descriptors (embedded proxy)."""

    spec = MetricSpec(
        name="facesim_dlib_proxy",
        key="facesim",
        backend="embedded",
        definition="OpenS2V FaceSim-Cur aggregation over dlib 128-d ResNet descriptors "
        "instead of CurricularFace",
        is_proxy=True,
    )

    def __init__(self, embedder: FaceEmbedder | None = None, num_frames: int = NUM_FRAMES) -> None:
        self.embed = embedder or DlibFaceEmbedder()
        self.num_frames = num_frames

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return score_faces(self.spec, self.embed, frames, context, self.num_frames)


def score_faces(
    spec: MetricSpec,
    embed: FaceEmbedder,
    frames: np.ndarray,
    context: SampleContext,
    num_frames: int,
) -> MetricValue:
    """Shared body of the FaceSim metrics: reference checks, then :func:`video_facesim`.

    A video in which no sampled frame shows a face scores 0.0 (OpenS2V's rule), with
    ``detections=0`` so that a set where that holds for every video can be told apart.
    """
    if not context.reference_images:
        return not_computed(spec, "sample has no reference image")
    result = video_facesim(frames, context.reference_images[0], embed, num_frames)
    if result is None:
        return not_computed(spec, "no face found in the reference image")
    return MetricValue(
        spec,
        result.score,
        f"{result.with_face} of {result.sampled} sampled frames had a face, "
        f"{result.counted} counted (cosine > 0)",
        detections=result.with_face,
    )
