"""Reference branch: reference-image latents through blocks shaped like Wan's, injected
into the main blocks Res-Tuning style.

Paper App. D: "a dedicated conditioning branch for reference image feature encoding ...
several reference blocks that are structurally identical to the base DiT blocks ... the
extracted middle-level features are injected into the video diffusion model via
Res-Tuning". Res-Tuning (Jiang et al., 2023) attaches a tuner beside each frozen block and
adds its output to the block's; here the tuner is an attention from video tokens to the
reference features whose output projection starts at zero, so the extended model starts
as the base model. The same attention scores give the reference-to-video attention map
that the subject-mask predictor reads (``subject_mass``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanAttention, WanTransformerBlock
from torch import nn


class ReferenceBranch(nn.Module):
    """Stack of ``WanTransformerBlock`` run on each reference image on its own.

    Each reference is encoded separately (references folded into the batch), so a padded
    reference slot cannot leak into a real one.
    """

    def __init__(
        self,
        num_layers: int,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: str | None,
        cross_attn_norm: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                WanTransformerBlock(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps)
                for _ in range(num_layers)
            ]
        )

    def forward(
        self,
        reference_tokens: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep_proj: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        checkpoint_fn=None,
    ) -> list[torch.Tensor]:
        """Encode references.

        Args:
            reference_tokens: ``(B*K, N_r, D)`` patch-embedded reference latents.
            encoder_hidden_states: ``(B*K, L, D)`` projected prompt tokens.
            timestep_proj: ``(B*K, 6, D)`` the main branch's timestep modulation.
            rotary_emb: Wan RoPE ``(cos, sin)`` for one frame of ``N_r`` tokens.
            checkpoint_fn: gradient-checkpointing wrapper, or ``None``.

        Returns:
            One ``(B*K, N_r, D)`` feature tensor per reference block.
        """
        features = []
        hidden = reference_tokens
        for block in self.blocks:
            if checkpoint_fn is not None:
                hidden = checkpoint_fn(
                    block, hidden, encoder_hidden_states, timestep_proj, rotary_emb
                )
            else:
                hidden = block(hidden, encoder_hidden_states, timestep_proj, rotary_emb)
            features.append(hidden)
        return features


class ReferenceInjection(nn.Module):
    """Res-Tuning tuner: video tokens attend to one reference block's features.

    A zero key/value ("null" slot) is always present so that tokens outside every subject
    can take nothing from the references and padded references can be masked out.
    """

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.norm_video = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.norm_reference = FP32LayerNorm(dim, eps, elementwise_affine=False)
        head_dim = dim // num_heads
        self.attn = WanAttention(
            dim, heads=num_heads, dim_head=head_dim, eps=eps, cross_attention_dim_head=head_dim
        )
        zero_output_projection(self.attn)

    def forward(
        self,
        hidden_states: torch.Tensor,
        reference_features: torch.Tensor,
        reference_mask: torch.Tensor,
        return_subject_mass: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inject reference features into video tokens.

        Args:
            hidden_states: ``(B, N, D)`` video tokens.
            reference_features: ``(B, K, N_r, D)``.
            reference_mask: ``(B, K)`` bool, False for padded reference slots.
            return_subject_mass: also compute the attention mass per subject.

        Returns:
            ``(B, N, D)`` residual to add, and ``(B, H, N, K + 1)`` attention mass on each
            subject's tokens (last channel: the null slot), or ``None``.
        """
        # 1. Projections
        batch, num_subjects, num_ref_tokens, _ = reference_features.shape
        heads = self.attn.heads
        video = self.norm_video(hidden_states.float()).type_as(hidden_states)
        refs = self.norm_reference(reference_features.flatten(1, 2).float()).type_as(hidden_states)
        query = (
            self.attn.norm_q(self.attn.to_q(video)).unflatten(2, (heads, -1)).transpose(1, 2)
        )  # (B, H, N, d)
        key = (
            self.attn.norm_k(self.attn.to_k(refs)).unflatten(2, (heads, -1)).transpose(1, 2)
        )  # (B, H, K*Nr, d)
        value = self.attn.to_v(refs).unflatten(2, (heads, -1)).transpose(1, 2)
        head_dim = query.shape[-1]

        # 2. Null slot first, then reference tokens; padded references masked out
        null = key.new_zeros(batch, heads, 1, head_dim)
        key, value = (
            torch.cat([null, key], dim=2),
            torch.cat([null, value], dim=2),
        )  # (B, H, 1+K*Nr, d)
        token_mask = reference_mask.bool().repeat_interleave(num_ref_tokens, dim=1)  # (B, K*Nr)
        keep = torch.cat([token_mask.new_ones(batch, 1), token_mask], dim=1).view(batch, 1, 1, -1)

        # 3. Injected features
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=keep)  # (B, H, N, d)
        residual = self.attn.to_out[0](attended.transpose(1, 2).flatten(2))

        # 4. Attention mass per subject: the same scores applied to one-hot values, so the
        #    (N x K*Nr) map is never materialised (fused attention kernels stay usable)
        if not return_subject_mass:
            return residual, None
        if num_subjects + 1 > head_dim:
            raise ValueError(
                f"{num_subjects} references need {num_subjects + 1} channels for the "
                "attention-mass "
                f"read-out but a head has {head_dim}"
            )
        owner = torch.arange(num_subjects, device=key.device).repeat_interleave(num_ref_tokens)
        owner = torch.cat([owner.new_full((1,), num_subjects), owner])  # null slot -> channel K
        one_hot = F.one_hot(owner, head_dim).to(query.dtype)  # (1+K*Nr, d)
        one_hot = one_hot.view(1, 1, -1, head_dim).expand(batch, heads, -1, -1)
        mass = F.scaled_dot_product_attention(query, key, one_hot, attn_mask=keep)[
            ..., : num_subjects + 1
        ]
        return residual, mass


def zero_output_projection(attention: WanAttention) -> None:
    """Zero the output projection so the module adds exactly nothing until trained."""
    nn.init.zeros_(attention.to_out[0].weight)
    nn.init.zeros_(attention.to_out[0].bias)
