"""The evaluation stages as plain functions over (params, store, shard), shared by the Dagster
assets and ``reactid eval-stage`` (which ``dvc repro`` calls).

demo_benchmarks (all annotated shards) ─┐
untrained_model (per configured name) ──┼─► benchmark_videos[bench/model] ─► benchmark_scores[bench/model]
   (trained phases and ablations register their models themselves)     │               │
                                                                       └► ipvg_submission  └► leaderboard

A (benchmark, model) pair is one stage "shard" named ``<benchmark>/<model>``, so adding a
model runs only its pairs. ``benchmark_videos`` reads the demo sets and the registered model:
both enter its fingerprint through ``input_hash`` (the set's marker fingerprint and the
export's digest), so a new export regenerates exactly that model's videos.
"""

from __future__ import annotations

import hashlib
from typing import Any

from core import layout
from core.errors import StageInputError
from core.stage import AGGREGATE, Output, StageContext, StageSpec, marker_key
from core.tables import read_json, read_table, to_table, write_json, write_table
from evaluation.demo_benchmarks import BENCHMARKS, IPVG_TRACKS, MANIFEST_KEY

LEADERBOARD_MD = layout.LEADERBOARD_MD
LEADERBOARD_HTML = layout.LEADERBOARD_HTML
LEADERBOARD_PLOTS = layout.LEADERBOARD_PLOTS
LEADERBOARD_CSV = layout.LEADERBOARD_CSV
LOSS_CSV = layout.TRAINING_LOSS_CSV
TRAINING_SAMPLES_KEY = layout.table("training_samples", AGGREGATE)


def run_key(benchmark: str, model: str) -> str:
    """The stage shard of a (benchmark, model) pair."""
    if benchmark not in BENCHMARKS:
        raise StageInputError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")
    from models.registry import check_model_name

    return f"{benchmark}/{check_model_name(model)}"


def split_run(shard: str) -> tuple[str, str]:
    benchmark, _, model = shard.partition("/")
    run_key(benchmark, model)
    return benchmark, model


def score_card_key(shard: str) -> str:
    return layout.score_card(shard)


def submission_runs(params: Any) -> tuple[str, ...]:
    """The (benchmark, model) shards ``ipvg_submission`` packages."""
    models = dict.fromkeys(r.model for r in params.evaluation.submission.runs)
    return tuple(run_key(b, m) for b in IPVG_TRACKS for m in models)


# ---------------------------------------------------------------- demo_benchmarks


def demo_benchmarks(ctx: StageContext) -> dict[str, Any]:
    """The four demo sets from held-out identities of every shard that passed its gates."""
    from evaluation.demo_benchmarks import build_demo_benchmarks

    rows = [r for shard in ctx.shards
            for r in read_table(ctx.store, layout.table("annotations", shard), needed_by=ctx.stage).to_pylist()]
    cfg = ctx.params.evaluation
    manifest = build_demo_benchmarks(rows, ctx.store, cfg.held_out, cfg.demo_sets.entries_per_set,
                                     cfg.demo_sets.reference_crop_size, cfg.demo_sets.subject_padding,
                                     cfg.demo_sets.face_padding)
    return {
        "manifest_key": MANIFEST_KEY,
        "shards": list(ctx.shards),
        "held_out_identities": manifest["held_out_identities"],
        "entries": {name: s["entries"] for name, s in manifest["sets"].items()},
        "preview": [{"benchmark": name, "file": s["file"], "entries": s["entries"], "images": s["images"],
                     "identities": ", ".join(sorted(set(s["identities"].values())))}
                    for name, s in manifest["sets"].items()],
    }


# ---------------------------------------------------------------- untrained_model


def untrained_model(ctx: StageContext) -> dict[str, Any]:
    """Register a random-weight pipeline (``ctx.shard`` names it) as a baseline model."""
    from core.storage import temp_dir
    from models.registry import store_model
    from models.presets import build_pipeline

    configured = ctx.params.evaluation.untrained_models
    if ctx.shard not in configured:
        raise StageInputError(f"{ctx.shard!r} is not in evaluation.untrained_models ({sorted(configured)})")
    cfg = configured[ctx.shard]
    with temp_dir("reactid-untrained-") as scratch:
        build_pipeline(cfg.preset, cfg.variant, seed=cfg.seed).save_pretrained(scratch)
        record = store_model(
            ctx.store, ctx.shard, scratch, kind="untrained", preset=cfg.preset, variant=cfg.variant,
            encoder_seed=cfg.seed,
            description=f"random weights (not trained): preset {cfg.preset}, variant {cfg.variant}, seed {cfg.seed}",
        )
    return {"model": record.name, "kind": record.kind, "layout": record.layout, "variant": record.variant,
            "export_sha256": record.export_sha256, "model_key": layout.model(record.name)}


# ---------------------------------------------------------------- benchmark_videos


def benchmark_videos(ctx: StageContext) -> dict[str, Any]:
    """One video per entry of a benchmark with a registered model."""
    from evaluation.generation import benchmark_requests, generate_videos, videos_prefix
    from models.registry import load_pipeline, read_record

    benchmark, model = split_run(ctx.shard)
    gen = ctx.params.evaluation.generation
    record = read_record(ctx.store, model)
    requests = benchmark_requests(ctx.store, benchmark)
    pipeline = load_pipeline(ctx.store, model, gen.device)
    prefix = videos_prefix(benchmark, model)
    records = generate_videos(pipeline, requests, ctx.store, prefix, gen)
    return {
        "benchmark": benchmark,
        "model": model,
        "trained": record.trained,
        "videos": len(records),
        "videos_key": prefix,
        "preview": records,
    }


def _videos_inputs(ctx: StageContext) -> str:
    """Fingerprint of the benchmark sets and of the model's export."""
    from models.registry import record_key

    _, model = split_run(ctx.shard)
    return _digest(ctx, [marker_key("demo_benchmarks", AGGREGATE), record_key(model)])


# ---------------------------------------------------------------- benchmark_scores


def benchmark_scores(ctx: StageContext) -> dict[str, Any]:
    """Per-video metric rows and the benchmark's score card (every value with its backend)."""
    from dataclasses import asdict

    from evaluation.benchmark_scores import SCORE_ROWS, build_metrics, score_card_json, score_rows, score_videos
    from evaluation.demo_benchmarks import TIMELINE_BENCHMARKS
    from evaluation.generation import benchmark_domain, benchmark_requests, videos_prefix
    from models.registry import read_record

    benchmark, model = split_run(ctx.shard)
    cfg = ctx.params.evaluation.metrics
    metrics = build_metrics(cfg.names, cfg.options, timeline=benchmark in TIMELINE_BENCHMARKS)
    requests = benchmark_requests(ctx.store, benchmark)
    per_video, sample_ids = score_videos(ctx.store, requests, videos_prefix(benchmark, model), metrics)
    write_table(ctx.store, ctx.table_key(), to_table(score_rows(benchmark, model, sample_ids, per_video), SCORE_ROWS))
    record = read_record(ctx.store, model)
    card = score_card_json(benchmark, model, per_video, benchmark_domain(benchmark), cfg.opens2v_version,
                           {**asdict(record), "trained": record.trained})
    write_json(ctx.store, score_card_key(ctx.shard), card)
    return {
        "table": ctx.table_key(),
        "score_card_key": score_card_key(ctx.shard),
        "videos": card["videos"],
        "total_score": card["total_score"],
        "total_score_missing": card["total_score_missing"],
        "preview": [{"metric": m["name"], "backend": m["backend"], "proxy": m["is_proxy"], "scale": m["scale"],
                     "value": m["value"], "not_computed": m["reason"]} for m in card["metrics"]],
    }


# ---------------------------------------------------------------- leaderboard


def leaderboard(ctx: StageContext) -> dict[str, Any]:
    """Markdown + HTML leaderboard over every scored (benchmark, model) in ``ctx.shards``."""
    from evaluation.leaderboard import build_leaderboard, rows_to_csv
    from evaluation.model_configs import full_model_config, full_model_configurations
    from models.registry import read_training_log

    cards = [read_json(ctx.store, score_card_key(shard)) for shard in ctx.shards]
    models = sorted({c["model"] for c in cards})
    logs = {m: read_training_log(ctx.store, m) for m in models}
    same = full_model_configurations([c["model_record"] for c in cards], full_model_config())
    board = build_leaderboard(cards, logs, ctx.params.evaluation.leaderboard.reference_variant,
                              held_out_check(ctx.store), plot_link_prefix=LEADERBOARD_PLOTS.rsplit("/", 1)[1],
                              full_model_configurations=same)
    ctx.store.put_bytes(LEADERBOARD_MD, board.markdown.encode())
    ctx.store.put_bytes(LEADERBOARD_HTML, board.html.encode())
    with ctx.store.staged_prefix(LEADERBOARD_PLOTS) as staging:
        for name, png in board.plots.items():
            ctx.store.put_bytes(f"{staging}/{name}.png", png)
    ctx.store.put_bytes(LEADERBOARD_CSV, rows_to_csv(board.plot_rows).encode())
    ctx.store.put_bytes(LOSS_CSV, rows_to_csv(board.loss_rows, ["model", "step", "loss"]).encode())
    return {
        "report_key": LEADERBOARD_MD,
        "html_key": LEADERBOARD_HTML,
        "models": models,
        "benchmarks": sorted({c["benchmark"] for c in cards}),
        "scores": board.metrics,
        "plots": sorted(board.plots),
        "same_configuration_as_full_model": same,
    }


def held_out_check(store: Any) -> dict[str, Any]:
    """The benchmark identities, and how many usable training samples show each of them."""
    identities = read_json(store, MANIFEST_KEY)["held_out_identities"] if store.exists(MANIFEST_KEY) else []
    if not store.exists(TRAINING_SAMPLES_KEY):
        return {"identities": identities, "checked": False, "in_training": {}}
    counts: dict[str, int] = {}
    for row in read_table(store, TRAINING_SAMPLES_KEY).select(["identity", "status"]).to_pylist():
        if row["status"] == "ok" and row["identity"] in identities:
            counts[row["identity"]] = counts.get(row["identity"], 0) + 1
    return {"identities": identities, "checked": True, "in_training": counts}


def _leaderboard_inputs(ctx: StageContext) -> str:
    """Model records, training logs and the training samples (for the hold-out check)."""
    from models.registry import record_key, training_log_key

    models = sorted({split_run(s)[1] for s in ctx.shards})
    keys = [k for m in models for k in (record_key(m), training_log_key(m))]
    return _digest(ctx, keys + [MANIFEST_KEY, marker_key("training_samples", AGGREGATE)], optional=True)


# ---------------------------------------------------------------- ipvg_submission


def ipvg_submission(ctx: StageContext) -> dict[str, Any]:
    """Validated IPVG zips for both tracks from the chosen models' videos."""
    from evaluation.ipvg_runs import package_submission, run_descriptions
    from models.registry import read_record

    cfg = ctx.params.evaluation.submission
    needed = set(submission_runs(ctx.params))
    if not needed <= set(ctx.shards):
        raise StageInputError(f"ipvg_submission needs videos of {sorted(needed)}, was given {sorted(ctx.shards)}")
    records = {r.model: read_record(ctx.store, r.model) for r in cfg.runs}
    result = package_submission(ctx.store, run_descriptions(cfg.runs, records), proposal_layout=cfg.proposal_layout)
    primary = {f"track{a['track']}_{a['layout']}_key": a["key"] for a in result["archives"] if a["primary"]}
    return {**primary, "manifests": result["manifests"], "preview": result["archives"]}


def _submission_inputs(ctx: StageContext) -> str:
    return _digest(ctx, [marker_key("demo_benchmarks", AGGREGATE)])


# ---------------------------------------------------------------- specs


def _digest(ctx: StageContext, keys: list[str], optional: bool = False) -> str:
    digest = hashlib.sha256()
    for key in keys:
        if not ctx.store.exists(key):
            if optional:
                digest.update(f"{key}:absent".encode())
                continue
            raise StageInputError(f"stage {ctx.stage!r} needs {key!r}, which does not exist yet")
        digest.update(key.encode() + b"\0" + ctx.store.get_bytes(key))
    return digest.hexdigest()[:20]


EVAL_STAGES: dict[str, StageSpec] = {
    "demo_benchmarks": StageSpec(
        "demo_benchmarks", demo_benchmarks, ("evaluation.held_out", "evaluation.demo_sets"), ("annotations",),
        "OpenS2V, ReactID-Eval-SEQ and IPVG Track 1/2 demo sets from held-out identities.", aggregate=True,
        outputs=(Output(layout.BENCHMARKS),), inputs=(layout.marker("quality_gates", "{shard}"),),
    ),
    "untrained_model": StageSpec(
        "untrained_model", untrained_model, ("evaluation.untrained_models",), (),
        "Random-weight baseline pipelines registered as models (named untrained-…).",
        partitioning="model", outputs=(Output(layout.model("{model}")),),
    ),
    "benchmark_videos": StageSpec(
        "benchmark_videos", benchmark_videos, ("evaluation.generation",), (),
        "One H.264 video per benchmark entry with a registered model.", input_hash=_videos_inputs,
        partitioning="benchmark_model", outputs=(Output(layout.benchmark_videos("{benchmark}", "{model}")),),
        inputs=(layout.BENCHMARKS, layout.MODELS),
    ),
    "benchmark_scores": StageSpec(
        "benchmark_scores", benchmark_scores, ("evaluation.metrics",), ("benchmark_videos",),
        "OpenS2V metrics (with their backends) and the timeline measure per video; the score card.",
        partitioning="benchmark_model", inputs=(layout.BENCHMARKS,),
        outputs=(Output(layout.table("benchmark_scores", "{benchmark}/{model}")),
                 Output(layout.score_card("{benchmark}/{model}"), "metrics", cache=False)),
    ),
    "leaderboard": StageSpec(
        "leaderboard", leaderboard, ("evaluation.leaderboard",), ("benchmark_scores",),
        "Every scored model per benchmark as Markdown and HTML with plots.", input_hash=_leaderboard_inputs,
        aggregate=True, inputs=(layout.MODELS, TRAINING_SAMPLES_KEY),
        outputs=(Output(LEADERBOARD_MD, cache=False), Output(LEADERBOARD_HTML, cache=False),
                 Output(LEADERBOARD_PLOTS, cache=False),
                 Output(LEADERBOARD_CSV, "plots", cache=False, plot=(
                     ("x", "run"), ("y", "motion_amplitude"),
                     ("title", "OpenS2V motion amplitude (embedded, %) per benchmark/model; all metrics in "
                               f"{LEADERBOARD_HTML}"))),
                 Output(LOSS_CSV, "plots", cache=False, plot=(
                     ("x", "step"), ("y", "loss"), ("title", "Training loss of the registered models"))))
    ),
    "ipvg_submission": StageSpec(
        "ipvg_submission", ipvg_submission, ("evaluation.submission",), ("benchmark_videos",),
        "Validated IPVG 2026 zips (Track 1 facial, Track 2 sequential) of the chosen models.",
        input_hash=_submission_inputs, aggregate=True, inputs=(layout.BENCHMARKS,), outputs=(Output(layout.SUBMISSIONS),),
        reads=submission_runs,
    ),
}
