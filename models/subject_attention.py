"""Subject-aware cross-attention: subject-mask prediction and the timeline cross-attention
that binds each sub-action to its subject's video tokens (paper Sec. 3.3.2, Fig. 3).

- ``SubjectMaskPredictor`` turns the reference-to-video attention map of a block into
  per-subject mask logits (an MLP over the per-head attention mass on each subject's
  reference tokens). One predictor is shared by all blocks; the model averages the
  logits of the last five blocks into the supervised subject masks.
- ``ReactIDBlockAdapter`` groups what ReactID adds beside one Wan block: the reference
  injection and, when timeline modules are on, the subject-aware cross-attention.
- ``SubjectAwareCrossAttention`` lets video tokens attend to the sub-action text tokens.
  Keys are rotated with the timeline RoPE (``models.rope``), an additive bias carries
  the label binding (``models.label_binding``) and, for the attention-mask ablation, a
  hard temporal mask. Its output projection starts at zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanAttention
from torch import nn

from models.label_binding import label_binding_bias
from models.reference_branch import ReferenceInjection, zero_output_projection
from models.rope import apply_interleaved_rotary
from models.timeline_context import TimelineAttentionContext


class SubjectMaskPredictor(nn.Module):
    """MLP from a block's reference attention map to per-subject mask logits.

    Features per (video token, subject): the attention mass on that subject's reference
    tokens, its log, and the mass on the null slot, for every head.
    """

    def __init__(self, num_heads: int, hidden_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(3 * num_heads, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 1)
        )

    def forward(self, attention_mass: torch.Tensor) -> torch.Tensor:
        """Args:
            attention_mass: ``(B, H, N, K + 1)`` from ``ReferenceInjection`` (last = null).

        Returns:
            ``(B, K, N)`` mask logits.
        """
        subject_mass = attention_mass[..., :-1].float()  # (B, H, N, K)
        null_mass = attention_mass[..., -1:].float().expand_as(subject_mass)
        features = torch.cat(
            [subject_mass, torch.log(subject_mass.clamp_min(1e-6)), null_mass], dim=1
        )  # (B, 3H, N, K)
        features = features.permute(0, 3, 2, 1).to(self.mlp[0].weight.dtype)  # (B, K, N, 3H)
        return self.mlp(features).squeeze(-1)


class SubjectAwareCrossAttention(nn.Module):
    """Video tokens attend to sub-action text tokens with timeline RoPE and label binding."""

    def __init__(self, dim: int, num_heads: int, eps: float, label_bias_scale: float) -> None:
        super().__init__()
        head_dim = dim // num_heads
        self.norm = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.attn = WanAttention(
            dim, heads=num_heads, dim_head=head_dim, eps=eps, cross_attention_dim_head=head_dim
        )
        self.label_bias_scale = label_bias_scale
        zero_output_projection(self.attn)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timeline_tokens: torch.Tensor,
        context: TimelineAttentionContext,
        video_labels: torch.Tensor | None,
    ) -> torch.Tensor:
        """Args:
            hidden_states: ``(B, N, D)`` video tokens, ``N = F * S``.
            timeline_tokens: ``(B, M, L, D)`` projected sub-action text tokens.
            context: shared timeline inputs.
            video_labels: ``(B, N)`` label of each video token, or None (no binding).

        Returns:
            ``(B, N, D)`` residual to add to the video tokens.
        """
        # 1. Projections; queries grouped per latent frame because keys are rotated per frame
        batch, num_tokens, dim = hidden_states.shape
        num_frames, heads = context.num_frames, self.attn.heads
        per_frame = num_tokens // num_frames
        _, num_actions, text_len, _ = timeline_tokens.shape
        video = self.norm(hidden_states.float()).type_as(hidden_states)
        query = self.attn.norm_q(self.attn.to_q(video)).unflatten(2, (heads, -1))  # (B, N, H, d)
        head_dim = query.shape[-1]
        query = query.view(batch, num_frames, per_frame, heads, head_dim).permute(0, 1, 3, 2, 4)
        query = query.reshape(batch * num_frames, heads, per_frame, head_dim)  # (B*F, H, S, d)
        text = timeline_tokens.flatten(1, 2)  # (B, K, D), K = M * L
        key = self.attn.norm_k(self.attn.to_k(text)).unflatten(2, (heads, -1))  # (B, K, H, d)
        value = self.attn.to_v(text).unflatten(2, (heads, -1))

        # 2. Keys rotated by -p_q(frame, action): RoPE score q^T R(p_k - p_q) k
        key = key.unsqueeze(1).expand(batch, num_frames, -1, -1, -1)  # (B, F, K, H, d)
        if context.rope is not None:
            cos, sin = (
                t.repeat_interleave(text_len, dim=2).unsqueeze(3) for t in context.rope
            )  # (B, F, K, 1, d_t)
            key = apply_interleaved_rotary(key, cos, sin)
        key = key.permute(0, 1, 3, 2, 4).reshape(batch * num_frames, heads, -1, head_dim)
        value = value.permute(0, 2, 1, 3).unsqueeze(1).expand(batch, num_frames, -1, -1, -1)
        value = value.reshape(batch * num_frames, heads, -1, head_dim)

        # 3. Null slot (zero key and value): tokens bound to no action attend to nothing
        null = key.new_zeros(batch * num_frames, heads, 1, head_dim)
        key, value = torch.cat([null, key], dim=2), torch.cat([null, value], dim=2)

        # 4. Bias: label binding + padding + optional hard temporal mask, (B*F, 1, S, 1+K)
        bias = self._bias(context, video_labels, batch, per_frame, text_len).to(query.dtype)
        bias = bias.view(batch * num_frames, 1, per_frame, 1 + num_actions * text_len)

        # 5. Attention and zero-initialised output projection
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=bias
        )  # (B*F, H, S, d)
        attended = attended.view(batch, num_frames, heads, per_frame, head_dim).permute(
            0, 1, 3, 2, 4
        )
        return self.attn.to_out[0](attended.reshape(batch, num_tokens, dim))

    def _bias(
        self,
        context: TimelineAttentionContext,
        video_labels: torch.Tensor | None,
        batch: int,
        per_frame: int,
        text_len: int,
    ) -> torch.Tensor:
        """Additive bias ``(B, F, S, 1 + M*L)`` (first column: the null slot)."""
        num_frames = context.num_frames
        num_actions = context.token_mask.shape[1]
        device = context.token_mask.device
        if video_labels is None:
            action_bias = torch.zeros(batch, num_frames, per_frame, num_actions, device=device)
            null_bias = torch.zeros(batch, num_frames, per_frame, 1, device=device)
        else:
            binding = label_binding_bias(
                video_labels, context.action_labels, self.label_bias_scale
            )  # (B, N, M)
            action_bias = binding.view(batch, num_frames, per_frame, num_actions)
            null_bias = (-self.label_bias_scale * video_labels.float()).view(
                batch, num_frames, per_frame, 1
            )
        blocked = ~context.token_mask.view(batch, 1, 1, num_actions * text_len)  # (B, 1, 1, K)
        if context.frame_mask is not None:
            inside = context.frame_mask.repeat_interleave(text_len, dim=2)  # (B, F, K)
            blocked = blocked | ~inside.unsqueeze(2)  # (B, F, 1, K)
        action_bias = action_bias.repeat_interleave(text_len, dim=3)  # (B, F, S, K)
        action_bias = action_bias.masked_fill(blocked, float("-inf"))
        return torch.cat([null_bias, action_bias], dim=3)


class ReactIDBlockAdapter(nn.Module):
    """What ReactID adds beside one Wan block."""

    def __init__(
        self, dim: int, num_heads: int, eps: float, use_timeline: bool, label_bias_scale: float
    ) -> None:
        super().__init__()
        self.reference_injection = ReferenceInjection(dim, num_heads, eps)
        self.timeline_attention = (
            SubjectAwareCrossAttention(dim, num_heads, eps, label_bias_scale)
            if use_timeline
            else None
        )
