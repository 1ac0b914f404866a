"""Model presets, looked up by name, and the builders that turn them into models.

- ``tiny``: every component built from config with random weights (no download); the
  transformer runs forward + backward on a CPU in a fraction of a second. For tests and
  the CPU demo.
- ``wan2.1-t2v-1.3b``: Wan2.1-T2V-1.3B in the diffusers layout (subfolders
  ``transformer``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``) loaded with
  ``from_pretrained`` from a hub id or a local directory; the ReactID modules are added
  around the loaded transformer so that the model starts as the base model.

Any preset can be pointed at another directory in the same layout with ``pretrained=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.variants import variant_overrides


@dataclass(frozen=True)
class ModelPreset:
    """A named model configuration.

    Attributes:
        name: registry key.
        transformer: ``WanTransformer3DModel`` config used when building from scratch.
        reactid: ReactID-only transformer arguments (before variant overrides).
        pretrained: hub id or directory in the Wan diffusers layout; None builds from config.
        vae: ``AutoencoderKLWan`` config for building from scratch.
        text_encoder: ``UMT5Config`` fields for building from scratch.
        flow_shift: sampling/training shift of the flow-matching schedule.
        fps, height, width, num_frames: default video geometry.
        max_sequence_length: prompt tokens (Wan: 512).
        max_action_tokens: tokens per sub-action description.
    """

    name: str
    transformer: Mapping[str, Any]
    reactid: Mapping[str, Any]
    pretrained: str | None
    vae: Mapping[str, Any] | None = None
    text_encoder: Mapping[str, Any] | None = None
    flow_shift: float = 3.0
    fps: float = 16.0
    height: int = 480
    width: int = 832
    num_frames: int = 81
    max_sequence_length: int = 512
    max_action_tokens: int = 64
    notes: str = field(default="", compare=False)


PRESETS: Mapping[str, ModelPreset] = MappingProxyType(
    {
        "tiny": ModelPreset(
            name="tiny",
            transformer={
                "patch_size": (1, 2, 2),
                "num_attention_heads": 2,
                "attention_head_dim": 24,
                "in_channels": 4,
                "out_channels": 4,
                "text_dim": 32,
                "freq_dim": 64,
                "ffn_dim": 96,
                "num_layers": 2,
                "cross_attn_norm": True,
                "qk_norm": "rms_norm_across_heads",
                "eps": 1e-6,
                "rope_max_seq_len": 64,
            },
            reactid={"num_reference_layers": 2, "mask_predictor_hidden_dim": 16},
            pretrained=None,
            vae={
                "base_dim": 4,
                "z_dim": 4,
                "dim_mult": [1, 2],
                "num_res_blocks": 1,
                "temperal_downsample": [True],
                "latents_mean": [0.0] * 4,
                "latents_std": [1.0] * 4,
                "scale_factor_temporal": 2,
                "scale_factor_spatial": 2,
            },
            text_encoder={
                "d_model": 32,
                "d_kv": 8,
                "d_ff": 64,
                "num_layers": 2,
                "num_heads": 4,
                "relative_attention_num_buckets": 8,
                "relative_attention_max_distance": 16,
            },
            flow_shift=3.0,
            fps=8.0,
            height=32,
            width=32,
            num_frames=9,
            max_sequence_length=32,
            max_action_tokens=16,
            notes="random weights; CPU tests and demo",
        ),
        "wan2.1-t2v-1.3b": ModelPreset(
            name="wan2.1-t2v-1.3b",
            transformer={
                "patch_size": (1, 2, 2),
                "num_attention_heads": 12,
                "attention_head_dim": 128,
                "in_channels": 16,
                "out_channels": 16,
                "text_dim": 4096,
                "freq_dim": 256,
                "ffn_dim": 8960,
                "num_layers": 30,
                "cross_attn_norm": True,
                "qk_norm": "rms_norm_across_heads",
                "eps": 1e-6,
                "rope_max_seq_len": 1024,
            },
            # 8 reference blocks, one per ~4 main blocks; mask head width as the tiny one x 16.
            reactid={"num_reference_layers": 8, "mask_predictor_hidden_dim": 256},
            pretrained="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            flow_shift=3.0,
            fps=16.0,
            height=480,
            width=832,
            num_frames=81,
            max_sequence_length=512,
            max_action_tokens=64,
            notes="paper's base model (Sec. 4.1); 480p, 81 frames at 16 fps",
        ),
    }
)


def get_preset(name: str) -> ModelPreset:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def reactid_arguments(
    preset: ModelPreset, variant: str = "reactid", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """ReactID-only transformer arguments: preset, then variant, then explicit overrides."""
    return {**preset.reactid, **variant_overrides(variant), **(overrides or {})}


def build_transformer(
    preset_name: str,
    variant: str = "reactid",
    *,
    overrides: Mapping[str, Any] | None = None,
    pretrained: str | None = None,
    torch_dtype: Any = None,
    seed: int = 0,
) -> Any:
    """A ``ReactIDTransformer3DModel`` for a preset and variant.

    With a pretrained source the Wan transformer is loaded from its ``transformer``
    subfolder and extended (``ReactIDTransformer3DModel.from_wan``); otherwise the model
    is built from the preset's config with seed ``seed`` and its new modules initialised
    from its own base blocks.
    """
    import torch
    from diffusers import WanTransformer3DModel

    from models.transformer_config import cast_keeping_fp32_modules
    from models.transformer_reactid import ReactIDTransformer3DModel

    preset = get_preset(preset_name)
    extras = reactid_arguments(preset, variant, overrides)
    source = pretrained or preset.pretrained
    if source is not None:
        base = WanTransformer3DModel.from_pretrained(
            source, subfolder="transformer", torch_dtype=torch_dtype
        )
        return ReactIDTransformer3DModel.from_wan(base, **extras)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ReactIDTransformer3DModel(**preset.transformer, **extras)
    model.initialise_from_base()
    if torch_dtype is not None:
        cast_keeping_fp32_modules(model, torch_dtype)
    return model


def build_pipeline(
    preset_name: str,
    variant: str = "reactid",
    *,
    overrides: Mapping[str, Any] | None = None,
    pretrained: str | None = None,
    torch_dtype: Any = None,
    seed: int = 0,
) -> Any:
    """A ``ReactIDPipeline`` (tokenizer, text encoder, VAE, transformer, scheduler)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler

    from models.text_encoder import build_tiny_text_encoder

    preset = get_preset(preset_name)
    transformer = build_transformer(
        preset_name,
        variant,
        overrides=overrides,
        pretrained=pretrained,
        torch_dtype=torch_dtype,
        seed=seed,
    )
    source = pretrained or preset.pretrained
    if source is not None:
        components = load_wan_components(source, torch_dtype=torch_dtype)
    else:
        if preset.vae is None or preset.text_encoder is None:
            raise ValueError(
                f"preset {preset.name!r} has neither a pretrained source nor component configs"
            )
        import torch

        tokenizer, text_encoder = build_tiny_text_encoder(dict(preset.text_encoder), seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            vae = AutoencoderKLWan(**preset.vae)
        components = {
            "tokenizer": tokenizer,
            "text_encoder": text_encoder if torch_dtype is None else text_encoder.to(torch_dtype),
            "vae": vae.eval(),
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=preset.flow_shift),
        }
    return assemble_pipeline(preset_name, transformer, components)


def assemble_pipeline(preset_name: str, transformer: Any, components: Mapping[str, Any]) -> Any:
    """A ``ReactIDPipeline`` from a transformer and the other components, with the preset's
    video geometry (fps, frames, size) and token budgets."""
    from models.pipeline_reactid import ReactIDPipeline

    preset = get_preset(preset_name)
    return ReactIDPipeline(
        transformer=transformer,
        fps=preset.fps,
        max_sequence_length=preset.max_sequence_length,
        max_action_tokens=preset.max_action_tokens,
        height=preset.height,
        width=preset.width,
        num_frames=preset.num_frames,
        **components,
    )


def load_wan_components(source: str, *, torch_dtype: Any = None) -> dict[str, Any]:
    """Tokenizer, text encoder, VAE and scheduler from a Wan diffusers-layout source.

    The VAE stays in float32 (Wan's pipelines decode in float32).
    """
    import diffusers
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    scheduler_config = diffusers.FlowMatchEulerDiscreteScheduler.load_config(
        source, subfolder="scheduler"
    )
    scheduler_class = getattr(diffusers, scheduler_config["_class_name"], None)
    if scheduler_class is None:
        raise ValueError(f"{source}: unknown scheduler class {scheduler_config['_class_name']!r}")
    return {
        "tokenizer": AutoTokenizer.from_pretrained(source, subfolder="tokenizer"),
        "text_encoder": UMT5EncoderModel.from_pretrained(
            source, subfolder="text_encoder", dtype=torch_dtype
        ).eval(),
        "vae": AutoencoderKLWan.from_pretrained(source, subfolder="vae").eval(),
        "scheduler": scheduler_class.from_config(scheduler_config),
    }


def scheduler_flow_shift(scheduler: Any) -> float:
    """The flow shift a scheduler samples with (``shift`` or ``flow_shift`` in its config)."""
    for key in ("shift", "flow_shift"):
        value = scheduler.config.get(key)
        if value is not None:
            return float(value)
    raise ValueError(
        f"{type(scheduler).__name__} config has no flow shift ('shift' or 'flow_shift')"
    )
