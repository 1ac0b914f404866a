"""Per-forward timeline context shared by every block's subject-aware cross-attention:
valid sub-action tokens, action labels, timeline RoPE angles and the optional hard
temporal mask (see ``models.rope`` and ``models.label_binding`` for the formulas)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.label_binding import action_label_values
from models.rope import (
    action_frame_mask,
    rotary_cos_sin,
    temporal_rope_dim,
    timeline_rope_positions,
)


@dataclass(frozen=True)
class TimelineAttentionContext:
    """Per-forward timeline inputs shared by every block.

    Attributes:
        num_frames: latent frames ``F`` after temporal patching.
        token_mask: ``(B, M, L)`` bool, valid sub-action text tokens.
        action_labels: ``(B, M)`` label of each action's subject, NaN if unbound.
        rope: ``(cos, sin)`` each ``(B, F, M, d_t)`` for the key rotation by ``-p_q``, or None.
        frame_mask: ``(B, F, M)`` bool, frames inside each action (hard-mask ablation), or None.
    """

    num_frames: int
    token_mask: torch.Tensor
    action_labels: torch.Tensor
    rope: tuple[torch.Tensor, torch.Tensor] | None
    frame_mask: torch.Tensor | None


def build_timeline_context(
    action_spans: torch.Tensor | None,
    token_mask: torch.Tensor | None,
    action_subjects: torch.Tensor | None,
    *,
    batch: int,
    num_actions: int,
    text_len: int,
    num_frames: int,
    frames_per_token: int,
    rope_mode: str,
    rescale_length: float,
    temporal_mask: bool,
    label_alpha: float,
    label_beta: float,
    attention_head_dim: int,
) -> TimelineAttentionContext:
    """Validate the timeline inputs and precompute what every block needs.

    Args:
        action_spans: ``(B, M, 2)`` in latent frames (required).
        token_mask: ``(B, M, L_a)`` bool, or None (all tokens valid).
        action_subjects: ``(B, M)`` long, or None (all actions unbound).
        num_frames: latent frames after temporal patching.
        frames_per_token: temporal patch size (latent frames per token frame).

    Returns:
        The context, with RoPE angles for rotating keys by ``-p_q(frame, action)``.
    """
    if action_spans is None or tuple(action_spans.shape) != (batch, num_actions, 2):
        shape = None if action_spans is None else tuple(action_spans.shape)
        raise ValueError(
            f"action_spans must be {(batch, num_actions, 2)} when a timeline is given, got {shape}"
        )
    device = action_spans.device
    if token_mask is None:
        token_mask = torch.ones(batch, num_actions, text_len, dtype=torch.bool, device=device)
    if action_subjects is None:
        action_subjects = torch.full((batch, num_actions), -1, dtype=torch.long, device=device)
    spans = action_spans.float() / frames_per_token
    rope = None
    if rope_mode != "none":
        positions = timeline_rope_positions(spans, num_frames, rope_mode, rescale_length)
        rope = rotary_cos_sin(-positions, temporal_rope_dim(attention_head_dim))
    return TimelineAttentionContext(
        num_frames=num_frames,
        token_mask=token_mask.bool(),
        action_labels=action_label_values(
            action_subjects.long(), alpha=label_alpha, beta=label_beta
        ),
        rope=rope,
        frame_mask=action_frame_mask(spans, num_frames) if temporal_mask else None,
    )
