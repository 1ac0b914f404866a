"""Benchmark of the quality pass (clip_quality's `analyse_clip`): clips/s, frames/s, decode
passes per clip, and the ratio of its time to a decode-only pass in the same run, in wall time
and in CPU time of this process (a machine shared with other work inflates the first; the CPU
timings run decode and analyses in turn, round after round, so all see the same load).

scene_clips records clips as spans of their source video; clip_quality reads each span from
the source (`curation.clip_spans.SpanDecoder` at `clip_quality.analysis_width` and
`sample_fps`). The decode-only pass decodes the very same spans the same way and does nothing
with the frames: the least any quality analysis must do.

Decisions: on the procedural shard and on a real-footage shard (kind real_cuts: real clips
and photographs filmed with a virtual camera), the curated_clips decisions of params'
clip_quality against a reference analysis (Farneback flow on every pair at min_motion 0.25,
OCR on at least one frame a second, each detected at full size: no gate), each scored against the shards' ground truth: text-overlay
clips (procedural truth; the real shard's sources carry no overlay, so every clip it flags is
a false positive) and the low-motion filter (positives: static or camera-only clips; on the
real shard the photographs, whose only motion is the virtual camera's). Text overlays on real
pixels: a subtitle, a watermark, or a subtitle shown for only 1.5 s mid-clip burnt into the
decoded frames of every real clip (and the clip as it is: no text), each scanned with params'
OCR and with the reference's.

The motion analyser can measure flow on every `clip_quality.flow_pair_stride`-th pair of
sampled frames only: the run also times the pass with flow on every 2nd pair (or params'
stride if larger) and reports the correlation of its per-clip motion scores with every
pair's and how many `curated_clips.min_motion` decisions differ.

Prints one JSON object. Usage: python bench/curation.py [--videos N] [--real-videos N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import time  # noqa: E402

import numpy as np  # noqa: E402
from timing import best_of  # noqa: E402  (bench/ is on sys.path)

from core.stage import run_stage  # noqa: E402
from core.storage import LocalObjectStore  # noqa: E402
from core.tables import read_table  # noqa: E402
from curation.clip_spans import ClipSpan, SpanDecoder  # noqa: E402
from curation.stages import STAGES, analyse_clip  # noqa: E402
from curation.video_io import DECODE_STATS  # noqa: E402
from orchestration.params import load_params  # noqa: E402


REAL_SHARD = "bench-real"
# The most thorough analysis the analysers offer, what params' cheaper settings are held to:
# Farneback flow on every pair (decided at its own calibrated min_motion), OCR on at least one
# frame a second, every OCR frame detected at full size.
REFERENCE = {"flow_method": "farneback", "flow_pair_stride": 1, "ocr_gate_width": None}
REFERENCE_MIN_MOTION = 0.25
REFERENCE_OCR_FPS = 1.0


def reference_of(cfg):
    """The reference analysis for params' clip_quality section `cfg`."""
    return cfg.model_copy(update={**REFERENCE, "ocr_fps": min(cfg.sample_fps, max(cfg.ocr_fps, REFERENCE_OCR_FPS))})


def _project(folder: Path, n_videos: int, real_videos: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["storage"]["root"] = "data"
    raw["demo_pool"]["pool_root"] = raw["raw_videos"]["pool_root"] = "data/pool"
    raw["demo_pool"]["ground_truth_root"] = "data/ground_truth"
    raw["demo_pool"]["shards"] = {"bench-000": {"kind": "procedural", "seed": 11}, REAL_SHARD: {"kind": "real_cuts", "seed": 11}}
    raw["demo_pool"]["procedural"]["n_videos"] = n_videos
    raw["demo_pool"]["real_cuts"]["n_videos"] = real_videos
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def best_cpu_of(fns: dict, repeat: int) -> dict[str, float]:
    """Fewest CPU seconds of this process over `repeat` runs of each of `fns` (name -> function),
    run in turn round after round, so that every one sees the same share of a busy machine."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {name: min(t) for name, t in times.items()}


def decode_spans(clips: list[dict], cfg) -> int:
    """Decode every clip's span as clip_quality does, doing nothing with the frames; returns
    the frames decoded."""
    return sum(1 for c in clips for _ in SpanDecoder(c["source_path"], ClipSpan.of(c), width=cfg.analysis_width,
                                                        sample_fps=cfg.sample_fps))


def analyse_spans(clips: list[dict], cfg) -> list[dict]:
    """clip_quality's analysis of every clip's span."""
    return [analyse_clip(c["source_path"], cfg, span=ClipSpan.of(c)) for c in clips]


def motion_agreement(clips, cfg, stride: int, min_motion: float) -> dict:
    """Per-clip motion with flow on every pair against flow on every `stride`-th pair."""
    every = cfg.model_copy(update={"flow_pair_stride": 1, "ocr_backend": "none"})
    strided = cfg.model_copy(update={"flow_pair_stride": stride, "ocr_backend": "none"})
    a = np.array([r["motion_foreground"] for r in analyse_spans(clips, every)])
    b = np.array([r["motion_foreground"] for r in analyse_spans(clips, strided)])
    return {"flow_pair_stride": stride, "min_motion": min_motion,
            "pearson": round(float(np.corrcoef(a, b)[0, 1]), 4) if len(a) > 1 and a.std() and b.std() else None,
            "max_abs_diff": round(float(np.abs(a - b).max()), 4) if len(a) else None,
            "min_motion_decisions_changed": int(((a < min_motion) != (b < min_motion)).sum()),
            "changed": [{"clip": c["clip_id"], "every_pair": round(float(x), 4), "strided": round(float(y), 4)}
                        for c, x, y in zip(clips, a, b, strict=True) if (x < min_motion) != (y < min_motion)],
            "rejected_low_motion": int((b < min_motion).sum())}


def _truth_span(spans: list[dict], start: int, end: int) -> dict | None:
    """The ground-truth scene or shot that overlaps [start, end) the most."""
    best, most = None, 0
    for span in spans:
        overlap = min(end, span["end_frame"]) - max(start, span["start_frame"])
        if overlap > most:
            best, most = span, overlap
    return best


def _scored(pairs: list[tuple[bool, bool]]) -> dict:
    """Precision / recall / F1 of (actual, predicted) pairs."""
    from curation.scenes import precision_recall_f1

    tp = sum(a and p for a, p in pairs)
    fp = sum(p and not a for a, p in pairs)
    fn = sum(a and not p for a, p in pairs)
    return {**precision_recall_f1(tp, fp, fn), "tn": len(pairs) - tp - fp - fn}


def decision_accuracy(clips: list[dict], rows: list[dict], truth: dict, curated_cfg) -> dict:
    """Text-overlay and low-motion decisions of one analysis of `clips` against ground truth."""
    from curation.clip_filters import rejection_reasons

    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", [])}
    text, motion = [], []
    for clip, row in zip(clips, rows, strict=True):
        video = videos.get(clip["video_id"])
        if video is None:
            continue
        span = _truth_span(video.get("scenes") or video.get("shots") or [], clip["start_frame"], clip["end_frame"])
        if span is None:
            continue
        low_motion = "low_motion" in rejection_reasons(row, curated_cfg)
        if "static" in span:  # procedural scene
            text.append((bool(span["has_text"]), bool(row["has_text"])))
            motion.append((bool(span["static"] or span["camera_pan"]), low_motion))
        else:  # real shot: no overlays in its sources; a photograph moves only with the camera
            text.append((False, bool(row["has_text"])))
            motion.append((span["move"] is not None, low_motion))
    return {"clips": len(text), "text_overlay": _scored(text), "low_motion": _scored(motion)}


def decisions(clips: list[dict], truth: dict, params) -> dict:
    """params' clip_quality against the reference analysis, decision by decision."""
    from curation.clip_filters import rejection_reasons

    cfg = params.clip_quality
    reference = reference_of(cfg)
    reference_filters = params.curated_clips.model_copy(update={"min_motion": REFERENCE_MIN_MOTION})
    cpu0 = time.process_time()
    ours = analyse_spans(clips, cfg)
    cpu1 = time.process_time()
    ref = analyse_spans(clips, reference)
    cpu2 = time.process_time()
    reasons = [(set(rejection_reasons(a, params.curated_clips)), set(rejection_reasons(b, reference_filters)))
               for a, b in zip(ours, ref, strict=True)]
    text = [(a, b) for a, b in zip(ours, ref, strict=True) if a["has_text"] and b["has_text"]]
    return {
        "clips": len(clips),
        "params": decision_accuracy(clips, ours, truth, params.curated_clips),
        "reference": decision_accuracy(clips, ref, truth, reference_filters),
        "kept_decisions_changed": sum((not a) != (not b) for a, b in reasons),
        "reasons_changed": {reason: n for reason in sorted(set().union(*(a ^ b for a, b in reasons)))
                            if (n := sum((reason in a) != (reason in b) for a, b in reasons))} if reasons else {},
        "has_text_changed": sum(bool(a["has_text"]) != bool(b["has_text"]) for a, b in zip(ours, ref, strict=True)),
        "text_free_area_max_abs_diff": round(max((abs(a["text_free_area"] - b["text_free_area"]) for a, b in text), default=0.0), 4),
        "cpu_s": round(cpu1 - cpu0, 3), "reference_cpu_s": round(cpu2 - cpu1, 3),
    }


def _burn(frames: np.ndarray, times: np.ndarray, overlay: str) -> np.ndarray:
    """The frames with an overlay drawn on: "subtitle" / "watermark" on every frame,
    "brief_subtitle" on the frames of the 1.5 s around the clip's middle, "none" as they are."""
    import cv2

    from curation.synth.render import SUBTITLES, draw_subtitle

    out = frames.copy()
    middle = (times[0] + times[-1]) / 2
    for frame, t in zip(out, times, strict=True):
        if overlay in ("subtitle", "brief_subtitle") and (overlay == "subtitle" or abs(t - middle) < 0.75):
            draw_subtitle(frame, SUBTITLES[0])
        elif overlay == "watermark":  # as the demo pool's watermark recipe draws it
            cv2.putText(frame, "SYNTHTV", (frame.shape[1] - 92, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (250, 250, 250), 2,
                        cv2.LINE_AA)
    return out


def overlays_on_real(clips: list[dict], cfg) -> dict:
    """Clip-level text-overlay detection of params' OCR and the reference's on real clips with
    overlays burnt in (`_burn`), per kind of overlay."""
    from curation.stages import embedded_text_scanner
    from curation.video_io import FrameBatch

    overlays = ("none", "subtitle", "watermark", "brief_subtitle")
    found = {"params": {o: 0 for o in overlays}, "reference": {o: 0 for o in overlays}}
    for clip in clips:
        decoder = SpanDecoder(clip["source_path"], ClipSpan.of(clip), width=cfg.analysis_width, sample_fps=cfg.sample_fps)
        decoded = list(decoder)
        frames, times = np.stack([d.image for d in decoded]), np.array([d.time_s for d in decoded])
        for overlay in overlays:
            batch = FrameBatch(_burn(frames, times, overlay), np.array([d.index for d in decoded]), decoder.fps,
                               decoder.source_size, times)
            for name, c in (("params", cfg), ("reference", reference_of(cfg))):
                scanner = embedded_text_scanner(c, max(1, int(round(c.sample_fps / c.ocr_fps))))
                scanner.add(batch)
                found[name][overlay] += scanner.result().has_text
    return {"clips": len(clips), "clips_flagged_by_overlay": found}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--real-videos", type=int, default=5, help="videos of the real-footage shard")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(_project(Path(tmp), args.videos, args.real_videos))
        store = LocalObjectStore(params.resolve(params.storage.root))
        for shard in ("bench-000", REAL_SHARD):
            for stage in ("demo_pool", "raw_videos", "scene_clips"):
                run_stage(STAGES[stage], shard, params, store)
        clips = [r for r in read_table(store, "tables/scene_clips/bench-000.parquet").to_pylist() if r["kept"]]
        cfg = params.clip_quality
        no_ocr = cfg.model_copy(update={"ocr_backend": "none"})

        frames = decode_spans(clips, cfg)
        decode_s = best_of(lambda: decode_spans(clips, cfg), args.repeat)[0]
        DECODE_STATS.reset()
        curation_s = best_of(lambda: analyse_spans(clips, cfg), args.repeat)[0]
        passes_per_clip = DECODE_STATS.total_passes() / (len(clips) * args.repeat)
        no_ocr_s = best_of(lambda: analyse_spans(clips, no_ocr), args.repeat)[0]
        stride = max(2, cfg.flow_pair_stride)
        strided = cfg.model_copy(update={"flow_pair_stride": stride})
        cpu = best_cpu_of({"decode": lambda: decode_spans(clips, cfg), "curation": lambda: analyse_spans(clips, cfg),
                           "no_ocr": lambda: analyse_spans(clips, no_ocr), "strided": lambda: analyse_spans(clips, strided)},
                          args.repeat)
        decode_cpu, curation_cpu, no_ocr_cpu, strided_cpu = cpu["decode"], cpu["curation"], cpu["no_ocr"], cpu["strided"]
        motion = motion_agreement(clips, cfg, stride, params.curated_clips.min_motion)
        truth_root = params.resolve(params.demo_pool.ground_truth_root)
        checked = {}
        for name, shard in (("procedural", "bench-000"), ("real_cuts", REAL_SHARD)):
            rows = [r for r in read_table(store, f"tables/scene_clips/{shard}.parquet").to_pylist() if r["kept"]]
            checked[name] = decisions(rows, json.loads((truth_root / f"{shard}.json").read_text()), params)
        checked["real_cuts"]["overlays_burnt_in"] = overlays_on_real(rows, cfg)
    print(json.dumps({
        "benchmark": "curation_pass",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "clips": len(clips),
        "frames_analysed": frames,
        "analysis_width": cfg.analysis_width,
        "sample_fps": cfg.sample_fps,
        "decode_only_s": round(decode_s, 3),
        "curation_s": round(curation_s, 3),
        "curation_without_ocr_s": round(no_ocr_s, 3),
        "clips_per_s": round(len(clips) / curation_s, 3),
        "frames_per_s": round(frames / curation_s, 2),
        "decode_passes_per_clip": round(passes_per_clip, 3),
        "ratio_curation_to_decode": round(curation_s / decode_s, 2),
        "ratio_curation_without_ocr_to_decode": round(no_ocr_s / decode_s, 2),
        "ocr_share_of_curation": round(1 - no_ocr_s / curation_s, 3),
        "decode_only_cpu_s": round(decode_cpu, 3),
        "curation_cpu_s": round(curation_cpu, 3),
        "ratio_curation_to_decode_cpu": round(curation_cpu / decode_cpu, 2),
        "ratio_curation_without_ocr_to_decode_cpu": round(no_ocr_cpu / decode_cpu, 2),
        "flow_pair_stride": cfg.flow_pair_stride,
        f"ratio_curation_flow_pair_stride_{stride}_to_decode_cpu": round(strided_cpu / decode_cpu, 2),
        "motion_flow_pairs": motion,
        "flow_method": cfg.flow_method if cfg.flow_method != "dis" else f"dis-{cfg.dis_preset}",
        "ocr": {"ocr_fps": cfg.ocr_fps, "ocr_gate_width": cfg.ocr_gate_width},
        "decisions_against_reference": {"reference": {**REFERENCE, "ocr_fps": reference_of(cfg).ocr_fps,
                                                      "min_motion": REFERENCE_MIN_MOTION}, **checked},
    }, indent=2))


if __name__ == "__main__":
    main()
