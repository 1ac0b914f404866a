"""Benchmark of the DeepSpeed training step beside a plain PyTorch loop, on a preset's
architecture with random weights: the tiny preset on a CPU by default (seconds), or the
real-size ``wan2.1-t2v-1.3b`` on a GPU.

In one run, on the same initial weights and the same micro-batches:
- samples per second and peak memory of the DeepSpeed engine (``training.trainer.train_steps``)
  and of a plain PyTorch loop (AdamW, gradient accumulation, clipping, the same loss and
  draws; under bf16, fp32 weights with ``torch.autocast``), and their ratios (DeepSpeed /
  plain). Each loop runs in its own fresh process, so that each peak is its own: on CUDA
  ``torch.cuda.max_memory_allocated``, on a CPU the peak resident set size (``VmHWM``, reset
  before the model is built) above the process's size before it. On a CPU the two processes
  run side by side (one core each), so that machine load hits both alike; on a GPU one
  after the other. In fp32 the first step's losses must agree, which shows both computed
  the same thing;
- the curriculum sampler's share of a step (``training.sampler.CurriculumSampler`` over a
  synthetic pool of difficulty scores; time of ``global_batch(t)`` / step time);
- data-loader throughput beside step consumption (presets whose encoders are built from
  config): samples per second the batch sources deliver (synthetic, and the embedding cache
  read back from a local object store) over samples per second the engine trains.

Prints one JSON object. Usage::

    python bench/training.py [--steps 10] [--threads 1] [--pool 20000]
    python bench/training.py --preset wan2.1-t2v-1.3b --latent-shape 16,21,60,104   # a GPU

A preset above ``CPU_PARAMETER_LIMIT`` parameters is refused on a CPU (it is counted on
PyTorch's meta device, nothing is allocated).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOOPS = ("deepspeed", "plain_pytorch")
CPU_PARAMETER_LIMIT = 50_000_000
# Wan2.1's VAE (the real-size preset loads it pretrained, so its config is not in the preset)
WAN_VAE_FACTORS = (4, 8)


# ---------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help="models.presets name (random weights, built from config)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="default: bf16 on CUDA, fp32 on a CPU")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each loop (after 2 warm-up steps)")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--latent-shape", default=None, metavar="C,F,H,W",
                        help="latents of one sample (default: the preset's clip)")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="default: on for CUDA, off on a CPU")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads per loop (tiny tensors run fastest on one)")
    parser.add_argument("--pool", type=int, default=20000, help="samples in the sampler's pool")
    # A loop's own process: which loop, and where its JSON result goes.
    parser.add_argument("--loop", choices=LOOPS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def parameter_count(preset_name: str) -> int:
    """Parameters of the preset's ReactID transformer, built on the meta device (no memory)."""
    import torch

    from models.presets import get_preset, reactid_arguments
    from models.transformer_reactid import ReactIDTransformer3DModel

    preset = get_preset(preset_name)
    with torch.device("meta"):
        model = ReactIDTransformer3DModel(**preset.transformer, **reactid_arguments(preset))
    return sum(p.numel() for p in model.parameters())


def latent_shape(preset_name: str, text: str | None) -> tuple[int, int, int, int]:
    """``(C, F, H, W)`` from ``--latent-shape``, or of the preset's default clip."""
    from models.presets import get_preset

    if text is not None:
        dims = tuple(int(v) for v in text.split(",")) if re.fullmatch(r"\d+(,\d+){3}", text) else ()
        if len(dims) != 4 or min(dims) < 1:
            raise ValueError(f"--latent-shape: expected four positive integers C,F,H,W, got {text!r}")
        return dims  # type: ignore[return-value]
    preset = get_preset(preset_name)
    temporal, spatial = ((preset.vae["scale_factor_temporal"], preset.vae["scale_factor_spatial"])
                         if preset.vae else WAN_VAE_FACTORS)
    return (preset.transformer["in_channels"], (preset.num_frames - 1) // temporal + 1,
            preset.height // spatial, preset.width // spatial)


def resolve_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the arguments; fill in the device-dependent defaults."""
    args = parser.parse_args(argv)
    from models.presets import PRESETS

    if args.preset not in PRESETS:
        parser.error(f"--preset: unknown preset {args.preset!r}; known: {sorted(PRESETS)}")
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be positive")
    if args.global_batch < 1 or args.micro_batch < 1 or args.global_batch % args.micro_batch:
        parser.error(f"--global-batch ({args.global_batch}) must be a positive multiple of --micro-batch "
                     f"({args.micro_batch})")
    try:
        args.latent_shape = latent_shape(args.preset, args.latent_shape)
    except ValueError as exc:
        parser.error(str(exc))
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    if args.gradient_checkpointing is None:
        args.gradient_checkpointing = args.device == "cuda"
    if args.loop is None:
        args.parameters = parameter_count(args.preset)
        if args.device == "cpu" and args.parameters > CPU_PARAMETER_LIMIT:
            parser.error(f"preset {args.preset!r} has {args.parameters:,} parameters; training it needs about "
                         f"{16 * args.parameters / 2**30:.0f} GiB per loop and hours per step on a CPU: "
                         "run it on a GPU (--device cuda)")
    return args


# ---------------------------------------------------------------- one loop, in its own process


class MemoryMeter:
    """Bytes in use and their peak since ``reset``: the CUDA caching allocator's allocations
    on a GPU; the process's resident set size on a CPU (Linux ``/proc``)."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"
        self.kind = "cuda_max_memory_allocated" if self.cuda else "peak_rss"
        self.baseline = 0

    @staticmethod
    def _status_kib(field: str) -> int:
        found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        if found is None:
            raise RuntimeError(f"/proc/self/status has no {field} (RSS figures need Linux)")
        return int(found.group(1))

    def current(self) -> int:
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated()
        return self._status_kib("VmRSS") * 1024

    def reset(self) -> None:
        """Start counting the peak from now; the size now is the baseline."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.baseline = self.current()

    def peak_above_baseline(self) -> int:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated() - self.baseline
        return self._status_kib("VmHWM") * 1024 - self.baseline


def _training_params(args: argparse.Namespace):
    import yaml

    from orchestration.params import parse_params

    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["training"].update(preset=args.preset, use_demo=False, global_batch=args.global_batch,
                           micro_batch=args.micro_batch, precision=args.precision, zero_stage=0, lr=1e-4,
                           warmup_steps=1, cfg_dropout=0.1, grad_clip=1.0)
    return parse_params(raw).training


def build_model(preset_name: str, device: str, checkpointing: bool, seed: int = 0):
    """The preset's ReactID transformer from config, random weights (the same in every process)."""
    import torch

    from models.presets import get_preset, reactid_arguments
    from models.transformer_reactid import ReactIDTransformer3DModel

    preset = get_preset(preset_name)
    torch.manual_seed(seed)
    with torch.device(device):
        model = ReactIDTransformer3DModel(**preset.transformer, **reactid_arguments(preset))
    model.initialise_from_base()
    if checkpointing:
        model.enable_gradient_checkpointing()
    return model


def _plain_step(model, optimizer, batches, step: int, options, accumulation: int, device: str,
                precision: str) -> float:
    """One optimizer step of the plain loop: same loss, draws and accumulation as the trainer."""
    import contextlib

    import torch

    from models.losses import reactid_training_loss
    from training.trainer import apply_cfg_dropout, derived_seed

    autocast = (torch.autocast(device_type=device, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    total = 0.0
    for micro in range(accumulation):
        batch = next(batches)
        generator = torch.Generator().manual_seed(derived_seed(options.seed, 1, step, 0, micro))
        batch, _ = apply_cfg_dropout(batch, options.cfg_dropout, generator, options.null_prompt_embeds)
        batch = {key: value.to(device) for key, value in batch.items()}
        noise = torch.Generator(device=device).manual_seed(derived_seed(options.seed, 2, step, 0, micro))
        with autocast:
            loss = reactid_training_loss(model, batch, flow_shift=options.flow_shift,
                                         mask_loss_weight=options.mask_loss_weight, generator=noise).loss
        (loss / accumulation).backward()
        total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / accumulation


def run_loop(args: argparse.Namespace) -> dict:
    """Warm-up and timed steps of one loop (``args.loop``) in this process."""
    import torch

    from models.presets import get_preset
    from training.batches import SyntheticBatchSource
    from training.deepspeed_config import deepspeed_config
    from training.trainer import LossOptions, build_engine, train_steps

    import deepspeed  # noqa: F401 - imported before the baseline, like every other library
    import models.losses  # noqa: F401
    import models.transformer_reactid  # noqa: F401

    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    training = _training_params(args)
    text_dim = preset.transformer["text_dim"]
    source = SyntheticBatchSource(args.latent_shape, text_dim, prompt_tokens=preset.max_sequence_length,
                                  action_tokens=preset.max_action_tokens, seed=0)
    options = LossOptions(flow_shift=preset.flow_shift, cfg_dropout=0.1,
                          null_prompt_embeds=torch.zeros(preset.max_sequence_length, text_dim), seed=0)

    def micro_batches():
        index = 0
        while True:
            yield source([f"s{index + i}" for i in range(args.micro_batch)])
            index += args.micro_batch

    batches = micro_batches()
    meter = MemoryMeter(args.device)
    meter.reset()
    model = build_model(args.preset, args.device, args.gradient_checkpointing)
    if args.loop == "deepspeed":
        engine = build_engine(model, deepspeed_config(training, 1))

        def step(index: int) -> float:
            return train_steps(engine, batches, 1, options=options)[0].loss
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)

        def step(index: int) -> float:
            return _plain_step(model, optimizer, batches, index, options,
                               args.global_batch // args.micro_batch, args.device, args.precision)

    times, losses = [], []
    for index in range(1, args.steps + 3):  # two warm-up steps, not timed
        if args.device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        losses.append(step(index))
        if args.device == "cuda":
            torch.cuda.synchronize()
        if index > 2:
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "step_s": round(median, 4),
        "samples_per_s": round(args.global_batch / median, 3),
        "peak_memory_bytes": meter.peak_above_baseline(),
        "held_memory_bytes": meter.current() - meter.baseline,
        "first_step_loss": losses[0],
    }


# ---------------------------------------------------------------- the comparison


def bench_engine_vs_plain(args: argparse.Namespace, argv: list[str]) -> dict:
    """Both loops, each in its own process; their figures side by side and as ratios."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        def start(loop: str) -> subprocess.Popen:
            command = [sys.executable, str(Path(__file__).resolve()), *argv, "--loop", loop,
                       "--result", str(Path(tmp) / f"{loop}.json")]
            return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def finish(loop: str, process: subprocess.Popen) -> None:
            output, _ = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"the {loop} loop failed ({process.returncode}):\n{output[-4000:]}")
            results[loop] = json.loads((Path(tmp) / f"{loop}.json").read_text())

        side_by_side = args.device == "cpu" and (os.cpu_count() or 1) >= 2 * args.threads
        if side_by_side:
            running = {loop: start(loop) for loop in LOOPS}
            for loop, process in running.items():
                finish(loop, process)
        else:
            for loop in LOOPS:
                finish(loop, start(loop))
    ds, plain = results["deepspeed"], results["plain_pytorch"]
    tolerance = 1e-6 if args.precision == "fp32" else 5e-2
    difference = abs(ds["first_step_loss"] - plain["first_step_loss"]) / abs(plain["first_step_loss"])
    return {
        "deepspeed": ds,
        "plain_pytorch": plain,
        "samples_per_s_ratio": round(ds["samples_per_s"] / plain["samples_per_s"], 3),
        "peak_memory_ratio": round(ds["peak_memory_bytes"] / plain["peak_memory_bytes"], 3),
        "memory": MemoryMeter(args.device).kind,
        "loops": "side by side, one process each" if side_by_side else "one after the other, one process each",
        "deepspeed_step_s": ds["step_s"],
        "plain_pytorch_step_s": plain["step_s"],
        "first_step_loss_relative_difference": difference,
        "first_step_losses_agree": difference <= tolerance,
        "samples_per_step": args.global_batch,
        "consumption_samples_per_s": ds["samples_per_s"],
        "latent_shape": list(args.latent_shape),
    }


def bench_sampler(pool: int, steps: int, step_seconds: float, global_batch: int) -> dict:
    import numpy as np

    from training.curriculum import build_schedule, phase_thresholds
    from training.sampler import CurriculumSampler

    rng = np.random.default_rng(0)
    inter = rng.random(pool) < 0.5
    d = np.clip(rng.normal(0.6, 0.25, pool) + 0.8 * inter, 0.0, None)
    levels, taus = phase_thresholds(d, 4)
    total = max(steps, 8)
    schedule = build_schedule(d, inter, levels, taus, total_steps=total,
                              phase_ratios=[4, 2, 1, 1], inter_clip_ratios=[0.0, 0.0, 0.11, 0.33],
                              global_batch_size=global_batch, seed=0, difficulty_table="bench",
                              samples_table="bench",
                              weights={"lambda_sub": 0.5, "lambda_app": 1.0, "lambda_sam": 1.0})
    sampler = CurriculumSampler(schedule, d, inter)
    ids = np.array([f"sample-{i}" for i in range(pool)], dtype=object)
    times = []
    for step in range(total):
        start = time.perf_counter()
        [str(x) for x in ids[sampler.global_batch(step)]]
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "sampler": "training.sampler.CurriculumSampler",
        "pool": pool,
        "sampler_s_per_step": round(median, 6),
        "share_of_step": round(median / step_seconds, 6),
    }


def bench_loaders(preset_name: str, consumption: float, micro_batch: int) -> dict:
    import numpy as np

    from core.storage import LocalObjectStore
    from core.timeline import SubAction, Timeline
    from core.video import write_video
    from models.presets import get_preset
    from training.batches import CachedBatchSource, SyntheticBatchSource
    from training.latents import EmbeddingCache, SampleInputs, load_cache_encoders

    preset = get_preset(preset_name)
    if preset.pretrained is not None:
        return {"skipped": f"preset {preset_name!r} loads its cache encoders pretrained ({preset.pretrained})"}

    def throughput(source, ids, repeats: int = 20) -> float:
        source(ids[:micro_batch])  # warm-up
        start = time.perf_counter()
        for r in range(repeats):
            source([ids[(r * micro_batch + i) % len(ids)] for i in range(micro_batch)])
        return repeats * micro_batch / (time.perf_counter() - start)

    synthetic = throughput(SyntheticBatchSource.for_preset(preset_name), [f"s{i}" for i in range(64)])
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(Path(tmp) / "store")
        cache = EmbeddingCache(store, load_cache_encoders(preset_name, seed=0))
        rng = np.random.default_rng(0)
        timeline = Timeline("a person moves", (SubAction(0.0, 0.6, "walks", "person"),
                                               SubAction(0.6, 1.2, "turns", "person")),
                            duration=1.2)
        samples = []
        frames = max(10, preset.num_frames + 1)
        for i in range(4):
            pixels = rng.integers(0, 255, (frames, preset.height, preset.width, 3), dtype=np.uint8)
            clip = write_video(Path(tmp) / f"clip{i}.mp4", pixels, fps=8, preset="ultrafast")
            samples.append(SampleInputs(f"clip{i}", clip, f"a person moves, take {i}", timeline))
        start = time.perf_counter()
        index = cache.build_index(samples)
        encode_s = time.perf_counter() - start
        cached = throughput(CachedBatchSource(store, index.samples), sorted(index.samples))
    return {
        "synthetic_samples_per_s": round(synthetic, 1),
        "cache_samples_per_s": round(cached, 1),
        "cache_encode_s_per_sample": round(encode_s / len(samples), 4),
        "consumption_samples_per_s": round(consumption, 2),
        "cache_headroom": round(cached / consumption, 1),
    }


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = resolve_args(build_parser(), argv)
    if args.loop is not None:
        args.result.write_text(json.dumps(run_loop(args)))
        return
    import contextlib

    # stdout carries the JSON alone: DeepSpeed's logger prints its notices there.
    with contextlib.redirect_stdout(sys.stderr):
        import deepspeed
        import torch

        torch.set_num_threads(args.threads)
        engine = bench_engine_vs_plain(args, argv)
        sampler = bench_sampler(args.pool, args.steps, engine["deepspeed_step_s"], args.global_batch)
        loaders = bench_loaders(args.preset, engine["consumption_samples_per_s"], args.micro_batch)
    print(json.dumps({
        "benchmark": "training",
        "model": f"{args.preset} preset, random weights",
        "parameters": args.parameters,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "precision": args.precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deepspeed": deepspeed.__version__,
        "engine_vs_plain": engine,
        "sampler": sampler,
        "loaders": loaders,
    }, indent=1))


if __name__ == "__main__":
    main()
