"""Temporally-adaptive RoPE (TARoPE) for the timeline cross-attention.

Reading of the paper (Sec. 3.3.2, Sec. 4.3 "Temporally-Adaptive RoPE", Table 4)
---------------------------------------------------------------------------------
Each sub-action's text tokens must be tied to the frames of its time span. TARoPE
"embeds the rescaled temporal coordinates invariant to action duration": the temporal
coordinate of a video frame, *measured from the sub-action it is compared with*, is
rescaled so that every sub-action spans the same length ``T`` whatever its duration.
Vanilla RoPE uses the raw frame offset instead; the attention-mask ablation uses no
temporal RoPE and a hard mask restricting each sub-action to its frames.

What this module implements
---------------------------
Time is measured in latent frames. Latent frame ``i`` covers ``[i, i + 1)`` and has centre
``c_i = i + 0.5``; sub-action ``j`` spans ``[a_j, b_j)`` (seconds scaled by
``num_latent_frames / duration``). The query (video token in frame ``i``) and key (text
token of action ``j``) positions are

    TARoPE:   p_q(i, j) = T * (c_i - a_j) / (b_j - a_j),   p_k(j) = 0
    vanilla:  p_q(i, j) = c_i - a_j,                       p_k(j) = 0
    none:     no rotation

so inside action ``j`` the query position runs over ``(0, T)`` for any duration, and two
frames at the same fraction of two actions of different lengths get the same relative
encoding. The rotation is the standard 1-D RoPE (Su et al.) with Wan's temporal
frequencies ``omega_m = theta^(-2m / d_t)``, ``theta = 1e4``, applied to the temporal
slice (the first ``d_t`` channels) of each head, as Wan's own 3-D RoPE does; the spatial
channels are left unrotated because text tokens have no spatial position.

Because a video token's query position depends on the action it is compared with, the
score for the pair is computed as ``q^T R(p_k - p_q) k``: the *key* of action ``j`` is
rotated by ``-p_q(i, j)`` once per latent frame. That is exact (RoPE only depends on the
position difference) and costs ``F x M x L`` key rotations instead of one query copy per
action.
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed

TimelineRope = Literal["none", "vanilla", "tarope"]
TIMELINE_ROPE_MODES: tuple[str, ...] = ("none", "vanilla", "tarope")


def temporal_rope_dim(attention_head_dim: int) -> int:
    """Channels of a head that Wan's 3-D RoPE gives to time (the rest go to height/width)."""
    return attention_head_dim - 4 * (attention_head_dim // 6)


def latent_frame_centres(num_frames: int, device: torch.device | None = None) -> torch.Tensor:
    """Centres ``i + 0.5`` of latent frames, shape ``(F,)``, float32."""
    return torch.arange(num_frames, device=device, dtype=torch.float32) + 0.5


def timeline_rope_positions(
    action_spans: torch.Tensor, num_frames: int, mode: str, rescale_length: float
) -> torch.Tensor:
    """Query positions of every latent frame relative to every sub-action.

    Args:
        action_spans: ``(B, M, 2)`` start/end of each action in latent-frame units.
        num_frames: Number of latent frames ``F`` (after temporal patching).
        mode: ``"tarope"``, ``"vanilla"`` or ``"none"``.
        rescale_length: TARoPE length ``T`` that every action is rescaled to.

    Returns:
        ``(B, F, M)`` float32 positions ``p_q(i, j)`` (zeros for ``"none"``).
    """
    if mode not in TIMELINE_ROPE_MODES:
        raise ValueError(f"timeline rope mode must be one of {TIMELINE_ROPE_MODES}, got {mode!r}")
    spans = action_spans.float()
    start, end = spans[..., 0].unsqueeze(1), spans[..., 1].unsqueeze(1)  # (B, 1, M)
    centres = latent_frame_centres(num_frames, spans.device).view(1, -1, 1)  # (1, F, 1)
    offset = centres - start  # (B, F, M)
    if mode == "none":
        return torch.zeros_like(offset)
    if mode == "vanilla":
        return offset
    # Padding actions have zero length; their keys are masked, the clamp only avoids inf.
    length = (end - start).clamp_min(1e-6)
    return rescale_length * offset / length


def action_frame_mask(action_spans: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Which latent frames lie inside which action: centre ``c_i`` in ``[a_j, b_j)``.

    Args:
        action_spans: ``(B, M, 2)`` in latent-frame units.

    Returns:
        ``(B, F, M)`` bool.
    """
    spans = action_spans.float()
    centres = latent_frame_centres(num_frames, spans.device).view(1, -1, 1)
    return (centres >= spans[..., 0].unsqueeze(1)) & (centres < spans[..., 1].unsqueeze(1))


def rotary_cos_sin(
    positions: torch.Tensor, dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved RoPE cosines/sines for arbitrary float positions (Wan's layout).

    Args:
        positions: any shape ``S``, float.
        dim: rotated channels (even).

    Returns:
        ``cos, sin`` of shape ``S + (dim,)``, float32.
    """
    # float64 frequencies like WanRotaryPosEmbed, except on MPS which lacks float64.
    freqs_dtype = torch.float32 if positions.device.type == "mps" else torch.float64
    flat = positions.reshape(-1).to(freqs_dtype)
    cos, sin = get_1d_rotary_pos_embed(
        dim, flat, theta, use_real=True, repeat_interleave_real=True, freqs_dtype=freqs_dtype
    )
    return cos.reshape(*positions.shape, dim), sin.reshape(*positions.shape, dim)


def apply_interleaved_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(2m, 2m+1)`` of ``x[..., :dim]`` by the given angles.

    Args:
        x: ``(..., D)`` with ``D >= dim``.
        cos, sin: broadcastable to ``x[..., :dim]``, interleaved (each angle repeated twice).

    Returns:
        Tensor like ``x`` whose first ``dim`` channels are rotated; the rest are unchanged.
    """
    dim = cos.shape[-1]
    rotated, rest = x[..., :dim].float(), x[..., dim:]
    x1, x2 = rotated.unflatten(-1, (-1, 2)).unbind(-1)
    cos_half, sin_half = cos[..., 0::2], sin[..., 0::2]
    out = torch.stack(
        (x1 * cos_half - x2 * sin_half, x1 * sin_half + x2 * cos_half), dim=-1
    ).flatten(-2)
    return torch.cat((out.type_as(x), rest), dim=-1)
