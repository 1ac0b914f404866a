"""ReactIDPipeline end to end with the tiny preset: H.264 output, long videos, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.timeline import SubAction, Timeline
from models.pipeline_inputs import segment_windows, segments_for_duration
from models.pipeline_reactid import ReactIDPipeline
from models.presets import build_pipeline
from models.video_export import probe_video, write_h264_mp4

REFERENCES = [
    np.random.RandomState(0).randint(0, 255, (40, 24, 3)).astype(np.uint8),  # tall crop
    torch.rand(3, 20, 60, generator=torch.Generator().manual_seed(1)),  # wide crop, tensor
]
TIMELINE = Timeline(
    "two friends in a park",
    (
        SubAction(0.0, 0.5, "waves", "man"),
        SubAction(0.25, 1.125, "jumps", "dog"),
        SubAction(0.5, 1.125, "sits", "man"),
    ),
    duration=1.125,
)


@pytest.fixture(scope="module")
def pipe() -> ReactIDPipeline:
    return build_pipeline("tiny")


def _generate(pipe, **kwargs):
    settings = {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(0)}
    settings.update(kwargs)
    return pipe(REFERENCES, TIMELINE, **settings)


def test_generates_an_h264_mp4_end_to_end(pipe, tmp_path):
    output = _generate(pipe, output_path=str(tmp_path / "out" / "1.mp4"))
    assert output.frames.shape == (1, 9, 32, 32, 3)
    assert 0.0 <= output.frames.min() and output.frames.max() <= 1.0
    probe = probe_video(output.video_path)
    assert probe["codec"] == "h264" and probe["pix_fmt"] == "yuv420p"
    assert probe["frames"] == 9 and (probe["width"], probe["height"]) == (32, 32)
    assert [tuple(m.shape) for m in output.subject_mask_logits] == [(1, 2, 5, 8, 8)]
    assert list(tmp_path.joinpath("out").iterdir()) == [
        tmp_path / "out" / "1.mp4"
    ]  # no temp file left


def test_generation_is_seeded_and_conditioned(pipe):
    first = _generate(pipe, output_type="latent").frames
    again = _generate(pipe, output_type="latent").frames
    assert torch.equal(first, again)
    randomise = pipe.transformer.adapters[1].timeline_attention.attn.to_out[0]
    with torch.no_grad():
        randomise.weight.normal_(std=0.5)
    try:
        other_timeline = Timeline(
            TIMELINE.global_prompt, TIMELINE.actions[:1], duration=TIMELINE.duration
        )
        changed = pipe(
            REFERENCES,
            other_timeline,
            subjects=["man", "dog"],
            num_inference_steps=2,
            output_type="latent",
            generator=torch.Generator().manual_seed(0),
        ).frames
        assert not torch.equal(first, changed)
    finally:
        with torch.no_grad():
            randomise.weight.zero_()


def test_long_video_is_generated_in_overlapping_segments(pipe, tmp_path):
    output = _generate(
        pipe,
        num_segments=3,
        segment_overlap=1,
        num_inference_steps=1,
        height=16,
        width=16,
        output_path=str(tmp_path / "long.mp4"),
    )
    # 5 latent frames, then 4 new latent frames (8 pixel frames) per further segment.
    assert output.frames.shape[1:] == (9 + 2 * 8, 16, 16, 3)
    assert probe_video(output.video_path)["frames"] == 25
    assert len(output.subject_mask_logits) == 3
    assert segment_windows(3, 9, 8.0, 2, 1) == [(0.0, 1.125), (1.0, 2.125), (2.0, 3.125)]
    assert segments_for_duration(3.0, 9, 8.0, 2, 1) == 3
    with pytest.raises(ValueError, match="segment_overlap < 5 latent frames"):
        segment_windows(2, 9, 8.0, 2, 5)


def test_challenge_string_and_plain_prompt_inputs(pipe):
    output = pipe(
        REFERENCES[:1],
        "0-0.5s: [waves]; 0.5-1.1s: [sits]",
        prompt="a man",
        num_inference_steps=1,
        output_type="latent",
        guidance_scale=1.0,
    )
    assert output.frames.shape == (1, 4, 5, 16, 16)
    text_only = pipe(None, prompt="a quiet lake", num_inference_steps=1, output_type="latent")
    assert text_only.subject_mask_logits is None


def test_base_variant_reads_the_timeline_through_its_prompt(tmp_path):
    base = build_pipeline("tiny", "base")
    output = base(
        REFERENCES, TIMELINE, num_inference_steps=1, output_path=str(tmp_path / "base.mp4")
    )
    assert output.subject_mask_logits is None
    assert probe_video(output.video_path)["codec"] == "h264"


def test_inputs_are_checked(pipe):
    with pytest.raises(ValueError, match="2 reference images but subjects \\['man'\\]"):
        pipe(REFERENCES, Timeline("", TIMELINE.actions[:1], duration=1.0), num_inference_steps=1)
    with pytest.raises(ValueError, match="multiples of 4"):
        _generate(pipe, height=30)
    with pytest.raises(ValueError, match="give a timeline, a prompt, or both"):
        pipe(REFERENCES)


def test_save_and_reload_pipeline_gives_the_same_video(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = ReactIDPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.config.fps == pipe.config.fps and loaded.config.max_action_tokens == 16
    expected = _generate(pipe, output_type="latent").frames
    assert torch.equal(_generate(loaded, output_type="latent").frames, expected)


def test_writer_pads_odd_sizes_to_even(tmp_path):
    frames = np.random.RandomState(0).rand(3, 15, 17, 3)
    path = write_h264_mp4(frames, tmp_path / "odd.mp4", fps=12)
    probe = probe_video(path)
    assert (probe["width"], probe["height"], probe["frames"]) == (18, 16, 3)
    assert probe["fps"] == pytest.approx(12.0)
