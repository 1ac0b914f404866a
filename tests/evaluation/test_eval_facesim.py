from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import SampleContext
from evaluation.metrics.curricularface import (
    CurricularFaceEmbedder,
    FaceSimCurricular,
    InsightFaceAligner,
    IRConfig,
    build_ir_backbone,
    embed_aligned,
    load_curricularface,
)
from evaluation.metrics.facesim import (
    FaceSimDlibProxy,
    VideoFaceSim,
    facesim_from_similarities,
    video_facesim,
)

DATA = Path(__file__).parent / "data"
TINY_IR = IRConfig(
    stage_units=(1, 1, 1, 1), stage_channels=(8, 8, 16, 16), stem_channels=8, embedding_dim=32
)


def face(name: str) -> np.ndarray:
    return np.array(Image.open(DATA / "faces" / f"{name}.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def dlib_metric() -> FaceSimDlibProxy:
    return FaceSimDlibProxy(num_frames=3)


def test_aggregation_floors_at_zero_and_drops_zeros():
    assert facesim_from_similarities([0.8, -0.2, 0.0, 0.6]) == (pytest.approx(0.7), 2)
    assert facesim_from_similarities([]) == (0.0, 0)
    assert facesim_from_similarities([-0.5]) == (0.0, 0)


def test_frames_without_faces_are_dropped():
    ref = np.ones(4)

    def embed(image):  # "a face" = a bright centre pixel; survives the padded retry
        centre = image[image.shape[0] // 2, image.shape[1] // 2].mean()
        return None if centre < 10 else ref * centre

    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[::2] = 200
    result = video_facesim(frames, np.full((8, 8, 3), 200, np.uint8), embed, 4)
    assert result == VideoFaceSim(score=1.0, counted=2, with_face=2, sampled=4)


def test_reference_without_face_is_not_computed(dlib_metric, texture):
    frames = np.repeat(face("astronaut")[None], 3, axis=0)
    value = dlib_metric(frames, SampleContext(reference_images=(texture(160, 160),)))
    assert value.value is None and "no face" in value.note
    assert dlib_metric(frames, SampleContext()).value is None


def test_dlib_proxy_same_person_beats_other_person(dlib_metric):
    astronaut = face("astronaut")
    frames = np.stack([np.roll(astronaut, (k, 2 * k), axis=(0, 1)) for k in range(3)])
    same = dlib_metric(frames, SampleContext(reference_images=(astronaut,)))
    other = dlib_metric(frames, SampleContext(reference_images=(face("grace_hopper"),)))
    assert same.value > 0.98
    assert other.value < same.value - 0.05
    assert same.spec.name == "facesim_dlib_proxy" and same.spec.is_proxy
    assert "3 of 3" in same.note and same.detections == 3


def test_dlib_proxy_scores_only_frames_with_a_face(dlib_metric, texture):
    astronaut = face("astronaut")
    frames = np.stack([astronaut, texture(160, 160), astronaut])
    value = dlib_metric(frames, SampleContext(reference_images=(astronaut,)))
    assert "2 of 3" in value.note and value.value > 0.98 and value.detections == 2


def test_dlib_proxy_finds_no_face_in_a_tiny_video(dlib_metric):
    """The demo's 32x32 videos: dlib detects nothing, the video scores OpenS2V's 0 with
    detections=0 (the set-level rule is tested in test_eval_benchmark_scores)."""
    astronaut = face("astronaut")
    tiny = np.asarray(Image.fromarray(astronaut).resize((32, 32)))
    frames = np.repeat(tiny[None], 3, axis=0)
    value = dlib_metric(frames, SampleContext(reference_images=(astronaut,)))
    assert value.value == 0.0 and value.detections == 0
    assert "0 of 3 sampled frames had a face" in value.note


def test_ir101_layout_matches_the_released_checkpoint_names():
    import torch

    with torch.device("meta"):
        model = build_ir_backbone()
    keys = set(model.state_dict())
    assert len(model.body) == 49  # 3 + 13 + 30 + 3 units
    for key in (
        "input_layer.0.weight",
        "body.3.shortcut_layer.0.weight",
        "body.1.res_layer.3.weight",
        "body.48.res_layer.5.running_var",
        "output_layer.3.weight",
        "output_layer.4.running_mean",
    ):
        assert key in keys
    # 64 -> 64 and 128 -> 128 units use a strided 1x1 max-pool shortcut, without weights
    assert "body.0.shortcut_layer.0.weight" not in keys
    assert "body.4.shortcut_layer.0.weight" not in keys
    assert model.output_layer[3].in_features == 512 * 7 * 7


def test_tiny_curricularface_round_trip(tmp_path):
    import torch

    torch.manual_seed(0)
    model = build_ir_backbone(TINY_IR).eval()
    torch.save(model.state_dict(), tmp_path / "cur.bin")
    loaded = load_curricularface(tmp_path / "cur.bin", TINY_IR)
    crop = np.asarray(Image.fromarray(face("astronaut")).resize((224, 224)))
    emb = embed_aligned(loaded, crop)
    assert emb.shape == (32,) and np.linalg.norm(emb) == pytest.approx(1.0)
    np.testing.assert_allclose(emb, embed_aligned(model, crop), rtol=1e-6)
    with pytest.raises(FileNotFoundError):
        load_curricularface(tmp_path / "absent.bin", TINY_IR)


def test_curricular_metric_with_a_stub_aligner(tmp_path):
    import torch

    torch.manual_seed(0)
    model = build_ir_backbone(TINY_IR).eval()
    astronaut = face("astronaut")

    def align(image):  # stands in for InsightFace, which needs downloaded ONNX models
        return None if image.std() < 1 else np.asarray(Image.fromarray(image).resize((224, 224)))

    metric = FaceSimCurricular(CurricularFaceEmbedder(align, model), num_frames=2)
    value = metric(np.stack([astronaut, astronaut]), SampleContext(reference_images=(astronaut,)))
    assert value.value == pytest.approx(1.0)
    assert value.spec.backend == "pretrained" and not value.spec.is_proxy


def test_insightface_aligner_reports_missing_package(tmp_path):
    with pytest.raises(MetricUnavailableError, match="insightface"):
        InsightFaceAligner(tmp_path)
