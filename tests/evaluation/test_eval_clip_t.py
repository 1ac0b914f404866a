"""CLIP-T: timeline windows on hand-computed cases, and a tiny random CLIP saved and reloaded
through the project's CLIP loader (``ClipAlignmentScorer``)."""

import numpy as np
import pytest

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics import TIMELINE_METRICS, build_metric
from evaluation.metrics.base import SampleContext
from evaluation.metrics.clip_t import ClipT, subaction_windows

EVENTS = (TimelineEvent(0.0, 1.0, "waves"), TimelineEvent(1.0, 2.5, "sits down"), TimelineEvent(2.5, 3.0, "smiles"))


def test_windows_follow_the_timeline():
    # 4 fps, 12 frames (3 s): [0, 4), [4, 10), [10, 12)
    assert subaction_windows(12, 4.0, EVENTS) == [slice(0, 4), slice(4, 10), slice(10, 12)]
    # 10 frames (2.5 s): the last window starts at frame 10, past the video
    reason = subaction_windows(10, 4.0, EVENTS)
    assert isinstance(reason, str) and "sub-action 2 starts at 2.5s" in reason
    # a window shorter than a frame still gets one frame
    assert subaction_windows(8, 4.0, (TimelineEvent(0.3, 0.4, "blink"),)) == [slice(1, 2)]


class MeanPixelScorer:
    """score = mean pixel value / 255 + len(text) / 100: which frames and which text were used."""

    name = "fake-clip"
    num_frames = 99

    def score(self, frames, text):
        return float(frames.mean()) / 255 + len(text) / 100


def test_subaction_clip_t_is_the_mean_over_windows():
    frames = np.repeat(np.arange(12, dtype=np.uint8)[:, None, None, None] * 20, 2, axis=1)
    frames = np.repeat(np.repeat(frames, 2, axis=2), 3, axis=3)  # (12, 2, 2, 3), frame t = 20 t
    metric = ClipT(MeanPixelScorer(), "subaction")
    value = metric(frames, SampleContext(prompt="a man", events=EVENTS, fps=4.0))
    expected = np.mean([
        np.mean([0, 20, 40, 60]) / 255 + len("waves") / 100,
        np.mean([80, 100, 120, 140, 160, 180]) / 255 + len("sits down") / 100,
        np.mean([200, 220]) / 255 + len("smiles") / 100,
    ])
    assert value.value == pytest.approx(expected)
    assert metric.spec.name == "clip_t_subaction" and metric.spec.key is None and not metric.spec.is_proxy
    assert metric(frames, SampleContext(prompt="a man")).value is None  # no timeline
    short = metric(frames[:10], SampleContext(events=EVENTS, fps=4.0))
    assert short.value is None and "after the video" in short.note
    global_value = ClipT(MeanPixelScorer(), "global")(frames, SampleContext(prompt="a man"))
    assert global_value.value == pytest.approx(frames.mean() / 255 + 0.05)
    assert "clip_t_subaction" in TIMELINE_METRICS and "clip_t_global" not in TIMELINE_METRICS


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """Random tiny CLIP, word-level tokenizer wrapping texts in start/end tokens."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("clip")
    words = ["<|endoftext|>", "<|startoftext|>", "[UNK]", "a", "man", "waves", "sits", "down", "smiles"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 1), ("<|endoftext|>", 0)])
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token="<|startoftext|>",
                            eos_token="<|endoftext|>", pad_token="<|endoftext|>").save_pretrained(root)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(root)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=1, eos_token_id=0,
                         pad_token_id=0),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(root)
    return root


def _cosines(root, frames, text):
    """CLIP-T by hand: transformers CLIPModel, processor, normalised dot products."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(root).eval()
    tokens = AutoTokenizer.from_pretrained(root)([text], return_tensors="pt")
    pixels = AutoImageProcessor.from_pretrained(root)(images=[Image.fromarray(f) for f in frames],
                                                      return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        t = model.get_text_features(**tokens).pooler_output
        i = model.get_image_features(pixel_values=pixels).pooler_output
    t = t / t.norm(dim=-1, keepdim=True)
    i = i / i.norm(dim=-1, keepdim=True)
    return (i @ t.T).numpy().ravel()


def test_clip_t_with_a_tiny_clip_through_the_registry(tiny_clip_dir, shifting_clip, texture):
    options = {"model_path": str(tiny_clip_dir), "num_frames": 3}
    global_metric = build_metric("clip_t_global", **options)
    subaction_metric = build_metric("clip_t_subaction", **options)
    assert global_metric.scorer is subaction_metric.scorer  # one CLIP for both
    frames = shifting_clip(12, 3, 1, texture(40, 48))
    context = SampleContext(prompt="a man waves", events=EVENTS, fps=4.0)

    value = global_metric(frames, context)
    assert value.value == pytest.approx(_cosines(tiny_clip_dir, frames[[0, 6, 11]], "a man waves").mean(), abs=1e-5)
    assert "pretrained:clip(" in global_metric.spec.definition

    value = subaction_metric(frames, context)
    windows = [frames[0:4][[0, 2, 3]], frames[4:10][[0, 2, 5]], frames[10:12]]  # 3 of each, rounded linspace
    expected = np.mean([_cosines(tiny_clip_dir, w, e.description).mean() for w, e in zip(windows, EVENTS)])
    assert value.value == pytest.approx(expected, abs=1e-5)
    assert -1 <= value.value <= 1
