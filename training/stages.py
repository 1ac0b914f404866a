"""The curriculum stages as plain functions over (params, store, shards).

training_samples -> difficulty_scores -> difficulty_quartiles -> curriculum_schedule

`training_samples` is an aggregate stage: it reads the annotations of every shard given
(those that passed annotation's quality gates) and writes one output under the pseudo-shard
AGGREGATE. The later stages read those aggregate outputs, so they run under AGGREGATE as
ordinary stages (their upstream markers are `metrics/<stage>/all-shards.json`). Dagster
assets and `reactid train-stage` (which `dvc repro` calls) both run them through
`core.stage.run_stage`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from core import layout
from core.progress import report
from core.stage import AGGREGATE, Output, StageContext, StageSpec, recorded_metadata
from core.summaries import counts_by
from core.summaries import min_median_max as _summary
from core.summaries import preview_rows as _preview
from core.tables import read_table, to_table, write_json, write_table
from training import schemas

SCHEDULE_KEY = layout.SCHEDULE
DEEPSPEED_CONFIG_KEY = layout.DEEPSPEED_CONFIG
DEEPSPEED_INDEX_PREFIX = layout.DEEPSPEED_INDEX
HISTOGRAM_CSV_KEY = layout.DIFFICULTY_HISTOGRAM_CSV
HISTOGRAM_PNG_KEY = layout.DIFFICULTY_HISTOGRAM_PNG


def annotations_key(shard: str) -> str:
    return layout.table("annotations", shard)


def _key(stage: str) -> str:
    return layout.table(stage, AGGREGATE)


# ---------------------------------------------------------------- training_samples


def training_samples(ctx: StageContext) -> dict[str, Any]:
    """Intra- and inter-clip samples with reference crops written to the object store."""
    from core.images import encode_png
    from curation.features import build_frame_embedder
    from curation.subject_crops import box_at, choose_reference_frames, crop_subject, read_frames
    from training.samples import (
        MISSING_CLIP, MISSING_REFERENCE, SubjectKey, embed_images, pair_inter_clip, reference_key, sample_row,
        screen_subject,
    )

    from core.holdout import held_out_identities

    cfg = ctx.params.training_samples
    pool: list[dict[str, Any]] = []
    for shard in ctx.shards:
        for row in read_table(ctx.store, annotations_key(shard), needed_by="training_samples").to_pylist():
            pool.append({**row, "annotation_key": annotations_key(shard)})
    # Benchmark identities are held out: training never sees them (evaluation uses the same rule).
    held_out = set(held_out_identities(pool, ctx.params.evaluation.held_out))
    subjects = [r for r in pool if r.get("identity") not in held_out]
    screens = [screen_subject(r) for r in subjects]
    target_reason = [s.target_reason for s in screens]
    ref_reason = [s.reference_reason for s in screens]
    detail = [s.detail for s in screens]
    frames = [choose_reference_frames(r, cfg.reference_frames, cfg.references_per_sample) if ref_reason[i] is None
              else [] for i, r in enumerate(subjects)]
    keys: list[list[str]] = [[] for _ in subjects]
    embedder = build_frame_embedder(cfg.similarity_backend, cfg.similarity_model,
                                    params_key="training_samples.similarity_backend")
    descriptors: np.ndarray | None = None
    by_clip: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(subjects):
        if frames[i]:
            by_clip[r["clip_key"]].append(i)
    with ctx.store.staged_prefix(layout.REFERENCES) as staging:
        for n, (clip_key, members) in enumerate(sorted(by_clip.items())):
            report("training_samples", n, len(by_clip), clip_key)
            if not ctx.store.exists(clip_key):
                for i in members:
                    target_reason[i] = ref_reason[i] = MISSING_CLIP
                    detail[i] = f"clip {clip_key!r} is not in the object store"
                continue
            with ctx.store.local_path(clip_key) as path:
                decoded = read_frames(path, {f for i in members for f in frames[i]})
            for i in members:
                r = subjects[i]
                crops = [crop_subject(decoded[f], box_at(r, f), padding=cfg.reference_padding,
                                      size=cfg.reference_crop_size) if f in decoded else None for f in frames[i]]
                if any(c is None for c in crops):
                    ref_reason[i] = MISSING_REFERENCE
                    detail[i] = f"no crop at frames {[f for f, c in zip(frames[i], crops) if c is None]}"
                    target_reason[i] = target_reason[i] or MISSING_REFERENCE
                    continue
                for f, crop in zip(frames[i], crops):
                    ctx.store.put_bytes(layout.join(staging, layout.reference_name(r["shard"], r["entity_id"], f)), encode_png(crop))
                    keys[i].append(reference_key(r["shard"], r["entity_id"], f))
                feats = embed_images(embedder, crops).mean(axis=0)
                if descriptors is None:
                    descriptors = np.zeros((len(subjects), len(feats)), np.float32)
                descriptors[i] = feats / max(float(np.linalg.norm(feats)), 1e-12)
    report("training_samples", len(by_clip), len(by_clip), "done")
    can_ref = np.array([ref_reason[i] is None and bool(keys[i]) for i in range(len(subjects))], bool)
    can_target = np.array([target_reason[i] is None for i in range(len(subjects))], bool) & can_ref
    keyed = [SubjectKey(r["clip_id"], r["entity_id"], r.get("identity"), r.get("label")) for r in subjects]
    pairs = pair_inter_clip(keyed, descriptors if descriptors is not None else np.zeros((len(subjects), 1)),
                            can_target, can_ref, threshold=cfg.inter_clip_similarity,
                            per_subject=cfg.inter_clip_per_subject)
    rows = []
    for i, r in enumerate(subjects):
        if can_target[i]:
            rows.append(sample_row(r, r, kind="intra", reference_frames=frames[i], reference_keys=keys[i],
                                   backend=embedder.name))
        else:
            rows.append(sample_row(r, None, kind="intra", reason=target_reason[i] or ref_reason[i],
                                   detail=detail[i], backend=embedder.name))
    for i, j, sim in pairs:
        rows.append(sample_row(subjects[i], subjects[j], kind="inter", reference_frames=frames[j],
                               reference_keys=keys[j], similarity=sim, backend=embedder.name))
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.TRAINING_SAMPLES))
    ok = [r for r in rows if r["status"] == "ok"]
    excluded = [r for r in rows if r["status"] != "ok"]
    paired = {i for i, _, _ in pairs}
    return {
        "table": ctx.table_key(),
        "shards": list(ctx.shards),
        "held_out_identities": sorted(held_out),
        "held_out_subjects": len(pool) - len(subjects),
        "subjects_in": len(subjects),
        "samples_out": len(ok),
        "intra_clip": sum(r["reference_kind"] == "intra" for r in ok),
        "inter_clip": len(pairs),
        "excluded": len(excluded),
        "exclusions_by_reason": counts_by([r["reason"] for r in excluded]),
        "targets_without_identity": int(sum(bool(can_target[i]) and not subjects[i].get("identity")
                                            for i in range(len(subjects)))),
        "targets_without_inter_match": int(sum(bool(can_target[i]) and i not in paired
                                               for i in range(len(subjects)))),
        "reference_crops": sum(len(k) for k in keys),
        "similarity_backend": embedder.name,
        "excluded_preview": _preview(excluded, ["sample_id", "reason", "detail"], 20),
        "preview": _preview(ok, ["sample_id", "reference_kind", "reference_clip_id", "inter_clip_similarity"]),
    }


# ---------------------------------------------------------------- difficulty_scores


def _face_features(
    target: dict, reference: dict, reference_frames: list[int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Identity embeddings of the reference frames and of the target's face regions, when the
    target is a person with faces and every reference frame is one of the reference's
    representative face frames; else None (appearance features are used)."""
    regions = target.get("face_embeddings") or []
    if not target.get("is_human") or not regions:
        return None
    rep = list(reference.get("representative_frames") or [])
    emb = reference.get("face_embeddings") or []
    if not reference_frames or any(f not in rep or rep.index(f) >= len(emb) for f in reference_frames):
        return None
    return np.array([emb[rep.index(f)] for f in reference_frames], np.float64), np.array(regions, np.float64)


def difficulty_scores(ctx: StageContext) -> dict[str, Any]:
    """D_sub (Eq. 1), D_app (Eq. 2), D_sam and D_overall for every training sample."""
    from core.images import decode_png
    from curation.features import build_frame_embedder
    from curation.subject_crops import crop_subject, read_frames
    from training.difficulty import (
        MISSING_REGIONS, DifficultyInputError, DifficultyWeights, appearance_difficulty, overall_difficulty,
        subject_size_difficulty_rle,
    )
    from training.samples import embed_images

    cfg = ctx.params.difficulty
    crop = ctx.params.training_samples
    weights = DifficultyWeights(cfg.lambda_sub, cfg.lambda_app, cfg.lambda_sam)
    samples = read_table(ctx.store, _key("training_samples"), needed_by="difficulty_scores").to_pylist()
    ok = [s for s in samples if s["status"] == "ok"]
    annotations: dict[tuple[str, str], dict] = {}
    for key in sorted({s["annotation_key"] for s in ok} | {s["reference_annotation_key"] for s in ok}):
        for row in read_table(ctx.store, key, needed_by="difficulty_scores").to_pylist():
            annotations[(key, row["entity_id"])] = row
    encoder = build_frame_embedder(cfg.appearance_backend, cfg.appearance_model,
                                   params_key="difficulty.appearance_backend")
    faces = {s["sample_id"]: _face_features(annotations[(s["annotation_key"], s["entity_id"])],
                                            annotations[(s["reference_annotation_key"], s["reference_entity_id"])],
                                            s["reference_frames"]) for s in ok}
    # Appearance regions P_i: the target's boxes, cropped like the references, one decode per clip.
    need = {(s["annotation_key"], s["entity_id"]) for s in ok if faces[s["sample_id"]] is None}
    regions: dict[tuple[str, str], np.ndarray | None] = {}
    by_clip: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in sorted(need):
        by_clip[annotations[key]["clip_key"]].append(key)
    for n, (clip_key, targets) in enumerate(sorted(by_clip.items())):
        report("difficulty_scores", n, len(by_clip), clip_key)
        with ctx.store.local_path(clip_key) as path:
            decoded = read_frames(path, {f for t in targets for f in annotations[t]["frame_indices"]})
        for t in targets:
            row = annotations[t]
            crops = [crop_subject(decoded[f], b, padding=crop.reference_padding, size=crop.reference_crop_size)
                     for f, b in zip(row["frame_indices"], row["boxes"]) if f in decoded]
            crops = [c for c in crops if c is not None]
            regions[t] = embed_images(encoder, crops) if crops else None
    report("difficulty_scores", len(by_clip), len(by_clip), "done")
    ref_cache: dict[str, np.ndarray] = {}
    rows, scored = [], []
    for s in samples:
        row = {k: s[k] for k in ("sample_id", "shard", "clip_id", "entity_id", "reference_kind", "d_sam")}
        if s["status"] != "ok":
            rows.append({**row, "status": "excluded", "reason": s["reason"], "detail": s["detail"]})
            continue
        target = annotations[(s["annotation_key"], s["entity_id"])]
        try:
            d_sub = subject_size_difficulty_rle(target["mask_rles"] or [])
            face = faces[s["sample_id"]]
            if face is not None:
                ref, reg = face
                backend = json.loads(target.get("backends") or "{}").get("face") or "unknown"
                features = f"face:{backend}"
            else:
                reg = regions[(s["annotation_key"], s["entity_id"])]
                if reg is None:
                    raise DifficultyInputError(MISSING_REGIONS, "no subject box of the clip could be cropped")
                for k in s["reference_keys"]:
                    if k not in ref_cache:
                        ref_cache[k] = embed_images(encoder, [decode_png(ctx.store.get_bytes(k))])[0]
                ref = np.stack([ref_cache[k] for k in s["reference_keys"]])
                features = f"appearance:{encoder.name}"
            d_app = appearance_difficulty(ref, reg)
        except DifficultyInputError as exc:
            rows.append({**row, "status": "excluded", "reason": exc.reason, "detail": exc.detail})
            continue
        rows.append({**row, "d_sub": d_sub, "d_app": d_app, "n_mask_frames": len(target["mask_rles"]),
                     "n_regions": len(reg), "n_references": len(ref), "app_features": features,
                     "status": "ok", "reason": None, "detail": None})
        scored.append(rows[-1])
    if scored:
        d_all = overall_difficulty(np.array([r["d_sub"] for r in scored]), np.array([r["d_app"] for r in scored]),
                                   np.array([r["d_sam"] for r in scored]), weights)
        for r, d in zip(scored, d_all.tolist()):
            r["d_overall"] = d
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.DIFFICULTY_SCORES))
    excluded = [r for r in rows if r["status"] != "ok"]
    return {
        "table": ctx.table_key(),
        "samples_in": len(samples),
        "scored": len(scored),
        "excluded": len(excluded),
        "exclusions_by_reason": counts_by([r["reason"] for r in excluded]),
        "weights": {"lambda_sub": weights.lambda_sub, "lambda_app": weights.lambda_app,
                    "lambda_sam": weights.lambda_sam},
        "app_features": counts_by([r["app_features"] for r in scored]),
        "d_overall": _summary([r["d_overall"] for r in scored]),
        "preview": _preview(scored, ["sample_id", "d_sub", "d_app", "d_sam", "d_overall", "app_features"]),
    }


def _scores(ctx: StageContext, needed_by: str) -> tuple[np.ndarray, np.ndarray]:
    """D_overall and inter-clip flags of the scored samples, in table order (the sampler's index)."""
    import pyarrow.compute as pc

    table = read_table(ctx.store, _key("difficulty_scores"), needed_by=needed_by)
    table = table.filter(pc.equal(table["status"], "ok"))
    return table["d_overall"].to_numpy(), table["d_sam"].to_numpy() == 1


# ---------------------------------------------------------------- difficulty_quartiles


def difficulty_quartiles(ctx: StageContext) -> dict[str, Any]:
    """tau per phase from the quantiles of D_overall, per-phase counts and the histogram."""
    from training.curriculum import difficulty_histogram, eligible_counts, histogram_png, phase_thresholds

    cfg = ctx.params.curriculum
    d, inter = _scores(ctx, "difficulty_quartiles")
    levels, taus = phase_thresholds(d, len(cfg.phase_ratios))
    intra_c, inter_c = eligible_counts(d, inter, taus)
    rows = [{"phase": k + 1, "quantile": float(levels[k]), "tau": float(taus[k]),
             "eligible": int(intra_c[k] + inter_c[k]), "eligible_intra": int(intra_c[k]),
             "eligible_inter": int(inter_c[k])} for k in range(len(taus))]
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.DIFFICULTY_QUARTILES))
    counts, edges = difficulty_histogram(d, cfg.histogram_bins)
    lines = ["bin_left,bin_right,bin_centre,count"]
    lines += [f"{a:.6f},{b:.6f},{(a + b) / 2:.6f},{c}" for a, b, c in zip(edges[:-1], edges[1:], counts.tolist())]
    ctx.store.put_bytes(HISTOGRAM_CSV_KEY, ("\n".join(lines) + "\n").encode())
    ctx.store.put_bytes(HISTOGRAM_PNG_KEY, histogram_png(counts, edges, taus.tolist(), levels.tolist()))
    return {
        "table": ctx.table_key(),
        "samples": int(len(d)),
        "inter_clip_samples": int(inter.sum()),
        "edges": [round(float(t), 6) for t in taus],
        "quantiles": [float(q) for q in levels],
        "phase_counts": {f"phase_{r['phase']}": r["eligible"] for r in rows},
        "histogram_key": HISTOGRAM_CSV_KEY,
        "plot_key": HISTOGRAM_PNG_KEY,
        "preview": rows,
    }


# ---------------------------------------------------------------- curriculum_schedule


def curriculum_schedule(ctx: StageContext) -> dict[str, Any]:
    """Phases, tau and inter-clip ratio per phase; the trainer's JSON and DeepSpeed's config."""
    from core.storage import temp_dir
    from training.curriculum import build_schedule, deepspeed_curriculum, deepspeed_metric, write_deepspeed_index

    cfg = ctx.params.curriculum
    run = ctx.params.training.effective()
    use_demo = ctx.params.training.use_demo
    inter_ratios = cfg.demo_inter_clip_ratios if use_demo else cfg.inter_clip_ratios
    quart = read_table(ctx.store, _key("difficulty_quartiles"), needed_by="curriculum_schedule").to_pydict()
    d, inter = _scores(ctx, "curriculum_schedule")
    weights = (recorded_metadata(ctx.store, "difficulty_scores", AGGREGATE) or {}).get("weights", {})
    schedule = build_schedule(
        d, inter, np.array(quart["quantile"]), np.array(quart["tau"]), total_steps=run.total_steps,
        phase_ratios=cfg.phase_ratios, inter_clip_ratios=inter_ratios, global_batch_size=run.global_batch,
        seed=cfg.seed, difficulty_table=_key("difficulty_scores"), samples_table=_key("training_samples"),
        weights=weights,
    )
    metric = deepspeed_metric(d, cfg.deepspeed_metric_scale)
    root = ctx.params.storage.root.rstrip("/")
    ds_config, ds_difficulty, ds_eligible = deepspeed_curriculum(
        schedule, metric, scale=cfg.deepspeed_metric_scale, index_dir=layout.join(root, DEEPSPEED_INDEX_PREFIX),
        cluster_dir=layout.join(root, layout.DEEPSPEED_CLUSTERS),  # written by DeepSpeed while training: outside dvc's outs
    )
    with temp_dir() as tmp:
        for path in write_deepspeed_index(metric, Path(tmp)):
            ctx.store.put_file(layout.join(DEEPSPEED_INDEX_PREFIX, path.name), path)
    write_json(ctx.store, DEEPSPEED_CONFIG_KEY, ds_config)
    payload = {
        **schedule.to_json(),
        "sampler": "training.sampler.open_sampler",
        "deepspeed": {"config": DEEPSPEED_CONFIG_KEY, "metric_scale": cfg.deepspeed_metric_scale,
                      "difficulty": ds_difficulty, "eligible": ds_eligible,
                      "not_expressible": "inter_clip_ratio: DeepSpeed mixes its clusters by size"},
    }
    write_json(ctx.store, SCHEDULE_KEY, payload)
    rows = []
    for p, ds_d, ds_n in zip(schedule.phases, ds_difficulty, ds_eligible):
        lo, hi, _, _ = p.draws_per_step(schedule.global_batch_size)
        rows.append({"phase": p.phase, "start_step": p.start_step, "end_step": p.end_step, "tau": p.tau,
                     "inter_clip_ratio": p.inter_clip_ratio, "eligible_intra": p.eligible_intra,
                     "eligible_inter": p.eligible_inter, "inter_per_step_min": lo, "inter_per_step_max": hi,
                     "deepspeed_difficulty": ds_d, "deepspeed_eligible": ds_n})
    write_table(ctx.store, ctx.table_key(), to_table(rows, schemas.CURRICULUM_SCHEDULE))
    return {
        "table": ctx.table_key(),
        "schedule_key": SCHEDULE_KEY,
        "deepspeed_config_key": DEEPSPEED_CONFIG_KEY,
        "total_steps": schedule.total_steps,
        "global_batch_size": schedule.global_batch_size,
        "update_steps": [p.start_step for p in schedule.phases[1:]],
        "taus": [round(p.tau, 6) for p in schedule.phases],
        "inter_clip_ratios": [p.inter_clip_ratio for p in schedule.phases],
        "inter_clip_ratios_from": "curriculum.demo_inter_clip_ratios (training.use_demo)" if use_demo
        else "curriculum.inter_clip_ratios",
        "preview": rows,
    }


# ---------------------------------------------------------------- registry

TRAINING_STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in (
        StageSpec("training_samples", training_samples, ("training_samples", "evaluation.held_out"), ("annotations",),
                  "Intra- and inter-clip training samples; reference crops in the object store.", aggregate=True,
                  outputs=(Output(_key("training_samples")), Output(layout.REFERENCES)),
                  inputs=(layout.marker("quality_gates", "{shard}"),)),
        StageSpec("difficulty_scores", difficulty_scores, ("difficulty", "training_samples"),
                  ("training_samples",),
                  "D_sub, D_app, D_sam and D_overall per sample (paper Eq. 1-2).", partitioning="aggregate",
                  inputs=(annotations_key("{shard}"),)),
        StageSpec("difficulty_quartiles", difficulty_quartiles, ("curriculum",), ("difficulty_scores",),
                  "Quantile thresholds tau of D_overall, counts and histogram.", partitioning="aggregate",
                  outputs=(Output(_key("difficulty_quartiles")),
                           Output(HISTOGRAM_PNG_KEY, cache=False),
                           Output(HISTOGRAM_CSV_KEY, "plots", cache=False, plot=(
                               ("x", "bin_centre"), ("y", "count"),
                               ("title", "D_overall of the training samples (thresholds in "
                                         f"{HISTOGRAM_PNG_KEY})"))))),
        StageSpec("curriculum_schedule", curriculum_schedule, ("curriculum", "training"),
                  ("difficulty_quartiles", "difficulty_scores"),
                  "Phases, tau and inter-clip ratio per phase; schedule JSON and DeepSpeed config.", partitioning="aggregate",
                  outputs=(Output(_key("curriculum_schedule")), Output(layout.CURRICULUM))),
    )
}


def _browser_spec() -> StageSpec:
    from training.dataset_browser import browser_inputs_hash, dataset_browser

    # Per shard it reads the curated clips and annotations; the curriculum tables (one aggregate
    # output each) and the previews (optional: links only) enter through browser_inputs_hash.
    return StageSpec("dataset_browser", dataset_browser, ("dataset_browser",),
                     ("curated_clips", "annotations"),
                     "Static HTML page over every gated shard's clips: previews, captions, entities, difficulty, "
                     "quartile and phase, filters, and easy-to-hard examples per quartile.",
                     input_hash=browser_inputs_hash, aggregate=True,
                     inputs=(layout.table("clip_previews", "{shard}"), _key("training_samples"),
                             _key("difficulty_scores"), _key("difficulty_quartiles")),
                     outputs=(Output(layout.DATASET_BROWSER, cache=False),))


TRAINING_STAGES["dataset_browser"] = _browser_spec()
