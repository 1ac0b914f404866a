"""Annotation stages (paper Sec. 3.1, App. B.2; DH-FaceVid): captions -> entities ->
subjects -> faces / attributes / timelines -> annotations, each per shard over the
curated clips. Each stage picks its backend from params; every row names its backend.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from core.backends import Backend, BackendRegistry, item_work, load_chosen
from core.execution import ItemEnv, model_device, run_items
from core.stage import StageContext
from core.summaries import counts_by, preview_rows
from core.tables import read_table, to_table, write_table
from curation import annotation_schemas as schemas


def _rows(ctx: StageContext, name: str) -> list[dict]:
    return read_table(ctx.store, ctx.table_key(name), needed_by=ctx.stage).to_pylist()


def _clips(ctx: StageContext) -> dict[str, dict]:
    """Kept curated clips joined with their position in the source video."""
    scenes = {r["clip_id"]: r for r in _rows(ctx, "scene_clips")}
    return {r["clip_id"]: {**r, "start_s": scenes[r["clip_id"]]["start_s"], "end_s": scenes[r["clip_id"]]["end_s"]}
            for r in _rows(ctx, "curated_clips") if r["kept"]}


def _clip_frames(store, clip: dict, n: int, width: int = 448) -> np.ndarray:
    """`n` frames spread over a clip, for the pretrained VLM backends."""
    from curation.video_io import decode_frames

    with store.open_stream(clip["clip_key"]) as stream:  # on S3: ranged reads, no local copy
        batch = decode_frames(stream, width=width)
    idx = np.linspace(0, len(batch.frames) - 1, min(n, len(batch.frames))).round().astype(int)
    return batch.frames[idx]


# ---------------------------------------------------------------- backends


def load_vlm(env: ItemEnv, model: str, **kwargs: Any):
    """Qwen2.5-VL behind the captioner interface, once per worker, on the worker's device."""
    from curation.pretrained.captioner import VlmCaptioner

    return VlmCaptioner(model, device=model_device(env.params), **kwargs)


def load_caption_vlm(env: ItemEnv):
    cfg = env.params.captions
    return load_vlm(env, cfg.model, num_frames=cfg.frames)


def load_entity_vlm(env: ItemEnv):
    return load_vlm(env, env.params.entities.model)


def load_attribute_vlm(env: ItemEnv):
    return load_vlm(env, env.params.attributes.model)


def load_timeline_models(env: ItemEnv):
    """Qwen2.5-VL (proposals) and CLIP (alignment re-scoring), once per worker."""
    from curation.pretrained.timeline import ClipAlignmentScorer, VlmTimelineProposer

    cfg = env.params.timelines
    device = model_device(env.params)
    return VlmTimelineProposer(cfg.proposal_model, device=device), ClipAlignmentScorer(cfg.alignment_model, device=device)


# The backends of each annotation capability by name; a pretrained one loads a model with the
# interface its item function calls (VlmCaptioner: `caption(frames)`, `fine_label(frames, label)`,
# `describe_attributes(frames)`, `name`; timelines: a (proposer, alignment scorer) pair).
CAPTIONERS = BackendRegistry("caption backend", ("captions.backend",), {
    "embedded": Backend(),  # the pool's sidecar caption
    "pretrained": Backend(load_caption_vlm, uses_gpu=True),
})
ENTITY_LABELLERS = BackendRegistry("entity backend", ("entities.backend",), {
    "embedded": Backend(),  # fine labels from caption context (spaCy + taxonomy)
    "pretrained": Backend(load_entity_vlm, uses_gpu=True),
})
ATTRIBUTE_READERS = BackendRegistry("attribute backend", ("attributes.backend",), {
    "embedded": Backend(),  # the pool's sidecar attributes
    "pretrained": Backend(load_attribute_vlm, uses_gpu=True),
})
TIMELINE_BUILDERS = BackendRegistry("timeline backend", ("timelines.backend",), {
    "embedded": Backend(),  # change points of the subject tracks
    "pretrained": Backend(load_timeline_models, uses_gpu=True),
})


# ---------------------------------------------------------------- captions


def sidecar_caption(video: dict, start_s: float, end_s: float) -> tuple[str | None, str]:
    """The pool's caption for a clip: the per-segment caption overlapping it most when the
    pool ships segments (Panda-70M style), else the whole video's caption."""
    segments = json.loads(video["segments_json"]) if video.get("segments_json") else []
    best, overlap = None, 0.0
    for seg in segments:
        a, b = seg["timestamp"]
        o = min(b, end_s) - max(a, start_s)
        if o > overlap:
            best, overlap = seg, o
    if best is not None:
        return best["caption"], "embedded:sidecar-caption(segment)"
    return video.get("caption"), "embedded:sidecar-caption(video)"


def load_caption_models(env: ItemEnv):
    """spaCy's entity pipeline (plural checks) and, pretrained, the VLM captioner."""
    from curation.entities import extract_entities

    extract_entities("a man")  # builds the cached spaCy pipeline of this worker
    return load_chosen(CAPTIONERS, env)


def caption_clip(env: ItemEnv, captioner, item: tuple[dict, dict]) -> dict[str, Any]:
    """The captions row of one clip: the VLM's caption or the pool's sidecar caption."""
    from curation.entities import extract_entities, plural_entities

    cfg = env.params.captions
    clip, video = item
    if captioner is not None:
        text, backend = captioner.caption(_clip_frames(env.store, clip, cfg.frames)), captioner.name
    else:
        text, backend = sidecar_caption(video, clip["start_s"], clip["end_s"])
    plural = plural_entities(extract_entities(text)) if text else []
    reason = "no_caption" if not text else ("plural_entities" if plural and cfg.drop_plural else None)
    return {"clip_id": clip["clip_id"], "shard": env.shard, "caption": text, "caption_backend": backend,
            "word_count": len(text.split()) if text else 0, "plural_entities": plural,
            "kept": reason is None, "drop_reason": reason}


def captions(ctx: StageContext) -> dict[str, Any]:
    """Subject-centric caption per clip (one item per clip); plural-entity captions dropped."""
    cfg = ctx.params.captions
    clips = _clips(ctx)
    videos = {r["video_id"]: r for r in _rows(ctx, "raw_videos")}
    work = item_work(caption_clip, CAPTIONERS, ctx.params, setup=load_caption_models)
    run = run_items(ctx, work, [(c, videos[c["video_id"]]) for c in clips.values()], label=lambda it: it[0]["clip_id"])
    rows = run.results
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.CAPTIONS))
    words = np.array([r["word_count"] for r in rows]) if rows else np.zeros(0)
    return {"table": ctx.table_key(), "clips_in": len(rows), "captions_kept": sum(r["kept"] for r in rows),
            "dropped_by_reason": counts_by([r["drop_reason"] for r in rows]),
            "word_count": {"median": float(np.median(words)) if len(words) else None,
                           "share_ge_50": float((words >= 50).mean()) if len(words) else None},
            "backend": rows[0]["caption_backend"] if rows else cfg.backend,
            "preview": preview_rows(rows, ["clip_id", "word_count", "kept", "drop_reason", "caption"]), **run.metadata()}


# ---------------------------------------------------------------- entities


MAX_FINE_LABEL_WORDS = 12
_LABEL = re.compile(r"[A-Za-z][A-Za-z '\-,.]{0,79}")


def usable_fine_label(text: str) -> bool:
    """A fine label is a short phrase of words ("the man in red"), nothing else."""
    return bool(text) and _LABEL.fullmatch(text.strip()) is not None and len(text.split()) <= MAX_FINE_LABEL_WORDS


def load_entity_models(env: ItemEnv):
    """spaCy's entity pipeline and, pretrained, the VLM that labels living subjects."""
    from curation.entities import extract_entities

    extract_entities("a man")  # builds the cached spaCy pipeline of this worker
    return load_chosen(ENTITY_LABELLERS, env)


def clip_entities(env: ItemEnv, vlm, item: tuple[dict, dict]) -> list[dict[str, Any]]:
    """The entities rows of one kept caption."""
    from curation.entities import extract_entities

    cap, clip = item
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in extract_entities(cap["caption"]):
        if m.label in seen:
            continue  # one subject per label in a single-focus caption
        seen.add(m.label)
        fine, backend = m.fine_label, "embedded:spacy-taxonomy"
        if vlm is not None and m.category == "living":
            from curation.pretrained.errors import ModelOutputError

            try:
                answer = vlm.fine_label(_clip_frames(env.store, clip, 4), m.label)
            except ModelOutputError:
                answer = ""
            # A label is a short plain noun phrase; any other answer keeps the caption's label.
            if usable_fine_label(answer):
                fine, backend = answer, vlm.name
        rows.append({"clip_id": cap["clip_id"], "shard": env.shard, "entity_id": f"{cap['clip_id']}-e{len(seen) - 1}",
                     "label": m.label, "category": m.category, "is_human": m.is_human, "fine_label": fine,
                     "mention": m.text, "entity_backend": backend})
    return rows


def entities(ctx: StageContext) -> dict[str, Any]:
    """Taxonomy entities of each kept caption (one item per caption); living subjects get a
    fine-grained label from caption context (embedded) or from the VLM looking at the clip
    (pretrained)."""
    clips = _clips(ctx)
    caps = [r for r in _rows(ctx, "captions") if r["kept"]]
    work = item_work(clip_entities, ENTITY_LABELLERS, ctx.params, setup=load_entity_models)
    run = run_items(ctx, work, [(c, clips[c["clip_id"]]) for c in caps], label=lambda it: it[0]["clip_id"])
    rows = [row for clip_rows in run.results for row in clip_rows]
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.ENTITIES))
    return {"table": ctx.table_key(), "clips_in": len(caps), "entities": len(rows),
            "by_category": counts_by([r["category"] for r in rows]), "labels": counts_by([r["label"] for r in rows]),
            "preview": preview_rows(rows, ["entity_id", "label", "category", "fine_label"]), **run.metadata()}


# ---------------------------------------------------------------- attributes


ATTRIBUTE_KEYS = ("ethnicity", "gender", "age", "expression", "attire")


def sidecar_attributes(video: dict, start_s: float, end_s: float) -> dict | None:
    """Person attributes the pool ships: per segment (overlapping the clip most) or per video."""
    segments = json.loads(video["segments_json"]) if video.get("segments_json") else []
    best = max(segments, key=lambda seg: min(seg["timestamp"][1], end_s) - max(seg["timestamp"][0], start_s),
               default=None)
    if best is not None and best.get("attributes"):
        return best["attributes"]
    return json.loads(video["attributes_json"]) if video.get("attributes_json") else None


def human_attributes(env: ItemEnv, vlm, item: tuple[dict, dict, dict]) -> dict[str, Any]:
    """The attributes row of one human entity: the VLM's answer or the pool's sidecar."""
    e, clip, video = item
    if vlm is not None:
        from curation.pretrained.errors import ModelOutputError

        try:
            found, backend = vlm.describe_attributes(_clip_frames(env.store, clip, 4)), vlm.name
        except ModelOutputError as exc:  # one bad answer is recorded, the shard goes on
            found, backend = None, f"not computed ({vlm.name} answer unparsable: {str(exc)[:80]})"
    else:
        found = sidecar_attributes(video, clip["start_s"], clip["end_s"])
        backend = "embedded:sidecar-metadata" if found else "not computed (no sidecar attributes, embedded backend)"
    found = found or {}
    return {"clip_id": e["clip_id"], "shard": env.shard, "entity_id": e["entity_id"],
            **{k: found.get(k) for k in ATTRIBUTE_KEYS}, "attribute_backend": backend}


def attributes(ctx: StageContext) -> dict[str, Any]:
    """DH-FaceVid attributes of human subjects (ethnicity, gender, age, expression, attire)."""
    clips = _clips(ctx)
    videos = {r["video_id"]: r for r in _rows(ctx, "raw_videos")}
    items = [(e, clips[e["clip_id"]], videos[clips[e["clip_id"]]["video_id"]])
             for e in _rows(ctx, "entities") if e["is_human"]]
    work = item_work(human_attributes, ATTRIBUTE_READERS, ctx.params)
    run = run_items(ctx, work, items, label=lambda it: it[0]["entity_id"])
    rows = run.results
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.ATTRIBUTES))
    return {"table": ctx.table_key(), "humans": len(rows),
            "with_attributes": sum(any(r[k] for k in ATTRIBUTE_KEYS) for r in rows),
            "backends": counts_by([r["attribute_backend"] for r in rows]),
            "preview": preview_rows(rows, ["entity_id", *ATTRIBUTE_KEYS]), **run.metadata()}


# ---------------------------------------------------------------- timelines


def clip_timeline(env: ItemEnv, models, item: tuple[dict, list[dict], dict, dict]) -> dict[str, Any]:
    """One clip's timeline row, or {"unparsable": why} when the VLM's answer cannot be read."""
    from curation.timelines import segment_track

    cfg = env.params.timelines
    clip, subs, cap, ents = item
    if models is not None:
        from curation.pretrained.errors import ModelOutputError

        proposer, scorer = models
        try:
            events, backend = _pretrained_events(env.store, clip, proposer, scorer), f"{proposer.name}+{scorer.name}"
        except ModelOutputError as exc:  # the clip gets no timeline, with its reason
            return {"unparsable": str(exc)[:200]}
    else:
        events, backend = [], "embedded:track-change-points"
        for sub in subs:
            times = np.asarray(sub["frame_indices"], float) / clip["fps"]
            segs = segment_track(times, np.asarray(sub["boxes"], float), clip["width"], clip["height"],
                                 penalty=cfg.penalty, min_segment_s=cfg.min_segment_s, walk=cfg.walk_speed,
                                 run=cfg.run_speed, scale=cfg.scale_rate, bob=cfg.bob_speed)
            subject = ents[sub["entity_id"]]["fine_label"]
            for k, seg in enumerate(segs):
                end = clip["duration_s"] if k == len(segs) - 1 else seg.end_s
                start = 0.0 if k == 0 else seg.start_s
                # rounding must not push the last event past the clip's end
                events.append({"start": round(start, 3), "end": min(round(end, 3), clip["duration_s"]),
                               "description": seg.description, "subject": subject})
    events.sort(key=lambda ev: (ev["start"], ev["subject"]))
    return {"clip_id": clip["clip_id"], "shard": env.shard, "global_caption": cap["caption"],
            "event_count": len(events), "events": events, "timeline_backend": backend}


def timelines(ctx: StageContext) -> dict[str, Any]:
    """Sub-actions with start/end seconds, in ReactID-Data's timeline shape (one item per clip)."""
    clips = _clips(ctx)
    caps = {r["clip_id"]: r for r in _rows(ctx, "captions") if r["kept"]}
    ents = {e["entity_id"]: e for e in _rows(ctx, "entities")}
    by_clip: dict[str, list[dict]] = {}
    for s in _rows(ctx, "subjects"):
        if s["verified"] and ents[s["entity_id"]]["category"] == "living":
            by_clip.setdefault(s["clip_id"], []).append(s)
    items = [(clips[clip_id], subs, caps[clip_id], {s["entity_id"]: ents[s["entity_id"]] for s in subs})
             for clip_id, subs in by_clip.items()]
    work = item_work(clip_timeline, TIMELINE_BUILDERS, ctx.params)
    run = run_items(ctx, work, items, label=lambda it: it[0]["clip_id"])
    rows = [r for r in run.results if "unparsable" not in r]
    unparsable = {it[0]["clip_id"]: r["unparsable"] for it, r in zip(items, run.results, strict=True) if "unparsable" in r}
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.TIMELINES))
    return {"table": ctx.table_key(), "clips": len(rows), "events": sum(r["event_count"] for r in rows),
            "unparsable_answers": unparsable, **run.metadata(),
            "descriptions": counts_by([ev["description"] for r in rows for ev in r["events"]]),
            "preview": preview_rows([{**r, "events": "; ".join(f"{e['start']:.1f}-{e['end']:.1f}s {e['description']}"
                                                          for e in r["events"])} for r in rows], ["clip_id", "events"])}


def _pretrained_events(store, clip: dict, proposer, scorer) -> list[dict]:
    """Qwen2.5-VL proposals re-scored by video-text alignment (paper Sec. 3.3.1 ensemble).

    The paper's ensemble has three candidates per sub-action (the VLM, UniMD, TFVTG); no
    temporal grounding model can be loaded here, so each sub-action has the VLM's
    candidate only and the alignment re-scoring keeps it: the selection code is the same.
    """
    from curation.pretrained.timeline import alignment_scores, select_best_candidates
    from curation.video_io import decode_frames

    with store.open_stream(clip["clip_key"]) as stream:  # on S3: ranged reads, no local copy
        batch = decode_frames(stream, width=448, sample_fps=2.0)
    timeline = proposer.propose(batch.frames, 2.0, clip["duration_s"])
    candidates = [[a] for a in timeline.actions]
    chosen = select_best_candidates(candidates, alignment_scores(scorer, batch.frames, 2.0, candidates))
    return [{"start": a.start, "end": a.end, "description": a.description, "subject": a.subject}
            for a in sorted(chosen, key=lambda a: (a.start, a.subject))]


# ---------------------------------------------------------------- annotations


def annotations(ctx: StageContext) -> dict[str, Any]:
    """One row per verified subject of each clip: the joined input of training."""
    clips = _clips(ctx)
    caps = {r["clip_id"]: r for r in _rows(ctx, "captions")}
    ents = {e["entity_id"]: e for e in _rows(ctx, "entities")}
    faces = {f["entity_id"]: f for f in _rows(ctx, "faces")}
    lines = {t["clip_id"]: t for t in _rows(ctx, "timelines")}
    rows, excluded = [], []
    for s in _rows(ctx, "subjects"):
        if not s["verified"]:
            excluded.append({"entity_id": s["entity_id"], "reason": "subject_unverified"})
            continue
        clip, e, f, t = clips[s["clip_id"]], ents[s["entity_id"]], faces.get(s["entity_id"], {}), lines.get(s["clip_id"], {})
        backends = {"caption": caps[s["clip_id"]]["caption_backend"], "entity": e["entity_backend"],
                    "subject": s["subject_backend"], "face": f.get("face_backend"), "timeline": t.get("timeline_backend")}
        rows.append({
            "clip_id": s["clip_id"], "shard": ctx.shard, "clip_key": clip["clip_key"], "identity": clip["identity"],
            "width": clip["width"], "height": clip["height"], "fps": clip["fps"], "duration_s": clip["duration_s"],
            "caption": caps[s["clip_id"]]["caption"], "word_count": caps[s["clip_id"]]["word_count"],
            "entity_id": s["entity_id"], "label": e["label"], "category": e["category"], "is_human": e["is_human"],
            "fine_label": e["fine_label"], "frame_indices": s["frame_indices"], "boxes": s["boxes"],
            "mask_rles": s["mask_rles"], "mask_area_fractions": s["mask_area_fractions"], "verified": True,
            "face_frame_indices": f.get("face_frame_indices") or [], "face_boxes": f.get("face_boxes") or [],
            "representative_frames": f.get("representative_frames") or [],
            "face_embeddings": f.get("embeddings") or [], "face_resolution": f.get("face_resolution"),
            "global_caption": t.get("global_caption") or caps[s["clip_id"]]["caption"], "events": t.get("events") or [],
            "backends": json.dumps(backends, sort_keys=True),
        })
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.ANNOTATIONS))
    return {"table": ctx.table_key(), "subjects": len(rows), "clips": len({r["clip_id"] for r in rows}),
            "excluded_by_reason": counts_by([x["reason"] for x in excluded]),
            "with_faces": sum(bool(r["face_boxes"]) for r in rows), "with_events": sum(bool(r["events"]) for r in rows),
            "preview": preview_rows([{**r, "frames": len(r["frame_indices"]), "events": len(r["events"])} for r in rows],
                                ["clip_id", "label", "fine_label", "frames", "events"])}
