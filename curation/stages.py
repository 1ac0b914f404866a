"""The curation stages as plain functions over (params, store, shard).

Dagster assets and the `reactid stage` CLI (which `dvc repro` calls) both run these
through `core.stage.run_stage`, so the two ways of running the graph share one
implementation. Each returns JSON-able metadata: counts, rejections by reason, timings
and a preview of its table.
"""

from __future__ import annotations

import contextlib
import json
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core import layout
from core.backends import Backend, BackendRegistry, item_work, load_chosen
from core.errors import ParamsError
from core.execution import ItemEnv, ItemWork, model_device, run_items
from core.stage import Output, StageContext, StageSpec
from core.summaries import counts_by
from core.summaries import min_median_max as _summary
from core.summaries import preview_rows as _preview
from core.storage import temp_dir
from core.tables import read_table, to_table, write_table
from curation import schemas
from curation.clip_analysis import pass_signature
from curation.clip_filters import rejection_reasons


# ---------------------------------------------------------------- demo_pool


def demo_pool(ctx: StageContext) -> dict[str, Any]:
    """Generate a demo shard (procedural or real footage) into the raw pool: the folder
    `demo_pool.pool_root/<shard>/`, and, when `raw_videos.pool_prefix` puts the pool in the
    object store, the same files under `<pool_prefix>/<shard>/` there."""
    from curation.synth import build_demo_shard

    cfg = ctx.params.demo_pool
    prefix = ctx.params.raw_videos.pool_prefix
    if ctx.shard not in cfg.shards:
        raise ParamsError(
            f"demo_pool.shards: shard {ctx.shard!r} is not a demo shard (have {sorted(cfg.shards)}); "
            "register real shards by placing them under raw_videos.pool_root"
            + (f" (or {prefix}/<shard>/ in the object store)" if prefix else "")
        )
    spec = cfg.shards[ctx.shard]
    proc = cfg.procedural
    folder, truth = build_demo_shard(
        ctx.params.resolve(cfg.pool_root), ctx.params.resolve(cfg.ground_truth_root), shard=ctx.shard, kind=spec.kind, seed=spec.seed,
        n_videos=proc.n_videos, width=proc.width, height=proc.height, fps=proc.fps, real_cuts=cfg.real_cuts.model_dump(),
    )
    files = sorted(p.name for p in folder.iterdir() if p.suffix == ".mp4")
    location = str(folder)
    if prefix:
        shard_prefix = layout.pool_shard(prefix, ctx.shard)
        with ctx.store.staged_prefix(shard_prefix) as staging:  # a rebuilt shard replaces the old one whole
            for path in sorted(folder.iterdir()):
                ctx.store.put_file(f"{staging}/{path.name}", path)
        location = ctx.store.uri(shard_prefix)
    return {"kind": spec.kind, "pool_folder": location, "ground_truth": str(truth), "files": len(files)}


# ---------------------------------------------------------------- raw_videos


def probe_entry(env: ItemEnv, models: None, entry) -> dict[str, Any]:
    """The raw_videos row of one pool entry: probed, or quarantined with its reason."""
    from curation import video_io as vio
    from curation.registry import content_sha256

    cfg = env.params.raw_videos
    row: dict[str, Any] = {
        "video_id": entry.video_id, "shard": env.shard, "source_path": entry.location,
        "caption": entry.caption, "identity": entry.identity, "source": entry.source,
        "segments_json": json.dumps(list(entry.segments)) if entry.segments else None,
        "attributes_json": json.dumps(entry.attributes) if entry.attributes else None,
    }
    try:
        if entry.suffix.lower() not in cfg.extensions:
            raise vio.ProbeError(vio.UNSUPPORTED_EXTENSION, f"extension {entry.suffix!r} not in raw_videos.extensions")
        with vio.open_location(env.store, entry.location) as src:  # a stored video: streamed, not copied
            info = vio.probe(src)
            row["content_sha256"] = content_sha256(src)
        row.update(
            duration_s=info.duration_s, fps=info.fps, width=info.width, height=info.height, codec=info.codec,
            frame_count=info.frame_count, rotation=info.rotation, container=info.container, size_bytes=info.size_bytes,
            frames_declared=info.frames_declared, duration_declared_s=info.duration_declared_s, complete=info.complete,
        )
        if info.width < cfg.min_width or info.height < cfg.min_height:
            raise vio.ProbeError(vio.LOW_RESOLUTION, f"{info.width}x{info.height} below {cfg.min_width}x{cfg.min_height}")
        if not cfg.min_fps <= info.fps <= cfg.max_fps:
            raise vio.ProbeError(vio.BAD_FPS, f"{info.fps:.2f} fps outside [{cfg.min_fps}, {cfg.max_fps}]")
        if not info.complete and info.duration_s < cfg.min_duration_s:
            raise vio.ProbeError(vio.TRUNCATED_SHORT, f"ends early: {_shortfall(info)}, below {cfg.min_duration_s} s")
        if info.duration_s < cfg.min_duration_s:
            raise vio.ProbeError(vio.TOO_SHORT, f"{info.duration_s:.2f} s below {cfg.min_duration_s} s")
        # a video that ends early but is long enough is used as far as it goes, and says so
        row.update(status="ok", reason=None, detail=None if info.complete else f"ends early: {_shortfall(info)}")
    except vio.ProbeError as exc:
        row.update(status="quarantined", reason=exc.reason, detail=exc.detail)
    return row


def raw_videos(ctx: StageContext) -> dict[str, Any]:
    """Register a shard of the raw pool (a folder on disk or a prefix of the store) and probe
    every file (one item per video on the execution engine); quarantine what cannot be used."""
    from curation.registry import DUPLICATE, raw_pool

    pool = raw_pool(ctx.params, ctx.store)
    entries = pool.list_shard(ctx.shard)
    run = run_items(ctx, ItemWork(probe_entry), entries, label=lambda e: e.name)
    rows = run.results
    first_with_hash: dict[str, str] = {}  # content hash -> the first usable video with it
    for row in rows:  # in pool order, so the kept copy is the same whatever the engine
        if row["status"] != "ok":
            continue
        first = first_with_hash.setdefault(row["content_sha256"], row["video_id"])
        if first != row["video_id"]:  # copies in earlier shards are found per clip by clip_dedup
            row.update(status="quarantined", reason=DUPLICATE, duplicate_of=first,
                       detail=f"byte-identical to {first} (sha256 {row['content_sha256'][:12]})")
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.RAW_VIDEOS))
    ok = [r for r in rows if r["status"] == "ok"]
    quarantined = [r for r in rows if r["status"] != "ok"]
    return {
        "table": ctx.table_key(),
        "pool": pool.where(ctx.shard),
        "videos_in": len(rows),
        "videos_ok": len(ok),
        "quarantined": len(quarantined),
        "quarantine_by_reason": counts_by([r["reason"] for r in quarantined]),
        "total_duration_s": round(sum(r["duration_s"] for r in ok), 2),
        "partial_videos_used": sum(not r["complete"] for r in ok),
        "quarantine_preview": _preview(quarantined, ["video_id", "reason", "detail"], 20),
        "preview": _preview(ok, ["video_id", "duration_s", "fps", "width", "height", "codec"]),
        **run.metadata(),
    }


def _shortfall(info) -> str:
    """What is present of a video that ends before its container's declaration."""
    declared = (f"{info.frames_declared} declared frames" if info.frames_declared
                else f"{info.duration_declared_s} s declared")
    return f"{info.frame_count} frames ({info.duration_s:.2f} s) present of {declared}"


def _raw_pool_hash(ctx: StageContext) -> str:
    from curation.registry import raw_pool

    return raw_pool(ctx.params, ctx.store).content_hash(ctx.shard)


# ---------------------------------------------------------------- scene_clips


def load_shot_models(env: ItemEnv):
    """The models scene_clips runs, loaded once per worker: TransNetV2 and the similarity
    embedder of the PySceneDetect refinement, for the backends params run, and clip_quality's
    OCR when its analyses run in this stage's pass (`curation.clip_analysis.SceneQualityPass`)."""
    from curation.clip_analysis import scene_pass_possible, scene_pass_tag
    from curation.features import build_frame_embedder
    from curation.shot_detectors import backends_to_run
    from curation.shot_transnetv2 import load_transnetv2

    cfg = env.params.scene_clips
    backends = backends_to_run(cfg)
    embedder = (build_frame_embedder(cfg.similarity_backend, cfg.pretrained_model, params_key="scene_clips.similarity_backend")
                if "pyscenedetect" in backends else None)
    transnet = load_transnetv2(model_device(env.params)) if "transnetv2" in backends else None
    tag = None
    if scene_pass_possible(env.params) is None:
        load_chosen(TEXT_SCANNERS, env)
        tag = scene_pass_tag(env.params)
    return embedder, transnet, tag


def cut_video(env: ItemEnv, models, video: dict) -> dict[str, Any]:
    """Shots of one usable raw video and its scene_clips and scene_cuts rows: each clip a span
    of the source (`curation.clip_spans.ClipSpan`), written by curated_clips only if it
    passes every filter. When the shot backend streams its boundaries (TransNetV2), the same
    decode also analyses each clip for clip_quality (`SceneQualityPass`): the `quality` rows."""
    from curation.clip_analysis import SceneQualityPass
    from curation.scenes import segments_from_boundaries
    from curation.shot_detectors import TRANSITION_REASON, detect_shots
    from curation.shot_transnetv2 import one_torch_thread
    from curation.video_io import DECODE_STATS, VideoDecoder, _pts, open_location

    cfg = env.params.scene_clips
    embedder, transnet, tag = models
    passes_before = DECODE_STATS.total_passes()
    t0 = time.perf_counter()
    quality = None
    # a video of a store pool is a stream (ranged reads, no copy)
    with open_location(env.store, video["source_path"]) as src:
        decoder = VideoDecoder(src, width=cfg.analysis_width)
        frame_times: list[float] = []
        frame_pts: list[int | None] = []

        def frames(decoder=decoder, frame_times=frame_times, frame_pts=frame_pts):
            nonlocal quality
            for timed, image in decoder.lazy_frames():
                frame_times.append(timed.time_s)
                frame_pts.append(_pts(timed.payload))
                small = image()  # first: the source's size as displayed is known once a frame is converted
                if tag is not None:
                    if quality is None:
                        quality = SceneQualityPass(env.params, _clip_rate(cfg, decoder), decoder.source_size,
                                                   lambda: text_scanner(env.params.clip_quality))
                    quality.push(timed, image)
                yield small

        def settle(detectors) -> None:
            if quality is not None:
                det = detectors["transnetv2"]
                quality.advance(det.settled(), det.cuts, det.transitions)

        with one_torch_thread() if transnet is not None else contextlib.nullcontext():
            shots = detect_shots(frames(), float(video["fps"]), cfg, embedder, transnet_model=transnet, on_frame=settle)
            if quality is not None:
                quality.finish(shots.n_frames, shots.cuts, shots.transitions)
    times = np.asarray(frame_times, float)
    n_frames = shots.n_frames
    segments = segments_from_boundaries(shots.cuts, shots.transitions, n_frames, decoder.fps,
                                        cfg.min_duration_s, cfg.transition_margin_frames,
                                        times=times, end_s=decoder.end_s)
    rate = _clip_rate(cfg, decoder)
    # a span is found again by its first frame's timestamp only when every frame has its own
    # and they increase in presentation order; otherwise it is read from the video's start
    seekable = all(p is not None for p in frame_pts) and all(a < b for a, b in zip(frame_pts, frame_pts[1:]))
    t1 = time.perf_counter()
    psd = shots.by_backend.get("pyscenedetect")
    cut_row = {
        "video_id": video["video_id"], "n_frames": n_frames, "fps": decoder.fps,
        "cuts_pyscenedetect": psd.candidates["pyscenedetect"] if psd else None,
        "cuts_similarity": psd.candidates["similarity"] if psd else None, "cuts_final": shots.cuts,
        "min_adjacent_similarity": psd.min_adjacent_similarity if psd else None,
        "similarity_backend": embedder.name if embedder else None,
        "frames_declared": video.get("frames_declared"), "duration_s": round(decoder.end_s, 4),
        "decode_errors": decoder.decode_errors, "first_decode_error": decoder.first_error,
        "frames_late": decoder.frames_late,
        "shot_backend": shots.selected,
        "transitions": [{"start_frame": t.start_frame, "end_frame": t.end_frame, "reason": TRANSITION_REASON}
                        for t in shots.transitions],
        "backends": [{"backend": b.backend, "cuts": b.cuts, "transitions": [[t.start_frame, t.end_frame] for t in b.transitions]}
                     for b in shots.by_backend.values()],
    }
    clip_rows = []
    for s in segments:
        clip_id = f"{video['video_id']}-s{s.index:02d}"
        end_s = float(times[s.end_frame]) if s.end_frame < n_frames else decoder.end_s
        clip_rows.append({
            "clip_id": clip_id, "video_id": video["video_id"], "shard": env.shard, "scene_index": s.index,
            "start_frame": s.start_frame, "end_frame": s.end_frame,
            "start_s": round(float(times[s.start_frame]), 4), "end_s": round(end_s, 4),
            "duration_s": s.duration_s, "fps": float(rate),
            "width": video["width"] - video["width"] % 2, "height": video["height"] - video["height"] % 2,
            "kept": s.kept, "drop_reason": s.drop_reason,
            "caption": video["caption"], "identity": video["identity"],
            "source_path": video["source_path"],
            "start_pts": frame_pts[s.start_frame] if seekable and s.start_frame < n_frames else None,
            "fps_num": rate.numerator, "fps_den": rate.denominator,
        })
    quality_rows, quality_s = [], 0.0
    # a pass that met a decode error or misordered timestamps leaves its clips to clip_quality's
    # own decode of each span, which reads them its own way
    if quality is not None and not decoder.decode_errors and not decoder.frames_late:
        quality_s = quality.seconds
        for s, row in zip(segments, clip_rows):
            analysed = quality.rows.get((s.start_frame, s.end_frame))
            if analysed is not None and s.kept:
                quality_rows.append({"clip_id": row["clip_id"], **analysed, "decode_passes": 0, "pass_tag": tag})
    # Timings and decode counts vary from run to run and engine to engine: metadata only.
    return {"cuts": cut_row, "clips": clip_rows, "quality": quality_rows, "detect_s": t1 - t0 - quality_s,
            "quality_s": quality_s, "quality_spilled": quality is not None and quality.spilled_at is not None,
            "shot_seconds": {b.backend: b.seconds for b in shots.by_backend.values()},
            "decode_passes": DECODE_STATS.total_passes() - passes_before}


def _clip_rate(cfg, decoder) -> Fraction:
    """The constant rate a clip is planned at: `scene_clips.output_fps`, else the source's average."""
    return Fraction(cfg.output_fps).limit_denominator(1001) if cfg.output_fps else decoder.rate


def scene_clips(ctx: StageContext) -> dict[str, Any]:
    """Cut every usable raw video into single-shot clips, recorded as spans of the source, one
    item per video on the execution engine (the shot models loaded once per worker).

    A video streams once through the decoder (presentation order, timestamps) into the shot
    detectors (`curation.shot_detectors.detect_shots`, streaming: memory does not grow with its
    length): hard cuts split clips, gradual transitions (dissolves, fades) are left out of both
    neighbouring clips and recorded in the scene_cuts table with their reason. Clip times come
    from the timestamps; a clip is planned at a constant rate (`scene_clips.output_fps`, by
    default the source's average rate) lasting its span. Nothing is encoded here: curated_clips
    writes the clips that pass every filter. With TransNetV2 (boundaries settled while
    streaming) the same decode also makes clip_quality's analyses and the embedded duplicate
    signature of every clip (`curation.clip_analysis.SceneQualityPass`, the scene_quality
    table, tagged with the settings and code they were made with): each video is decoded
    once for the whole curation. A killed run resumes with the unfinished videos.
    """
    from curation.clip_analysis import scene_pass_possible
    from curation.shot_detectors import backends_to_run

    cfg = ctx.params.scene_clips
    raw = read_table(ctx.store, ctx.table_key("raw_videos"), needed_by="scene_clips").to_pylist()
    videos = [r for r in raw if r["status"] == "ok"]
    backends = backends_to_run(cfg)
    work = ItemWork(cut_video, setup=load_shot_models, uses_gpu="transnetv2" in backends)
    run = run_items(ctx, work, videos, label=lambda v: v["video_id"], cost=lambda v: v["frame_count"])
    cut_rows = [r["cuts"] for r in run.results]
    clip_rows = [c for r in run.results for c in r["clips"]]
    quality_rows = [q for r in run.results for q in r["quality"]]
    write_table(ctx.store, ctx.table_key("scene_cuts"), to_table(cut_rows, schemas.SCENE_CUTS))
    write_table(ctx.store, ctx.table_key("scene_quality"), to_table(quality_rows, schemas.SCENE_QUALITY))
    write_table(ctx.store, ctx.table_key(), to_table(clip_rows, schemas.SCENE_CLIPS))
    kept_rows = [r for r in clip_rows if r["kept"]]
    similarity = next((r["similarity_backend"] for r in cut_rows if r["similarity_backend"]), None)
    return {
        "table": ctx.table_key(),
        "videos_in": len(videos),
        "scenes_found": len(clip_rows),
        "clips_out": len(kept_rows),
        "dropped_by_reason": counts_by([r["drop_reason"] for r in clip_rows]),
        "cuts_total": sum(len(r["cuts_final"]) for r in cut_rows),
        "transitions_total": sum(len(r["transitions"]) for r in cut_rows),
        "frames_in_transitions": sum(t["end_frame"] - t["start_frame"] for r in cut_rows for t in r["transitions"]),
        "shot_backend": cfg.shot_backend,
        "shot_seconds_by_backend": {name: round(sum(r["shot_seconds"].get(name, 0.0) for r in run.results), 3)
                                    for name in backends},
        "similarity_backend": similarity,
        "clip_seconds": round(sum(r["duration_s"] for r in kept_rows), 2),
        # videos resumed from a killed run were decoded by it: counted with their recorded passes
        "decode_passes_per_video": round(sum(r["decode_passes"] for r in run.results) / max(1, len(videos)), 2),
        "frames_decoded": sum(r["n_frames"] for r in cut_rows),
        "videos_with_decode_errors": sum(r["decode_errors"] > 0 for r in cut_rows),
        "detect_seconds": round(sum(r["detect_s"] for r in run.results), 3),
        # clip_quality's analyses made in this pass (curation.clip_analysis.SceneQualityPass)
        "quality_in_pass": scene_pass_possible(ctx.params) or f"{len(quality_rows)} of {len(kept_rows)} kept clips",
        "quality_in_pass_seconds": round(sum(r["quality_s"] for r in run.results), 3),
        "videos_past_pending_limit": sum(r["quality_spilled"] for r in run.results),
        "preview": _preview(kept_rows, ["clip_id", "start_s", "end_s", "duration_s"]),
        **run.metadata(),
    }


# ---------------------------------------------------------------- clip_quality


def analyse_clip(path, cfg, aesthetic_scorer=None, span=None, signature=None) -> dict[str, Any]:
    """Every quality analyser of one clip (`curation.clip_analysis.ClipAnalysis`) over a
    decode of its own, in windows of `cfg.window_frames` sampled frames (memory does not grow
    with the clip's length).

    `path`: a file path or a seekable binary stream (curation.video_io.VideoSource): the clip,
    or with `span` (`curation.clip_spans.ClipSpan`) its source video, the clip read there frame
    for frame as its written clip shows it.

    `signature` (params `clip_signatures`, with `span`): the same pass also hashes the clip's
    frames at the signature's times (`curation.dedup.SignatureHasher`), so clip_signatures
    reads them instead of decoding the span again; the row's `signature_*` fields are null
    without it.
    """
    from curation.clip_analysis import ClipAnalysis
    from curation.video_io import DECODE_STATS, VideoDecoder

    t0 = time.perf_counter()
    before = DECODE_STATS.total_passes()
    hashed = None
    if span is not None:
        from curation.clip_spans import SpanDecoder
        from curation.dedup import SignatureHasher

        if signature is not None:
            hashed = SignatureHasher(span.rate, sample_fps=signature.sample_fps, width=signature.width,
                                   zooms=signature.zooms)
        decoder = SpanDecoder(path, span, width=cfg.analysis_width, sample_fps=cfg.sample_fps, on_tick=hashed)
    else:
        decoder = VideoDecoder(path, width=cfg.analysis_width, sample_fps=cfg.sample_fps)
    analysis = ClipAnalysis(cfg, text_scanner(cfg), aesthetic_scorer, hashed, signature)
    for batch in decoder.windows(analysis.window):
        analysis.add_batch(batch)
    if not analysis.frames:
        raise ValueError(f"clip {getattr(path, 'name', path)} decoded to zero frames")
    row = analysis.result(decoder.fps, decoder.source_size)
    return {**row, "decode_passes": DECODE_STATS.total_passes() - before,
            "analysis_seconds": round(time.perf_counter() - t0, 4)}


def text_scanner(cfg):
    """A fresh per-clip scanner of the OCR backend params name (None for `none`)."""
    from curation.clip_analysis import ocr_every

    build = TEXT_SCANNERS.get(cfg.ocr_backend).build
    return build(cfg, ocr_every(cfg)) if build is not None else None


def load_rapidocr(env: ItemEnv) -> None:
    """RapidOCR's sessions at the analysis width, cached per process."""
    from curation.quality import _rapidocr

    _rapidocr(env.params.clip_quality.analysis_width)


def load_laion_aesthetic(env: ItemEnv):
    """CLIP + the LAION aesthetic head."""
    from curation.aesthetic import LaionAestheticScorer

    cfg = env.params.clip_quality
    return LaionAestheticScorer(env.params.resolve(cfg.aesthetic_mlp_path), cfg.aesthetic_clip_model)


def embedded_text_scanner(cfg, every: int):
    """RapidOCR over every `every`-th sampled frame, with the clip_quality thresholds."""
    from curation.quality import TextScanner

    return TextScanner(every=every, confidence=cfg.ocr_confidence, min_chars=cfg.ocr_min_chars,
                       max_line_height=cfg.ocr_max_line_height, gate_width=cfg.ocr_gate_width,
                       gate_threshold=cfg.ocr_gate_threshold)


# an OCR backend's `build(cfg, every)` makes the per-clip scanner analyse_clip feeds (`add`, `result`)
TEXT_SCANNERS = BackendRegistry("OCR backend", ("clip_quality.ocr_backend",), {
    "embedded": Backend(load_rapidocr, build=embedded_text_scanner),
    "none": Backend(),
})
# a pretrained aesthetic scorer has `score_clip(frames, n)` and `name`
AESTHETIC_SCORERS = BackendRegistry("aesthetic backend", ("clip_quality.aesthetic_backend",), {
    "none": Backend(),
    "pretrained": Backend(load_laion_aesthetic, uses_gpu=True),
})


def load_quality_models(env: ItemEnv):
    """The models clip_quality runs, loaded once per worker: RapidOCR at the analysis width
    (its sessions are cached per process) and, with the pretrained backend, CLIP + the LAION
    aesthetic head."""
    load_chosen(TEXT_SCANNERS, env)
    return load_chosen(AESTHETIC_SCORERS, env)


def analyse_stored_clip(env: ItemEnv, scorer, clip: dict) -> dict[str, Any]:
    """The clip_quality row of one kept clip, read from its span of the source video (no clip
    is written before it passes), with its analysis time."""
    from curation.clip_spans import ClipSpan
    from curation.video_io import open_location

    with open_location(env.store, clip["source_path"]) as src:  # on S3: ranged reads, no local copy
        row = {"clip_id": clip["clip_id"], **analyse_clip(src, env.params.clip_quality, scorer, span=ClipSpan.of(clip),
                                                          signature=pass_signature(env.params))}
    return row


def clip_quality(ctx: StageContext) -> dict[str, Any]:
    """Motion, text overlays, technical quality and (pretrained) aesthetics per kept clip.

    scene_clips' decode already analysed most clips (`curation.clip_analysis.SceneQualityPass`,
    its scene_quality table): a row made under the current settings and analyser code (its
    `pass_tag`) is taken as it is. Every other clip is analysed from its span of the source,
    one item per clip through an actor pool that holds the OCR (and aesthetic) models."""
    from curation.clip_analysis import scene_pass_possible, scene_pass_tag

    cfg = ctx.params.clip_quality
    clips = [r for r in read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="clip_quality").to_pylist() if r["kept"]]
    from_scene: dict[str, dict[str, Any]] = {}
    if scene_pass_possible(ctx.params) is None and ctx.store.exists(ctx.table_key("scene_quality")):
        tag = scene_pass_tag(ctx.params)
        from_scene = {r["clip_id"]: {k: v for k, v in r.items() if k != "pass_tag"}
                      for r in read_table(ctx.store, ctx.table_key("scene_quality")).to_pylist() if r["pass_tag"] == tag}
    todo = [c for c in clips if c["clip_id"] not in from_scene]
    work = item_work(analyse_stored_clip, AESTHETIC_SCORERS, ctx.params, setup=load_quality_models)
    run = run_items(ctx, work, todo, label=lambda c: c["clip_id"], cost=lambda c: c["duration_s"])
    decoded = {r["clip_id"]: r for r in run.results}
    # Timings vary from run to run and engine to engine: metadata, never table data.
    seconds = sum(r["analysis_seconds"] for r in run.results)
    rows = [from_scene.get(c["clip_id"]) or {k: v for k, v in decoded[c["clip_id"]].items() if k != "analysis_seconds"}
            for c in clips]
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.CLIP_QUALITY))
    frames = sum(r["frames_analysed"] for r in rows)
    return {
        "table": ctx.table_key(),
        "clips_in": len(clips),
        "clips_with_text": sum(bool(r["has_text"]) for r in rows),
        "decode_passes_per_clip": round(sum(r["decode_passes"] for r in rows) / max(1, len(rows)), 3),
        "clips_from_scene_pass": len(clips) - len(todo),
        "clips_decoded_here": len(todo),
        "frames_analysed": frames,
        "analysis_frames_per_s": (round(sum(decoded[c["clip_id"]]["frames_analysed"] for c in todo) / seconds, 2)
                                  if seconds else None),
        "motion_foreground": _summary([r["motion_foreground"] for r in rows]),
        "sharpness": _summary([r["sharpness"] for r in rows]),
        "aesthetic_backend": rows[0]["aesthetic_backend"] if rows else None,
        "ocr_backend": cfg.ocr_backend,
        "preview": _preview(rows, ["clip_id", "motion_foreground", "has_text", "text_free_area", "sharpness", "noise"]),
        **run.metadata(),
    }


# ---------------------------------------------------------------- curated_clips


def write_survivor(env: ItemEnv, models: None, clip: dict) -> dict[str, Any]:
    """Write one clip that passed every filter from its span of the source video (cropped to
    its text-free area when it has text) as an object of the run (`env.objects_prefix`)."""
    from curation.clip_spans import ClipSpan, write_span
    from curation.video_io import open_location

    enc = env.params.scene_clips
    t0 = time.perf_counter()
    with temp_dir() as tmp:
        local = Path(tmp) / f"{clip['clip_id']}.mp4"
        with open_location(env.store, clip["source_path"]) as src:
            frames, copied = write_span(src, ClipSpan.of(clip), local, crop=tuple(clip["crop"]) if clip["cropped"] else None,
                                        crf=enc.encode_crf, preset=enc.encode_preset, copy=enc.copy_whole_gops,
                                        threads=enc.encode_threads)
        env.store.put_file(layout.join(env.objects_prefix, layout.CLIPS, layout.clip_file(clip["clip_id"])), local)
    # Timings vary from run to run and engine to engine: metadata only.
    return {"clip_id": clip["clip_id"], "frames": frames, "copied": copied, "encode_s": time.perf_counter() - t0}


def curated_clips(ctx: StageContext) -> dict[str, Any]:
    """Keep clips that pass every filter and write them, and only them, from their spans of the
    source (one item per clip on the execution engine); crop those with text to their
    text-free area. Rejected clips are never encoded: they keep no clip_key."""
    cfg = ctx.params.curated_clips
    clips = {r["clip_id"]: r for r in read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="curated_clips").to_pylist() if r["kept"]}
    quality = read_table(ctx.store, ctx.table_key("clip_quality"), needed_by="curated_clips").to_pylist()
    copies = {r["clip_id"]: r for r in read_table(ctx.store, ctx.table_key("clip_dedup"), needed_by="curated_clips").to_pylist()
              if r["duplicate"]}
    rows = []
    plain_prefix, cropped_prefix = layout.clips(ctx.shard), layout.cropped_clips(ctx.shard)
    for q in quality:
        clip = clips[q["clip_id"]]
        reasons = rejection_reasons(q, cfg)
        dup = copies.get(q["clip_id"])
        if dup:
            reasons.append(dup["duplicate"])  # duplicate | near_duplicate
        x, y, w, h = q["crop"]
        cropped = bool(q["has_text"]) and not reasons and (w, h) != (clip["width"], clip["height"])
        rows.append({
            "clip_id": q["clip_id"], "video_id": clip["video_id"], "shard": ctx.shard, "kept": not reasons,
            "reasons": reasons,
            "clip_key": None if reasons else (layout.cropped_clip if cropped else layout.clip)(ctx.shard, q["clip_id"]),
            "cropped": cropped, "crop": q["crop"],
            "width": w if cropped else clip["width"], "height": h if cropped else clip["height"],
            "duration_s": clip["duration_s"], "fps": clip["fps"], "motion_foreground": q["motion_foreground"],
            "has_text": q["has_text"], "sharpness": q["sharpness"], "aesthetic": q["aesthetic"],
            "caption": clip["caption"], "identity": clip["identity"],
            "duplicate_of": dup["duplicate_of"] if dup else None,
        })
    survivors = [{**clips[r["clip_id"]], "cropped": r["cropped"], "crop": r["crop"]} for r in rows if r["kept"]]
    run = run_items(ctx, ItemWork(write_survivor), survivors, label=lambda c: c["clip_id"], cost=lambda c: c["duration_s"])
    with ctx.store.staged_prefix(plain_prefix) as plain, ctx.store.staged_prefix(cropped_prefix) as cropped_staging:
        for row in rows:
            if row["kept"]:
                with ctx.store.local_path(layout.join(run.objects_prefix, layout.CLIPS, layout.clip_file(row["clip_id"]))) as path:
                    ctx.store.put_file(layout.join(cropped_staging if row["cropped"] else plain, layout.clip_file(row["clip_id"])), path)
    if not ctx.fingerprint:  # no progress to resume from: this run's objects are not needed again
        ctx.store.delete_prefix(run.objects_prefix)
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.CURATED_CLIPS))
    kept = [r for r in rows if r["kept"]]
    rejected = [r for r in rows if not r["kept"]]
    return {
        "table": ctx.table_key(),
        "clips_in": len(rows),
        "clips_out": len(kept),
        "cropped": sum(r["cropped"] for r in kept),
        "rejections_by_reason": counts_by([reason for r in rejected for reason in r["reasons"]]),
        "curated_seconds": round(sum(r["duration_s"] for r in kept), 2),
        "rejected_preview": _preview([{**r, "reasons": ", ".join(r["reasons"])} for r in rejected],
                                     ["clip_id", "reasons", "duplicate_of"], 20),
        "preview": _preview(kept, ["clip_id", "duration_s", "motion_foreground", "cropped"]),
        "clips_written": len(run.results),
        "clips_copied": sum(r["copied"] for r in run.results),  # whole groups of pictures: packets copied
        "frames_written": sum(r["frames"] for r in run.results),
        "encode_seconds": round(sum(r["encode_s"] for r in run.results), 3),
        **run.metadata(),
    }


# ---------------------------------------------------------------- registry

STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in (
        StageSpec("demo_pool", demo_pool, ("demo_pool",), (),
                  "Generate a demo shard (procedural videos with ground truth, or real footage).",
                  outputs=(Output("${demo_pool.pool_root}/{shard}"), Output("${demo_pool.ground_truth_root}/{shard}.json"))),
        StageSpec("raw_videos", raw_videos, ("raw_videos",), (),
                  "Register a shard and probe each file; quarantine unusable ones.", input_hash=_raw_pool_hash,
                  inputs=("${raw_videos.pool_root}/{shard}",)),
        StageSpec("scene_clips", scene_clips, ("scene_clips",), ("raw_videos",),
                  "Scene cuts and clips as spans of their source video (written by curated_clips if they pass).",
                  outputs=(Output(layout.table("scene_clips", "{shard}")), Output(layout.table("scene_cuts", "{shard}")),
                           Output(layout.table("scene_quality", "{shard}")))),
        # clip_signatures' settings too: its embedded hashes are computed in this stage's pass
        StageSpec("clip_quality", clip_quality, ("clip_quality", "clip_signatures"), ("scene_clips",),
                  "Motion, text, technical and aesthetic scores (and the embedded duplicate signatures, same pass)."),
        StageSpec("curated_clips", curated_clips, ("curated_clips", "scene_clips"), ("scene_clips", "clip_quality", "clip_dedup"),
                  "Clips passing every filter and not repeating an earlier clip, with rejection reasons.",
                  outputs=(Output(layout.clips("{shard}")), Output(layout.cropped_clips("{shard}")),
                           Output(layout.table("curated_clips", "{shard}")))),
    )
}


def _dedup_specs() -> list[StageSpec]:
    from curation import dedup_stages

    return [
        StageSpec("clip_signatures", dedup_stages.clip_signatures, ("clip_signatures",),
                  ("scene_clips", "raw_videos", "clip_quality"),
                  "Perceptual signature of every clip; the shard joins the duplicate index.",
                  # when the shard joined the duplicate index: written once, kept across reruns
                  outputs=(Output(layout.table("clip_signatures", "{shard}")),
                           Output(layout.shard_order_record("{shard}"), persist=True, cache=False))),
        # DVC cannot name "the shards registered before": its stage reads every shard's
        # signatures and so reruns when any shard's change, with the same result.
        StageSpec("clip_dedup", dedup_stages.clip_dedup, ("clip_dedup",), ("clip_signatures",),
                  "Exact and near duplicates of earlier clips of the shard and of every shard registered before it.",
                  prior_upstream=("clip_signatures",), prior_shards=dedup_stages.shards_before,
                  inputs=(layout.tables_prefix("clip_signatures"), layout.SHARD_ORDER)),
    ]


STAGES.update({spec.name: spec for spec in _dedup_specs()})
CURATION_STAGES = ("raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")


def _annotation_specs() -> list[StageSpec]:
    from curation import annotation_stages, subject_stages

    curated = ("curated_clips", "scene_clips")
    return [
        StageSpec("captions", annotation_stages.captions, ("captions",), (*curated, "raw_videos"),
                  "Subject-centric caption per clip; plural-entity captions dropped."),
        StageSpec("entities", annotation_stages.entities, ("entities",), ("captions",),
                  "Taxonomy entities (living / non-living) with fine-grained labels."),
        StageSpec("subjects", subject_stages.subjects, ("subjects",), ("entities", *curated),
                  "Boxes, masks (COCO RLE) and verification per entity."),
        StageSpec("faces", subject_stages.faces, ("faces",), ("subjects", "entities", *curated),
                  "Faces of human subjects (2 FPS, NMS, outliers)."),
        StageSpec("attributes", annotation_stages.attributes, ("attributes",), ("entities", "raw_videos", *curated),
                  "DH-FaceVid attributes of human subjects."),
        StageSpec("timelines", annotation_stages.timelines, ("timelines",), ("subjects", "entities", "captions", *curated),
                  "Sub-actions with start/end seconds per clip."),
        StageSpec("annotations", annotation_stages.annotations, (), ("subjects", "entities", "captions", "faces", "timelines", *curated),
                  "One joined row per verified subject: the input of training."),
    ]


STAGES.update({spec.name: spec for spec in _annotation_specs()})
ANNOTATION_STAGES = ("captions", "entities", "subjects", "faces", "attributes", "timelines", "annotations")


def _preview_spec() -> StageSpec:
    from curation.previews import clip_previews

    return StageSpec("clip_previews", clip_previews, ("clip_previews",),
                     ("annotations", "timelines", "curated_clips", "scene_clips"),
                     "Annotated H.264 preview per clip (boxes, masks, faces, timeline bar; rejected clips with "
                     "their reasons) and a contact sheet per shard.",
                     outputs=(Output(layout.table("clip_previews", "{shard}")), Output(layout.previews("{shard}"))))


STAGES["clip_previews"] = _preview_spec()
PREVIEW_STAGES = ("clip_previews",)
