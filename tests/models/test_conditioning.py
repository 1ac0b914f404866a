"""Text encoding, timeline tensors, presets and the light import of the package."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from core.timeline import SubAction, Timeline, TimelineError
from models.presets import PRESETS, get_preset, reactid_arguments, scheduler_flow_shift
from models.text_encoder import build_byte_level_tokenizer, build_tiny_text_encoder, encode_texts
from models.timeline_conditioning import (
    action_subject_indices,
    encode_timeline_batch,
    latent_action_spans,
    timeline_batch,
)

TIMELINE = Timeline(
    "two friends",
    (
        SubAction(0.0, 2.0, "waves", "ann"),
        SubAction(1.0, 5.0, "runs", "bob"),
        SubAction(2.0, 5.0, "sits", "ann"),
    ),
    duration=5.0,
)


def test_byte_level_tokenizer_round_trips_any_text_offline(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = build_byte_level_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "a man waves — ünïcode & 2-5s"
    ids = reloaded(text).input_ids
    assert ids[-1] == reloaded.eos_token_id and reloaded.unk_token_id not in ids
    assert reloaded.decode(ids, skip_special_tokens=True) == text


def test_prompt_embeddings_are_zero_past_the_prompt_length():
    tokenizer, encoder = build_tiny_text_encoder(dict(get_preset("tiny").text_encoder))
    embeds, mask = encode_texts(
        tokenizer, encoder, ["a cat", "a dog runs   &amp; jumps"], max_length=32
    )
    assert embeds.shape == (2, 32, 32) and mask.dtype == torch.bool
    assert mask[0].sum() == len("a cat") + 1  # bytes + end of sequence
    assert embeds[0, 6:].abs().sum() == 0 and embeds[0, :6].abs().sum() > 0
    assert mask[1].sum() == len("a dog runs & jumps") + 1  # whitespace and HTML entities cleaned


def test_timeline_tensors_map_seconds_to_latent_frames_and_subjects():
    assert latent_action_spans(TIMELINE, 21) == [(0.0, 8.4), (4.2, 21.0), (8.4, 21.0)]
    assert action_subject_indices(TIMELINE, ["bob", "ann"]) == [1, 0, 1]
    assert action_subject_indices(TIMELINE, None) == [-1, -1, -1]
    with pytest.raises(TimelineError, match="subject 'bob', which has no reference image"):
        action_subject_indices(TIMELINE, ["ann"])

    short = Timeline("", (SubAction(0, 1, "jumps", "ann"),), duration=2.0)
    batch = timeline_batch([TIMELINE, short], 5, subjects=[["ann", "bob"], ["ann"]])
    assert batch.valid.tolist() == [[True, True, True], [True, False, False]]
    assert batch.descriptions[1] == ["jumps", "", ""]
    assert batch.action_subjects.tolist() == [[0, 1, 0], [0, -1, -1]]
    torch.testing.assert_close(
        batch.action_spans[1], torch.tensor([[0.0, 2.5], [0.0, 0.0], [0.0, 0.0]])
    )

    tokenizer, encoder = build_tiny_text_encoder(dict(get_preset("tiny").text_encoder))
    kwargs = encode_timeline_batch(batch, tokenizer, encoder, max_length=8)
    assert kwargs["timeline_hidden_states"].shape == (2, 3, 8, 32)
    assert not kwargs["timeline_token_mask"][1, 1:].any()
    assert kwargs["timeline_hidden_states"][1, 1:].abs().sum() == 0


def test_presets_and_variants_resolve():
    assert set(PRESETS) == {"tiny", "wan2.1-t2v-1.3b"}
    real = get_preset("wan2.1-t2v-1.3b")
    assert (
        real.pretrained == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
        and real.transformer["num_layers"] == 30
    )
    args = reactid_arguments(real, "vanilla_rope", {"num_reference_layers": 4})
    assert args == {
        "num_reference_layers": 4,
        "mask_predictor_hidden_dim": 256,
        "timeline_rope": "vanilla",
    }
    with pytest.raises(KeyError, match="unknown model preset 'wan-14b'"):
        get_preset("wan-14b")
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    assert scheduler_flow_shift(FlowMatchEulerDiscreteScheduler(shift=5.0)) == 5.0
    assert (
        scheduler_flow_shift(
            UniPCMultistepScheduler(
                flow_shift=3.0, use_flow_sigmas=True, prediction_type="flow_prediction"
            )
        )
        == 3.0
    )


def test_wan_layout_directory_loads_through_the_real_preset_code(tmp_path):
    """The 1.3B preset's loading path, pointed at a tiny directory in the same layout."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel

    from models.presets import build_pipeline
    from models.text_encoder import build_tiny_text_encoder

    tiny = get_preset("tiny")
    WanTransformer3DModel(**tiny.transformer).save_pretrained(tmp_path / "transformer")
    AutoencoderKLWan(**tiny.vae).save_pretrained(tmp_path / "vae")
    tokenizer, encoder = build_tiny_text_encoder(dict(tiny.text_encoder))
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    encoder.save_pretrained(tmp_path / "text_encoder")
    UniPCMultistepScheduler(
        flow_shift=3.0, use_flow_sigmas=True, prediction_type="flow_prediction"
    ).save_pretrained(tmp_path / "scheduler")
    pipe = build_pipeline(
        "wan2.1-t2v-1.3b", pretrained=str(tmp_path), overrides={"num_reference_layers": 2}
    )
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    assert pipe.transformer.config.num_layers == 2 and pipe.config.fps == 16.0
    out = pipe(
        None,
        prompt="a lake",
        height=16,
        width=16,
        num_frames=5,
        num_inference_steps=2,
        output_type="latent",
    )
    assert out.frames.shape == (1, 4, 3, 8, 8) and torch.isfinite(out.frames).all()


def test_importing_the_package_loads_no_torch():
    code = (
        "import sys, models, models.variants, core.timeline; "
        "assert models.MODEL_VARIANTS['base'] == {'use_timeline_modules': False}; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=str(__import__("pathlib").Path(__file__).parents[2]),
    )
