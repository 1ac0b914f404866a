"""Temporally-adaptive RoPE: duration invariance inside a sub-action, and the ablations."""

from __future__ import annotations

import pytest
import torch

from models.rope import (
    action_frame_mask,
    apply_interleaved_rotary,
    rotary_cos_sin,
    temporal_rope_dim,
    timeline_rope_positions,
)
from models.subject_attention import SubjectAwareCrossAttention
from models.timeline_context import TimelineAttentionContext

# One video of 8 latent frames: a short action over frames [0, 2) and a long one over [2, 8).
SPANS = torch.tensor([[[0.0, 2.0], [2.0, 8.0]]])
# Frame 0 is 1/4 into the short action, frame 3 is 1/4 into the long one.
SAME_PROGRESS = [(0, 0), (3, 1)]


@pytest.mark.parametrize("rescale_length", [2.0, 4.0, 8.0])
def test_tarope_gives_equal_encodings_at_equal_progress_whatever_the_duration(rescale_length):
    positions = timeline_rope_positions(SPANS, 8, "tarope", rescale_length)
    (f0, a0), (f1, a1) = SAME_PROGRESS
    assert positions[0, f0, a0] == positions[0, f1, a1] == pytest.approx(rescale_length / 4)
    # Inside its own action every frame lies in (0, T).
    inside = action_frame_mask(SPANS, 8)
    assert inside.sum() == 8
    assert (positions[inside] > 0).all() and (positions[inside] < rescale_length).all()
    cos, sin = rotary_cos_sin(-positions, 8)
    assert torch.equal(cos[0, f0, a0], cos[0, f1, a1]) and torch.equal(
        sin[0, f0, a0], sin[0, f1, a1]
    )


def test_vanilla_rope_depends_on_the_duration():
    positions = timeline_rope_positions(SPANS, 8, "vanilla", 2.0)
    (f0, a0), (f1, a1) = SAME_PROGRESS
    assert positions[0, f0, a0] == pytest.approx(0.5)
    assert positions[0, f1, a1] == pytest.approx(1.5)
    assert torch.equal(timeline_rope_positions(SPANS, 8, "none", 2.0), torch.zeros(1, 8, 2))


def test_rotation_preserves_norms_and_leaves_spatial_channels():
    x = torch.randn(3, 24)
    cos, sin = rotary_cos_sin(torch.tensor([0.3, 1.7, 5.0]), temporal_rope_dim(24))
    rotated = apply_interleaved_rotary(x, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    assert torch.equal(rotated[:, 8:], x[:, 8:])
    # RoPE: <R(a) q, R(b) k> depends only on b - a.
    q, k = torch.randn(8), torch.randn(8)

    def score(a, b):
        ca, sa = rotary_cos_sin(torch.tensor([a]), 8)
        cb, sb = rotary_cos_sin(torch.tensor([b]), 8)
        return (
            apply_interleaved_rotary(q[None], ca, sa) @ apply_interleaved_rotary(k[None], cb, sb).T
        )

    torch.testing.assert_close(score(1.0, 3.5), score(4.0, 6.5))


def _attention(
    mode: str, spans: torch.Tensor, num_frames: int, frame_query: torch.Tensor, text: torch.Tensor
):
    """Output of a random subject-aware attention; every frame has the tokens ``frame_query``."""
    torch.manual_seed(0)
    module = SubjectAwareCrossAttention(dim=48, num_heads=2, eps=1e-6, label_bias_scale=1.0)
    torch.nn.init.normal_(module.attn.to_out[0].weight, std=0.2)
    rope = None
    if mode != "none":
        rope = rotary_cos_sin(
            -timeline_rope_positions(spans, num_frames, mode, 2.0), temporal_rope_dim(24)
        )
    context = TimelineAttentionContext(
        num_frames=num_frames,
        token_mask=torch.ones(1, spans.shape[1], text.shape[2], dtype=torch.bool),
        action_labels=torch.full((1, spans.shape[1]), float("nan")),
        rope=rope,
        frame_mask=None,
    )
    hidden = frame_query.repeat(1, num_frames, 1)  # (1, F * S, D), S tokens per frame
    with torch.no_grad():
        return module(hidden, text, context, video_labels=None).view(1, num_frames, -1, 48)


def test_attention_output_is_invariant_to_action_duration_only_with_tarope():
    frame_query = torch.randn(1, 4, 48)
    text = torch.randn(1, 1, 3, 48)
    # A 2-frame action and a 6-frame action; frame 0 of the first and frame 1 of the second
    # are both a quarter of the way through.
    short, long = torch.tensor([[[0.0, 2.0]]]), torch.tensor([[[0.0, 6.0]]])
    tarope_short = _attention("tarope", short, 2, frame_query, text)[0, 0]
    tarope_long = _attention("tarope", long, 6, frame_query, text)[0, 1]
    torch.testing.assert_close(tarope_short, tarope_long)
    vanilla_short = _attention("vanilla", short, 2, frame_query, text)[0, 0]
    vanilla_long = _attention("vanilla", long, 6, frame_query, text)[0, 1]
    assert not torch.allclose(vanilla_short, vanilla_long, atol=1e-4)
    # Without RoPE every frame sees the same keys.
    none = _attention("none", long, 6, frame_query, text)[0]
    torch.testing.assert_close(none[0], none[5])


def test_attention_mask_ablation_restricts_each_action_to_its_frames():
    module = SubjectAwareCrossAttention(dim=48, num_heads=2, eps=1e-6, label_bias_scale=1.0)
    with torch.no_grad():
        for projection in (module.attn.to_q, module.attn.to_k):
            projection.weight.zero_()
            projection.bias.zero_()
        module.attn.to_v.weight.copy_(torch.eye(48))
        module.attn.to_v.bias.zero_()
        module.attn.to_out[0].weight.copy_(torch.eye(48))
    text = torch.zeros(1, 2, 1, 48)
    text[0, 0, 0, 0] = text[0, 1, 0, 1] = 1.0  # action 0 carries channel 0, action 1 channel 1
    spans = torch.tensor([[[0.0, 1.0], [1.0, 3.0]]])
    context = TimelineAttentionContext(
        num_frames=3,
        token_mask=torch.ones(1, 2, 1, dtype=torch.bool),
        action_labels=torch.full((1, 2), float("nan")),
        rope=None,
        frame_mask=action_frame_mask(spans, 3),
    )
    with torch.no_grad():
        out = module(torch.randn(1, 3 * 2, 48), text, context, None).view(3, 2, 48)
    # Frame 0 only sees action 0, frames 1-2 only action 1 (mass shared with the null slot).
    assert (out[0, :, 1] == 0).all() and (out[0, :, 0] > 0).all()
    assert (out[1:, :, 0] == 0).all() and (out[1:, :, 1] > 0).all()
