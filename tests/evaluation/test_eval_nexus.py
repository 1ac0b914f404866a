"""NexusScore: OpenS2V's reference rule and aggregation on hand-computed cases, the detectors
that cannot load here, and a tiny random Grounding DINO + tiny GME through the registry."""

import numpy as np
import pytest

from evaluation.errors import MetricUnavailableError
from evaluation.metrics import benchmark_values, build_metric
from evaluation.metrics.base import SampleContext
from evaluation.metrics.nexus import (
    BENCHMARK_SPEC,
    GROUNDING_DINO_SPEC,
    GroundingDinoDetector,
    NexusScore,
    crop,
    filter_detections,
    nexus_from_similarities,
    nexus_references,
    nms,
)
from evaluation.benchmark_scores import build_score_card


@pytest.mark.parametrize(
    ("sample_id", "labels", "expected"),
    [
        ("singleface_3", ["Man", "dog"], [(1, "dog")]),
        ("human_12", ["Woman", "hat"], [(0, "human"), (1, "hat")]),
        ("multiobject_4", ["Man", "cat"], [(0, "Man"), (1, "cat")]),
        ("singleface_1", ["Woman"], []),
    ],
)
def test_nexus_references_follow_opens2v(sample_id, labels, expected):
    assert nexus_references(sample_id, labels) == expected


def test_aggregation_is_the_kept_mean_divided_by_frames_with_a_detection():
    # crop 0 kept; 1 fails the detection threshold (0.6 is not > 0.6); 2 fails the text
    # threshold; 3 kept; 4 has a similarity of exactly 0 and is dropped.
    conf = [0.9, 0.6, 0.8, 0.7, 0.95]
    text = [0.31, 0.5, 0.30, 0.4, 0.9]
    image = [0.8, 0.9, 0.9, 0.6, 0.0]
    score, kept = nexus_from_similarities(conf, text, image, frames_with_detection=4)
    assert kept == 2
    assert score == pytest.approx((0.8 + 0.6) / 2 / 4)
    assert nexus_from_similarities([0.5], [0.9], [0.9], 1) == (0.0, 0)


def test_nms_and_filtering_follow_the_yolo_world_post_processing():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    scores = np.array([0.9, 0.8, 0.55, 0.7])
    # box 1 overlaps box 0 with IoU 0.81 > 0.7: suppressed; box 3 has IoU 0.5: kept
    assert nms(boxes, scores, 0.7).tolist() == [0, 3, 2]
    kept = filter_detections(boxes, scores, score_threshold=0.6, nms_iou=0.7, max_boxes=1)
    assert kept == [((0.0, 0.0, 10.0, 10.0), 0.9)]


def test_crop_rounds_and_clips_like_pil():
    frame = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    assert crop(frame, (1.4, 2.6, 5.5, 8.2)).shape == (5, 5, 3)  # x 1..6, y 3..8
    assert crop(frame, (-5, -5, 30, 30)).shape == (10, 12, 3)
    assert crop(frame, (4, 4, 4, 4)).shape == (1, 1, 3)


class FakeDetector:
    """Reference 0 is found in frames with an even index (one box of confidence 0.9), reference
    1 everywhere (two boxes: 0.7 and 0.5)."""

    name = "fake-detector"

    def __init__(self):
        self.calls = []

    def detect(self, frame, reference, label):
        self.calls.append(label)
        t = int(frame[0, 0, 0])
        if label == "dog":
            return [((0, 0, 4, 4), 0.9)] if t % 2 == 0 else []
        return [((0, 0, 4, 4), 0.7), ((2, 2, 6, 6), 0.5)]


class FakeEmbedder:
    """Images are embedded by the colour of their first pixel's green channel: crops of reference
    0 (green 10) are at 0.6 from it, crops of reference 1 at 0.8; labels are chosen so every crop
    passes the text threshold."""

    def embed_texts(self, texts, instruction=""):
        assert instruction == "Find an image that matches the given text."
        return np.array([[1.0, 0.0, 0.0]] * len(texts))

    def embed_images(self, images):
        out = []
        for image in images:
            g = int(np.asarray(image)[0, 0, 1])
            if g == 10:  # reference 0
                out.append([0.6, 0.8, 0.0])
            elif g == 20:  # reference 1
                out.append([0.8, 0.0, 0.6])
            else:  # a crop
                out.append([1.0, 0.0, 0.0])
        return np.array(out)


def test_nexus_score_end_to_end_with_fakes():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(4)
    references = (np.full((5, 5, 3), 10, np.uint8), np.full((5, 5, 3), 20, np.uint8))
    detector = FakeDetector()
    metric = NexusScore(detector, FakeEmbedder(), GROUNDING_DINO_SPEC, num_frames=4)
    context = SampleContext(prompt="p", reference_images=references,
                            reference_labels=("dog", "Man"), sample_id="human_3")
    value = metric(frames, context)
    # frames 0..3: reference 0 found in frames 0 and 2; reference 1 ("human") in all four.
    # Crops: ref 0 -> 2 x conf 0.9 (sim 0.6); ref 1 -> 4 x conf 0.7 (sim 0.8) and 4 x 0.5 (dropped).
    # frame_obj = 2 + 4 = 6; kept mean = (2 * 0.6 + 4 * 0.8) / 6.
    assert value.value == pytest.approx((2 * 0.6 + 4 * 0.8) / 6 / 6)
    assert "6 of 10 crops kept" in value.note and "fake-detector" in value.note
    assert set(detector.calls) == {"dog", "human"}
    assert value.spec.is_proxy and value.spec.key == "nexus"
    assert benchmark_values([value]) == {}  # a proxy never feeds TotalScore


def test_no_detection_gives_zero_which_the_average_skips():
    class Nothing:
        name = "none"

        def detect(self, frame, reference, label):
            return []

    metric = NexusScore(Nothing(), FakeEmbedder(), BENCHMARK_SPEC, num_frames=2)
    context = SampleContext(reference_images=(np.zeros((4, 4, 3), np.uint8),), reference_labels=("cat",))
    value = metric(np.zeros((3, 8, 8, 3), np.uint8), context)
    assert value.value == 0.0
    card = build_score_card([[value]])
    assert "nexus" not in card.normalized  # the merge script skips a NexusScore of 0


def test_missing_labels_or_references_are_not_computed():
    metric = NexusScore(FakeDetector(), FakeEmbedder(), BENCHMARK_SPEC)
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    assert "no reference image" in metric(frames, SampleContext()).note
    value = metric(frames, SampleContext(reference_images=(np.zeros((4, 4, 3), np.uint8),)))
    assert value.value is None and "class label per reference" in value.note
    value = metric(frames, SampleContext(reference_images=(np.zeros((4, 4, 3), np.uint8),),
                                         reference_labels=("Woman",), sample_id="singleface_2"))
    assert value.value is None and "Man/Woman" in value.note


def test_the_benchmark_detector_and_ultralytics_say_what_is_missing(tmp_path):
    with pytest.raises(MetricUnavailableError, match="mmyolo"):
        build_metric("nexus", detector_options={"config_path": "c.py", "checkpoint_path": "w.pth"})
    with pytest.raises(MetricUnavailableError, match="ultralytics"):
        build_metric("nexus_yolo_world_text_proxy", detector_options={"weights": str(tmp_path / "w.pt")})


@pytest.fixture(scope="module")
def tiny_grounding_dino(tmp_path_factory):
    """A random Grounding DINO (Swin + BERT, a few thousand parameters per block) saved with its
    processor as a hub checkpoint is."""
    import torch
    from transformers import (
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
    )

    root = tmp_path_factory.mktemp("grounding-dino")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "dog", "cat", "person", "human"]
    (root / "vocab.txt").write_text("\n".join(vocab))
    processor = GroundingDinoProcessor(
        GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}),
        BertTokenizerFast(vocab_file=str(root / "vocab.txt")),
    )
    processor.save_pretrained(root)
    config = GroundingDinoConfig(
        backbone_config=dict(model_type="swin", image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                             num_heads=[1, 1, 1, 1], window_size=2, out_indices=[2, 3, 4]),
        text_config=dict(model_type="bert", vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20, max_text_len=32,
        encoder_n_points=1, decoder_n_points=1,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(root)
    return root


def test_grounding_dino_detector_loads_and_finds_boxes(tiny_grounding_dino, texture):
    detector = GroundingDinoDetector(tiny_grounding_dino, score_threshold=0.0)
    frame = texture(48, 64)
    boxes = detector.detect(frame, frame, "dog")
    assert boxes, "the random model scores every query above 0"
    for (x0, y0, x1, y1), score in boxes:
        assert 0 <= x0 <= x1 <= 64 and 0 <= y0 <= y1 <= 48 and 0 < score <= 1
    scores = [s for _, s in boxes]
    assert scores == sorted(scores, reverse=True) and len(boxes) <= 100
    assert detector.name == f"grounding-dino({tiny_grounding_dino})"


def test_grounding_dino_nexus_through_the_registry(tiny_grounding_dino, tiny_gme_dir, shifting_clip, texture):
    metric = build_metric(
        "nexus_grounding_dino_proxy",
        detector_options={"model_path": str(tiny_grounding_dino), "score_threshold": 0.0},
        gme={"model_path": str(tiny_gme_dir), "min_image_tokens": 4, "max_image_tokens": 16},
        num_frames=2, conf_threshold=0.0, text_threshold=-1.0,
    )
    assert metric.spec.name == "nexus_grounding_dino_proxy" and metric.spec.is_proxy
    frames = shifting_clip(3, 2, 0, texture(48, 64))
    context = SampleContext(prompt="a dog", reference_images=(texture(40, 40, seed=1),),
                            reference_labels=("dog",), sample_id="singleobject_1")
    value = metric(frames, context)
    found = metric.find(frames, [context.reference_images[0]], ["dog"])
    assert found.frames_with_detection == 2 and len(found.crops) >= 2
    # the same crops scored by hand with the same GME
    gme = metric.embedder
    crop_emb = gme.embed_images(found.crops)
    image_sims = crop_emb @ gme.embed_images([context.reference_images[0]])[0]
    expected = image_sims.mean() / found.frames_with_detection
    assert value.value == pytest.approx(expected, abs=1e-5)
    # the GME weights are shared with the 'gme' metric built with the same options
    gme_metric = build_metric("gme", model_path=str(tiny_gme_dir), min_image_tokens=4, max_image_tokens=16)
    assert gme_metric.embedder is metric.embedder
