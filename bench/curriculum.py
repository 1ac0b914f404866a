"""Benchmark of the curriculum path at the paper's pool size (20M samples): D_sub from a ragged
mask-area column (Eq. 1), D_overall, the quartile thresholds, the schedule, and drawing
10k global batches of 32 from the sampler. Each is timed beside a bare numpy baseline on
the same arrays in the same run (ratio = ours / baseline), and the drawn batches are checked
(eligible only, no repeats inside a step, inter-clip share per phase).

Prints one JSON object. Usage: python bench/curriculum.py [--n 20000000] [--steps 10000]
[--batch 32] [--frames 8] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import best_of  # noqa: E402  (bench/ is on sys.path)

from training.curriculum import build_schedule, eligible_counts, phase_thresholds  # noqa: E402
from training.difficulty import DifficultyWeights, overall_difficulty, subject_size_difficulty_ragged  # noqa: E402
from training.sampler import CurriculumSampler  # noqa: E402

PHASE_RATIOS = [4, 2, 1, 1]
INTER_RATIOS = [0.0, 0.0, 0.11, 0.33]


def _columns(n: int, frames: int, seed: int):
    """Synthetic cues shaped like the demo pool's: small subjects are common, inter-clip
    samples are half the pool and look less like their reference."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 2 * frames, n, dtype=np.int64)  # frames with a mask per sample
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = rng.beta(1.5, 6.0, int(offsets[-1])).astype(np.float32)  # mask area fractions
    d_sam = (rng.random(n) < 0.5).astype(np.int8)
    d_app = np.clip(rng.normal(0.25, 0.1, n) + 0.35 * d_sam, 0.0, 2.0)
    return values, offsets, d_app, d_sam


def _baseline_draws(d: np.ndarray, taus: np.ndarray, bounds: list[int], batch: int, seed: int) -> np.ndarray:
    """The least a sampler must do: per phase, permute the eligible pool and slice a batch per step."""
    rng = np.random.default_rng(seed)
    out = np.empty((bounds[-1], batch), np.int64)
    for k, tau in enumerate(taus):
        pool = np.flatnonzero(d <= tau)
        perm = rng.permutation(len(pool))
        for i, step in enumerate(range(bounds[k], bounds[k + 1])):
            a = (i * batch) % max(1, len(pool) - batch)
            out[step] = pool[perm[a:a + batch]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000_000, help="samples in the pool")
    ap.add_argument("--steps", type=int, default=10_000, help="optimizer steps (batches drawn)")
    ap.add_argument("--batch", type=int, default=32, help="global batch size")
    ap.add_argument("--frames", type=int, default=8, help="mean mask frames per sample (D_sub input)")
    ap.add_argument("--repeat", type=int, default=1, help="best of R timings per item")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    weights = DifficultyWeights(0.5, 1.0, 1.0)
    t0 = time.perf_counter()
    values, offsets, d_app, d_sam = _columns(args.n, args.frames, args.seed)
    build_s = time.perf_counter() - t0
    columns_mib = (values.nbytes + offsets.nbytes + d_app.nbytes + d_sam.nbytes) / 2**20
    items = {}

    def record(name, ours, base):
        items[name] = {"ours_s": round(ours, 4), "numpy_s": round(base, 4), "ratio": round(ours / max(base, 1e-9), 3)}

    # Eq. 1 over a ragged column
    ours, d_sub = best_of(lambda: subject_size_difficulty_ragged(values, offsets), args.repeat)
    base, d_sub_np = best_of(lambda: 1.0 - np.add.reduceat(values, offsets[:-1], dtype=np.float64) / np.diff(offsets),
                           args.repeat)
    assert np.allclose(d_sub, d_sub_np)
    record("d_sub", ours, base)
    del values, d_sub_np
    # D_overall
    ours, d = best_of(lambda: overall_difficulty(d_sub, d_app, d_sam, weights), args.repeat)
    base, d_np = best_of(lambda: 0.5 * d_sub + 1.0 * d_app + 1.0 * d_sam, args.repeat)
    assert np.allclose(d, d_np)
    record("d_overall", ours, base)
    del d_np, d_sub, d_app
    inter = d_sam == 1
    # quartile thresholds
    ours, (levels, taus) = best_of(lambda: phase_thresholds(d, len(PHASE_RATIOS)), args.repeat)
    base, taus_np = best_of(lambda: np.append(np.quantile(d, [0.25, 0.5, 0.75]), d.max()), args.repeat)
    assert np.allclose(taus, taus_np)
    record("quartiles", ours, base)

    # schedule (boundaries, per-phase counts per stream, empty-phase checks)
    def ours_schedule():
        return build_schedule(d, inter, levels, taus, total_steps=args.steps, phase_ratios=PHASE_RATIOS,
                              inter_clip_ratios=INTER_RATIOS, global_batch_size=args.batch, seed=args.seed,
                              difficulty_table="bench", samples_table="bench",
                              weights={"lambda_sub": 0.5, "lambda_app": 1.0, "lambda_sam": 1.0})

    def base_schedule():
        return [(np.count_nonzero((d <= t) & ~inter), np.count_nonzero((d <= t) & inter)) for t in taus]

    ours, schedule = best_of(ours_schedule, args.repeat)
    base, counts_np = best_of(base_schedule, args.repeat)
    assert [(p.eligible_intra, p.eligible_inter) for p in schedule.phases] == counts_np
    record("schedule", ours, base)

    # sampler: construct, then every global batch of the run
    def ours_draw():
        sampler = CurriculumSampler(schedule, d, inter)
        return np.stack([sampler.global_batch(step) for step in range(args.steps)])

    bounds = [p.start_step for p in schedule.phases] + [schedule.total_steps]
    ours, drawn = best_of(ours_draw, args.repeat)
    base, _ = best_of(lambda: _baseline_draws(d, taus, bounds, args.batch, args.seed), args.repeat)
    record(f"sampler_{args.steps}_batches_of_{args.batch}", ours, base)

    # checks on what the sampler drew
    tau_of_step = np.repeat(taus, np.diff(bounds))
    eligible_only = bool(np.all(d[drawn] <= tau_of_step[:, None]))
    srt = np.sort(drawn, axis=1)
    no_repeats_in_step = bool(np.all(srt[:, 1:] != srt[:, :-1]))
    share = [round(float(inter[drawn[a:b]].mean()), 4) for a, b in zip(bounds[:-1], bounds[1:])]
    _, counts_check = eligible_counts(d, inter, taus)
    print(json.dumps({
        "n_samples": args.n,
        "mask_frames": int(offsets[-1]),
        "steps": args.steps,
        "global_batch": args.batch,
        "build_columns_s": round(build_s, 2),
        "columns_mib": round(columns_mib, 1),
        "items": items,
        "taus": [round(float(t), 4) for t in taus],
        "phase_end_steps": bounds[1:],
        "eligible_per_phase": [p.eligible_intra + p.eligible_inter for p in schedule.phases],
        "inter_share_drawn": share,
        "inter_share_asked": INTER_RATIOS,
        "eligible_only": eligible_only,
        "no_repeats_in_step": no_repeats_in_step,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": __import__("os").cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
