"""Subject and face stages: boxes, masks and verification per entity; faces of humans."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.backends import Backend, BackendRegistry, item_work
from core.execution import ItemEnv, model_device, run_items
from core.stage import StageContext
from core.summaries import counts_by, preview_rows
from core.tables import to_table, write_table
from curation import annotation_schemas as schemas
from curation.annotation_stages import _clips, _rows
from curation.rle import rle_encode


def load_subject_models(env: ItemEnv):
    """Florence-2, SigLIP and SAM2, once per worker, on the worker's device."""
    from curation.pretrained.grounding import Florence2Grounder
    from curation.pretrained.segmentation import Sam2Masker
    from curation.pretrained.verification import SiglipVerifier

    cfg, device = env.params.subjects, model_device(env.params)
    return (Florence2Grounder(cfg.grounding_model, device=device), SiglipVerifier(cfg.verifier_model, device=device),
            Sam2Masker(cfg.segmentation_model, device=device))


def load_dlib_face_models(env: ItemEnv) -> None:
    """dlib's detector, landmark and embedding models, cached per process (the item
    function calls curation.faces, which reads the cache)."""
    from curation.faces import _dlib_models

    _dlib_models()


def load_insightface(env: ItemEnv):
    """InsightFace on CUDA when the worker has a GPU and onnxruntime offers it, else on CPU."""
    import onnxruntime

    from curation.pretrained.faces import InsightFaceAnalyzer

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if model_device(env.params) == "cuda" else ()
    providers = tuple(p for p in wanted if p in onnxruntime.get_available_providers()) or ("CPUExecutionProvider",)
    return InsightFaceAnalyzer(str(env.params.resolve(env.params.faces.model_dir)), providers=providers)


# Subject trackers: the pretrained one loads a (grounder, verifier, masker) triple. Face
# analysers: the pretrained one has `detect(frame)` and `name`; dlib's models are cached per
# process and read by curation.faces.
SUBJECT_TRACKERS = BackendRegistry("subject backend", ("subjects.backend",), {
    "embedded": Backend(),  # background model + GrabCut
    "pretrained": Backend(load_subject_models, uses_gpu=True),
})
FACE_ANALYZERS = BackendRegistry("face backend", ("faces.backend",), {
    "embedded": Backend(load_dlib_face_models),
    "pretrained": Backend(load_insightface, uses_gpu=True),
})


def _scale_box(box, s: float) -> list[float]:
    return [round(float(v) / s, 2) for v in box]


def _full_res(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def _embedded_tracks(cfg, batch, ents: list[dict]):
    import cv2

    from curation.subjects import track_entities, verify_track

    # GrabCut seeds its colour models from OpenCV's per-thread random generator: seeded per
    # clip, a clip's masks do not depend on what the process (or Ray worker) ran before.
    cv2.setRNGSeed(0)

    tracks = track_entities(
        batch.frames, batch.indices, [(e["entity_id"], e["category"], e["fine_label"]) for e in ents],
        diff_threshold=cfg.foreground_threshold, min_area_fraction=cfg.min_area_fraction,
        grabcut_iterations=cfg.grabcut_iterations, max_jump=cfg.max_jump,
    )
    out = {}
    for e in ents:
        t = tracks[e["entity_id"]]
        ok, score = verify_track(t, len(batch.frames), cfg.min_detection_ratio)
        out[e["entity_id"]] = (t.frame_indices, t.boxes, t.masks, t.scores, ok, score)
    return out, "embedded:background-model+grabcut"


def _pretrained_tracks(cfg, batch, ents: list[dict], models):
    """Florence-2 grounding per sampled frame, SigLIP verification of the crops, SAM2 masks."""
    from curation.subjects import refine_mask

    grounder, verifier, masker = models
    out = {}
    for e in ents:
        idx, boxes, masks, scores = [], [], [], []
        for k, frame in enumerate(batch.frames):
            found = grounder.ground(frame, e["fine_label"])
            if not found:
                continue
            box, score = max(found, key=lambda b: b[1])
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            crop = frame[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
            if float(verifier.score([crop], e["label"])[0]) < cfg.verify_threshold:
                continue
            mask = refine_mask(masker.masks(frame, [box])[0])
            if mask.any():
                idx.append(int(batch.indices[k]))
                boxes.append(tuple(box))
                masks.append(mask)
                scores.append(float(score))
        ratio = len(idx) / max(1, len(batch.frames))
        out[e["entity_id"]] = (idx, boxes, masks, scores, ratio >= cfg.min_detection_ratio, round(ratio, 4))
    return out, f"{grounder.name}+{verifier.name}+{masker.name}"


def clip_subjects(env: ItemEnv, models, item: tuple[dict, list[dict]]) -> list[dict[str, Any]]:
    """The subjects rows of one clip: a track (boxes, masks) and a verdict per entity."""
    from curation.video_io import decode_frames

    cfg = env.params.subjects
    clip, ents = item
    with env.store.open_stream(clip["clip_key"]) as stream:  # on S3: ranged reads, no local copy
        batch = decode_frames(stream, width=cfg.analysis_width, sample_fps=cfg.sample_fps)
    w, h = clip["width"], clip["height"]
    s = batch.frames.shape[2] / w
    tracks, backend = (_pretrained_tracks(cfg, batch, ents, models) if models
                       else _embedded_tracks(cfg, batch, ents))
    rows = []
    for e in ents:
        idx, boxes, masks, scores, ok, vscore = tracks[e["entity_id"]]
        full = [_full_res(m, w, h) for m in masks]
        rows.append({
            "clip_id": clip["clip_id"], "shard": env.shard, "entity_id": e["entity_id"], "label": e["label"],
            "frame_width": w, "frame_height": h, "frame_indices": idx,
            "boxes": [_scale_box(b, s) for b in boxes], "scores": [round(v, 4) for v in scores],
            "mask_rles": [rle_encode(m) for m in full],
            "mask_area_fractions": [round(float(m.mean()), 6) for m in full],
            "verified": ok, "verification_score": vscore, "subject_backend": backend,
        })
    return rows


def subjects(ctx: StageContext) -> dict[str, Any]:
    """Boxes, masks (COCO RLE) and verification of each entity over sampled frames (one item
    per clip: embedded tracking as tasks, the pretrained models in actor pools)."""
    cfg = ctx.params.subjects
    clips = _clips(ctx)
    by_clip: dict[str, list[dict]] = {}
    for e in _rows(ctx, "entities"):
        by_clip.setdefault(e["clip_id"], []).append(e)
    work = item_work(clip_subjects, SUBJECT_TRACKERS, ctx.params)
    run = run_items(ctx, work, [(clips[clip_id], ents) for clip_id, ents in by_clip.items()],
                    label=lambda it: it[0]["clip_id"], cost=lambda it: it[0]["duration_s"] * (1 + len(it[1])))
    rows = [row for clip_rows in run.results for row in clip_rows]
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.SUBJECTS))
    return {"table": ctx.table_key(), "entities_in": len(rows), "verified": sum(r["verified"] for r in rows),
            "unverified_by_label": counts_by([r["label"] for r in rows if not r["verified"]]),
            "backend": rows[0]["subject_backend"] if rows else cfg.backend,
            "preview": preview_rows([{**r, "frames": len(r["frame_indices"])} for r in rows],
                                ["entity_id", "label", "frames", "verified", "verification_score"]), **run.metadata()}


def subject_faces(env: ItemEnv, analyzer, item: tuple[dict, dict]) -> dict[str, Any]:
    """The faces row of one verified human subject."""
    from curation import faces as face_tools
    from curation.video_io import decode_frames

    cfg = env.params.faces
    subj, clip = item
    with env.store.open_stream(clip["clip_key"]) as stream:  # on S3: ranged reads, no local copy
        batch = decode_frames(stream, width=min(cfg.max_width, clip["width"]), sample_fps=cfg.fps)
    s = batch.frames.shape[2] / clip["width"]
    boxes_by_frame = dict(zip(subj["frame_indices"], subj["boxes"], strict=True))
    found = []
    for frame, idx in zip(batch.frames, batch.indices, strict=True):
        if analyzer is not None:
            dets = [(face_tools.Face(int(idx), tuple(d.box), d.score), d.embedding) for d in analyzer.detect(frame)]
        else:
            dets = [(f, None) for f in face_tools.detect_faces(frame, int(idx), cfg.upsample)]
        for face, emb in dets:
            body = boxes_by_frame.get(int(idx))
            cx, cy = (face.box[0] + face.box[2]) / 2 / s, (face.box[1] + face.box[3]) / 2 / s
            if body is not None and not (body[0] <= cx <= body[2] and body[1] <= cy <= body[3]):
                continue  # a face outside this subject belongs to someone else
            found.append((face, frame, emb))
    kept_faces = face_tools.nms([f for f, _, _ in found], cfg.nms_overlap)
    kept = [t for t in found if t[0] in kept_faces]
    emb = [e if e is not None else face_tools.face_embedding(fr, f.box) for f, fr, e in kept]
    keep = face_tools.remove_outliers([f for f, _, _ in kept], emb, cfg.max_embedding_distance)
    kept, emb = [kept[j] for j in keep], [emb[j] for j in keep]
    reps = sorted(range(len(kept)), key=lambda j: -kept[j][0].score)[: cfg.representative]
    face_boxes = [_scale_box(f.box, s) for f, _, _ in kept]
    masks = []
    for j in reps:
        m = face_tools.face_mask(kept[j][1], kept[j][0].box) if analyzer is None else _box_mask(kept[j][1], kept[j][0].box)
        masks.append(rle_encode(_full_res(m, clip["width"], clip["height"])))
    sides = [min(b[2] - b[0], b[3] - b[1]) for b in face_boxes]
    return {
        "clip_id": subj["clip_id"], "shard": env.shard, "entity_id": subj["entity_id"],
        "face_frames_scanned": len(batch.frames),
        "face_frame_indices": [f.frame_index for f, _, _ in kept], "face_boxes": face_boxes,
        "face_scores": [round(f.score, 4) for f, _, _ in kept],
        "representative_frames": [kept[j][0].frame_index for j in reps],
        "embeddings": [np.round(emb[j], 5).tolist() for j in reps], "face_mask_rles": masks,
        "face_resolution": float(np.median(sides)) if sides else None,
        "face_torso_crop": list(face_tools.face_torso_crop(face_boxes, clip["width"], clip["height"])) if face_boxes else None,
        "hands_occluding": None,
        "face_backend": analyzer.name if analyzer else "embedded:dlib(hog+resnet128)",
    }


def faces(ctx: StageContext) -> dict[str, Any]:
    """Faces of verified human subjects: 2 FPS detection, NMS, outliers, representatives
    (one item per subject, through an actor pool holding the face models)."""
    clips = _clips(ctx)
    humans = [r for r in _rows(ctx, "subjects") if r["verified"]]
    ents = {e["entity_id"]: e for e in _rows(ctx, "entities")}
    humans = [r for r in humans if ents[r["entity_id"]]["is_human"]]
    work = item_work(subject_faces, FACE_ANALYZERS, ctx.params)
    run = run_items(ctx, work, [(subj, clips[subj["clip_id"]]) for subj in humans], label=lambda it: it[0]["entity_id"],
                    cost=lambda it: it[1]["duration_s"])
    rows = run.results
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.FACES))
    return {"table": ctx.table_key(), "humans_in": len(humans), "with_faces": sum(bool(r["face_boxes"]) for r in rows),
            "faces_kept": sum(len(r["face_boxes"]) for r in rows),
            "hands_filter": "not computed (no embedded hand detector)",
            "preview": preview_rows([{**r, "faces": len(r["face_boxes"])} for r in rows],
                                ["entity_id", "faces", "face_resolution", "representative_frames"]), **run.metadata()}


def _box_mask(frame: np.ndarray, box) -> np.ndarray:
    """Face mask from a detector box when no landmark model gives a contour: the inscribed ellipse."""
    import cv2

    m = np.zeros(frame.shape[:2], np.uint8)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.ellipse(m, ((x0 + x1) // 2, (y0 + y1) // 2), (max(1, (x1 - x0) // 2), max(1, (y1 - y0) // 2)), 0, 0, 360, 1, -1)
    return m.astype(bool)
