"""ReactID transformer: Wan2.1 T2V plus a reference branch and the subject-synchronised
module (subject-aware cross-attention with label binding, temporally-adaptive RoPE).

The class subclasses diffusers' ``WanTransformer3DModel``: the base modules keep their
names (``patch_embedding``, ``condition_embedder``, ``blocks``, ``proj_out`` ...), so a
Wan checkpoint's state dict is a subset of ours. The new modules are

- ``reference_branch``: ``num_reference_layers`` ``WanTransformerBlock`` s over each
  reference image's latents (paper App. D);
- ``adapters[i]``: per main block, a Res-Tuning reference injection and, when timeline
  modules are on, a ``SubjectAwareCrossAttention``; both output projections start at zero;
- ``mask_predictor``: shared MLP giving per-subject mask logits from each block's
  reference attention map; the last ``num_mask_blocks`` blocks' logits are averaged.

With ``use_timeline_modules=False`` the same class is the paper's "Base" (Table 6): the
reference branch only. Every ablation of Tables 3/4 is a config value (``models.variants``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (see below)
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel
from diffusers.utils import BaseOutput
from diffusers.utils.peft_utils import apply_lora_scale
from torch import nn

from models.label_binding import video_token_labels
from models.reference_branch import ReferenceBranch
from models.subject_attention import ReactIDBlockAdapter, SubjectMaskPredictor
from models.timeline_context import TimelineAttentionContext, build_timeline_context
from models.transformer_config import (
    WAN_CONFIG_KEYS,
    cast_keeping_fp32_modules,
    copy_attention_inputs,
    validate_reactid_config,
)

NEW_MODULE_PREFIXES: tuple[str, ...] = ("reference_branch.", "adapters.", "mask_predictor.")

# ``DiffusionPipeline.from_pretrained`` finds how to load a component of a non-diffusers
# library by looking its base class names (``ModelMixin``) up in the component's module,
# hence the import above: a saved ReactIDPipeline reloads without passing the transformer.


@dataclass
class ReactIDTransformerOutput(BaseOutput):
    """Args:
    sample: ``(B, C, F, H, W)`` flow prediction.
    subject_mask_logits: ``(B, K, F', H', W')`` at token resolution, or None when there
        are no references or no timeline modules.
    """

    sample: torch.Tensor
    subject_mask_logits: torch.Tensor | None = None


class ReactIDTransformer3DModel(WanTransformer3DModel):
    """Wan2.1 T2V transformer with ReactID's reference branch and timeline modules.

    Args (beyond ``WanTransformer3DModel``'s, which keep their meaning):
        num_reference_layers: reference blocks; main block ``l`` reads reference block
            ``floor(l * R / L)``.
        use_timeline_modules: subject-aware cross-attention, mask prediction and timeline
            RoPE; False gives the paper's "Base".
        timeline_rope: ``"tarope"`` | ``"vanilla"`` | ``"none"`` (see ``models.rope``).
        tarope_rescale_length: TARoPE length ``T`` (paper's best: 2).
        timeline_temporal_mask: hard mask restricting each sub-action to its frames
            (the "attention mask" ablation).
        label_binding: ``"uniform"`` | ``"adaptive"`` | ``"none"`` (see ``models.label_binding``).
        label_alpha, label_beta: label values ``l_k = alpha + beta * k`` (paper: 2, 20).
        label_bias_scale: bias per unit of label distance.
        mask_threshold: probability above which a token is inside a predicted mask.
        num_mask_blocks: the last blocks whose mask logits are averaged (paper: 5).
        mask_predictor_hidden_dim: hidden width of the mask MLP.
    """

    _no_split_modules = ["WanTransformerBlock", "ReactIDBlockAdapter"]
    # Wan's image-conditioning arguments: ReactID extends the T2V model and never sets them, so
    # they stay out of the saved config (a reload would otherwise warn that they are unexpected).
    ignore_for_config = ["image_dim", "added_kv_proj_dim", "pos_embed_seq_len"]
    _repeated_blocks = ["WanTransformerBlock", "ReactIDBlockAdapter"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 8960,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        rope_max_seq_len: int = 1024,
        num_reference_layers: int = 8,
        use_timeline_modules: bool = True,
        timeline_rope: str = "tarope",
        tarope_rescale_length: float = 2.0,
        timeline_temporal_mask: bool = False,
        label_binding: str = "uniform",
        label_alpha: float = 2.0,
        label_beta: float = 20.0,
        label_bias_scale: float = 1.0,
        mask_threshold: float = 0.5,
        num_mask_blocks: int = 5,
        mask_predictor_hidden_dim: int = 64,
    ) -> None:
        # register_to_config has stored every argument in self.config before this body runs.
        super().__init__(**{key: self.config[key] for key in WAN_CONFIG_KEYS})
        validate_reactid_config(self.config)
        inner_dim = num_attention_heads * attention_head_dim
        self.reference_branch = ReferenceBranch(
            num_reference_layers,
            inner_dim,
            ffn_dim,
            num_attention_heads,
            qk_norm,
            cross_attn_norm,
            eps,
        )
        self.adapters = nn.ModuleList(
            [
                ReactIDBlockAdapter(
                    inner_dim, num_attention_heads, eps, use_timeline_modules, label_bias_scale
                )
                for _ in range(num_layers)
            ]
        )
        self.mask_predictor = (
            SubjectMaskPredictor(num_attention_heads, mask_predictor_hidden_dim)
            if use_timeline_modules
            else None
        )

    # ----------------------------------------------------------------------------------
    # Construction from a Wan checkpoint
    # ----------------------------------------------------------------------------------

    @classmethod
    def from_wan(
        cls, base: WanTransformer3DModel, **reactid_config: Any
    ) -> ReactIDTransformer3DModel:
        """Extend a loaded Wan T2V transformer; the result starts as the base model.

        Args:
            base: a plain ``WanTransformer3DModel``, e.g. loaded with
                ``from_pretrained(source, subfolder="transformer")``.
            **reactid_config: values for the ReactID-only arguments.
        """
        for key in ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len"):
            if base.config.get(key) is not None:
                raise ValueError(
                    "ReactID extends the Wan T2V transformer; "
                    f"the base has {key}={base.config[key]!r}"
                )
        model = cls(**{key: base.config[key] for key in WAN_CONFIG_KEYS}, **reactid_config)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        foreign = [key for key in missing if not key.startswith(NEW_MODULE_PREFIXES)]
        if unexpected or foreign:
            raise ValueError(
                f"base state dict does not fit: unexpected {unexpected[:5]}, missing {foreign[:5]}"
            )
        model.initialise_from_base()
        if base.dtype != model.dtype:
            cast_keeping_fp32_modules(model, base.dtype)
        return model

    @torch.no_grad()
    def initialise_from_base(self) -> None:
        """Copy base weights into the new modules; output projections stay zero.

        Reference block ``r`` copies the first main block that reads it; each injection
        copies its block's self-attention projections and each subject-aware attention its
        block's cross-attention, so attention maps are meaningful from the first step.
        """
        num_layers, num_ref = self.config.num_layers, self.config.num_reference_layers
        for index, ref_block in enumerate(self.reference_branch.blocks):
            ref_block.load_state_dict(
                self.blocks[math.ceil(index * num_layers / num_ref)].state_dict()
            )
        for block, adapter in zip(self.blocks, self.adapters, strict=True):
            copy_attention_inputs(adapter.reference_injection.attn, block.attn1)
            if adapter.timeline_attention is not None:
                copy_attention_inputs(adapter.timeline_attention.attn, block.attn2)
                if isinstance(block.norm2, nn.LayerNorm):
                    adapter.timeline_attention.norm.load_state_dict(block.norm2.state_dict())

    def reference_layer_for_block(self, block_index: int) -> int:
        return block_index * self.config.num_reference_layers // self.config.num_layers

    # ----------------------------------------------------------------------------------
    # Forward
    # ----------------------------------------------------------------------------------

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        reference_latents: torch.Tensor | None = None,
        reference_mask: torch.Tensor | None = None,
        timeline_hidden_states: torch.Tensor | None = None,
        timeline_token_mask: torch.Tensor | None = None,
        action_spans: torch.Tensor | None = None,
        action_subjects: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> ReactIDTransformerOutput | tuple[torch.Tensor, ...]:
        """Predict the flow for noisy video latents.

        Args:
            hidden_states: ``(B, C, F, H, W)`` noisy latents.
            timestep: ``(B,)`` in ``[0, 1000]``.
            encoder_hidden_states: ``(B, L, text_dim)`` global-prompt embeddings.
            reference_latents: ``(B, K, C, h, w)`` VAE latents of one image per subject.
            reference_mask: ``(B, K)`` bool, False for padded reference slots (default all True).
            timeline_hidden_states: ``(B, M, L_a, text_dim)`` sub-action text embeddings.
            timeline_token_mask: ``(B, M, L_a)`` bool valid tokens (default all True).
            action_spans: ``(B, M, 2)`` start/end of each action in latent frames.
            action_subjects: ``(B, M)`` long reference index of each action, -1 = unbound.
            return_dict: return a ``ReactIDTransformerOutput`` rather than a tuple.
            attention_kwargs: LoRA scale, as in ``WanTransformer3DModel``.

        Returns:
            ``ReactIDTransformerOutput`` (``sample``: ``(B, C, F, H, W)``).
        """
        # 1. Patch embedding and Wan's 3-D RoPE
        batch, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        grid = (num_frames // p_t, height // p_h, width // p_w)
        if timestep.ndim != 1:
            raise ValueError(f"timestep must be (B,) for Wan2.1; got shape {tuple(timestep.shape)}")
        rotary_emb = self.rope(hidden_states)
        tokens = (
            self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        )  # (B, N, D)

        # 2. Timestep and prompt embeddings
        temb, timestep_proj, text, _ = self.condition_embedder(
            timestep, encoder_hidden_states, None
        )
        timestep_proj = timestep_proj.unflatten(1, (6, -1))  # (B, 6, D)

        # 3. Reference branch: one feature tensor (B, K, N_r, D) per reference block
        reference_features, reference_mask = self._encode_references(
            reference_latents, reference_mask, text, timestep_proj
        )

        # 4. Timeline tokens (B, M, L_a, D) and per-forward timeline context
        timeline_tokens, context = self._timeline_context(
            timeline_hidden_states,
            timeline_token_mask,
            action_spans,
            action_subjects,
            grid[0],
            batch,
        )

        # 5. Main blocks, each followed by its adapter
        mask_logits: list[torch.Tensor] = []
        for index in range(self.config.num_layers):
            args = (
                index,
                tokens,
                text,
                timestep_proj,
                rotary_emb,
                reference_features,
                reference_mask,
                timeline_tokens,
                context,
            )
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                tokens, logits = self._gradient_checkpointing_func(self._block_step, *args)
            else:
                tokens, logits = self._block_step(*args)
            if logits is not None:
                mask_logits.append(logits)

        # 6. Output norm, projection and unpatchify (as Wan)
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = (self.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = self.proj_out(tokens)
        tokens = tokens.reshape(batch, *grid, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        sample = tokens.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, F, H, W)

        # 7. Subject masks: mean logits of the last num_mask_blocks blocks, (B, K, F', H', W')
        subject_mask_logits = None
        if mask_logits:
            stacked = torch.stack(mask_logits[-self.config.num_mask_blocks :], dim=0)
            subject_mask_logits = stacked.mean(dim=0).unflatten(2, grid)
        if not return_dict:
            return (sample,) if subject_mask_logits is None else (sample, subject_mask_logits)
        return ReactIDTransformerOutput(sample=sample, subject_mask_logits=subject_mask_logits)

    def _block_step(
        self,
        index: int,
        tokens: torch.Tensor,
        text: torch.Tensor,
        timestep_proj: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        reference_features: list[torch.Tensor] | None,
        reference_mask: torch.Tensor | None,
        timeline_tokens: torch.Tensor | None,
        context: TimelineAttentionContext | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One Wan block, then reference injection, then subject-aware cross-attention.

        Returns:
            ``(B, N, D)`` tokens and this block's ``(B, K, N)`` mask logits (or None).
        """
        adapter = self.adapters[index]
        tokens = self.blocks[index](tokens, text, timestep_proj, rotary_emb)
        logits = None
        if reference_features is not None:
            features = reference_features[self.reference_layer_for_block(index)]
            residual, mass = adapter.reference_injection(
                tokens,
                features,
                reference_mask,
                return_subject_mass=self.mask_predictor is not None,
            )
            tokens = tokens + residual
            if mass is not None:
                logits = self.mask_predictor(mass)  # (B, K, N)
        if context is not None:
            video_labels = None
            if logits is not None and self.config.label_binding != "none":
                # Labels are a hard assignment; the mask head learns from the focal loss only.
                probs = torch.sigmoid(logits.detach().float()) * reference_mask.unsqueeze(-1)
                video_labels = video_token_labels(
                    probs,
                    strategy=self.config.label_binding,
                    alpha=self.config.label_alpha,
                    beta=self.config.label_beta,
                    threshold=self.config.mask_threshold,
                )
            tokens = tokens + adapter.timeline_attention(
                tokens, timeline_tokens, context, video_labels
            )
        return tokens, logits

    def _encode_references(
        self,
        reference_latents: torch.Tensor | None,
        reference_mask: torch.Tensor | None,
        text: torch.Tensor,
        timestep_proj: torch.Tensor,
    ) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        """Run the reference branch; returns per-layer ``(B, K, N_r, D)`` features and the mask."""
        if reference_latents is None:
            return None, None
        if reference_latents.ndim != 5:
            raise ValueError(
                f"reference_latents must be (B, K, C, h, w), got {tuple(reference_latents.shape)}"
            )
        batch, num_refs = reference_latents.shape[:2]
        if reference_mask is None:
            reference_mask = torch.ones(
                batch, num_refs, dtype=torch.bool, device=reference_latents.device
            )
        if reference_mask.shape != (batch, num_refs):
            raise ValueError(
                f"reference_mask must be {(batch, num_refs)}, got {tuple(reference_mask.shape)}"
            )
        folded = reference_latents.flatten(0, 1).unsqueeze(2)  # (B*K, C, 1, h, w)
        rotary = self.rope(folded)
        ref_tokens = self.patch_embedding(folded.to(self.patch_embedding.weight.dtype))
        ref_tokens = ref_tokens.flatten(2).transpose(1, 2).contiguous()  # (B*K, N_r, D)
        checkpoint_fn = (
            self._gradient_checkpointing_func
            if torch.is_grad_enabled() and self.gradient_checkpointing
            else None
        )
        features = self.reference_branch(
            ref_tokens,
            text.repeat_interleave(num_refs, dim=0),
            timestep_proj.repeat_interleave(num_refs, dim=0),
            rotary,
            checkpoint_fn,
        )
        return [f.unflatten(0, (batch, num_refs)) for f in features], reference_mask.bool()

    def _timeline_context(
        self,
        timeline_hidden_states: torch.Tensor | None,
        timeline_token_mask: torch.Tensor | None,
        action_spans: torch.Tensor | None,
        action_subjects: torch.Tensor | None,
        num_frames: int,
        batch: int,
    ) -> tuple[torch.Tensor | None, TimelineAttentionContext | None]:
        """Project sub-action tokens ``(B, M, L_a, D)`` and build the shared context."""
        if timeline_hidden_states is None:
            return None, None
        if not self.config.use_timeline_modules:
            raise ValueError(
                "this model has no timeline modules (use_timeline_modules=False, the 'base' "
                "variant); fold the timeline into the prompt with Timeline.as_prompt() instead"
            )
        if timeline_hidden_states.ndim != 4 or timeline_hidden_states.shape[0] != batch:
            shape = tuple(timeline_hidden_states.shape)
            raise ValueError(f"timeline_hidden_states must be (B={batch}, M, L, C), got {shape}")
        context = build_timeline_context(
            action_spans,
            timeline_token_mask,
            action_subjects,
            batch=batch,
            num_actions=timeline_hidden_states.shape[1],
            text_len=timeline_hidden_states.shape[2],
            num_frames=num_frames,
            frames_per_token=self.config.patch_size[0],
            rope_mode=self.config.timeline_rope,
            rescale_length=self.config.tarope_rescale_length,
            temporal_mask=self.config.timeline_temporal_mask,
            label_alpha=self.config.label_alpha,
            label_beta=self.config.label_beta,
            attention_head_dim=self.config.attention_head_dim,
        )
        return self.condition_embedder.text_embedder(timeline_hidden_states), context
