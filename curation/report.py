"""The curation report: what happened to every shard, and accuracy against ground truth."""

from __future__ import annotations

import json
from typing import Any

from core import layout
from core.markdown import markdown_table
from core.params import Params
from core.stage import marker_key, recorded_metadata
from core.storage import ObjectStore
from core.tables import read_table, write_json
from curation import accuracy

REPORT_KEY = layout.CURATION_REPORT
METRICS_KEY = layout.CURATION_REPORT_METRICS


def _table(rows: list[dict[str, Any]]) -> list[str]:
    return [*markdown_table(rows, missing="n/a", empty="_(none)_").split("\n"), ""]


def shard_accuracy(params: Params, store: ObjectStore, shard: str) -> dict[str, Any] | None:
    """Accuracy of one shard's curation, or None when the shard has no ground truth."""
    truth_path = params.resolve(params.demo_pool.ground_truth_root) / f"{shard}.json"
    if not truth_path.is_file():
        return None
    truth = json.loads(truth_path.read_text())
    raw = read_table(store, layout.table("raw_videos", shard)).to_pylist()
    cuts = read_table(store, layout.table("scene_cuts", shard)).to_pylist()
    clips = read_table(store, layout.table("scene_clips", shard)).to_pylist()
    quality = {r["clip_id"]: r for r in read_table(store, layout.table("clip_quality", shard)).to_pylist()}
    curated = {r["clip_id"]: r for r in read_table(store, layout.table("curated_clips", shard)).to_pylist()}
    kept_clips = [c for c in clips if c["kept"]]
    return {
        "scene_cuts": accuracy.scene_cut_accuracy(truth, cuts),
        "clip_boundary_leaks": accuracy.clip_boundary_leaks(truth, clips),
        "text_overlay": accuracy.text_overlay_accuracy(truth, kept_clips, quality),
        "low_motion_filter": accuracy.motion_filter_accuracy(truth, kept_clips, curated),
        "short_scenes": accuracy.short_scene_accuracy(truth, clips, params.scene_clips.min_duration_s),
        "quarantine": accuracy.quarantine_accuracy(truth, raw),
        "duplicates": accuracy.duplicate_accuracy(truth, raw, list(curated.values())),
    }


BACKEND_LABELS = {
    "transnetv2": "TransNetV2 (learned)",
    "pyscenedetect": "PySceneDetect + similarity refinement + ramps",
    "pyscenedetect_unrefined": "PySceneDetect alone",
}


def shot_boundary_rows(sc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per shot-detection backend that ran, the one that cut the clips first."""
    order = sorted(sc["by_backend"], key=lambda n: (n != sc["selected_backend"], n))
    rows = []
    for name in order or ["final"]:
        r = sc["by_backend"].get(name, sc["final"])
        label = BACKEND_LABELS.get(name, name) + (" [selected]" if name == sc["selected_backend"] else "")
        rows.append({"shot boundaries": label, **{k: r[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")},
                     "hard cuts found": f"{r['cuts_found']}/{r['cuts']}",
                     "gradual found": f"{r['gradual_found']}/{r['gradual']}" if r["gradual"] else "n/a"})
    return rows


STAGE_ORDER = ("raw_videos", "scene_clips", "clip_quality", "curated_clips")


def build_curation_report(params: Params, store: ObjectStore, shards: list[str]) -> dict[str, Any]:
    """Write the Markdown report and the metrics JSON; return the metrics."""
    lines = ["# Curation report", ""]
    lines += [
        "Backends: shot boundaries `" + params.scene_clips.shot_backend + "`, scene similarity `"
        + params.scene_clips.similarity_backend + "`, OCR `"
        + params.clip_quality.ocr_backend + "`, technical quality `classical`, aesthetics `"
        + params.clip_quality.aesthetic_backend + "` (`none` = not computed; no embedded aesthetic model exists).",
        "",
    ]
    metrics: dict[str, Any] = {"shards": {}}
    flow = []
    for shard in shards:
        meta = {s: recorded_metadata(store, s, shard) for s in STAGE_ORDER}
        if any(m is None for m in meta.values()):
            missing = [s for s, m in meta.items() if m is None]
            lines += [f"## Shard `{shard}`", "", f"Not curated yet (missing: {', '.join(missing)}).", ""]
            continue
        r, s, q, c = (meta[k] for k in STAGE_ORDER)
        flow.append({
            "shard": shard, "videos": r["videos_in"], "quarantined": r["quarantined"], "scenes": s["scenes_found"],
            "clips": s["clips_out"], "curated": c["clips_out"], "cropped": c["cropped"],
            "curated_s": c["curated_seconds"], "decode/clip": q["decode_passes_per_clip"],
            "seconds": round(sum(m["seconds"] for m in meta.values()), 1),
        })
        acc = shard_accuracy(params, store, shard)
        metrics["shards"][shard] = {"flow": flow[-1], "accuracy": acc}
        lines += [f"## Shard `{shard}`", ""]
        lines += [f"- quarantined by reason: {r['quarantine_by_reason'] or 'none'}",
                  f"- scenes dropped: {s['dropped_by_reason'] or 'none'}",
                  f"- rejections by reason: {c['rejections_by_reason'] or 'none'}",
                  *_dedup_line(recorded_metadata(store, "clip_dedup", shard)),
                  "- stage seconds: " + ", ".join(f"{k} {meta[k]['seconds']}" for k in STAGE_ORDER), ""]
        if r["quarantine_preview"]:
            lines += ["Quarantine:", "", *_table(r["quarantine_preview"])]
        rejected = c.get("rejected_preview") or []
        if rejected:
            lines += ["Rejected clips:", "", *_table(rejected)]
        if acc is None:
            lines += ["_No ground truth for this shard: accuracy not measured._", ""]
            continue
        sc = acc["scene_cuts"]
        footage = "procedural (generated footage)" if sc["footage"] == "procedural" else "real footage"
        lines += [f"Accuracy against ground truth, {footage} (shot boundaries ±{sc['tolerance_frames']} frames "
                  f"over {sc['videos']} videos):", ""]
        lines += _table(shot_boundary_rows(sc))
        leaks = acc["clip_boundary_leaks"]
        if leaks["clips"]:
            lines += [f"Kept clips holding a true shot boundary: {leaks['clips_with_boundary']}/{leaks['clips']} "
                      f"({leaks['transition_frames_in_clips']} transition frames inside clips)", ""]
        rows = [
            {"measure": "text-overlay clips (OCR)", **{k: acc["text_overlay"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}},
            {"measure": "low-motion filter (static / camera-only)", **{k: acc["low_motion_filter"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}},
        ]
        lines += _table(rows)
        qa = acc["quarantine"]
        lines += [f"Broken files quarantined with the expected reason: {qa['correct']}/{qa['expected']}"
                  + (f"; unexpected quarantines: {qa['unexpected_quarantine']}" if qa["unexpected_quarantine"] else ""),
                  f"Scenes shorter than the minimum that came out as clips: {acc['short_scenes']['short_scenes_kept']}"
                  f"/{acc['short_scenes']['short_scenes']}", ""]
        if qa["rows"]:
            lines += _table(qa["rows"])
        dup = acc["duplicates"]
        if dup["planted"]:
            lines += [f"Planted copies removed: {dup['removed']}/{dup['planted']}", "", *_table(dup["rows"])]
    lines[2:2] = ["## Flow", "", *_table(flow)]
    metrics["flow"] = flow
    store.put_bytes(REPORT_KEY, "\n".join(lines).encode())
    write_json(store, METRICS_KEY, metrics)
    return metrics


def _dedup_line(meta: dict[str, Any] | None) -> list[str]:
    if meta is None:
        return []
    against = ", ".join(meta["compared_with_shards"]) or "no earlier shard"
    return [f"- duplicates of earlier clips (this shard and {against}): {meta['duplicates_by_kind'] or 'none'}"]


def report_inputs_ready(store: ObjectStore, shard: str) -> bool:
    return all(store.exists(marker_key(s, shard)) for s in STAGE_ORDER)
