"""A tiny, valid set of annotation tables for one shard, and row edits that break it.

Shared by the quality-gate tests in tests/curation and tests/orchestration. The project
runs pytest with --import-mode=importlib, so the tests load this file by path
(`load_gate_tables` in each test module) instead of importing it as a package.

Two curated clips at 320x240, 10 fps: clip A (4 s) has a man (with a face) and a dog;
clip B (5 s) has a woman (with a face). A third clip was dropped at captioning.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow as pa

from core.tables import to_table
from curation import annotation_schemas
from curation import schemas
from curation.rle import rle_encode

SHARD = "gate-000"
W, H, FPS = 320, 240, 10.0
CLIP_A, CLIP_B, CLIP_DROPPED = f"{SHARD}-v0-s00", f"{SHARD}-v1-s00", f"{SHARD}-v2-s00"
DURATION = {CLIP_A: 4.0, CLIP_B: 5.0}
FRAMES = [0, 10, 20]


def _words(n: int, lead: str) -> str:
    """A caption of exactly `n` words starting with `lead`."""
    return " ".join([lead, *(["word"] * (n - len(lead.split())))])


CAPTION = {CLIP_A: _words(60, "A man walks a dog"), CLIP_B: _words(30, "A woman talks")}


def rect_mask(box: list[float]) -> str:
    """The COCO RLE of the box's own rectangle: a mask that fills its box exactly."""
    mask = np.zeros((H, W), bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = True
    return rle_encode(mask)


def _subject(clip: str, k: int, label: str, category: str, human: bool, box: list[float]) -> dict:
    return {
        "clip_id": clip, "shard": SHARD, "entity_id": f"{clip}-e{k}", "label": label, "category": category,
        "is_human": human, "fine_label": f"the {label}", "mention": label, "box": box,
    }


SUBJECTS = [
    _subject(CLIP_A, 0, "man", "living", True, [40.0, 30.0, 120.0, 230.0]),
    _subject(CLIP_A, 1, "dog", "living", False, [180.0, 150.0, 300.0, 235.0]),
    _subject(CLIP_B, 0, "woman", "living", True, [100.0, 20.0, 220.0, 240.0]),
]


def good_rows() -> dict[str, list[dict]]:
    """Row dicts per table name (captions ... annotations, plus curated_clips)."""
    rows: dict[str, list[dict]] = {name: [] for name in
                                   ("captions", "entities", "subjects", "faces", "timelines", "annotations")}
    rows["curated_clips"] = [
        {"clip_id": c, "video_id": c[:-4], "shard": SHARD, "kept": True, "reasons": [],
         "clip_key": f"clips/{SHARD}/{c}.mp4", "cropped": False, "width": W, "height": H, "duration_s": d, "fps": FPS,
         "caption": CAPTION[c], "identity": None}
        for c, d in DURATION.items()
    ]
    for clip in DURATION:
        rows["captions"].append({"clip_id": clip, "shard": SHARD, "caption": CAPTION[clip],
                                 "caption_backend": "sidecar", "word_count": len(CAPTION[clip].split()),
                                 "plural_entities": [], "kept": True, "drop_reason": None})
    rows["captions"].append({"clip_id": CLIP_DROPPED, "shard": SHARD, "caption": "", "caption_backend": "sidecar",
                             "word_count": 0, "plural_entities": [], "kept": False, "drop_reason": "empty_caption"})
    events = {
        CLIP_A: [{"start": 0.0, "end": 1.5, "description": "the man waves", "subject": f"{CLIP_A}-e0"},
                 {"start": 0.5, "end": 2.0, "description": "the dog runs", "subject": "dog"},
                 {"start": 1.5, "end": 4.0, "description": "the man walks", "subject": f"{CLIP_A}-e0"}],
        CLIP_B: [{"start": 0.0, "end": 2.5, "description": "the woman talks", "subject": f"{CLIP_B}-e0"},
                 {"start": 2.5, "end": 5.0, "description": "the woman smiles", "subject": f"{CLIP_B}-e0"}],
    }
    for clip, evs in events.items():
        rows["timelines"].append({"clip_id": clip, "shard": SHARD, "global_caption": CAPTION[clip],
                                  "event_count": len(evs), "events": evs, "timeline_backend": "embedded"})
    for s in SUBJECTS:
        entity = {k: s[k] for k in ("clip_id", "shard", "entity_id", "label", "category", "is_human", "fine_label",
                                    "mention")}
        rows["entities"].append({**entity, "entity_backend": "embedded:spacy"})
        x0, y0, x1, y1 = s["box"]
        boxes = [[x0, y0, x1 - 2 * i, y1] for i in range(len(FRAMES))]
        masks = [rect_mask(b) for b in boxes]
        fractions = [(b[2] - b[0]) * (b[3] - b[1]) / (W * H) for b in boxes]
        rows["subjects"].append({
            "clip_id": s["clip_id"], "shard": SHARD, "entity_id": s["entity_id"], "label": s["label"],
            "frame_width": W, "frame_height": H, "frame_indices": FRAMES, "boxes": boxes, "scores": [0.9, 0.8, 0.95],
            "mask_rles": masks, "mask_area_fractions": fractions, "verified": True, "verification_score": 0.9,
            "subject_backend": "embedded",
        })
        face = {"face_frame_indices": [], "face_boxes": [], "face_scores": [], "representative_frames": [],
                "embeddings": [], "face_mask_rles": [], "face_resolution": None, "face_torso_crop": None}
        if s["is_human"]:
            face_box = [x0 + 20, y0 + 5, x0 + 60, y0 + 50]
            face = {"face_frame_indices": FRAMES, "face_boxes": [face_box] * 3, "face_scores": [0.99, 0.98, 0.97],
                    "representative_frames": [0, 10], "embeddings": [[0.1] * 8, [0.2] * 8],
                    "face_mask_rles": [rect_mask(face_box)] * 2, "face_resolution": 40.0,
                    "face_torso_crop": [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]}
            rows["faces"].append({"clip_id": s["clip_id"], "shard": SHARD, "entity_id": s["entity_id"], **face,
                                  "hands_occluding": None, "face_backend": "embedded:dlib"})
        rows["annotations"].append({
            "clip_id": s["clip_id"], "shard": SHARD, "clip_key": f"clips/{SHARD}/{s['clip_id']}.mp4", "identity": None,
            "width": W, "height": H, "fps": FPS, "duration_s": DURATION[s["clip_id"]], "caption": CAPTION[s["clip_id"]],
            "word_count": len(CAPTION[s["clip_id"]].split()), "entity_id": s["entity_id"], "label": s["label"],
            "category": s["category"], "is_human": s["is_human"], "fine_label": s["fine_label"],
            "frame_indices": FRAMES, "boxes": boxes, "mask_rles": masks, "mask_area_fractions": fractions,
            "verified": True, "face_frame_indices": face["face_frame_indices"], "face_boxes": face["face_boxes"],
            "representative_frames": face["representative_frames"], "face_embeddings": face["embeddings"],
            "face_resolution": face["face_resolution"], "global_caption": CAPTION[s["clip_id"]],
            "events": events[s["clip_id"]],
            "backends": json.dumps({"captions": "sidecar", "subjects": "embedded", "faces": "embedded:dlib"}),
        })
    return rows


TABLE_SCHEMAS = {"captions": annotation_schemas.CAPTIONS, "entities": annotation_schemas.ENTITIES,
                 "subjects": annotation_schemas.SUBJECTS, "faces": annotation_schemas.FACES,
                 "timelines": annotation_schemas.TIMELINES, "annotations": annotation_schemas.ANNOTATIONS,
                 "curated_clips": schemas.CURATED_CLIPS}


def to_tables(rows: dict[str, list[dict]]) -> dict[str, pa.Table]:
    return {name: to_table(rows[name], TABLE_SCHEMAS[name]) for name in rows}


def edited(edit) -> dict[str, pa.Table]:
    """The good tables after `edit(rows)` changed some rows in place."""
    rows = copy.deepcopy(good_rows())
    edit(rows)
    return to_tables(rows)


def break_annotations(rows: dict[str, list[dict]]) -> None:
    """Inverted event timestamps and a box outside the frame, in the joined table."""
    for row in rows["annotations"]:
        if row["clip_id"] == CLIP_A:
            row["events"] = [{**e, "start": e["end"], "end": e["start"]} if i == 0 else e
                             for i, e in enumerate(row["events"])]
    rows["annotations"][1]["boxes"] = [[250.0, 150.0, 400.0, 235.0], *rows["annotations"][1]["boxes"][1:]]
