"""Benchmark of the DeepSpeed training step on the tiny ReactID model (CPU).

In one run, on the same model weights and the same micro-batches:
- step time of the DeepSpeed engine (``training.trainer.train_steps``) beside a plain
  PyTorch loop (AdamW, gradient accumulation, clipping, the same loss and draws);
  steps alternate between the two so that machine load hits both alike (ratio = DeepSpeed
  / plain; the first step's losses must agree, which shows both computed the same thing);
- the curriculum sampler's share of a step (``training.sampler.CurriculumSampler`` over a
  synthetic pool of difficulty scores; time of ``global_batch(t)`` / step time);
- data-loader throughput beside step consumption: samples per second the batch sources
  deliver (synthetic, and the embedding cache read back from a local object store) over
  samples per second the engine trains.

Prints one JSON object. Usage: python bench/training.py [--steps 10] [--threads 1]
[--pool 20000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GLOBAL_BATCH, MICRO_BATCH = 4, 2  # two micro-batches per step on one rank


def _training_params():
    import yaml

    from core.params import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["training"].update(use_demo=False, global_batch=GLOBAL_BATCH, micro_batch=MICRO_BATCH,
                           precision="fp32", zero_stage=0, lr=1e-4, warmup_steps=1,
                           cfg_dropout=0.1, grad_clip=1.0)
    return parse_params(raw).training


def _plain_step(model, optimizer, batches, step: int, options) -> float:
    """One optimizer step of the plain loop: same loss, draws and accumulation as the trainer."""
    import torch

    from models.losses import reactid_training_loss
    from training.trainer import apply_cfg_dropout, derived_seed

    total = 0.0
    accumulation = GLOBAL_BATCH // MICRO_BATCH
    for micro in range(accumulation):
        batch = next(batches)
        generator = torch.Generator().manual_seed(derived_seed(options.seed, 1, step, 0, micro))
        batch, _ = apply_cfg_dropout(batch, options.cfg_dropout, generator,
                                     options.null_prompt_embeds)
        noise = torch.Generator().manual_seed(derived_seed(options.seed, 2, step, 0, micro))
        loss = reactid_training_loss(model, batch, flow_shift=options.flow_shift,
                                     mask_loss_weight=options.mask_loss_weight,
                                     generator=noise).loss
        (loss / accumulation).backward()
        total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / accumulation


def bench_engine_vs_plain(steps: int) -> dict:
    import torch

    from models.presets import build_transformer, get_preset
    from training.batches import SyntheticBatchSource
    from training.deepspeed_config import deepspeed_config
    from training.trainer import LossOptions, build_engine, train_steps

    training = _training_params()
    source = SyntheticBatchSource.for_preset("tiny", seed=0)
    options = LossOptions(flow_shift=get_preset("tiny").flow_shift, cfg_dropout=0.1,
                          null_prompt_embeds=torch.zeros(source.prompt_tokens, source.text_dim),
                          seed=0)

    def micro_batches():
        index = 0
        while True:
            yield source([f"s{index + i}" for i in range(MICRO_BATCH)])
            index += MICRO_BATCH

    engine = build_engine(build_transformer("tiny", seed=0), deepspeed_config(training, 1))
    plain = build_transformer("tiny", seed=0).train()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=training.lr,
                                  weight_decay=training.weight_decay)
    ds_batches, plain_batches = micro_batches(), micro_batches()
    ds_times, plain_times, first = [], [], None
    for step in range(1, steps + 3):  # two warm-up steps each, not timed
        start = time.perf_counter()
        record = train_steps(engine, ds_batches, 1, options=options)[0]
        ds_s = time.perf_counter() - start
        start = time.perf_counter()
        plain_loss = _plain_step(plain, optimizer, plain_batches, step, options)
        plain_s = time.perf_counter() - start
        if step == 1:
            first = (record.loss, plain_loss)
        elif step > 2:
            ds_times.append(ds_s)
            plain_times.append(plain_s)
    ds_median, plain_median = statistics.median(ds_times), statistics.median(plain_times)
    return {
        "deepspeed_step_s": round(ds_median, 4),
        "plain_pytorch_step_s": round(plain_median, 4),
        "ratio": round(ds_median / plain_median, 3),
        "first_step_loss_deepspeed": first[0],
        "first_step_loss_plain": first[1],
        "first_step_losses_equal": abs(first[0] - first[1]) <= 1e-6 * abs(first[1]),
        "samples_per_step": GLOBAL_BATCH,
        "consumption_samples_per_s": round(GLOBAL_BATCH / ds_median, 2),
        "latent_shape": list(source.latent_shape),
    }


def bench_sampler(pool: int, steps: int, step_seconds: float) -> dict:
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
                              global_batch_size=GLOBAL_BATCH, seed=0, difficulty_table="bench",
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


def bench_loaders(consumption: float) -> dict:
    import numpy as np

    from core.storage import LocalObjectStore
    from core.timeline import SubAction, Timeline
    from core.video import write_video
    from training.batches import CachedBatchSource, SyntheticBatchSource
    from training.latents import EmbeddingCache, SampleInputs, load_cache_encoders

    def throughput(source, ids, repeats: int = 20) -> float:
        source(ids[:MICRO_BATCH])  # warm-up
        start = time.perf_counter()
        for r in range(repeats):
            chunk = [ids[(r * MICRO_BATCH + i) % len(ids)] for i in range(MICRO_BATCH)]
            source(chunk)
        return repeats * MICRO_BATCH / (time.perf_counter() - start)

    synthetic = throughput(SyntheticBatchSource.for_preset("tiny"), [f"s{i}" for i in range(64)])
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(Path(tmp) / "store")
        cache = EmbeddingCache(store, load_cache_encoders("tiny", seed=0))
        rng = np.random.default_rng(0)
        timeline = Timeline("a person moves", (SubAction(0.0, 0.6, "walks", "person"),
                                               SubAction(0.6, 1.2, "turns", "person")),
                            duration=1.2)
        samples = []
        for i in range(4):
            frames = rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
            clip = write_video(Path(tmp) / f"clip{i}.mp4", frames, fps=8, preset="ultrafast")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each loop")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (tiny tensors run fastest on one)")
    parser.add_argument("--pool", type=int, default=20000, help="samples in the sampler's pool")
    args = parser.parse_args()
    import deepspeed
    import torch

    torch.set_num_threads(args.threads)
    engine = bench_engine_vs_plain(args.steps)
    sampler = bench_sampler(args.pool, args.steps, engine["deepspeed_step_s"])
    loaders = bench_loaders(engine["consumption_samples_per_s"])
    print(json.dumps({
        "benchmark": "training",
        "model": "tiny preset, random weights",
        "device": "cpu",
        "threads": torch.get_num_threads(),
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
