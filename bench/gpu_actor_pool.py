"""A pretrained backend on a GPU through the execution engine's actor pools; prints JSON.

The stages' model-backed work runs as `core.execution.run_items` with an `ItemWork` whose
`setup` loads the model once per worker. This bench drives that same code with the
pretrained frame embedder the scene-similarity and duplicate-signature backends use
(`curation.features.Dinov2Embedder`, DINOv2 through transformers), at DINOv2-base size with
random weights saved and reloaded through `from_pretrained` (nothing is downloaded). In one
run, on the same items:

- `local`: one process, one model on the GPU (the embedded default engine);
- `ray`: a local Ray, `--actors` model actors each asking for `--gpu-share` of the GPU.

Each item is a clip's worth of frames (`--frames` RGB frames at 224 px). Reported per engine:
wall seconds, frames per second, and the GPU's utilisation sampled every 0.1 s through NVML
while the items run (mean and the share of samples above 50 %); and the ratio ray / local.

    python bench/gpu_actor_pool.py --items 96 --frames 48 --actors 4 --gpu-share 0.25
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import PeriodicSampler  # noqa: E402


def save_random_dinov2(folder: Path, size: str) -> Path:
    """A DINOv2 of the given size with random weights and its image processor, saved as a
    pretrained checkpoint folder."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    dims = {"base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
            "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536)}
    config = Dinov2Config(image_size=224, patch_size=14, **dims[size])
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def load_embedder(model_path: str, batch_size: int, env):
    """ItemWork setup: the pretrained embedder on this worker's device (its GPU share)."""
    from core.execution import model_device
    from curation.features import Dinov2Embedder

    return Dinov2Embedder(model_path, batch_size=batch_size, device=model_device(env.params))


def embed_item(env, embedder, item: tuple[int, int]) -> dict:
    """One clip's frames (random pixels from the item's seed) through the embedder."""
    import numpy as np

    seed, frames = item
    pixels = np.random.default_rng(seed).integers(0, 256, (frames, 224, 224, 3), dtype=np.uint8)
    features = embedder.embed(pixels)
    return {"seed": seed, "frames": frames, "dim": int(features.shape[1]), "device": embedder.device}


class GpuSampler(PeriodicSampler):
    """NVML utilisation of GPU 0, sampled every 0.1 s while a `with` block runs."""

    def __init__(self, interval: float = 0.1) -> None:
        import pynvml

        super().__init__(interval)
        pynvml.nvmlInit()
        self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.samples: list[int] = []

    def sample(self) -> None:
        self.samples.append(int(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu))

    def summary(self) -> dict:
        n = max(1, len(self.samples))
        return {"gpu_util_mean_pct": round(sum(self.samples) / n, 1),
                "gpu_util_above_50pct_share": round(sum(s > 50 for s in self.samples) / n, 3),
                "samples": len(self.samples)}


def run_engine(engine: str, args: argparse.Namespace, model_path: Path, store_root: Path) -> dict:
    import yaml

    from core.execution import ItemWork, run_items
    from orchestration.params import parse_params
    from core.stage import StageContext
    from core.storage import LocalObjectStore

    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["execution"] = {**raw.get("execution", {}), "engine": engine,
                        "workers": args.actors if engine == "ray" else 1, "batch_size": 1, "max_in_flight": 2,
                        "cpus_per_worker": args.cpus_per_actor, "gpus_per_actor": args.gpu_share}
    params = parse_params(raw)
    ctx = StageContext("gpu_actor_pool", engine, params, LocalObjectStore(store_root / engine))
    work = ItemWork(embed_item, setup=functools.partial(load_embedder, str(model_path), args.batch), uses_gpu=True)
    items = [(seed, args.frames) for seed in range(args.items)]
    run_items(ctx, work, items[: max(1, args.actors)])  # warm-up: models loaded, kernels chosen
    with GpuSampler() as sampler:
        start = time.perf_counter()
        run = run_items(ctx, work, items)
        wall = time.perf_counter() - start
    devices = sorted({r["device"] for r in run.results})
    frames = args.items * args.frames
    return {"engine": engine, "workers": params.execution.workers, "gpu_share_per_actor": args.gpu_share,
            "devices": devices, "wall_s": round(wall, 3), "frames_per_s": round(frames / wall, 1),
            **sampler.summary()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--frames", type=int, default=48, help="frames per item (one clip's sample)")
    parser.add_argument("--batch", type=int, default=48, help="frames per forward pass")
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--gpu-share", type=float, default=0.25)
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="a local Ray has one CPU per actor")
    parser.add_argument("--size", choices=("base", "small"), default="base")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        parser.error("needs a CUDA device")
    with tempfile.TemporaryDirectory() as tmp:
        model = save_random_dinov2(Path(tmp) / "dinov2", args.size)
        local = run_engine("local", args, model, Path(tmp) / "store")
        ray = run_engine("ray", args, model, Path(tmp) / "store")
    report = {
        "benchmark": "gpu_actor_pool",
        "backend": f"pretrained:dinov2-{args.size} (random weights, from_pretrained) via curation.features.Dinov2Embedder",
        "device": torch.cuda.get_device_name(),
        "items": args.items, "frames_per_item": args.frames,
        "local": local, "ray": ray,
        "ray_over_local_frames_per_s": round(ray["frames_per_s"] / local["frames_per_s"], 3),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
