"""Benchmark of the shot-detection backends on the real-cuts shard (real footage joined by
cuts, dissolves and fades at known frames): precision / recall / F1 per backend, hard
cuts and gradual transitions found, and each backend's frames/s with its time as a ratio
to PySceneDetect's measured in the same run.

The shard is built from params (`demo_pool.real_cuts`) with `--seed` (params' seed for
demo-real-cuts by default; another seed gives held-out footage). Each video is decoded
once at `scene_clips.analysis_width`; every backend reads the same frames.

Prints one JSON object. Usage: python bench/shots.py [--seed N] [--videos N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.accuracy import match_boundaries  # noqa: E402
from curation.features import build_frame_embedder  # noqa: E402
from curation.scenes import precision_recall_f1  # noqa: E402
from curation.shot_detectors import SHOT_DETECTORS, make_detectors  # noqa: E402
from curation.shot_transnetv2 import load_transnetv2  # noqa: E402
from curation.synth.real_cuts import build_real_cuts_shard  # noqa: E402
from curation.video_io import iter_frames  # noqa: E402
from orchestration.params import load_params  # noqa: E402


def main() -> None:
    params = load_params(ROOT / "params.yaml")
    shard_seed = next((s.seed for s in params.demo_pool.shards.values() if s.kind == "real_cuts"), 0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=shard_seed)
    ap.add_argument("--videos", type=int, default=params.demo_pool.real_cuts.n_videos)
    args = ap.parse_args()
    cfg = params.scene_clips
    rc = params.demo_pool.real_cuts
    model, embedder = load_transnetv2(), build_frame_embedder(cfg.similarity_backend, cfg.pretrained_model)
    totals = {b: dict.fromkeys(("tp", "fp", "fn", "tp_cut", "n_cut", "tp_gradual", "n_gradual"), 0) for b in SHOT_DETECTORS}
    seconds = dict.fromkeys(SHOT_DETECTORS, 0.0)
    frames_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        truth = build_real_cuts_shard(Path(tmp), "bench", seed=args.seed, n_videos=args.videos,
                                      shots_per_video=rc.shots_per_video, same_place_rate=rc.same_place_rate)
        for video in truth["videos"]:
            frames = [f for _, f in iter_frames(Path(tmp) / video["file"], width=cfg.analysis_width)]
            frames_total += len(frames)
            for backend in SHOT_DETECTORS:
                det = make_detectors(cfg.model_copy(update={"shot_backend": backend, "compare_backends": False}),
                                     video["fps"], embedder, model)[backend]
                t0 = time.perf_counter()
                for frame in frames:
                    det.push(frame)
                shots = det.finish()
                seconds[backend] += time.perf_counter() - t0
                m = match_boundaries(shots.cuts, [(t.start_frame, t.end_frame) for t in shots.transitions],
                                     video["cuts"], [(t["start_frame"], t["end_frame"]) for t in video["transitions"]],
                                     tolerance=2)
                for k, v in m.items():
                    totals[backend][k] += v
    out = {
        "bench": "shots", "footage": "real (registry wheels), boundaries at known frames", "seed": args.seed,
        "videos": args.videos, "frames": frames_total, "analysis_width": cfg.analysis_width,
        "python": platform.python_version(), "selected_backend": cfg.shot_backend, "backends": {},
    }
    for backend, t in totals.items():
        out["backends"][backend] = {
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in precision_recall_f1(t["tp"], t["fp"], t["fn"]).items()},
            "hard_cuts_found": f"{t['tp_cut']}/{t['n_cut']}", "gradual_found": f"{t['tp_gradual']}/{t['n_gradual']}",
            "frames_per_s": round(frames_total / seconds[backend], 1),
            "time_ratio_to_pyscenedetect": round(seconds[backend] / seconds["pyscenedetect"], 2),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
