"""Label binding: label values, bias, and where each sub-action's text is attended."""

from __future__ import annotations

import math

import pytest
import torch

from models.label_binding import action_label_values, label_binding_bias, video_token_labels
from models.subject_attention import SubjectAwareCrossAttention
from models.timeline_context import TimelineAttentionContext

# Four video tokens: inside subject 0, inside subject 1, background, inside both (1 wins).
MASK_PROBS = torch.tensor([[[0.9, 0.1, 0.2, 0.7], [0.2, 0.6, 0.1, 0.8]]])


def test_uniform_labels_are_alpha_plus_beta_times_subject():
    labels = video_token_labels(MASK_PROBS, strategy="uniform", alpha=2.0, beta=20.0)
    assert labels.tolist() == [[22.0, 42.0, 0.0, 42.0]]
    labels = video_token_labels(MASK_PROBS, strategy="uniform", alpha=0.0, beta=1.0)
    assert labels.tolist() == [[1.0, 2.0, 0.0, 2.0]]


def test_adaptive_labels_scale_with_the_mask_probability():
    labels = video_token_labels(MASK_PROBS, strategy="adaptive", alpha=2.0, beta=20.0)
    torch.testing.assert_close(labels, torch.tensor([[0.9 * 22, 0.6 * 42, 0.0, 0.8 * 42]]))
    assert video_token_labels(MASK_PROBS, strategy="none", alpha=2.0, beta=20.0).abs().sum() == 0
    with pytest.raises(ValueError, match="label binding must be one of"):
        video_token_labels(MASK_PROBS, strategy="soft", alpha=2.0, beta=20.0)


def test_bias_penalises_label_distance_and_ignores_unbound_actions():
    video = torch.tensor([[22.0, 42.0, 0.0]])
    actions = action_label_values(torch.tensor([[0, 1, -1]]), alpha=2.0, beta=20.0)
    assert actions[0, :2].tolist() == [22.0, 42.0] and math.isnan(actions[0, 2])
    bias = label_binding_bias(video, actions, scale=1.0)
    assert bias.tolist() == [[[0.0, -20.0, 0.0], [-20.0, 0.0, 0.0], [-22.0, -42.0, 0.0]]]


def _attention_mass(alpha: float, beta: float, strategy: str = "uniform") -> torch.Tensor:
    """Attention mass each video token puts on each action (queries/keys zeroed: bias only)."""
    module = SubjectAwareCrossAttention(dim=48, num_heads=2, eps=1e-6, label_bias_scale=1.0)
    with torch.no_grad():
        for projection in (module.attn.to_q, module.attn.to_k):
            projection.weight.zero_()
            projection.bias.zero_()
        module.attn.to_v.weight.copy_(torch.eye(48))
        module.attn.to_v.bias.zero_()
        module.attn.to_out[0].weight.copy_(torch.eye(48))
    text = torch.zeros(
        1, 2, 3, 48
    )  # action 0 (subject 0) -> channel 0, action 1 (subject 1) -> channel 1
    text[0, 0, :, 0] = 1.0
    text[0, 1, :, 1] = 1.0
    context = TimelineAttentionContext(
        num_frames=1,
        token_mask=torch.ones(1, 2, 3, dtype=torch.bool),
        action_labels=action_label_values(torch.tensor([[0, 1]]), alpha=alpha, beta=beta),
        rope=None,
        frame_mask=None,
    )
    labels = video_token_labels(MASK_PROBS, strategy=strategy, alpha=alpha, beta=beta)
    with torch.no_grad():
        out = module(torch.randn(1, 4, 48), text, context, labels)
    return out[0, :, :2]  # (tokens, actions)


def test_default_values_bind_each_action_to_its_subject_only():
    mass = _attention_mass(2.0, 20.0)
    assert mass[0, 0] > 0.999 and mass[0, 1] < 1e-8  # subject 0's token: its own action only
    z = 3 + 3 * math.exp(-20) + math.exp(-22)
    assert mass[0, 1].item() == pytest.approx(3 * math.exp(-20) / z, rel=1e-4)
    assert mass[1, 1] > 0.999 and mass[1, 0] < 1e-8
    assert mass[2].sum() < 1e-8  # background attends to the null slot


def test_close_label_values_only_prefer_the_subject():
    mass = _attention_mass(0.0, 1.0)
    e = math.exp
    # Token of subject 0 (label 1): 3 own tokens at bias 0, 3 of subject 1 at -1, null at -1.
    z = 3 + 3 * e(-1) + e(-1)
    torch.testing.assert_close(mass[0], torch.tensor([3 / z, 3 * e(-1) / z]))
    assert mass[1, 1] > mass[1, 0] > 0.05
    # Background (label 0): null at 0, subject 0's tokens at -1, subject 1's at -2.
    z = 1 + 3 * e(-1) + 3 * e(-2)
    torch.testing.assert_close(mass[2], torch.tensor([3 * e(-1) / z, 3 * e(-2) / z]))


def test_adaptive_binding_weakens_low_confidence_tokens():
    uniform, adaptive = _attention_mass(2.0, 20.0), _attention_mass(2.0, 20.0, "adaptive")
    # Token 1 (p = 0.6) is labelled 0.6 * 42 = 25.2: closer to subject 0's 22 than to its own 42.
    assert uniform[1, 1] > 0.999
    assert adaptive[1, 0] > adaptive[1, 1]
