"""Benchmark of the shot-detection backends on the real-cuts shard (real footage joined by
cuts, dissolves and fades at known frames): precision / recall / F1 per backend, hard
cuts and gradual transitions found, and each backend's frames per CPU-second (one torch
thread, as scene_clips runs it) with its CPU time as a ratio to PySceneDetect's measured in
the same run. TransNetV2 runs twice, in float32 (the network's own forward) and in
bfloat16 (`curation.shot_transnetv2.FoldedConvolutions`), and the run reports how many
videos get the same boundaries from both and its largest probability difference.

The shard is built from params (`demo_pool.real_cuts`) with `--seed` (params' seed for
demo-real-cuts by default; another seed gives held-out footage). Each video is decoded
once at `scene_clips.analysis_width`; every backend reads the same frames.

TransNetV2 in bfloat16 also runs with other windows, the last one trimmed to the video's end
(`--windows`; `scene_clips.transnetv2_window_frames`, `transnetv2_trim_last_window`): how many
videos get the boundaries of the reference's full 100-frame windows, and the CPU ratio.

Prints one JSON object. Usage: python bench/shots.py [--seed N] [--videos N] [--windows 100 150 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.accuracy import match_boundaries  # noqa: E402
from curation.features import build_frame_embedder  # noqa: E402
from curation.scenes import precision_recall_f1  # noqa: E402
from curation.shot_detectors import SHOT_DETECTORS, make_detectors  # noqa: E402
from curation.shot_transnetv2 import PRECISIONS, load_transnetv2, native_bfloat16, one_torch_thread  # noqa: E402
from curation.synth.real_cuts import build_real_cuts_shard  # noqa: E402
from curation.video_io import iter_frames  # noqa: E402
from orchestration.params import load_params  # noqa: E402


def main() -> None:
    params = load_params(ROOT / "params.yaml")
    shard_seed = next((s.seed for s in params.demo_pool.shards.values() if s.kind == "real_cuts"), 0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=shard_seed)
    ap.add_argument("--videos", type=int, default=params.demo_pool.real_cuts.n_videos)
    ap.add_argument("--windows", type=int, nargs="*", default=[100, 150, 200],
                    help="TransNetV2 window lengths to compare with the reference's (bfloat16, last window trimmed)")
    args = ap.parse_args()
    cfg = params.scene_clips
    rc = params.demo_pool.real_cuts
    model, embedder = load_transnetv2(), build_frame_embedder(cfg.similarity_backend, cfg.pretrained_model)
    # (name, backend, scene_clips overrides): every backend, TransNetV2 in both precisions
    variants = [(b, b, {}) for b in SHOT_DETECTORS if b != "transnetv2"]
    reference = {"transnetv2_window_frames": 100, "transnetv2_trim_last_window": False}
    variants += [(f"transnetv2-{p}", "transnetv2", {"transnetv2_precision": p, **reference}) for p in PRECISIONS]
    # longer windows (fewer frames through the network twice: each window keeps all but 25 either
    # side) whose last one is trimmed to the video's end
    variants += [(f"transnetv2-bfloat16-window{w}-trimmed", "transnetv2",
                  {"transnetv2_precision": "bfloat16", "transnetv2_window_frames": w, "transnetv2_trim_last_window": True})
                 for w in args.windows]
    totals = {v[0]: dict.fromkeys(("tp", "fp", "fn", "tp_cut", "n_cut", "tp_gradual", "n_gradual"), 0) for v in variants}
    seconds = {v[0]: 0.0 for v in variants}
    frames_total, same_boundaries, max_probability_diff = 0, 0, 0.0
    window_same = {v[0]: 0 for v in variants if v[0].startswith("transnetv2-bfloat16-window")}
    window_diff = dict.fromkeys(window_same, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        truth = build_real_cuts_shard(Path(tmp), "bench", seed=args.seed, n_videos=args.videos,
                                      shots_per_video=rc.shots_per_video, same_place_rate=rc.same_place_rate)
        for video in truth["videos"]:
            frames = [f for _, f in iter_frames(Path(tmp) / video["file"], width=cfg.analysis_width)]
            frames_total += len(frames)
            found, probabilities = {}, {}
            for name, backend, update in variants:
                det = make_detectors(cfg.model_copy(update={**update, "shot_backend": backend, "compare_backends": False}),
                                     video["fps"], embedder, model)[backend]
                with one_torch_thread():
                    t0 = time.process_time()
                    for frame in frames:
                        det.push(frame)
                    shots = det.finish()
                    seconds[name] += time.process_time() - t0
                found[name] = (shots.cuts, shots.transitions)
                if backend == "transnetv2":
                    probabilities[name] = np.concatenate(det.probabilities())
                m = match_boundaries(shots.cuts, [(t.start_frame, t.end_frame) for t in shots.transitions],
                                     video["cuts"], [(t["start_frame"], t["end_frame"]) for t in video["transitions"]],
                                     tolerance=2)
                for k, v in m.items():
                    totals[name][k] += v
            same_boundaries += found["transnetv2-float32"] == found["transnetv2-bfloat16"]
            for name in found:
                if name.startswith("transnetv2-bfloat16-window"):
                    window_same[name] += found[name] == found["transnetv2-bfloat16"]
                    window_diff[name] = max(window_diff[name], float(np.abs(
                        probabilities[name] - probabilities["transnetv2-bfloat16"]).max()))
            max_probability_diff = max(max_probability_diff, float(np.abs(
                probabilities["transnetv2-float32"] - probabilities["transnetv2-bfloat16"]).max()))
    out = {
        "bench": "shots", "footage": "real (registry wheels), boundaries at known frames", "seed": args.seed,
        "videos": args.videos, "frames": frames_total, "analysis_width": cfg.analysis_width,
        "python": platform.python_version(), "selected_backend": cfg.shot_backend,
        "selected_transnetv2_precision": cfg.transnetv2_precision,
        "bfloat16_native": native_bfloat16("cpu"),
        "transnetv2_bfloat16_vs_float32": {"videos_same_boundaries": f"{same_boundaries}/{len(truth['videos'])}",
                                           "max_probability_difference": round(max_probability_diff, 5),
                                           "cpu_time_ratio": round(seconds["transnetv2-bfloat16"]
                                                                   / seconds["transnetv2-float32"], 3)},
        "transnetv2_windows_vs_100": {name: {"videos_same_boundaries": f"{window_same[name]}/{len(truth['videos'])}",
                                             "max_probability_difference": round(window_diff[name], 5),
                                             "cpu_time_ratio": round(seconds[name] / seconds["transnetv2-bfloat16"], 3)}
                                      for name in window_same},
        "backends": {},
    }
    for backend, t in totals.items():
        out["backends"][backend] = {
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in precision_recall_f1(t["tp"], t["fp"], t["fn"]).items()},
            "hard_cuts_found": f"{t['tp_cut']}/{t['n_cut']}", "gradual_found": f"{t['tp_gradual']}/{t['n_gradual']}",
            "frames_per_cpu_s": round(frames_total / seconds[backend], 1),
            "cpu_time_ratio_to_pyscenedetect": round(seconds[backend] / seconds["pyscenedetect"], 2),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
