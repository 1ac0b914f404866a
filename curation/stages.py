"""The curation stages as plain functions over (params, store, shard).

Dagster assets and the `reactid stage` CLI (which `dvc repro` calls) both run these
through `core.stage.run_stage`, so the two ways of running the graph share one
implementation. Each returns JSON-able metadata: counts, rejections by reason, timings
and a preview of its table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ParamsError
from core.progress import report
from core.stage import Output, StageContext, StageSpec, counts_by
from core.storage import temp_dir
from core.tables import read_table, to_table, write_table
from curation import schemas


def _preview(rows: list[dict], columns: list[str], n: int = 8) -> list[dict]:
    return [{c: r.get(c) for c in columns} for r in rows[:n]]


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
        n_videos=proc.n_videos, width=proc.width, height=proc.height, fps=proc.fps,
    )
    files = sorted(p.name for p in folder.iterdir() if p.suffix == ".mp4")
    location = str(folder)
    if prefix:
        shard_prefix = f"{prefix}/{ctx.shard}"
        with ctx.store.staged_prefix(shard_prefix) as staging:  # a rebuilt shard replaces the old one whole
            for path in sorted(folder.iterdir()):
                ctx.store.put_file(f"{staging}/{path.name}", path)
        location = ctx.store.uri(shard_prefix)
    return {"kind": spec.kind, "pool_folder": location, "ground_truth": str(truth), "files": len(files)}


# ---------------------------------------------------------------- raw_videos


def raw_videos(ctx: StageContext) -> dict[str, Any]:
    """Register a shard of the raw pool (a folder on disk or a prefix of the store) and probe
    every file; quarantine what cannot be used."""
    from curation import video_io as vio
    from curation.registry import raw_pool

    cfg = ctx.params.raw_videos
    pool = raw_pool(ctx.params, ctx.store)
    entries = pool.list_shard(ctx.shard)
    rows = []
    for i, entry in enumerate(entries):
        report(f"raw_videos[{ctx.shard}]", i, len(entries), entry.name)
        row: dict[str, Any] = {
            "video_id": entry.video_id, "shard": ctx.shard, "source_path": entry.location,
            "caption": entry.caption, "identity": entry.identity, "source": entry.source,
            "segments_json": json.dumps(list(entry.segments)) if entry.segments else None,
            "attributes_json": json.dumps(entry.attributes) if entry.attributes else None,
        }
        try:
            if entry.suffix.lower() not in cfg.extensions:
                raise vio.ProbeError(vio.UNSUPPORTED_EXTENSION, f"extension {entry.suffix!r} not in raw_videos.extensions")
            with vio.open_location(ctx.store, entry.location) as src:  # a stored video: streamed, not copied
                info = vio.probe(src)
            row.update(
                duration_s=info.duration_s, fps=info.fps, width=info.width, height=info.height, codec=info.codec,
                frame_count=info.frame_count, rotation=info.rotation, container=info.container, size_bytes=info.size_bytes,
            )
            if info.width < cfg.min_width or info.height < cfg.min_height:
                raise vio.ProbeError(vio.LOW_RESOLUTION, f"{info.width}x{info.height} below {cfg.min_width}x{cfg.min_height}")
            if not cfg.min_fps <= info.fps <= cfg.max_fps:
                raise vio.ProbeError(vio.BAD_FPS, f"{info.fps:.2f} fps outside [{cfg.min_fps}, {cfg.max_fps}]")
            if info.duration_s < cfg.min_duration_s:
                raise vio.ProbeError(vio.TOO_SHORT, f"{info.duration_s:.2f} s below {cfg.min_duration_s} s")
            row.update(status="ok", reason=None, detail=None)
        except vio.ProbeError as exc:
            row.update(status="quarantined", reason=exc.reason, detail=exc.detail)
        rows.append(row)
    report(f"raw_videos[{ctx.shard}]", len(entries), len(entries), "done")
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
        "quarantine_preview": _preview(quarantined, ["video_id", "reason", "detail"], 20),
        "preview": _preview(ok, ["video_id", "duration_s", "fps", "width", "height", "codec"]),
    }


def _raw_pool_hash(ctx: StageContext) -> str:
    from curation.registry import raw_pool

    return raw_pool(ctx.params, ctx.store).content_hash(ctx.shard)


# ---------------------------------------------------------------- scene_clips


def scene_clips(ctx: StageContext) -> dict[str, Any]:
    """Cut every usable raw video into single-shot clips and write them as H.264 MP4."""
    from curation.features import make_embedder
    from curation.scenes import detect_cuts, segments_from_cuts
    from curation.video_io import DECODE_STATS, Segment, decode_frames, open_location, write_segments

    cfg = ctx.params.scene_clips
    raw = read_table(ctx.store, ctx.table_key("raw_videos"), needed_by="scene_clips").to_pylist()
    videos = [r for r in raw if r["status"] == "ok"]
    embedder = make_embedder(cfg.similarity_backend, cfg.pretrained_model)
    clip_rows, cut_rows = [], []
    passes_before = DECODE_STATS.total_passes()
    t_detect = t_write = 0.0
    prefix = f"clips/{ctx.shard}"
    with temp_dir() as tmp:
        for i, video in enumerate(videos):
            report(f"scene_clips[{ctx.shard}]", i, len(videos), video["video_id"])
            t0 = time.perf_counter()
            # a video of a store pool is one stream for both passes (ranged reads, no copy)
            with open_location(ctx.store, video["source_path"]) as src:
                batch = decode_frames(src, width=cfg.analysis_width)
                cuts = detect_cuts(
                    batch.frames, embedder.embed(batch.frames), batch.fps, detector=cfg.detector,
                    adaptive_threshold=cfg.adaptive_threshold, content_threshold=cfg.content_threshold,
                    min_scene_len=cfg.min_scene_len_frames, similarity_threshold=cfg.similarity_threshold,
                    tolerance=cfg.merge_tolerance_frames,
                )
                n_frames = len(batch.frames)
                segments = segments_from_cuts(cuts.final, n_frames, batch.fps, cfg.min_duration_s)
                t1 = time.perf_counter()
                kept = [s for s in segments if s.kept]
                local = {s.index: Path(tmp) / f"{video['video_id']}-s{s.index:02d}.mp4" for s in kept}
                write_segments(
                    src, [Segment(s.start_frame, s.end_frame, local[s.index]) for s in kept],
                    crf=cfg.encode_crf, preset=cfg.encode_preset,
                )
            t_detect += t1 - t0
            t_write += time.perf_counter() - t1
            cut_rows.append({
                "video_id": video["video_id"], "n_frames": n_frames, "fps": batch.fps,
                "cuts_pyscenedetect": cuts.pyscenedetect, "cuts_similarity": cuts.similarity, "cuts_final": cuts.final,
                "min_adjacent_similarity": float(cuts.adjacent_similarity.min()) if len(cuts.adjacent_similarity) else None,
                "similarity_backend": embedder.name,
            })
            for s in segments:
                clip_id = f"{video['video_id']}-s{s.index:02d}"
                clip_rows.append({
                    "clip_id": clip_id, "video_id": video["video_id"], "shard": ctx.shard, "scene_index": s.index,
                    "start_frame": s.start_frame, "end_frame": s.end_frame,
                    "start_s": round(s.start_frame / batch.fps, 4), "end_s": round(s.end_frame / batch.fps, 4),
                    "duration_s": s.duration_s, "fps": batch.fps,
                    "width": video["width"] - video["width"] % 2, "height": video["height"] - video["height"] % 2,
                    "kept": s.kept, "drop_reason": s.drop_reason,
                    "clip_key": f"{prefix}/{clip_id}.mp4" if s.kept else None,
                    "caption": video["caption"], "identity": video["identity"],
                })
        with ctx.store.staged_prefix(prefix) as staging:
            for row in clip_rows:
                if row["kept"]:
                    ctx.store.put_file(f"{staging}/{row['clip_id']}.mp4", Path(tmp) / f"{row['clip_id']}.mp4")
    report(f"scene_clips[{ctx.shard}]", len(videos), len(videos), "done")
    write_table(ctx.store, ctx.table_key("scene_cuts"), to_table(cut_rows, schemas.SCENE_CUTS))
    write_table(ctx.store, ctx.table_key(), to_table(clip_rows, schemas.SCENE_CLIPS))
    kept_rows = [r for r in clip_rows if r["kept"]]
    passes = DECODE_STATS.total_passes() - passes_before
    return {
        "table": ctx.table_key(),
        "videos_in": len(videos),
        "scenes_found": len(clip_rows),
        "clips_out": len(kept_rows),
        "dropped_by_reason": counts_by([r["drop_reason"] for r in clip_rows]),
        "cuts_total": sum(len(r["cuts_final"]) for r in cut_rows),
        "cuts_added_by_similarity": sum(len(set(r["cuts_final"]) - set(r["cuts_pyscenedetect"])) for r in cut_rows),
        "similarity_backend": embedder.name,
        "clip_seconds": round(sum(r["duration_s"] for r in kept_rows), 2),
        "decode_passes_per_video": round(passes / max(1, len(videos)), 2),
        "detect_seconds": round(t_detect, 3),
        "write_seconds": round(t_write, 3),
        "preview": _preview(kept_rows, ["clip_id", "start_s", "end_s", "duration_s"]),
    }


# ---------------------------------------------------------------- clip_quality


def analyse_clip(path, cfg, aesthetic_scorer=None) -> dict[str, Any]:
    """Every quality analyser of one clip over a single shared decode.

    `path`: a file path or a seekable binary stream (curation.video_io.VideoSource).
    """
    from curation.quality import motion_score, scan_text, technical_quality
    from curation.video_io import DECODE_STATS, decode_frames

    t0 = time.perf_counter()
    before = DECODE_STATS.total_passes()
    batch = decode_frames(path, width=cfg.analysis_width, sample_fps=cfg.sample_fps)
    if not len(batch.frames):
        raise ValueError(f"clip {getattr(path, 'name', path)} decoded to zero frames")
    motion = motion_score(
        batch, flow_width=cfg.flow_width, method=cfg.flow_method, foreground_px=cfg.foreground_residual_px,
        min_foreground_fraction=cfg.min_foreground_fraction,
    )
    if cfg.ocr_backend == "embedded":
        every = max(1, int(round(cfg.sample_fps / cfg.ocr_fps)))
        text = scan_text(
            batch, every=every, confidence=cfg.ocr_confidence, min_chars=cfg.ocr_min_chars,
            max_line_height=cfg.ocr_max_line_height,
        )
        text_fields = {
            "text_frames_scanned": text.frames_scanned, "text_frames_flagged": text.frames_flagged,
            "has_text": text.has_text, "text_boxes": [list(b) for b in text.boxes[:64]], "ocr_texts": text.texts,
            "ocr_backend": "embedded:rapidocr(pp-ocr onnx)", "crop": list(text.crop), "text_free_area": text.text_free_area,
        }
    else:
        w, h = batch.source_size
        text_fields = {
            "text_frames_scanned": 0, "text_frames_flagged": 0, "has_text": None, "text_boxes": [], "ocr_texts": [],
            "ocr_backend": "none", "crop": [0, 0, w - w % 2, h - h % 2], "text_free_area": None,
        }
    tech = technical_quality(batch)
    aesthetic = aesthetic_scorer.score_clip(batch.frames, cfg.aesthetic_frames) if aesthetic_scorer else None
    return {
        "frames_analysed": len(batch.frames),
        "decode_passes": DECODE_STATS.total_passes() - before,
        "motion_foreground": motion.foreground, "motion_camera": motion.camera,
        "foreground_fraction": motion.foreground_fraction, "motion_backend": f"embedded:opencv-{cfg.flow_method}",
        **text_fields,
        "sharpness": tech.sharpness, "brightness": tech.brightness, "clipped": tech.clipped, "noise": tech.noise,
        "blockiness": tech.blockiness, "technical_backend": "classical",
        "aesthetic": aesthetic,
        "aesthetic_backend": aesthetic_scorer.name if aesthetic_scorer else "not computed (no embedded aesthetic model)",
        "analysis_seconds": round(time.perf_counter() - t0, 4),
    }


def clip_quality(ctx: StageContext) -> dict[str, Any]:
    """Motion, text overlays, technical quality and (pretrained) aesthetics per clip."""
    cfg = ctx.params.clip_quality
    clips = [r for r in read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="clip_quality").to_pylist() if r["kept"]]
    scorer = None
    if cfg.aesthetic_backend == "pretrained":
        from curation.aesthetic import LaionAestheticScorer

        scorer = LaionAestheticScorer(ctx.params.resolve(cfg.aesthetic_mlp_path), cfg.aesthetic_clip_model)
    rows = []
    for i, clip in enumerate(clips):
        report(f"clip_quality[{ctx.shard}]", i, len(clips), clip["clip_id"])
        with ctx.store.open_stream(clip["clip_key"]) as stream:  # on S3: ranged reads, no local copy
            rows.append({"clip_id": clip["clip_id"], **analyse_clip(stream, cfg, scorer)})
    report(f"clip_quality[{ctx.shard}]", len(clips), len(clips), "done")
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.CLIP_QUALITY))
    frames = sum(r["frames_analysed"] for r in rows)
    seconds = sum(r["analysis_seconds"] for r in rows)
    return {
        "table": ctx.table_key(),
        "clips_in": len(clips),
        "clips_with_text": sum(bool(r["has_text"]) for r in rows),
        "decode_passes_per_clip": round(sum(r["decode_passes"] for r in rows) / max(1, len(rows)), 3),
        "frames_analysed": frames,
        "analysis_frames_per_s": round(frames / seconds, 2) if seconds else None,
        "motion_foreground": _summary([r["motion_foreground"] for r in rows]),
        "sharpness": _summary([r["sharpness"] for r in rows]),
        "aesthetic_backend": rows[0]["aesthetic_backend"] if rows else None,
        "ocr_backend": cfg.ocr_backend,
        "preview": _preview(rows, ["clip_id", "motion_foreground", "has_text", "text_free_area", "sharpness", "noise"]),
    }


def _summary(values: list[float | None]) -> dict[str, float] | None:
    vals = np.asarray([v for v in values if v is not None], float)
    if not len(vals):
        return None
    return {k: round(float(f(vals)), 4) for k, f in (("min", np.min), ("median", np.median), ("max", np.max))}


# ---------------------------------------------------------------- curated_clips


def rejection_reasons(q: dict[str, Any], cfg) -> list[str]:
    """Every filter a clip fails (empty when it passes), thresholds from params."""
    reasons = []
    if q["motion_foreground"] < cfg.min_motion:
        reasons.append("low_motion")
    if q["has_text"] and q["text_free_area"] is not None and q["text_free_area"] < cfg.min_text_free_area:
        reasons.append("text_overlay_uncroppable")
    if q["sharpness"] < cfg.min_sharpness:
        reasons.append("blurry")
    if q["brightness"] < cfg.min_brightness:
        reasons.append("underexposed")
    if q["brightness"] > cfg.max_brightness:
        reasons.append("overexposed")
    if q["noise"] > cfg.max_noise:
        reasons.append("noisy")
    if q["blockiness"] is not None and q["blockiness"] > cfg.max_blockiness:
        reasons.append("blocky")
    if q["aesthetic"] is not None and q["aesthetic"] < cfg.min_aesthetic:
        reasons.append("low_aesthetic")
    return reasons


def curated_clips(ctx: StageContext) -> dict[str, Any]:
    """Keep clips that pass every filter; crop those with text to their text-free area."""
    from curation.video_io import Segment, write_segments

    cfg = ctx.params.curated_clips
    enc = ctx.params.scene_clips
    clips = {r["clip_id"]: r for r in read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="curated_clips").to_pylist() if r["kept"]}
    quality = read_table(ctx.store, ctx.table_key("clip_quality"), needed_by="curated_clips").to_pylist()
    rows = []
    prefix = f"clips_cropped/{ctx.shard}"
    with temp_dir() as tmp, ctx.store.staged_prefix(prefix) as staging:
        for i, q in enumerate(quality):
            report(f"curated_clips[{ctx.shard}]", i, len(quality), q["clip_id"])
            clip = clips[q["clip_id"]]
            reasons = rejection_reasons(q, cfg)
            x, y, w, h = q["crop"]
            cropped = bool(q["has_text"]) and not reasons and (w, h) != (clip["width"], clip["height"])
            key = clip["clip_key"]
            if cropped:
                local = Path(tmp) / f"{q['clip_id']}.mp4"
                with ctx.store.open_stream(clip["clip_key"]) as src:
                    write_segments(src, [Segment(0, 1 << 40, local, crop=(x, y, w, h))], crf=enc.encode_crf, preset=enc.encode_preset)
                ctx.store.put_file(f"{staging}/{q['clip_id']}.mp4", local)
                key = f"{prefix}/{q['clip_id']}.mp4"
            rows.append({
                "clip_id": q["clip_id"], "video_id": clip["video_id"], "shard": ctx.shard, "kept": not reasons,
                "reasons": reasons, "clip_key": key, "cropped": cropped, "crop": q["crop"],
                "width": w if cropped else clip["width"], "height": h if cropped else clip["height"],
                "duration_s": clip["duration_s"], "fps": clip["fps"], "motion_foreground": q["motion_foreground"],
                "has_text": q["has_text"], "sharpness": q["sharpness"], "aesthetic": q["aesthetic"],
                "caption": clip["caption"], "identity": clip["identity"],
            })
    report(f"curated_clips[{ctx.shard}]", len(quality), len(quality), "done")
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
        "rejected_preview": _preview([{**r, "reasons": ", ".join(r["reasons"])} for r in rejected], ["clip_id", "reasons"], 20),
        "preview": _preview(kept, ["clip_id", "duration_s", "motion_foreground", "cropped"]),
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
        StageSpec("scene_clips", scene_clips, ("scene_clips",), ("raw_videos",), "Scene cuts and H.264 clips.",
                  outputs=(Output("clips/{shard}"), Output("tables/scene_clips/{shard}.parquet"),
                           Output("tables/scene_cuts/{shard}.parquet"))),
        StageSpec("clip_quality", clip_quality, ("clip_quality",), ("scene_clips",),
                  "Motion, text, technical and aesthetic scores."),
        StageSpec("curated_clips", curated_clips, ("curated_clips", "scene_clips"), ("scene_clips", "clip_quality"),
                  "Clips passing every filter, with rejection reasons.",
                  outputs=(Output("clips_cropped/{shard}"), Output("tables/curated_clips/{shard}.parquet"))),
    )
}
CURATION_STAGES = ("raw_videos", "scene_clips", "clip_quality", "curated_clips")


def _annotation_specs() -> list[StageSpec]:
    from curation import annotation_stages as A
    from curation import subject_stages as B

    curated = ("curated_clips", "scene_clips")
    return [
        StageSpec("captions", A.captions, ("captions",), (*curated, "raw_videos"),
                  "Subject-centric caption per clip; plural-entity captions dropped."),
        StageSpec("entities", A.entities, ("entities",), ("captions",),
                  "Taxonomy entities (living / non-living) with fine-grained labels."),
        StageSpec("subjects", B.subjects, ("subjects",), ("entities", *curated),
                  "Boxes, masks (COCO RLE) and verification per entity."),
        StageSpec("faces", B.faces, ("faces",), ("subjects", "entities", *curated),
                  "Faces of human subjects (2 FPS, NMS, outliers)."),
        StageSpec("attributes", A.attributes, ("attributes",), ("entities", "raw_videos", *curated),
                  "DH-FaceVid attributes of human subjects."),
        StageSpec("timelines", A.timelines, ("timelines",), ("subjects", "entities", "captions", *curated),
                  "Sub-actions with start/end seconds per clip."),
        StageSpec("annotations", A.annotations, (), ("subjects", "entities", "captions", "faces", "timelines", *curated),
                  "One joined row per verified subject: the input of training."),
    ]


STAGES.update({spec.name: spec for spec in _annotation_specs()})
ANNOTATION_STAGES = ("captions", "entities", "subjects", "faces", "attributes", "timelines", "annotations")


def _preview_spec() -> StageSpec:
    from curation.previews import clip_previews

    return StageSpec("clip_previews", clip_previews, ("clip_previews",), ("annotations", "timelines", "curated_clips"),
                     "Annotated H.264 preview per clip (boxes, masks, faces, timeline bar; rejected clips with "
                     "their reasons) and a contact sheet per shard.",
                     outputs=(Output("tables/clip_previews/{shard}.parquet"), Output("previews/{shard}")))


STAGES["clip_previews"] = _preview_spec()
PREVIEW_STAGES = ("clip_previews",)
