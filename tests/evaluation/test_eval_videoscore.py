"""VideoScore TVA / TC: frame sampling and query text as in the authors' script, the regression
head on a tiny random Idefics2 saved and reloaded through ``VideoScoreModel``, and the timeline
windowing with a fake model."""

import numpy as np
import pytest
from PIL import Image

from curation.pretrained.errors import BackendLoadError
from evaluation.benchmarks import TimelineEvent
from evaluation.metrics import TIMELINE_METRICS, build_metric
from evaluation.metrics.base import SampleContext
from evaluation.metrics.videoscore import (
    ASPECTS,
    REGRESSION_QUERY_PROMPT,
    VideoScoreMetric,
    VideoScoreModel,
    regression_model_class,
    videoscore_frame_indices,
    videoscore_text,
)


def test_frame_indices_follow_the_inference_script():
    assert videoscore_frame_indices(30).tolist() == list(range(30))
    picked = videoscore_frame_indices(100)
    assert len(picked) == 48 and picked[:4].tolist() == [0, 2, 4, 6] and picked[-1] == 97
    assert videoscore_frame_indices(20, max_frames=16).tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15,
                                                                    16, 17, 18]


def test_query_text_has_one_image_slot_per_frame():
    text = videoscore_text("a dog runs", 3)
    assert text.startswith(REGRESSION_QUERY_PROMPT.format(text_prompt="a dog runs"))
    assert text.endswith("<image> <image> <image> ") and text.count("<image>") == 3
    assert 'the text prompt is "a dog runs"' in text


WORDS = ["<unk>", "<s>", "</s>", "<pad>", "a", "dog", "runs", "waves", "sits"]
SPECIAL = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]


@pytest.fixture(scope="module")
def tiny_videoscore(tmp_path_factory):
    """A random tiny Idefics2 with the 5-aspect regression head, saved with its processor."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Idefics2Config, Idefics2ImageProcessorPil, Idefics2Processor, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("videoscore")
    vocab = {w: i for i, w in enumerate(WORDS + SPECIAL)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>", additional_special_tokens=SPECIAL)
    processor = Idefics2Processor(
        Idefics2ImageProcessorPil(do_image_splitting=False, size={"shortest_edge": 28, "longest_edge": 56}),
        tokenizer, image_seq_len=4,
    )
    processor.save_pretrained(root)
    config = Idefics2Config(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=56, patch_size=14),
        perceiver_config=dict(hidden_size=32, resampler_n_latents=4, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=8, num_key_value_heads=1),
        text_config=dict(model_type="mistral", vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, pad_token_id=3),
        image_token_id=vocab["<image>"], num_labels=5, pad_token_id=3,
    )
    torch.manual_seed(0)
    regression_model_class()(config).save_pretrained(root)
    return root


def test_tiny_videoscore_loads_and_scores_five_aspects(tiny_videoscore, shifting_clip, texture):
    import torch
    from safetensors.torch import load_file

    model = VideoScoreModel(tiny_videoscore, max_frames=4)
    frames = shifting_clip(6, 2, 0, texture(40, 50))
    aspects = model.aspects(frames, "a dog runs")
    assert list(aspects) == list(ASPECTS) and all(np.isfinite(list(aspects.values())))
    # the head by hand: backbone's last hidden state at the last token, through score.weight/bias
    inputs = model.processor(text=videoscore_text("a dog runs", 4),
                             images=[Image.fromarray(f) for f in frames[videoscore_frame_indices(6, 4)]],
                             return_tensors="pt")
    weights = load_file(str(tiny_videoscore / "model.safetensors"))
    with torch.no_grad():
        hidden = model.model.model(**inputs).last_hidden_state[0, -1]
    expected = weights["score.weight"] @ hidden + weights["score.bias"]
    np.testing.assert_allclose(list(aspects.values()), expected.numpy(), atol=1e-5)
    assert model.aspects(frames, "a dog runs") == aspects  # cached
    assert model.aspects(frames, "a dog waves") != aspects


def test_wrong_checkpoint_is_refused(tmp_path):
    from transformers import CLIPConfig

    CLIPConfig().save_pretrained(tmp_path)
    with pytest.raises(BackendLoadError, match="idefics2"):
        VideoScoreModel(tmp_path)


def test_videoscore_metrics_through_the_registry(tiny_videoscore, shifting_clip, texture):
    options = {"model_path": str(tiny_videoscore), "max_frames": 4}
    tva, tc = build_metric("videoscore_tva", **options), build_metric("videoscore_tc", **options)
    assert tva.model is tc.model
    frames = shifting_clip(6, 2, 0, texture(40, 50))
    context = SampleContext(prompt="a dog runs")
    aspects = tva.model.aspects(frames, "a dog runs")
    assert tva(frames, context).value == aspects["text-to-video alignment"]
    assert tc(frames, context).value == aspects["temporal consistency"]
    assert tc.spec.unit == "VideoScore 1-4" and tc.spec.key is None and not tc.spec.is_proxy
    assert "videoscore(" in tc.spec.definition and "TC" in tc.spec.definition


class FakeVideoScore:
    name = "fake"

    def aspects(self, frames, prompt):
        return {a: float(len(frames)) + len(prompt) / 10 for a in ASPECTS}


def test_subaction_tva_is_the_mean_over_windows():
    events = (TimelineEvent(0.0, 1.0, "waves"), TimelineEvent(1.0, 3.0, "sits"))
    metric = VideoScoreMetric(FakeVideoScore(), "tva_subaction")
    frames = np.zeros((12, 4, 4, 3), np.uint8)
    value = metric(frames, SampleContext(events=events, fps=4.0))
    assert value.value == pytest.approx(np.mean([4 + 0.5, 8 + 0.4]))
    assert metric(frames, SampleContext(prompt="x")).value is None
    assert "videoscore_tva_subaction" in TIMELINE_METRICS
