"""Peak memory against video length: the scene stage and the clip analysis stream a video in
windows, so their peak must not grow with its length.

Generates procedural 720p videos (moving rectangles on gradient backgrounds: six shots of 20 s
encoded once with x264 ultrafast, then copied one after another up to the length without
re-encoding; default 1, 3 and 10 minutes at 10 fps) and measures, each in a fresh
process so that every figure is that process's own peak RSS (VmHWM):
- `scene_clips`: raw_videos + scene_clips on a shard holding the one video (detection over
  the whole video in windows; clips are recorded as spans, nothing is encoded; the same
  decode analyses every clip for clip_quality, OCR included, with the frames whose boundaries
  are not yet settled held: `curation.clip_analysis.SceneQualityPass`);
- `clip_quality`: `analyse_clip` over the whole video read as one clip span of the source,
  as clip_quality reads a clip (`curation.clip_spans.SpanDecoder`, the duplicate signature
  hashed in the same pass; OCR off: the text scan would dominate the run time, not the memory);
- `whole_video_decode`: `decode_frames` of the whole video at the scene analysis width,
  which is what scene detection held before it streamed: the baseline that grows.

Prints one JSON object: per length the peak RSS in MB of each, and the ratio of the longest
video's peak to the shortest one's (goal for the streamed stages: <= 1.5).
Usage: python bench/memory.py [--minutes 1 3 10] [--fps 10] [--width 1280] [--height 720]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARD = "memory"
SHOT_S = 20.0
PALETTES = ((40, 60, 170), (220, 120, 30), (30, 160, 70), (170, 40, 140), (200, 200, 60), (60, 190, 200))


def make_shots(folder: Path, fps: int, width: int, height: int) -> list[Path]:
    """One encoded shot of SHOT_S seconds per palette (x264 ultrafast: no B-frames)."""
    from core.video import ClipWriter

    ramp = np.linspace(0.5, 1.0, width, dtype=np.float32)[None, :, None]
    box = height // 6
    shots = []
    for s, colour in enumerate(PALETTES):
        background = np.broadcast_to(np.asarray(colour, np.float32) * ramp, (height, width, 3)).astype(np.uint8)
        path = folder / f"shot-{s}.mp4"
        writer = ClipWriter(path, fps, width, height, crf=28, preset="ultrafast")
        for k in range(int(SHOT_S * fps)):
            frame = background.copy()
            x = int((k * 7 + 97 * s) % (width - box))
            y = int(height / 2 + height / 4 * np.sin(k / 15 + s))
            frame[y - box // 2 : y + box // 2, x : x + box] = (250, 250, 250)
            frame[height // 4 : height // 4 + box, width - x - box : width - x] = (20, 20, 20)
            writer.write(frame)
        writer.close()
        shots.append(path)
    return shots


def make_video(path: Path, shots: list[Path], minutes: float, fps: int) -> int:
    """A video of `minutes` minutes: the shots one after another, again and again (packets
    copied with shifted timestamps, nothing re-encoded); returns its frame count."""
    import av

    n = int(round(minutes * 60 * fps))
    written = 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = None
        while written < n:
            for shot in shots:
                with av.open(str(shot)) as source:
                    src = source.streams.video[0]
                    if stream is None:
                        stream = out.add_stream_from_template(src)
                    offset = None
                    for packet in source.demux(src):
                        if packet.dts is None or written >= n:
                            continue
                        offset = offset if offset is not None else int(round(written / fps / src.time_base)) - packet.pts
                        packet.pts += offset
                        packet.dts += offset
                        packet.stream = stream
                        out.mux(packet)
                        written += 1
                if written >= n:
                    break
    return n


def _project(folder: Path, video: Path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["storage"]["root"] = "data"
    raw["raw_videos"]["pool_root"] = "data/pool"
    raw["scene_clips"]["encode_preset"] = "ultrafast"
    shard = folder / "data" / "pool" / SHARD
    shard.mkdir(parents=True, exist_ok=True)
    (shard / video.name).symlink_to(video)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(kind: str, project: Path, video: Path) -> dict:
    """One measurement in this (fresh) process."""
    from orchestration.params import load_params
    from core.stage import run_stage
    from core.storage import LocalObjectStore
    from curation.stages import STAGES, analyse_clip, pass_signature
    from curation.video_io import decode_frames

    params = load_params(project)
    import cv2  # noqa: F401  (imported by the stages anyway: part of the baseline, not of the peak)
    import scenedetect  # noqa: F401

    baseline = _rss_mb("VmRSS")
    start = time.perf_counter()
    out: dict = {}
    if kind == "scene_clips":
        store = LocalObjectStore(params.resolve(params.storage.root))
        run_stage(STAGES["raw_videos"], SHARD, params, store, force=True)
        meta = run_stage(STAGES["scene_clips"], SHARD, params, store, force=True).metadata
        out = {"frames_decoded": meta["frames_decoded"], "clips": meta["clips_out"]}
    elif kind == "clip_quality":
        from fractions import Fraction

        from curation.clip_spans import ClipSpan
        from curation.video_io import VideoDecoder, probe

        info = probe(video)
        first = next(iter(VideoDecoder(video, width=32)))
        span = ClipSpan(0, info.frame_count, first.time_s, first.pts, Fraction(info.fps_num, info.fps_den))
        q = analyse_clip(video, params.clip_quality.model_copy(update={"ocr_backend": "none"}), span=span,
                         signature=pass_signature(params))
        out = {"frames_analysed": q["frames_analysed"]}
    elif kind == "whole_video_decode":
        out = {"frames_held": len(decode_frames(video, width=params.scene_clips.analysis_width).frames)}
    else:
        raise ValueError(f"unknown measurement {kind!r}")
    return {"peak_rss_mb": round(_rss_mb("VmHWM"), 1), "rss_before_mb": round(baseline, 1),
            "seconds": round(time.perf_counter() - start, 2), **out}


def measure(kind: str, project: Path, video: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--project", str(project), "--video", str(video)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{kind} on {video.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 3, 10])
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.project, args.video)))
        return
    kinds = ("scene_clips", "clip_quality", "whole_video_decode")
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        shots = make_shots(Path(tmp), args.fps, args.width, args.height)
        for minutes in sorted(args.minutes):
            folder = Path(tmp) / f"{minutes:g}min"
            folder.mkdir()
            video = folder / f"procedural-{minutes:g}min.mp4"
            t0 = time.perf_counter()
            frames = make_video(video, shots, minutes, args.fps)
            row = {"minutes": minutes, "frames": frames, "generate_s": round(time.perf_counter() - t0, 1)}
            project = _project(folder / "project", video)
            for kind in kinds:
                row[kind] = measure(kind, project, video)
            results.append(row)
            video.unlink()
    short, long_ = results[0], results[-1]
    print(json.dumps({
        "benchmark": "memory_vs_video_length",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "footage": f"procedural, {args.width}x{args.height} at {args.fps} fps (moving rectangles, a hard cut every "
                   f"{SHOT_S:g} s; {len(PALETTES)} shots repeated), generated in this run",
        "lengths": results,
        **{f"ratio_peak_{kind}_{long_['minutes']:g}min_to_{short['minutes']:g}min":
           round(long_[kind]["peak_rss_mb"] / short[kind]["peak_rss_mb"], 3) for kind in kinds},
        **{f"growth_mb_{kind}_{long_['minutes']:g}min_vs_{short['minutes']:g}min":
           round(long_[kind]["peak_rss_mb"] - short[kind]["peak_rss_mb"], 1) for kind in kinds},
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
