"""Duplicate removal across shards: the clip_signatures and clip_dedup stages.

The duplicate index is persisted per shard, so a new shard extends it without touching the
old ones:
- `tables/clip_signatures/<shard>.parquet`: each clip's perceptual signature
  (curation/dedup.py) and its raw video's SHA-256 (raw_videos `content_sha256`);
- `index/shard_order/<shard>.json`: when the shard joined the index, written once, the
  first time its signatures are computed, and never rewritten.

"Before" is registration order, not name order. Shards arrive over time, and the first
copy to arrive is the one curated (and perhaps trained on) already: ordering by name would
let a later shard whose name sorts first take that role and change the results of shards
curated long before. The first run of a shard's clip_signatures fixes its place; from then
on every run, in either engine (Dagster, dvc) and in any order, reads the same order, and a
rerun of a registered shard keeps its place. Shards first registered concurrently are
ordered by their registration clock, then by name. Retiring a shard for good means deleting
its record too: the shards after it then become stale and compare without it.

clip_dedup compares a shard's clips, in clip order, with every earlier clip of the shard
and with the clips of every shard registered before it. Its fingerprint holds the
signature markers of exactly those shards (core.stage `prior_upstream`), so a shard's
result is stale when an earlier shard's signatures change, and never when a later shard
is added.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core import layout
from core.errors import StageInputError
from core.backends import Backend, BackendRegistry, item_work
from core.execution import ItemEnv, model_device, run_items
from core.stage import StageContext
from core.summaries import counts_by
from core.storage import ObjectStore
from core.tables import read_json, read_table, to_table, write_json, write_table
from curation.schemas import CLIP_DEDUP, CLIP_SIGNATURES

SHARD_ORDER_PREFIX = layout.SHARD_ORDER
EMBEDDED_BACKEND = "embedded:dct-hash"

# ---------------------------------------------------------------- shard order


def register_shard(store: ObjectStore, shard: str) -> dict[str, Any]:
    """Record that `shard` joined the duplicate index, unless it already has; return its record."""
    key = layout.shard_order_record(shard)
    if store.exists(key):
        return read_json(store, key)
    record = {"shard": shard, "registered_ns": time.time_ns()}
    write_json(store, key, record)
    return record


def shard_order(store: ObjectStore) -> list[str]:
    """Every registered shard, earliest first."""
    records = [read_json(store, k) for k in store.list(SHARD_ORDER_PREFIX) if k.endswith(".json")]
    return [r["shard"] for r in sorted(records, key=lambda r: (int(r["registered_ns"]), r["shard"]))]


def shards_before(ctx: StageContext) -> tuple[str, ...]:
    """The shards registered before `ctx.shard`, earliest first.

    Raises:
        StageInputError: the shard has not been registered (its clip_signatures never ran).
    """
    order = shard_order(ctx.store)
    if ctx.shard not in order:
        raise StageInputError(f"shard {ctx.shard!r} is not in the duplicate index yet; "
                              "run clip_signatures for it first")
    return tuple(order[: order.index(ctx.shard)])


# ---------------------------------------------------------------- clip_signatures


def load_signature_embedder(env: ItemEnv):
    """The pretrained frame embedder of `clip_signatures`, loaded once per worker."""
    from curation.features import build_frame_embedder

    return build_frame_embedder("pretrained", env.params.clip_signatures.pretrained_model,
                                device=model_device(env.params), params_key="clip_signatures.backend")


# the pretrained backend loads a frame embedder (curation.features: `embed(frames)`, `name`)
SIGNATURE_EMBEDDERS = BackendRegistry("signature backend", ("clip_signatures.backend",), {
    "embedded": Backend(),  # DCT hashes (curation.dedup)
    "pretrained": Backend(load_signature_embedder, uses_gpu=True),
})


def _signature_row(shard: str, clip: dict, cfg, backend: str, samples: int, *, hashes: list[int] | None = None,
                   embeddings: list[float] | None = None, dim: int | None = None) -> dict[str, Any]:
    return {
        "clip_id": clip["clip_id"], "video_id": clip["video_id"], "shard": shard,
        "video_sha256": clip["video_sha256"],
        "start_frame": clip["start_frame"], "end_frame": clip["end_frame"], "duration_s": clip["duration_s"],
        "sample_fps": cfg.sample_fps, "zooms": list(cfg.zooms),
        "backend": backend, "samples": samples, "hashes": hashes, "embeddings": embeddings, "dim": dim,
    }


def sign_clip(env: ItemEnv, embedder, clip: dict) -> dict[str, Any]:
    """The clip_signatures row of one kept clip (`clip` carries its video's `video_sha256`),
    read from its span of the source video, with the seconds it took (metadata, never table
    data)."""
    from curation.clip_spans import ClipSpan
    from curation.dedup import clip_signature
    from curation.video_io import open_location

    cfg = env.params.clip_signatures
    t0 = time.perf_counter()
    with open_location(env.store, clip["source_path"]) as src:
        signature = clip_signature(src, sample_fps=cfg.sample_fps, width=cfg.width, zooms=cfg.zooms,
                                   embedder=embedder, span=ClipSpan.of(clip))
    if embedder is None:
        row = _signature_row(env.shard, clip, cfg, EMBEDDED_BACKEND, len(signature),
                             hashes=[int(h) for h in signature.ravel()])
    else:
        row = _signature_row(env.shard, clip, cfg, embedder.name, len(signature),
                             embeddings=signature.ravel().tolist(), dim=int(signature.shape[1]))
    return {**row, "signature_seconds": round(time.perf_counter() - t0, 4)}


def _from_quality_pass(ctx: StageContext, clips: list[dict], cfg) -> list[dict[str, Any]]:
    """The embedded signatures clip_quality's pass hashed (`curation.stages.analyse_clip`):
    the same frames at the same times as a pass of this stage's own, without decoding the
    spans again.

    Raises:
        StageInputError: clip_quality holds no signature of a clip made with these settings.
    """
    quality = {r["clip_id"]: r for r in
               read_table(ctx.store, ctx.table_key("clip_quality"), needed_by="clip_signatures").to_pylist()}
    wanted = (cfg.sample_fps, cfg.width, list(cfg.zooms))
    rows = []
    for clip in clips:
        q = quality.get(clip["clip_id"])
        made = None if q is None else (q["signature_sample_fps"], q["signature_width"], q["signature_zooms"])
        if q is None or q["signature_hashes"] is None or made != wanted:
            raise StageInputError(f"clip_quality of shard {ctx.shard!r} holds no embedded signature of clip "
                                  f"{clip['clip_id']!r} made with sample_fps, width, zooms = {wanted} (it has "
                                  f"{made}): rerun clip_quality for {ctx.shard!r}")
        rows.append(_signature_row(ctx.shard, clip, cfg, EMBEDDED_BACKEND, q["signature_samples"],
                                   hashes=q["signature_hashes"]))
    return rows


def clip_signatures(ctx: StageContext) -> dict[str, Any]:
    """Perceptual signature of every clip of the shard; the shard joins the duplicate index.

    Embedded hashes come from clip_quality's pass over each span (no decode here); the
    pretrained embedder decodes the spans itself, one item per clip in an actor pool."""
    cfg = ctx.params.clip_signatures
    raw = read_table(ctx.store, ctx.table_key("raw_videos"), needed_by="clip_signatures").to_pylist()
    sha256 = {r["video_id"]: r["content_sha256"] for r in raw}
    scenes = read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="clip_signatures").to_pylist()
    clips = [{**r, "video_sha256": sha256[r["video_id"]]} for r in scenes if r["kept"]]
    if cfg.backend == "embedded":
        rows = _from_quality_pass(ctx, clips, cfg)
        seconds, run_metadata = 0.0, {"engine": "none (hashed in clip_quality's pass)", "items_processed": len(rows),
                                      "items_resumed": 0}
    else:
        work = item_work(sign_clip, SIGNATURE_EMBEDDERS, ctx.params)
        run = run_items(ctx, work, clips, label=lambda c: c["clip_id"], cost=lambda c: c["duration_s"])
        seconds = sum(r["signature_seconds"] for r in run.results)
        rows = [{k: v for k, v in r.items() if k != "signature_seconds"} for r in run.results]
        run_metadata = run.metadata()
    backend = rows[0]["backend"] if rows else (EMBEDDED_BACKEND if cfg.backend == "embedded"
                                               else f"pretrained:dinov2({cfg.pretrained_model})")
    write_table(ctx.store, ctx.table_key(), to_table(rows, CLIP_SIGNATURES))
    record = register_shard(ctx.store, ctx.shard)
    order = shard_order(ctx.store)
    return {
        "table": ctx.table_key(),
        "clips": len(rows),
        "samples": sum(r["samples"] for r in rows),
        "signature_seconds": round(seconds, 3),
        "backend": backend,
        "registered_ns": record["registered_ns"],
        "index_position": order.index(ctx.shard) + 1,
        "index_shards": len(order),
        **run_metadata,
    }


# ---------------------------------------------------------------- clip_dedup


def _settings(row: dict) -> dict[str, Any]:
    """What makes two signatures comparable."""
    return {"backend": row["backend"], "sample_fps": row["sample_fps"], "zooms": list(row["zooms"])}


def _indexed(store: ObjectStore, shard: str, settings: dict[str, Any]) -> list:
    """The signature rows of `shard` as index entries, checked to be comparable with this run's.

    Raises:
        StageInputError: the shard's signatures were computed with other settings.
    """
    from curation.dedup import IndexedClip

    out = []
    for row in read_table(store, layout.table("clip_signatures", shard), needed_by="clip_dedup").to_pylist():
        if _settings(row) != settings:
            raise StageInputError(f"clip_signatures of shard {shard!r} were computed with {_settings(row)}, this "
                                  f"shard's with {settings}: rerun clip_signatures for {shard!r}")
        if row["backend"] == EMBEDDED_BACKEND:
            signature = np.asarray(row["hashes"], np.uint64).reshape(row["samples"], len(settings["zooms"]))
        else:
            signature = np.asarray(row["embeddings"], np.float32).reshape(row["samples"], row["dim"])
        out.append(IndexedClip(row["clip_id"], shard, row["video_sha256"], row["start_frame"], row["end_frame"],
                               signature))
    return out


def clip_dedup(ctx: StageContext) -> dict[str, Any]:
    """Mark every clip that repeats an earlier clip of the shard or of a shard registered before it."""
    from curation.dedup import MatchRule, find_duplicates

    cfg = ctx.params.clip_dedup
    before = shards_before(ctx)
    own = read_table(ctx.store, ctx.table_key("clip_signatures"), needed_by="clip_dedup").to_pylist()
    # signatures compare only with signatures made the same way (a shard without clips compares nothing)
    settings = _settings(own[0]) if own else None
    prior = [clip for shard in before for clip in _indexed(ctx.store, shard, settings)] if own else []
    t0 = time.perf_counter()
    rule = MatchRule(cfg.max_frame_distance, cfg.min_coverage, cfg.min_overlap_s, cfg.max_embedding_distance)
    found = find_duplicates(prior, _indexed(ctx.store, ctx.shard, settings), rule, settings["sample_fps"]) if own else {}
    seconds = time.perf_counter() - t0
    rows = []
    for row in own:
        dup = found.get(row["clip_id"])
        match = dup.match if dup else None
        rows.append({
            "clip_id": row["clip_id"], "video_id": row["video_id"], "shard": ctx.shard,
            "duplicate": dup.kind if dup else None, "duplicate_of": dup.of.clip_id if dup else None,
            "duplicate_of_shard": dup.of.shard if dup else None,
            "offset_s": round(match.offset / settings["sample_fps"], 3) if match else (0.0 if dup else None),
            "coverage": round(match.coverage, 4) if match else (1.0 if dup else None),
            "mean_distance": match.mean_distance if match else (0.0 if dup else None),
        })
    write_table(ctx.store, ctx.table_key(), to_table(rows, CLIP_DEDUP))
    dups = [r for r in rows if r["duplicate"]]
    return {
        "table": ctx.table_key(),
        "clips_in": len(rows),
        "compared_with_shards": list(before),
        "prior_clips": len(prior),
        "duplicates": len(dups),
        "duplicates_by_kind": counts_by([r["duplicate"] for r in dups]),
        "match_seconds": round(seconds, 3),
        "preview": [{k: r[k] for k in ("clip_id", "duplicate", "duplicate_of", "duplicate_of_shard", "coverage")}
                    for r in dups[:20]],
    }

