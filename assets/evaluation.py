"""Evaluation assets: demo benchmark sets, model registry, videos, scores, leaderboard, submission.

demo_benchmarks ─────────────┬─► benchmark_videos[benchmark|model] ─► benchmark_scores[benchmark|model] ─► leaderboard
untrained_model (registers) ─┘                 └──────────────────────► ipvg_submission

``benchmark_videos`` and ``benchmark_scores`` are partitioned by (benchmark, model); the
model dimension is the dynamic partition set "models", which grows when a model is
registered (:func:`register_model`), so a new phase or ablation variant materializes only
its own pairs. An asset that produces models calls :func:`register_model` and is added to
:data:`MODEL_PRODUCERS`, the upstream of ``benchmark_videos`` and ``leaderboard``.
"""

from pathlib import Path

import dagster as dg

from assets.metadata import png_markdown
from assets.partitions import MODELS, model_partitions
from assets.pools import GPU_POOL
from assets.resources import ReactIDResource
from assets.runner import asset_code_version, run_stage_in_asset
from core import layout
from core.stage import AGGREGATE, marker_key, run_stage
from evaluation.demo_benchmarks import BENCHMARKS
from training.run_stages import PHASES
from evaluation.stages import (
    EVAL_STAGES,
    LEADERBOARD_HTML,
    LEADERBOARD_MD,
    LEADERBOARD_PLOTS,
    run_key,
)

EVALUATION_GROUP = "evaluation"
benchmark_partitions = dg.StaticPartitionsDefinition(list(BENCHMARKS))
benchmark_model_partitions = dg.MultiPartitionsDefinition({"benchmark": benchmark_partitions, "model": model_partitions})
# Assets whose materialization registers models: the untrained baselines, every curriculum phase
# (phase_<k>) and every ablation variant's run (ablation-<variant>). dvc.yaml declares the same
# models/<name> folders as their outs (tests/orchestration/test_graph_parity.py keeps them in step).
MODEL_PRODUCERS = ["untrained_model", *PHASES, "ablation_runs"]
MODEL_PRODUCER_DEPS = [dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping()) if name == "ablation_runs"
                       else dg.AssetDep(name) for name in MODEL_PRODUCERS]
ALL_ANNOTATIONS = dg.AssetDep("annotations", partition_mapping=dg.AllPartitionMapping())


def register_model(instance: dg.DagsterInstance | None, store, name: str, export_dir: str | Path, *, kind: str,
                   description: str, **record):
    """Store an exported model under ``models/<name>/`` and make it a "models" partition.

    Args:
        instance: the Dagster instance (``context.instance``); None outside Dagster (the CLI).
        store: the object store.
        name: model name, e.g. ``phase_4`` or ``ablation-tarope_T2``.
        export_dir: ``save_pretrained`` output (pipeline or transformer).
        kind: ``phase``, ``ablation``, ``external``, or ``untrained`` (names ``untrained…``).
        description: one line for reports.
        **record: ``preset``, ``variant``, ``encoder_seed``, ``phase``, ``training_log``
            (see ``models.registry.store_model``).

    Returns:
        The stored ``ModelRecord``.
    """
    from models.registry import store_model

    stored = store_model(store, name, export_dir, kind=kind, description=description, **record)
    if instance is not None and not instance.has_dynamic_partition(MODELS, name):
        instance.add_dynamic_partitions(MODELS, [name])
    return stored


def _run(context, name: str, shard: str, params, store, shards: tuple[str, ...] = (),
         extra=None) -> dg.MaterializeResult:
    """Run evaluation stage `name`; `extra(store)` adds metadata read after the run."""
    result, metadata = run_stage_in_asset(context, EVAL_STAGES[name], shard, params, store, tuple(shards))
    metadata.update(extra(store) if extra else {})
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.fingerprint))


@dg.asset(group_name=EVALUATION_GROUP, deps=[ALL_ANNOTATIONS], kinds={"json", "opencv"},
          description=EVAL_STAGES["demo_benchmarks"].description,
          code_version=asset_code_version(EVAL_STAGES["demo_benchmarks"]))
def demo_benchmarks(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    from assets.curriculum import annotated_shards

    params = reactid.load_params()
    store = reactid.store(params)
    shards, left_out = annotated_shards(context.instance, store)
    if left_out:
        context.log.warning(f"shards left out: {left_out}")
    return _run(context, "demo_benchmarks", AGGREGATE, params, store, tuple(shards))


@dg.asset(group_name=EVALUATION_GROUP, kinds={"diffusers"}, description=EVAL_STAGES["untrained_model"].description,
          code_version=asset_code_version(EVAL_STAGES["untrained_model"]))
def untrained_model(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    params = reactid.load_params()
    store = reactid.store(params)
    fingerprints = {}
    for name in params.evaluation.untrained_models:
        result = run_stage(EVAL_STAGES["untrained_model"], name, params, store)
        fingerprints[name] = result.fingerprint
        if not context.instance.has_dynamic_partition(MODELS, name):
            context.instance.add_dynamic_partitions(MODELS, [name])
    return dg.MaterializeResult(
        metadata={"models": dg.MetadataValue.json(fingerprints),
                  "registry": _location(store, layout.MODELS)},
        data_version=dg.DataVersion("-".join(fingerprints[n] for n in sorted(fingerprints))),
    )


def _location(store, key: str) -> dg.MetadataValue:
    """Where ``key`` lives: a file path on a filesystem store, else the object's URI."""
    path = store.filesystem_path(key)
    if path is not None:
        return dg.MetadataValue.path(str(path))
    return dg.MetadataValue.url(store.uri(key))


def _pair(context: dg.AssetExecutionContext) -> str:
    keys = context.partition_key.keys_by_dimension
    return run_key(keys["benchmark"], keys["model"])


@dg.asset(group_name=EVALUATION_GROUP, partitions_def=benchmark_model_partitions,
          deps=["demo_benchmarks", *MODEL_PRODUCER_DEPS], kinds={"diffusers", "h264"},
          description=EVAL_STAGES["benchmark_videos"].description, pool=GPU_POOL,
          code_version=asset_code_version(EVAL_STAGES["benchmark_videos"]))
def benchmark_videos(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    params = reactid.load_params()
    store = reactid.store(params)
    return _run(context, "benchmark_videos", _pair(context), params, store)


@dg.asset(group_name=EVALUATION_GROUP, partitions_def=benchmark_model_partitions,
          deps=["benchmark_videos", "demo_benchmarks"], kinds={"opencv", "dlib", "parquet"},
          description=EVAL_STAGES["benchmark_scores"].description,
          code_version=asset_code_version(EVAL_STAGES["benchmark_scores"]))
def benchmark_scores(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    params = reactid.load_params()
    store = reactid.store(params)
    return _run(context, "benchmark_scores", _pair(context), params, store)


def scored_runs(instance: dg.DagsterInstance, store) -> list[str]:
    """Every (benchmark, model) of a registered model whose scores exist."""
    models = sorted(instance.get_dynamic_partitions(MODELS))
    return [run_key(b, m) for b in BENCHMARKS for m in models if store.exists(marker_key("benchmark_scores", run_key(b, m)))]


@dg.asset(group_name=EVALUATION_GROUP, kinds={"markdown", "html", "matplotlib"},
          deps=[dg.AssetDep("benchmark_scores", partition_mapping=dg.AllPartitionMapping()), *MODEL_PRODUCER_DEPS,
                "training_samples"],
          description=EVAL_STAGES["leaderboard"].description,
          code_version=asset_code_version(EVAL_STAGES["leaderboard"]))
def leaderboard(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    params = reactid.load_params()
    store = reactid.store(params)
    runs = scored_runs(context.instance, store)
    if not runs:
        raise dg.Failure("no (benchmark, model) has scores: materialize benchmark_scores for a registered model")

    def extra(store) -> dict:
        return {
            "report": _location(store, LEADERBOARD_MD),
            "report_html": dg.MetadataValue.url(store.uri(LEADERBOARD_HTML)),
            "leaderboard": dg.MetadataValue.md(store.get_bytes(LEADERBOARD_MD).decode()),
            "plot_metrics": png_markdown(store.get_bytes(f"{LEADERBOARD_PLOTS}/metrics.png"), "metrics per model"),
        }

    result = _run(context, "leaderboard", AGGREGATE, params, store, tuple(runs), extra)
    if params.lakefs.enabled:  # merge the run's lakeFS branch into main and tag it (README: lakeFS)
        from versioning.hooks import promote_evaluation

        promotion = promote_evaluation(params, store, run_id=context.run.run_id,
                                       evaluation_fingerprint=result.data_version.value,
                                       models=[run.split("/", 1)[1] for run in runs])
        result = dg.MaterializeResult(metadata={**result.metadata, **{
            f"lakefs_{k}": dg.MetadataValue.text(promotion[k]) for k in ("tag", "commit_id", "data_commit", "branch")
        }}, data_version=result.data_version)
    return result


@dg.asset(group_name=EVALUATION_GROUP, kinds={"zip"},
          deps=[dg.AssetDep("benchmark_videos", partition_mapping=dg.AllPartitionMapping()), "demo_benchmarks"],
          description=EVAL_STAGES["ipvg_submission"].description,
          code_version=asset_code_version(EVAL_STAGES["ipvg_submission"]))
def ipvg_submission(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    from evaluation.stages import submission_runs

    params = reactid.load_params()
    store = reactid.store(params)
    return _run(context, "ipvg_submission", AGGREGATE, params, store, submission_runs(params))


EVALUATION_INPUT_ASSETS = [demo_benchmarks, untrained_model]
EVALUATION_PAIR_ASSETS = [benchmark_videos, benchmark_scores]
EVALUATION_REPORT_ASSETS = [leaderboard, ipvg_submission]
EVALUATION_ASSETS = EVALUATION_INPUT_ASSETS + EVALUATION_PAIR_ASSETS + EVALUATION_REPORT_ASSETS
