"""InsightFace-pack loading and SCRFD / ArcFace decoding with tiny ONNX models.

The tiny detector has the layout of SCRFD with landmarks (9 outputs: scores, distances and
landmark offsets for strides 8, 16, 32, two anchors per cell). It fires at stride 32 on
cells that are bright on average, with box distances (0, 0, 1, 1) and fixed landmark
offsets in stride units, so every detection's pixels are known in advance: that checks
letterboxing, anchor layout, rescaling to the frame and NMS. The tiny recogniser maps a
112 px crop to 512 numbers (mean colour through a linear layer).
"""

from pathlib import Path

import numpy as np
import pytest

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.faces import (
    ARCFACE_TEMPLATE,
    FaceDetection,
    InsightFaceAnalyzer,
    align_face,
    nms,
)

POINTS = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32)


def _export(module, example, path, dynamic_axes, n_outputs):
    import torch

    names = [f"out{i}" for i in range(n_outputs)]
    torch.onnx.export(module.eval(), (example,), str(path), input_names=["input.1"],
                      output_names=names, dynamic_axes=dynamic_axes, dynamo=False)


def _tiny_scrfd():
    import torch

    class TinyScrfd(torch.nn.Module):
        def forward(self, x):  # x: (1, 3, H, W), (rgb - 127.5) / 128
            gray = x.mean(dim=1, keepdim=True)
            scores, boxes, points = [], [], []
            for stride in (8, 16, 32):
                pooled = torch.nn.functional.avg_pool2d(gray, stride).permute(0, 2, 3, 1)
                logit = 20 * (pooled - 0.5) if stride == 32 else pooled * 0 - 20
                score = torch.sigmoid(torch.cat([logit, logit], dim=-1))  # (1, h, w, 2)
                ones = pooled * 0 + 1
                dist = torch.cat([ones * 0, ones * 0, ones, ones] * 2, dim=-1)
                kps = torch.cat([ones * float(v) for v in POINTS.ravel()] * 2, dim=-1)
                scores.append(score.reshape(1, -1, 1))
                boxes.append(dist.reshape(1, -1, 4))
                points.append(kps.reshape(1, -1, 10))
            return tuple(scores + boxes + points)

    return TinyScrfd()


def _tiny_arcface(seed=0, normalise_inside=False):
    import torch

    class TinyArcFace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            generator = torch.Generator().manual_seed(seed)
            self.proj = torch.nn.Linear(3, 512)
            with torch.no_grad():
                self.proj.weight.copy_(torch.randn(512, 3, generator=generator))
                self.proj.bias.copy_(torch.randn(512, generator=generator))

        def forward(self, x):  # (N, 3, 112, 112)
            if normalise_inside:  # MXNet-converted packs normalise inside the graph
                x = (x - 127.5) * (1 / 127.5)
            return self.proj(x.mean(dim=(2, 3)))

    return TinyArcFace()


@pytest.fixture(scope="module")
def face_pack(tmp_path_factory) -> Path:
    import torch

    root = tmp_path_factory.mktemp("buffalo_tiny")
    _export(_tiny_scrfd(), torch.zeros(1, 3, 64, 64), root / "det_tiny.onnx",
            {"input.1": {2: "h", 3: "w"}}, 9)
    _export(_tiny_arcface(), torch.zeros(1, 3, 112, 112), root / "w600k_tiny.onnx",
            {"input.1": {0: "n"}}, 1)
    return root


@pytest.fixture(scope="module")
def analyzer(face_pack):
    return InsightFaceAnalyzer(face_pack, det_size=64)


def _bright_block(height, width, y0, x0, size):
    frame = np.zeros((height, width, 3), np.uint8)
    frame[y0 : y0 + size, x0 : x0 + size] = 255
    return frame


@pytest.mark.parametrize(
    ("shape", "block", "scale"),
    [
        ((64, 64), (0, 32, 32), 1.0),  # one stride-32 cell, no resize
        ((128, 128), (64, 0, 64), 2.0),  # frame twice the detector input
        ((32, 64), (0, 32, 32), 1.0),  # wide frame: letterboxed into the top half
        ((96, 48), (48, 0, 48), 1.5),  # tall frame: letterboxed into the left half
    ],
)
def test_detect_decodes_scrfd_boxes_and_landmarks(analyzer, face_pack, shape, block, scale):
    assert analyzer.name == f"pretrained:insightface({face_pack})"
    y0, x0, size = block
    faces = analyzer.detect(_bright_block(*shape, y0, x0, size))
    assert len(faces) == 1  # two anchors per cell, merged by NMS
    face = faces[0]
    assert isinstance(face, FaceDetection) and face.score > 0.99
    # distances (0, 0, 1, 1) x 32 from the cell's corner anchor: the cell itself
    assert face.box == pytest.approx((x0, y0, x0 + 32 * scale, y0 + 32 * scale))
    expected_points = np.array([x0, y0]) + POINTS * 32 * scale
    np.testing.assert_allclose(face.landmarks, expected_points, atol=1e-4)
    assert face.embedding.shape == (512,) and face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)


def test_no_face_in_a_dark_frame(analyzer):
    assert analyzer.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_embeddings_follow_the_aligned_face(analyzer):
    red = _bright_block(64, 64, 0, 32, 32)
    cyan = red.copy()
    cyan[..., 0] = 160  # still bright enough to be detected
    a, b = analyzer.detect(red)[0].embedding, analyzer.detect(cyan)[0].embedding
    np.testing.assert_array_equal(a, analyzer.detect(red.copy())[0].embedding)
    assert float(a @ b) < 0.999
    aligned = align_face(red, analyzer.detect(red)[0].landmarks)
    np.testing.assert_allclose(analyzer.embed(aligned), a, atol=1e-6)


def test_align_face_maps_the_template_onto_itself():
    frame = np.random.default_rng(7).integers(0, 256, (150, 140, 3), dtype=np.uint8)
    np.testing.assert_array_equal(align_face(frame, ARCFACE_TEMPLATE), frame[:112, :112])
    shifted = align_face(frame, ARCFACE_TEMPLATE + np.array([20.0, 30.0], np.float32))
    np.testing.assert_array_equal(shifted, frame[30:142, 20:132])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 4]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.4).tolist() == [1, 2, 3]


def test_pack_without_recogniser_gives_no_embedding(face_pack, tmp_path):
    (tmp_path / "det_tiny.onnx").write_bytes((face_pack / "det_tiny.onnx").read_bytes())
    faces = InsightFaceAnalyzer(tmp_path, det_size=64).detect(_bright_block(64, 64, 0, 32, 32))
    assert len(faces) == 1 and faces[0].embedding is None


def test_graph_normalisation_rule(face_pack, tmp_path):
    """Recognisers that normalise inside the graph (MXNet conversions) take raw pixels."""
    import torch

    (tmp_path / "det_tiny.onnx").write_bytes((face_pack / "det_tiny.onnx").read_bytes())
    _export(_tiny_arcface(normalise_inside=True), torch.zeros(1, 3, 112, 112),
            tmp_path / "rec_mxnet.onnx", {"input.1": {0: "n"}}, 1)
    inside = InsightFaceAnalyzer(tmp_path, det_size=64)
    outside = InsightFaceAnalyzer(face_pack, det_size=64)
    assert (inside.rec_mean, inside.rec_std) == (0.0, 1.0)
    assert (outside.rec_mean, outside.rec_std) == (127.5, 127.5)
    crop = np.random.default_rng(8).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    np.testing.assert_allclose(inside.embed(crop), outside.embed(crop), atol=1e-5)


def test_landmark_models_are_not_taken_for_the_recogniser(face_pack, tmp_path):
    """buffalo_l sorts 1k3d68.onnx (192 px landmark model) before w600k_r50.onnx."""
    import torch

    for name in ("det_tiny.onnx", "w600k_tiny.onnx"):
        (tmp_path / name).write_bytes((face_pack / name).read_bytes())
    _export(_tiny_arcface(seed=1), torch.zeros(1, 3, 192, 192), tmp_path / "1k3d68.onnx",
            {"input.1": {0: "n"}}, 1)
    analyzer = InsightFaceAnalyzer(tmp_path, det_size=64)
    assert analyzer.recognizer_file == "w600k_tiny.onnx" and analyzer.rec_size == 112


def test_pack_errors(tmp_path, face_pack):
    with pytest.raises(BackendLoadError, match="no .onnx"):
        InsightFaceAnalyzer(tmp_path)
    (tmp_path / "w600k_tiny.onnx").write_bytes((face_pack / "w600k_tiny.onnx").read_bytes())
    with pytest.raises(BackendLoadError, match="no face detector"):
        InsightFaceAnalyzer(tmp_path)
