"""Curation accuracy against the demo pool's ground truth (never read by the pipeline).

- shot boundaries: precision / recall / F1 with a ±2-frame tolerance over hard cuts and
  gradual transitions, per shot-detection backend, and clips that still hold a boundary;
- text overlays: clip-level detection precision / recall;
- low-motion filter: static and camera-only clips rejected, moving clips kept;
- quarantine: every broken file quarantined with the expected reason.
"""

from __future__ import annotations

from typing import Any

from curation.scenes import precision_recall_f1


def _truth_scene(video: dict, start: int, end: int) -> dict | None:
    """The ground-truth scene that overlaps [start, end) the most."""
    best, best_overlap = None, 0
    for scene in video.get("scenes", []):
        overlap = min(end, scene["end_frame"]) - max(start, scene["start_frame"])
        if overlap > best_overlap:
            best, best_overlap = scene, overlap
    return best


def _spans(rows) -> list[tuple[int, int]]:
    return [(int(t["start_frame"]), int(t["end_frame"])) if isinstance(t, dict) else (int(t[0]), int(t[1]))
            for t in rows or []]


def scene_cut_accuracy(truth: dict, cut_rows: list[dict], tolerance: int = 2) -> dict[str, Any]:
    """Shot boundaries (hard cuts and gradual transitions) against ground truth.

    Scored for the selected backend (`final`: what cut the clips), for every backend that
    ran over the same frames (`by_backend`), and for PySceneDetect before its similarity
    refinement (`pyscenedetect_unrefined`) where it ran. `footage` says whether the shard
    is generated (procedural) or real footage.
    """
    by_id = {r["video_id"]: r for r in cut_rows}
    totals: dict[str, dict[str, int]] = {}
    videos = 0
    selected = None
    for video in truth.get("videos", []):
        if "cuts" not in video:
            continue  # real footage without annotated cuts
        row = by_id.get(video["file"].rsplit(".", 1)[0])
        if row is None:
            continue
        videos += 1
        selected = row.get("shot_backend") or selected
        true_tr = _spans(video.get("transitions"))
        found = {"final": (row["cuts_final"], _spans(row.get("transitions")))}
        for b in row.get("backends") or []:
            found[b["backend"]] = (b["cuts"], _spans(b["transitions"]))
        if row.get("cuts_pyscenedetect") is not None:
            found["pyscenedetect_unrefined"] = (row["cuts_pyscenedetect"], [])
        for name, (cuts, spans) in found.items():
            m = match_boundaries(list(cuts), spans, video["cuts"], true_tr, tolerance)
            acc = totals.setdefault(name, dict.fromkeys(m, 0))
            for k, v in m.items():
                acc[k] += v

    def scored(t: dict[str, int]) -> dict[str, Any]:
        return {**precision_recall_f1(t["tp"], t["fp"], t["fn"]),
                "cuts_found": t["tp_cut"], "cuts": t["n_cut"], "gradual_found": t["tp_gradual"], "gradual": t["n_gradual"]}

    empty = dict.fromkeys(("tp", "fp", "fn", "tp_cut", "n_cut", "tp_gradual", "n_gradual"), 0)
    return {
        "videos": videos,
        "tolerance_frames": tolerance,
        "footage": "procedural" if truth.get("kind") == "procedural" else "real",
        "selected_backend": selected,
        "final": scored(totals.get("final", empty)),
        "by_backend": {name: scored(t) for name, t in totals.items() if name != "final"},
    }


def clip_boundary_leaks(truth: dict, clips: list[dict]) -> dict[str, Any]:
    """Kept clips that still hold a true shot boundary: a hard cut strictly inside, or
    frames of a gradual transition."""
    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", []) if "cuts" in v}
    scored = leaking = frames = 0
    for clip in clips:
        video = videos.get(clip["video_id"])
        if video is None or not clip["kept"]:
            continue
        a, b = clip["start_frame"], clip["end_frame"]
        scored += 1
        inside = sum(max(0, min(b, e) - max(a, s)) for s, e in _spans(video.get("transitions")))
        frames += inside
        leaking += bool(inside or any(a < c < b for c in video["cuts"]))
    return {"clips": scored, "clips_with_boundary": leaking, "transition_frames_in_clips": frames}


def text_overlay_accuracy(truth: dict, clips: list[dict], quality: dict[str, dict]) -> dict[str, Any]:
    """Clip-level: does OCR flag the clips whose ground-truth scene carries text?"""
    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", []) if "scenes" in v or "has_text" in v}
    tp = fp = fn = tn = 0
    for clip in clips:
        video = videos.get(clip["video_id"])
        q = quality.get(clip["clip_id"])
        if video is None or q is None or q["has_text"] is None:
            continue
        scene = _truth_scene(video, clip["start_frame"], clip["end_frame"]) if "scenes" in video else video
        if scene is None:
            continue
        actual, predicted = bool(scene["has_text"]), bool(q["has_text"])
        tp += actual and predicted
        fp += predicted and not actual
        fn += actual and not predicted
        tn += not actual and not predicted
    return {**precision_recall_f1(tp, fp, fn), "tn": tn}


def motion_filter_accuracy(truth: dict, clips: list[dict], curated: dict[str, dict]) -> dict[str, Any]:
    """Positive = a clip without subject motion (static, or camera motion only), which
    the low-motion filter should reject."""
    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", [])}
    tp = fp = fn = tn = 0
    for clip in clips:
        video = videos.get(clip["video_id"])
        row = curated.get(clip["clip_id"])
        if video is None or row is None:
            continue
        if "scenes" in video:
            scene = _truth_scene(video, clip["start_frame"], clip["end_frame"])
            if scene is None:
                continue
            actual = bool(scene["static"] or scene["camera_pan"])
        elif video.get("annotated"):
            actual = bool(video.get("camera_pan"))
        else:
            continue
        predicted = "low_motion" in row["reasons"]
        tp += actual and predicted
        fp += predicted and not actual
        fn += actual and not predicted
        tn += not actual and not predicted
    return {**precision_recall_f1(tp, fp, fn), "tn": tn}


def short_scene_accuracy(truth: dict, clips: list[dict], min_duration_s: float) -> dict[str, Any]:
    """Ground-truth scenes shorter than the minimum must not come out as clips."""
    kept = {}
    for clip in clips:
        if clip["kept"]:
            kept.setdefault(clip["video_id"], []).append(clip)
    short, leaked = 0, 0
    for video in truth.get("videos", []):
        for scene in video.get("scenes", []):
            if scene["duration_s"] + 1e-9 >= min_duration_s:
                continue
            short += 1
            for clip in kept.get(video["file"].rsplit(".", 1)[0], []):
                if _truth_scene(video, clip["start_frame"], clip["end_frame"]) is scene:
                    leaked += 1
    return {"short_scenes": short, "short_scenes_kept": leaked}


def quarantine_accuracy(truth: dict, raw_rows: list[dict]) -> dict[str, Any]:
    by_file = {r["source_path"].rsplit("/", 1)[-1]: r for r in raw_rows}
    rows = []
    for broken in truth.get("broken", []):
        got = by_file.get(broken["file"])
        reason = got["reason"] if got else "missing from table"
        rows.append({"file": broken["file"], "expected": broken["expected_quarantine"], "got": reason,
                     "ok": reason == broken["expected_quarantine"]})
    false_quarantine = [
        r["video_id"] for r in raw_rows
        if r["status"] != "ok" and r["source_path"].rsplit("/", 1)[-1] not in {b["file"] for b in truth.get("broken", [])}
    ]
    return {"expected": len(rows), "correct": sum(r["ok"] for r in rows), "rows": rows,
            "unexpected_quarantine": false_quarantine}


def duplicate_accuracy(truth: dict, raw_rows: list[dict], curated_rows: list[dict]) -> dict[str, Any]:
    """Planted copies (a demo `copies` shard): each must be quarantined as a duplicate on
    arrival or have every clip rejected as a (near) duplicate of an earlier clip."""
    raw = {r["source_path"].rsplit("/", 1)[-1]: r for r in raw_rows}
    clips: dict[str, list[dict]] = {}
    for row in curated_rows:
        clips.setdefault(row["video_id"], []).append(row)
    rows = []
    for video in truth.get("videos", []):
        if "expected" not in video:
            continue
        got = raw.get(video["file"])
        if got is not None and got["status"] != "ok":
            outcome, of = got["reason"], got.get("duplicate_of")
        else:
            mine = clips.get(got["video_id"], []) if got else []
            kinds = {k for c in mine for k in c["reasons"] if k in ("duplicate", "near_duplicate")}
            removed = bool(mine) and all({"duplicate", "near_duplicate"} & set(c["reasons"]) for c in mine)
            outcome = "/".join(sorted(kinds)) if removed else "kept"
            of = ", ".join(sorted({c["duplicate_of"] for c in mine if c.get("duplicate_of")})) or None
        rows.append({"file": video["file"], "copy_of": video.get("copy_of"), "outcome": outcome, "duplicate_of": of,
                     "removed": outcome in ("duplicate", "near_duplicate")})
    return {"planted": len(rows), "removed": sum(r["removed"] for r in rows), "rows": rows}


# ---------------------------------------------------------------- annotation


def _clip_offset(clip: dict, curated: dict) -> tuple[float, float]:
    """Pixel offset of the curated clip inside its source video (text crops move it)."""
    row = curated.get(clip["clip_id"])
    if row and row["cropped"]:
        return float(row["crop"][0]), float(row["crop"][1])
    return 0.0, 0.0


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def annotation_accuracy(truth: dict, clips: list[dict], curated: dict[str, dict], entities: list[dict],
                        subjects: list[dict], timelines: list[dict], min_tiou: float) -> dict[str, Any]:
    """Entity recall, box and mask IoU of the living subject, and timeline F1 (paper Table 7:
    a sub-action is a true positive when its description matches and tIoU >= min_tiou)."""
    import numpy as np

    from curation.rle import rle_decode
    from curation.timelines import match_events

    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", []) if "scenes" in v}
    ents_by_clip: dict[str, set[str]] = {}
    for e in entities:
        ents_by_clip.setdefault(e["clip_id"], set()).add(e["label"])
    living = {e["entity_id"] for e in entities if e["category"] == "living"}
    subj_by_clip = {s["clip_id"]: s for s in subjects if s["entity_id"] in living}
    events_by_clip = {t["clip_id"]: t["events"] for t in timelines}
    found = expected = 0
    box_ious, mask_ious = [], []
    tp = fp = fn = 0
    for clip in clips:
        video = videos.get(clip["video_id"])
        if video is None or clip["clip_id"] not in curated or not curated[clip["clip_id"]]["kept"]:
            continue
        scene = _truth_scene(video, clip["start_frame"], clip["end_frame"])
        if scene is None:
            continue
        gt = scene["subjects"][0]
        expected += 1
        found += gt["entity"] in ents_by_clip.get(clip["clip_id"], set())
        dx, dy = _clip_offset(clip, curated)
        sub = subj_by_clip.get(clip["clip_id"])
        if sub is not None:
            for k, fi in enumerate(sub["frame_indices"]):
                g = clip["start_frame"] + fi - scene["start_frame"]
                if not 0 <= g < len(gt["boxes"]):
                    continue
                b = sub["boxes"][k]
                box_ious.append(_box_iou([b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy], gt["boxes"][g]))
                if gt.get("mask_rles"):
                    pred = rle_decode(sub["mask_rles"][k])
                    ref = rle_decode(gt["mask_rles"][g])[int(dy) : int(dy) + pred.shape[0], int(dx) : int(dx) + pred.shape[1]]
                    union = (pred | ref).sum()
                    mask_ious.append(float((pred & ref).sum() / union) if union else 0.0)
        shift = (clip["start_frame"] - scene["start_frame"]) / clip["fps"]
        truth_events = [(a["start_s"] - shift, a["end_s"] - shift, a["description"]) for a in gt["timeline"]]
        pred_events = [(e["start"], e["end"], e["description"]) for e in events_by_clip.get(clip["clip_id"], [])]
        t, f, n = match_events(pred_events, truth_events, min_tiou)
        tp, fp, fn = tp + t, fp + f, fn + n
    return {
        "clips": expected,
        "entity_recall": found / expected if expected else None,
        "box_iou": float(np.mean(box_ious)) if box_ious else None,
        "mask_iou": float(np.mean(mask_ious)) if mask_ious else None,
        "frames_scored": len(box_ious),
        "timeline": {**precision_recall_f1(tp, fp, fn), "min_tiou": min_tiou},
    }


def face_recall(truth: dict, clips: list[dict], faces: list[dict], min_iou: float = 0.3) -> dict[str, Any]:
    """Real footage with annotated faces: share of scanned frames whose face was found
    (a kept face box overlapping the annotated one by at least `min_iou`)."""
    videos = {v["file"].rsplit(".", 1)[0]: v for v in truth.get("videos", []) if v.get("face_boxes")}
    by_clip = {f["clip_id"]: f for f in faces}
    hit = total = 0
    for clip in clips:
        video = videos.get(clip["video_id"])
        if video is None or not clip["kept"]:
            continue
        row = by_clip.get(clip["clip_id"])
        scanned = row["face_frames_scanned"] if row else int(round(clip["duration_s"] * 2))
        total += scanned
        if row is None:
            continue
        for fi, box in zip(row["face_frame_indices"], row["face_boxes"], strict=True):
            g = clip["start_frame"] + fi
            if g < len(video["face_boxes"]) and _box_iou(box, video["face_boxes"][g]) >= min_iou:
                hit += 1
    return {"frames": total, "found": hit, "recall": hit / total if total else None, "min_iou": min_iou}


# ---------------------------------------------------------------- shot boundaries


def _interval_gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Frames between two closed frame intervals (0 when they overlap)."""
    return max(0, a[0] - b[1], b[0] - a[1])


def match_boundaries(pred_cuts: list[int], pred_transitions: list[tuple[int, int]], truth_cuts: list[int],
                     truth_transitions: list[tuple[int, int]], tolerance: int) -> dict[str, int]:
    """One-to-one matching of predicted to true shot boundaries.

    A hard cut is the point where its new shot starts; a gradual transition is its span
    [start, end). A prediction matches a true boundary of either kind when the two lie
    within `tolerance` frames of each other (a cut found inside a dissolve finds the
    dissolve). Closest pairs are matched first.

    Returns:
        tp, fp, fn over all boundaries, and tp_cut / n_cut, tp_gradual / n_gradual by the
        kind of the true boundary.
    """
    truth = [((c, c), "cut") for c in truth_cuts] + [((s, e - 1), "gradual") for s, e in truth_transitions]
    pred = [(c, c) for c in pred_cuts] + [(s, e - 1) for s, e in pred_transitions]
    pairs = sorted((_interval_gap(p, t[0]), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)
                   if _interval_gap(p, t[0]) <= tolerance)
    used_p, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    by_kind = {k: sum(1 for j in used_t if truth[j][1] == k) for k in ("cut", "gradual")}
    return {"tp": len(used_t), "fp": len(pred) - len(used_p), "fn": len(truth) - len(used_t),
            "tp_cut": by_kind["cut"], "n_cut": len(truth_cuts), "tp_gradual": by_kind["gradual"],
            "n_gradual": len(truth_transitions)}
