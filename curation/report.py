"""The curation report: what happened to every shard, and accuracy against ground truth."""

from __future__ import annotations

import json
from typing import Any

from core.params import Params
from core.stage import marker_key, recorded_metadata
from core.storage import ObjectStore
from core.tables import read_table, write_json
from curation import accuracy

REPORT_KEY = "reports/curation_report.md"
METRICS_KEY = "metrics/curation_report.json"


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["_(none)_", ""]
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return [*out, ""]


def shard_accuracy(params: Params, store: ObjectStore, shard: str) -> dict[str, Any] | None:
    """Accuracy of one shard's curation, or None when the shard has no ground truth."""
    truth_path = params.resolve(params.demo_pool.ground_truth_root) / f"{shard}.json"
    if not truth_path.is_file():
        return None
    truth = json.loads(truth_path.read_text())
    raw = read_table(store, f"tables/raw_videos/{shard}.parquet").to_pylist()
    cuts = read_table(store, f"tables/scene_cuts/{shard}.parquet").to_pylist()
    clips = read_table(store, f"tables/scene_clips/{shard}.parquet").to_pylist()
    quality = {r["clip_id"]: r for r in read_table(store, f"tables/clip_quality/{shard}.parquet").to_pylist()}
    curated = {r["clip_id"]: r for r in read_table(store, f"tables/curated_clips/{shard}.parquet").to_pylist()}
    kept_clips = [c for c in clips if c["kept"]]
    return {
        "scene_cuts": accuracy.scene_cut_accuracy(truth, cuts),
        "text_overlay": accuracy.text_overlay_accuracy(truth, kept_clips, quality),
        "low_motion_filter": accuracy.motion_filter_accuracy(truth, kept_clips, curated),
        "short_scenes": accuracy.short_scene_accuracy(truth, clips, params.scene_clips.min_duration_s),
        "quarantine": accuracy.quarantine_accuracy(truth, raw),
        "duplicates": accuracy.duplicate_accuracy(truth, raw, list(curated.values())),
    }


STAGE_ORDER = ("raw_videos", "scene_clips", "clip_quality", "curated_clips")


def build_curation_report(params: Params, store: ObjectStore, shards: list[str]) -> dict[str, Any]:
    """Write the Markdown report and the metrics JSON; return the metrics."""
    lines = ["# Curation report", ""]
    lines += [
        "Backends: scene similarity `" + params.scene_clips.similarity_backend + "`, OCR `"
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
        lines += [f"Accuracy against ground truth (scene cuts ±{sc['tolerance_frames']} frames over {sc['videos']} videos):", ""]
        rows = [
            {"measure": "scene cuts, PySceneDetect only", **{k: sc["pyscenedetect"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}},
            {"measure": "scene cuts, + similarity refinement", **{k: sc["final"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}},
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
