"""Forward + backward of the ReactID transformer with random weights; prints JSON figures.

Builds the preset's architecture from its config (nothing is downloaded), runs a few
training steps of ``reactid_training_loss`` on a synthetic batch and reports parameter
counts, peak memory and the median step time. ``--preset tiny`` runs on a CPU; the
``wan2.1-t2v-1.3b`` preset is meant for a GPU (bfloat16, gradient checkpointing).

    python bench/models_gpu_check.py --preset tiny
    python bench/models_gpu_check.py --preset wan2.1-t2v-1.3b --frames 81 --height 480 --width 832
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_batch(
    preset,
    *,
    latent_frames: int,
    latent_h: int,
    latent_w: int,
    subjects: int,
    actions: int,
    device,
    dtype,
    generator,
) -> dict:
    """A training batch with the shapes ``reactid_training_loss`` documents."""
    import torch

    channels, text_dim = preset.transformer["in_channels"], preset.transformer["text_dim"]
    kw = {"device": device, "generator": generator}
    ends = torch.linspace(0, latent_frames, actions + 1, device=device)
    return {
        "latents": torch.randn(1, channels, latent_frames, latent_h, latent_w, **kw).to(dtype),
        "prompt_embeds": torch.randn(1, preset.max_sequence_length, text_dim, **kw).to(dtype),
        "reference_latents": torch.randn(1, subjects, channels, latent_h, latent_w, **kw).to(dtype),
        "timeline_embeds": torch.randn(1, actions, preset.max_action_tokens, text_dim, **kw).to(
            dtype
        ),
        "action_spans": torch.stack([ends[:-1], ends[1:]], dim=-1).unsqueeze(0),
        "action_subjects": (torch.arange(actions, device=device) % subjects).unsqueeze(0),
        "subject_masks": (
            torch.rand(1, subjects, latent_frames, latent_h, latent_w, **kw) > 0.6
        ).float(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="wan2.1-t2v-1.3b")
    parser.add_argument("--variant", default="reactid")
    parser.add_argument(
        "--frames", type=int, default=None, help="pixel frames (default: the preset's)"
    )
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    parser.add_argument("--no-checkpointing", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from models.losses import reactid_training_loss
    from models.presets import get_preset, reactid_arguments
    from models.transformer_config import cast_keeping_fp32_modules
    from models.transformer_reactid import NEW_MODULE_PREFIXES, ReactIDTransformer3DModel

    preset = get_preset(args.preset)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    temporal = (preset.vae or {}).get("scale_factor_temporal", 4)
    spatial = (preset.vae or {}).get("scale_factor_spatial", 8)
    frames, height, width = (
        args.frames or preset.num_frames,
        args.height or preset.height,
        args.width or preset.width,
    )
    latent_frames, latent_h, latent_w = (
        (frames - 1) // temporal + 1,
        height // spatial,
        width // spatial,
    )

    torch.manual_seed(0)
    with torch.device(device):
        model = ReactIDTransformer3DModel(
            **preset.transformer, **reactid_arguments(preset, args.variant)
        )
    if dtype != torch.float32:
        cast_keeping_fp32_modules(model, dtype)
    if not args.no_checkpointing and device.type == "cuda":
        model.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator(device).manual_seed(0)
    batch = synthetic_batch(
        preset,
        latent_frames=latent_frames,
        latent_h=latent_h,
        latent_w=latent_w,
        subjects=args.subjects,
        actions=args.actions,
        device=device,
        dtype=dtype,
        generator=generator,
    )

    times, losses = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = reactid_training_loss(
            model, batch, flow_shift=preset.flow_shift, generator=generator
        )
        loss.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        losses.append(
            {"flow": loss.flow.item(), "mask": None if loss.mask is None else loss.mask.item()}
        )

    total = sum(p.numel() for p in model.parameters())
    new = sum(p.numel() for n, p in model.named_parameters() if n.startswith(NEW_MODULE_PREFIXES))
    report = {
        "preset": preset.name,
        "variant": args.variant,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "gradient_checkpointing": bool(model.gradient_checkpointing),
        "latent_shape": [latent_frames, latent_h, latent_w],
        "video_tokens": latent_frames * (latent_h // 2) * (latent_w // 2),
        "parameters": total,
        "parameters_added": new,
        "step_seconds_median": statistics.median(times),
        "step_seconds_first": times[0],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30
        if device.type == "cuda"
        else None,
        "losses": losses,
        "note": "random weights; optimizer AdamW (fp32 states on the parameters' dtype)",
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
