"""Curation accuracy against the demo pool's ground truth (never read by the pipeline).

- scene cuts: precision / recall / F1 with a ±2-frame tolerance, for PySceneDetect alone
  and after similarity refinement;
- text overlays: clip-level detection precision / recall;
- low-motion filter: static and camera-only clips rejected, moving clips kept;
- quarantine: every broken file quarantined with the expected reason.
"""

from __future__ import annotations

from typing import Any

from curation.scenes import match_cuts, precision_recall_f1


def _truth_scene(video: dict, start: int, end: int) -> dict | None:
    """The ground-truth scene that overlaps [start, end) the most."""
    best, best_overlap = None, 0
    for scene in video.get("scenes", []):
        overlap = min(end, scene["end_frame"]) - max(start, scene["start_frame"])
        if overlap > best_overlap:
            best, best_overlap = scene, overlap
    return best


def scene_cut_accuracy(truth: dict, cut_rows: list[dict], tolerance: int = 2) -> dict[str, Any]:
    by_id = {r["video_id"]: r for r in cut_rows}
    totals = {"pyscenedetect": [0, 0, 0], "final": [0, 0, 0]}
    videos = 0
    for video in truth.get("videos", []):
        if "cuts" not in video:
            continue  # real footage without annotated cuts
        row = by_id.get(video["file"].rsplit(".", 1)[0])
        if row is None:
            continue
        videos += 1
        for name, col in (("pyscenedetect", "cuts_pyscenedetect"), ("final", "cuts_final")):
            tp, fp, fn = match_cuts(list(row[col]), video["cuts"], tolerance)
            totals[name] = [totals[name][0] + tp, totals[name][1] + fp, totals[name][2] + fn]
    return {
        "videos": videos,
        "tolerance_frames": tolerance,
        **{name: precision_recall_f1(*t) for name, t in totals.items()},
    }


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
