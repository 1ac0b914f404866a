"""Benchmark of curation throughput and of the execution engines, ratios measured in one run.

On procedural 720p multi-shot footage (curation.synth; >= 3 minutes by default):
- video-seconds per CPU-second of the curation stages (raw_videos, scene_clips,
  clip_quality, clip_signatures, clip_dedup, curated_clips) on the local engine, and per
  wall-second; and against the same stages with `scene_clips.quality_in_pass` false (each
  video decoded a second time, span by span, by clip_quality);
- curation / decode-only: the same stages against one decode of every usable video, each
  frame converted once by swscale to the scene stage's analysis width (the least any
  curation must do);
- peak RSS of the worker (local: the one process; ray: each Ray worker, sampled);
- wall time of the fanned-out stages (raw_videos, scene_clips, clip_quality, captions,
  entities, subjects, faces, attributes, timelines) on `ray` with --workers workers against `local`
  with one, on the same shard, overall and per stage, and whether their tables are
  byte-identical; and the ceiling of that ratio when every worker loads each stage's models
  (`models_load_s`, which more workers do not shorten) and the rest divides evenly over the
  workers. With --repeats N the two engines run alternately N times and each figure is
  the fastest of its N (on a shared machine another process slows some runs, never speeds one
  up); every run's wall time, load average and the CPUs its processes got are listed.

Each configuration runs in its own process (clean peak-RSS figures). The footage is
generated once into bench/results/ and reused. Prints one JSON object.

Usage: python bench/scale.py [--distinct 8] [--copies 4] [--width 1280] [--height 720]
       [--fps 12] [--workers 2] [--repeats 1] [--set scene_clips.compare_backends=false ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Ray gives its workers the driver's script folder on sys.path when the driver has it; here
# that folder holds bench/curation.py, which would shadow the curation package on the workers.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from bench.timing import PeriodicSampler  # noqa: E402  (the driver only; workers never sample)

SHARD = "scale-000"
CURATION = ("raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")
FANNED_OUT = ("raw_videos", "scene_clips", "clip_quality", "captions", "entities", "subjects", "faces", "attributes",
              "timelines")
UPSTREAM_ONLY = ("clip_signatures", "clip_dedup", "curated_clips")  # run once by the curate step and reused, not compared


# ---------------------------------------------------------------- footage and project


def _remux(src: Path, dest: Path, tag: str) -> None:
    """The same coded frames in a new container whose metadata says `tag`: other bytes (so
    raw_videos does not quarantine it as a byte-identical copy), the same decoding work."""
    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w", format="mp4") as out:
        out.metadata["comment"] = tag
        video = inp.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in inp.demux(video):
            if packet.dts is None:
                continue  # the demuxer's flush packet
            packet.stream = stream
            out.mux(packet)


def build_footage(folder: Path, distinct: int, copies: int, width: int, height: int, fps: int) -> Path:
    """`distinct` procedural videos (every recipe: cuts, flashes, overlays, static, pans,
    short scenes, broken files), each stored `copies` times under its own name, remuxed so
    that every copy is its own file to curate (clip_dedup then finds them as duplicates)."""
    from curation.synth import build_demo_shard

    shard_dir = folder / SHARD
    if (folder / "complete").exists():
        return shard_dir
    shutil.rmtree(folder, ignore_errors=True)
    build_demo_shard(folder, folder / "ground_truth", shard=SHARD, kind="procedural", seed=21, n_videos=distinct,
                     width=width, height=height, fps=fps)
    lines = [json.loads(x) for x in (shard_dir / "manifest.jsonl").read_text().splitlines() if x.strip()]
    extra = []
    for copy in range(1, copies):
        for row in lines:
            if row.get("identity") is None:
                continue  # the broken files: once is enough
            name = f"{Path(row['path']).stem}-copy{copy}.mp4"
            _remux(shard_dir / row["path"], shard_dir / name, f"copy {copy}")
            extra.append({**row, "path": name})
    with open(shard_dir / "manifest.jsonl", "a") as fh:
        for row in extra:
            fh.write(json.dumps(row) + "\n")
    (folder / "complete").write_text("")
    return shard_dir


def write_project(folder: Path, pool_root: Path, overrides: list[str] = ()) -> Path:
    """The project's params with the bench's storage and pool, and `overrides`
    ("section.key=value", the value read as YAML); params validation checks them."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["storage"]["root"] = "data"
    raw["raw_videos"]["pool_root"] = str(pool_root)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in raw or name not in raw[section]:
            raise SystemExit(f"--set {item!r}: expected section.key=value with a key params.yaml has")
        raw[section][name] = yaml.safe_load(value)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ---------------------------------------------------------------- child processes


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


class WorkerRss(PeriodicSampler):
    """Peak RSS and CPU time of every process below this one (Ray's workers and daemons),
    sampled every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        super().__init__(0.2)
        self.psutil, self.me = psutil, psutil.Process()
        self.peak: dict[int, tuple[str, float]] = {}
        self.cpu: dict[int, float] = {}  # the last CPU time seen of each process

    def sample(self) -> None:
        for proc in self.me.children(recursive=True):
            try:
                name, rss, cpu = proc.name(), proc.memory_info().rss / 2**20, proc.cpu_times()
            except self.psutil.Error:
                continue
            self.cpu[proc.pid] = cpu.user + cpu.system
            if rss > self.peak.get(proc.pid, ("", 0.0))[1]:
                self.peak[proc.pid] = (name, rss)

    def children_cpu_s(self) -> float:
        return sum(self.cpu.values())

    def workers_mb(self) -> list[float]:
        """Peak RSS of the Ray worker processes (tasks and actors), largest first."""
        return sorted((round(rss, 1) for name, rss in self.peak.values() if name.startswith("ray::")), reverse=True)


def _run_stages(params, store, stages, cpu: dict[str, float] | None = None,
                loads: dict[str, float] | None = None) -> dict[str, float]:
    """Run `stages` in order; their wall seconds, their CPU seconds into `cpu` if given, and
    the seconds their models took to load into `loads` (stages that load models)."""
    from core.stage import run_stage
    from curation.stages import STAGES

    seconds = {}
    for name in stages:
        start, cpu0 = time.perf_counter(), _cpu_s()
        result = run_stage(STAGES[name], SHARD, params, store, force=True)
        seconds[name] = round(time.perf_counter() - start, 3)
        if cpu is not None:
            cpu[name] = round(_cpu_s() - cpu0, 3)
        if loads is not None and result.metadata.get("models_load_s") is not None:
            loads[name] = result.metadata["models_load_s"]
    return seconds


def decode_only(path: str, width: int) -> None:
    """The least any curation of a video must do: decode every frame and convert it once
    (swscale) to `width`, without the platform's decoder around it."""
    import av
    from av.video.reformatter import VideoReformatter

    from curation.video_io import _scaled_size

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        size = _scaled_size(stream.codec_context.width, stream.codec_context.height, width)
        reformatter = VideoReformatter()
        for frame in container.decode(stream):
            reformatter.reformat(frame, width=size[0], height=size[1], format="rgb24").to_ndarray()


def child_curate(params_path: Path) -> dict:
    """Local engine: the curation stages, then a decode-only pass over the same videos."""
    from orchestration.params import load_params
    from core.storage import LocalObjectStore
    from core.tables import read_table

    params = load_params(params_path)
    store = LocalObjectStore(params.resolve(params.storage.root))
    cpu0, t0 = _cpu_s(), time.perf_counter()
    per_stage_cpu: dict[str, float] = {}
    per_stage = _run_stages(params, store, CURATION, per_stage_cpu)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    peak = _peak_rss_mb()
    videos = [r for r in read_table(store, f"tables/raw_videos/{SHARD}.parquet").to_pylist() if r["status"] == "ok"]
    cpu0, t0 = _cpu_s(), time.perf_counter()
    for video in videos:
        decode_only(video["source_path"], params.scene_clips.analysis_width)
    decode_wall, decode_cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    return {"per_stage_s": per_stage, "per_stage_cpu_s": per_stage_cpu, "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3), "peak_rss_mb": peak,
            "video_s": round(sum(v["duration_s"] for v in videos), 2), "videos_ok": len(videos),
            "decode_wall_s": round(decode_wall, 3), "decode_cpu_s": round(decode_cpu, 3)}


def child_fanout(params_path: Path) -> dict:
    """The fanned-out stages on the engine params `execution` names."""
    from core.execution import connect_ray
    from orchestration.params import load_params
    from core.storage import LocalObjectStore

    params = load_params(params_path)
    store = LocalObjectStore(params.resolve(params.storage.root))
    startup = None
    load_start = os.getloadavg()[0]
    with WorkerRss() as rss:
        if params.execution.engine == "ray":
            t0 = time.perf_counter()
            connect_ray(params.execution)
            startup = round(time.perf_counter() - t0, 3)
        rss.sample()
        cpu0 = _own_cpu_s() + rss.children_cpu_s()
        t0 = time.perf_counter()
        per_stage_cpu: dict[str, float] = {}
        loads: dict[str, float] = {}
        # per-stage CPU only counts this process: the local engine's, not Ray workers'
        per_stage = _run_stages(params, store, FANNED_OUT, per_stage_cpu, loads)
        wall = time.perf_counter() - t0
        rss.sample()
        # CPU time of the driver and every process below it (Ray's workers and daemons) over
        # the stages' wall time: how many of the machine's CPUs the run got (others' load takes some).
        cpu = _own_cpu_s() + rss.children_cpu_s() - cpu0
    return {"engine": params.execution.engine, "workers": params.execution.workers, "wall_s": round(wall, 3),
            "ray_startup_s": startup, "per_stage_s": per_stage, "models_load_s": loads,
            **({"per_stage_cpu_s": per_stage_cpu} if params.execution.engine == "local" else {}),
            "driver_peak_rss_mb": _peak_rss_mb(),
            "ray_worker_peak_rss_mb": rss.workers_mb(),
            "load_avg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "cpus_used": round(cpu / wall, 2)}


def _child(phase: str, params_path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", phase, "--params", str(params_path)],
                         capture_output=True, text=True, cwd=params_path.parent)
    if out.returncode:
        raise RuntimeError(f"{phase} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _set_execution(params_path: Path, **execution) -> None:
    raw = yaml.safe_load(params_path.read_text())
    raw["execution"].update(execution)
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _tables(data: Path) -> dict[str, bytes]:
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in sorted((data / "tables").rglob("*.parquet"))}


def _fastest(runs: list[dict]) -> dict:
    """The fastest of an engine's runs, with each stage's time the fastest of its runs."""
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    if len(runs) > 1:
        best["per_stage_s"] = {name: min(r["per_stage_s"][name] for r in runs) for name in best["per_stage_s"]}
        best["ray_startup_s"] = min(r["ray_startup_s"] for r in runs) if best["ray_startup_s"] is not None else None
    return best


def _ceiling(local: dict, workers: int) -> dict:
    """The most `workers` workers can gain over the local run when each loads its own models:
    a stage's models load in every worker before its first item (`models_load_s`, the same
    wall time as the local run's one load), and the rest of the local run's CPU time spreads
    perfectly over the workers, at no cost per item and with no Ray overhead."""
    per_stage = {name: round(local["models_load_s"].get(name, 0.0)
                             + max(0.0, local["per_stage_cpu_s"][name] - local["models_load_s"].get(name, 0.0)) / workers, 3)
                 for name in FANNED_OUT}
    wall = sum(per_stage.values())
    return {"what": f"{workers} workers' wall time if every worker loads each stage's models (the local run's "
                    "load time) and the local run's remaining CPU time divides evenly over them",
            "models_load_s": local["models_load_s"], "wall_s": round(wall, 3), "per_stage_s": per_stage,
            "speedup": round(local["wall_s"] / wall, 3)}


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distinct", type=int, default=8, help="distinct procedural videos")
    ap.add_argument("--copies", type=int, default=4, help="times each usable video is stored")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2, help="workers of the ray engine")
    ap.add_argument("--repeats", type=int, default=1, help="alternate runs of each engine; figures are the fastest")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a params.yaml setting for every run (e.g. scene_clips.compare_backends=false)")
    ap.add_argument("--child", choices=("curate", "fanout"), help=argparse.SUPPRESS)
    ap.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps((child_curate if args.child == "curate" else child_fanout)(args.params)))
        return

    load_start = os.getloadavg()
    footage = ROOT / "bench" / "results" / f"scale-footage-{args.width}x{args.height}-{args.fps}fps-{args.distinct}x{args.copies}"
    t0 = time.perf_counter()
    pool = build_footage(footage, args.distinct, args.copies, args.width, args.height, args.fps)
    footage_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="reactid-scale-") as tmp:
        params_path = write_project(Path(tmp), pool.parent, args.set)
        curate = _child("curate", params_path)
        # the baseline of the one-decode design in the same run: clip_quality decoding every span
        two = Path(tmp) / "two-decodes"
        two.mkdir()
        two_decodes = _child("curate", write_project(two, pool.parent, [*args.set, "scene_clips.quality_in_pass=false"]))
        # Each engine then redoes the fanned-out stages in graph order over the curated clips,
        # the engines taking turns so that a busy spell of the machine hits both.
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        identical = True
        for _ in range(max(1, args.repeats)):
            _set_execution(params_path, engine="local", workers=1)
            runs["local"].append(_child("fanout", params_path))
            local_tables = _tables(Path(tmp) / "data")
            _set_execution(params_path, engine="ray", workers=args.workers)
            runs["ray"].append(_child("fanout", params_path))
            identical = identical and local_tables == _tables(Path(tmp) / "data")
    load_end = os.getloadavg()
    video_s = curate["video_s"]
    local, on_ray = _fastest(runs["local"]), _fastest(runs["ray"])
    print(json.dumps({
        "benchmark": "scale",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m_start": round(load_start[0], 2), "load_avg_1m_end": round(load_end[0], 2),
                    "note": "load averages above the CPU count mean other processes shared the CPUs"},
        "params_overrides": args.set,
        "footage": {"source": "procedural (curation.synth), multi-shot", "distinct_videos": args.distinct,
                    "copies": args.copies, "videos_ok": curate["videos_ok"], "width": args.width,
                    "height": args.height, "fps": args.fps, "video_s": video_s,
                    "generated_s": round(footage_s, 1), "cache": str(footage.relative_to(ROOT))},
        "curation_local": {
            "stages": list(CURATION), "wall_s": curate["wall_s"], "cpu_s": curate["cpu_s"],
            "per_stage_s": curate["per_stage_s"], "per_stage_cpu_s": curate["per_stage_cpu_s"],
            "video_s_per_cpu_s": round(video_s / curate["cpu_s"], 3),
            "video_s_per_wall_s": round(video_s / curate["wall_s"], 3),
            "peak_rss_mb": curate["peak_rss_mb"],
        },
        "curation_local_two_decodes": {
            "what": "the same with scene_clips.quality_in_pass false: clip_quality decodes every clip's span itself",
            "cpu_s": two_decodes["cpu_s"], "per_stage_cpu_s": two_decodes["per_stage_cpu_s"],
            "video_s_per_cpu_s": round(video_s / two_decodes["cpu_s"], 3),
            "cpu_ratio_one_decode_to_two": round(curate["cpu_s"] / two_decodes["cpu_s"], 3),
        },
        "decode_only": {"what": "every usable video decoded once, each frame converted once by swscale to "
                                "scene_clips.analysis_width",
                        "wall_s": curate["decode_wall_s"], "cpu_s": curate["decode_cpu_s"]},
        "ratio_curation_to_decode_wall": round(curate["wall_s"] / curate["decode_wall_s"], 2),
        "ratio_curation_to_decode_cpu": round(curate["cpu_s"] / curate["decode_cpu_s"], 2),
        "engines": {
            "stages": list(FANNED_OUT), "not_compared": list(UPSTREAM_ONLY),
            "local_1": local, f"ray_{args.workers}": on_ray,
            "speedup_ray_over_local_wall": round(local["wall_s"] / on_ray["wall_s"], 3),
            "speedup_including_ray_startup": round(local["wall_s"] / (on_ray["wall_s"] + on_ray["ray_startup_s"]), 3),
            "speedup_per_stage": {name: round(local["per_stage_s"][name] / max(on_ray["per_stage_s"][name], 1e-3), 2)
                                  for name in FANNED_OUT},
            "ceiling": _ceiling(local, args.workers),
            "runs": {engine: [{"wall_s": r["wall_s"], "load_avg_1m": r["load_avg_1m"], "cpus_used": r["cpus_used"]}
                             for r in rs] for engine, rs in runs.items()},
            "tables_identical": identical,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
