"""Configuration helpers of the ReactID transformer: the Wan keys it shares, validation
of its own keys, float32-aware casting and copying base attention weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from diffusers.models.transformers.transformer_wan import WanAttention, WanTransformer3DModel

from models.label_binding import LABEL_BINDING_MODES
from models.rope import TIMELINE_ROPE_MODES

# Config keys of a Wan2.1 T2V transformer that this class accepts unchanged.
WAN_CONFIG_KEYS: tuple[str, ...] = (
    "patch_size",
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "out_channels",
    "text_dim",
    "freq_dim",
    "ffn_dim",
    "num_layers",
    "cross_attn_norm",
    "qk_norm",
    "eps",
    "rope_max_seq_len",
)


def cast_keeping_fp32_modules(model: WanTransformer3DModel, dtype: torch.dtype) -> None:
    """Cast parameters to ``dtype`` except the modules Wan keeps in float32 (as
    ``from_pretrained(torch_dtype=...)`` does)."""
    keep = set(model._keep_in_fp32_modules or ())
    for name, param in model.named_parameters():
        if not keep.intersection(name.split(".")):
            param.data = param.data.to(dtype)


def copy_attention_inputs(target: WanAttention, source: WanAttention) -> None:
    """Copy the query/key/value projections and norms; the output projection is left alone."""
    for name in ("to_q", "to_k", "to_v", "norm_q", "norm_k"):
        getattr(target, name).load_state_dict(getattr(source, name).state_dict())


def validate_reactid_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first ReactID argument that is out of range."""
    num_layers, num_ref = config["num_layers"], config["num_reference_layers"]
    if not 1 <= num_ref <= num_layers:
        raise ValueError(
            f"num_reference_layers must be in [1, num_layers={num_layers}], got {num_ref}"
        )
    if config["timeline_rope"] not in TIMELINE_ROPE_MODES:
        raise ValueError(
            f"timeline_rope must be one of {TIMELINE_ROPE_MODES}, got {config['timeline_rope']!r}"
        )
    if not config["tarope_rescale_length"] > 0:
        raise ValueError(
            f"tarope_rescale_length must be positive, got {config['tarope_rescale_length']}"
        )
    if config["label_binding"] not in LABEL_BINDING_MODES:
        raise ValueError(
            f"label_binding must be one of {LABEL_BINDING_MODES}, got {config['label_binding']!r}"
        )
    if not 0 < config["mask_threshold"] < 1:
        raise ValueError(f"mask_threshold must be in (0, 1), got {config['mask_threshold']}")
    if config["num_mask_blocks"] < 1:
        raise ValueError(f"num_mask_blocks must be at least 1, got {config['num_mask_blocks']}")
    if config["label_bias_scale"] < 0:
        raise ValueError(f"label_bias_scale must be non-negative, got {config['label_bias_scale']}")
