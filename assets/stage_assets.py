"""The Dagster asset of every declared stage, generated from its StageSpec (assets/declarations.py).

From the declaration come the asset's name, partitions (by its partitioning), deps (its upstream
stages and the stages writing its inputs, each with the partition mapping their partitionings
call for: an aggregate reading a per-shard stage reads all its partitions), description, code
version and metadata; its body runs the stage through the idempotent runner. What only Dagster
needs (group, kinds, the GPU pool, plots in the metadata) is in ASSET_TRAITS, by stage name: the
domain packages do not import Dagster.

The graph is built from the project's params.yaml when the code location loads: one curriculum
phase asset per entry of `curriculum.phase_ratios`.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource types of the
# asset function's signature at definition time.

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from assets.declarations import PARTITION_LISTS, after_run, params_value, producers, project_stages, read_partitioning
from assets.metadata import png_markdown
from assets.partitions import MODELS, ablation_partitions, benchmark_model_partitions, shard_partitions
from assets.pools import GPU_POOL
from assets.resources import ReactIDResource
from assets.runner import asset_code_version, run_stage_in_asset
from core import layout
from core.markdown import markdown_table
from core.params import Params
from core.stage import AGGREGATE, StageResult, StageSpec, marker_key
from evaluation.demo_benchmarks import BENCHMARKS
from evaluation.stages import LEADERBOARD_HTML, LEADERBOARD_MD, LEADERBOARD_PLOTS, run_key
from orchestration.params import load_params
from training.run_stages import phase_number
from training.stages import HISTOGRAM_PNG_KEY

DEMO_GROUP = "demo"
CURATION_GROUP = "curation"
ANNOTATION_GROUP = "annotation"
CURRICULUM_GROUP = "curriculum"
TRAINING_GROUP = "training"
ABLATION_GROUP = "ablations"
EVALUATION_GROUP = "evaluation"

# The Dagster partitions of each partitioning. An untrained-model stage is one asset that runs
# every model of params `evaluation.untrained_models` (they are few and change with params).
PARTITIONS: dict[str, dg.PartitionsDefinition | None] = {
    "shard": shard_partitions, "aggregate": None, "variant": ablation_partitions, "model": None,
    "benchmark_model": benchmark_model_partitions,
}

# Metadata an asset adds after its stage ran: (store, params, run key, the stage's metadata) -> values.
PlotHook = Callable[[Any, Params, str, dict], dict[str, dg.MetadataValue]]


@dataclass(frozen=True)
class AssetTraits:
    """What Dagster needs of a stage beyond its declaration."""

    group: str
    kinds: tuple[str, ...]
    # holds a GPU for its whole step (the "gpu" concurrency pool)
    gpu: bool = False
    # fails before any work unless some shard's annotations passed the quality gates
    gated: bool = False
    # assets it runs after that its declaration does not name: the raw pool raw_videos reads is
    # the folder demo_pool writes (params demo_pool.pool_root and raw_videos.pool_root agree)
    after: tuple[str, ...] = ()
    plots: PlotHook | None = None


def _quality_plot(store, params: Params, shard: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    from curation.plots import quality_plot

    png = quality_plot(store, shard, params.curated_clips.min_motion)
    return {"plot_quality": png_markdown(png, "Per-clip quality")} if png else {}


def _rejection_plot(store, params: Params, shard: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    from curation.plots import rejection_plot

    png = rejection_plot(metadata.get("rejections_by_reason", {}), metadata.get("clips_out", 0))
    return {"plot_rejections": png_markdown(png, "Kept clips and rejections by reason")}


def _contact_sheet(store, params: Params, shard: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    if not metadata.get("contact_sheet_key"):
        return {}
    return {"contact_sheet": png_markdown(store.get_bytes(metadata["contact_sheet_key"]),
                                          f"Annotated previews of {shard}")}


def _histogram(store, params: Params, key: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    if not store.exists(HISTOGRAM_PNG_KEY):
        return {}
    return {"plot_histogram": png_markdown(store.get_bytes(HISTOGRAM_PNG_KEY), "D_overall with the phase thresholds")}


def _phases(store, params: Params, key: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    return {"phases": dg.MetadataValue.md(markdown_table(metadata["preview"]))}


def _leaderboard(store, params: Params, key: str, metadata: dict) -> dict[str, dg.MetadataValue]:
    return {
        "report": location(store, LEADERBOARD_MD),
        "report_html": dg.MetadataValue.url(store.uri(LEADERBOARD_HTML)),
        "leaderboard": dg.MetadataValue.md(store.get_bytes(LEADERBOARD_MD).decode()),
        "plot_metrics": png_markdown(store.get_bytes(f"{LEADERBOARD_PLOTS}/metrics.png"), "metrics per model"),
    }


PHASE_TRAITS = AssetTraits(TRAINING_GROUP, ("deepspeed", "safetensors"), gpu=True, gated=True)
ASSET_TRAITS: dict[str, AssetTraits] = {
    "demo_pool": AssetTraits(DEMO_GROUP, ("python",)),
    "raw_videos": AssetTraits(CURATION_GROUP, ("pyav", "parquet"), after=("demo_pool",)),
    "scene_clips": AssetTraits(CURATION_GROUP, ("pyscenedetect", "opencv", "parquet")),
    "clip_quality": AssetTraits(CURATION_GROUP, ("opencv", "rapidocr", "parquet"), plots=_quality_plot),
    "clip_signatures": AssetTraits(CURATION_GROUP, ("opencv", "parquet")),
    # clip_dedup also reads the signatures of every shard registered before its own; Dagster's
    # dynamic partitions cannot express "earlier partitions", so the stage's fingerprint carries
    # that dependency (core.stage prior_upstream).
    "clip_dedup": AssetTraits(CURATION_GROUP, ("numpy", "parquet")),
    "curated_clips": AssetTraits(CURATION_GROUP, ("pyav", "parquet"), plots=_rejection_plot),
    "captions": AssetTraits(ANNOTATION_GROUP, ("parquet",)),
    "entities": AssetTraits(ANNOTATION_GROUP, ("spacy", "parquet")),
    "subjects": AssetTraits(ANNOTATION_GROUP, ("opencv", "parquet")),
    "faces": AssetTraits(ANNOTATION_GROUP, ("dlib", "parquet")),
    "attributes": AssetTraits(ANNOTATION_GROUP, ("parquet",)),
    "timelines": AssetTraits(ANNOTATION_GROUP, ("parquet",)),
    "annotations": AssetTraits(ANNOTATION_GROUP, ("parquet",)),
    "clip_previews": AssetTraits(ANNOTATION_GROUP, ("pyav", "opencv", "png"), plots=_contact_sheet),
    "training_samples": AssetTraits(CURRICULUM_GROUP, ("pyav", "opencv", "parquet")),
    "difficulty_scores": AssetTraits(CURRICULUM_GROUP, ("numpy", "parquet")),
    "difficulty_quartiles": AssetTraits(CURRICULUM_GROUP, ("numpy", "matplotlib"), plots=_histogram),
    "curriculum_schedule": AssetTraits(CURRICULUM_GROUP, ("deepspeed", "json"), plots=_phases),
    # in the curriculum group: the demo's curriculum run builds the page
    "dataset_browser": AssetTraits(CURRICULUM_GROUP, ("html",)),
    "latent_cache": AssetTraits(TRAINING_GROUP, ("pytorch", "safetensors"), gpu=True, gated=True),
    "ablation_runs": AssetTraits(ABLATION_GROUP, ("deepspeed", "safetensors"), gpu=True, gated=True),
    "demo_benchmarks": AssetTraits(EVALUATION_GROUP, ("json", "opencv")),
    "untrained_model": AssetTraits(EVALUATION_GROUP, ("diffusers",)),
    "benchmark_videos": AssetTraits(EVALUATION_GROUP, ("diffusers", "h264"), gpu=True),
    "benchmark_scores": AssetTraits(EVALUATION_GROUP, ("opencv", "dlib", "parquet")),
    "leaderboard": AssetTraits(EVALUATION_GROUP, ("markdown", "html", "matplotlib"), plots=_leaderboard),
    "ipvg_submission": AssetTraits(EVALUATION_GROUP, ("zip",)),
}


def asset_traits(name: str) -> AssetTraits:
    """The Dagster traits of stage `name` (every curriculum phase shares PHASE_TRAITS).

    Raises:
        KeyError: the stage has none (add it to ASSET_TRAITS).
    """
    if name in ASSET_TRAITS:
        return ASSET_TRAITS[name]
    if phase_number(name) is not None:
        return PHASE_TRAITS
    raise KeyError(f"stage {name!r} has no Dagster group and kinds: add it to ASSET_TRAITS in {__name__}")


def location(store, key: str) -> dg.MetadataValue:
    """Where `key` lives: a file path on a filesystem store, else the object's URI."""
    path = store.filesystem_path(key)
    if path is not None:
        return dg.MetadataValue.path(str(path))
    return dg.MetadataValue.url(store.uri(key))


def annotated_shards(instance: dg.DagsterInstance, store) -> tuple[list[str], dict[str, str]]:
    """Known shards whose current annotations passed the quality gates (the verdict the
    blocking checks, or `reactid gate`, record), and why every other known shard is left out.

    Raises:
        dg.Failure: no shard qualifies.
    """
    from curation.gate_status import passed_shards

    known = sorted(instance.get_dynamic_partitions(shard_partitions.name))
    annotated = [s for s in known if store.exists(marker_key("annotations", s))]
    shards, left_out = passed_shards(store, annotated)
    left_out.update({s: "not annotated" for s in known if s not in annotated})
    if not shards:
        raise dg.Failure(
            f"no shard has completed annotations that passed the quality gates (known shards: {known}; "
            f"left out: {left_out}); materialize `annotations` and its checks for at least one shard first"
        )
    return shards, left_out


def scored_runs(instance: dg.DagsterInstance, store) -> list[str]:
    """Every (benchmark, model) of a registered model whose scores exist."""
    models = sorted(instance.get_dynamic_partitions(MODELS))
    return [run_key(b, m) for b in BENCHMARKS for m in models
            if store.exists(marker_key("benchmark_scores", run_key(b, m)))]


def asset_deps(spec: StageSpec, stages: Mapping[str, StageSpec], after: tuple[str, ...] = ()) -> list[dg.AssetDep]:
    """The asset's deps: every stage it reads from (assets.declarations.producers) and those it runs
    after; a dep split in another way than the asset reads all its partitions."""
    deps = []
    for name in dict.fromkeys([*producers(spec, stages), *after]):
        upstream = PARTITIONS[stages[name].partitions]
        if upstream is not None and upstream is not PARTITIONS[spec.partitions]:
            deps.append(dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping()))
        else:
            deps.append(dg.AssetDep(name))
    return deps


def _reads(context: dg.AssetExecutionContext, spec: StageSpec, reading: str | None, params: Params,
           store) -> tuple[tuple[str, ...], dict[str, dg.MetadataValue]]:
    """The runs an aggregate reads, from the instance: the shards that passed their gates, the
    scored (benchmark, model) pairs, or what params name (`spec.reads`)."""
    if reading is None:
        return (), {}
    if spec.reads is not None:
        return spec.reads(params), {}
    if reading == "shard":
        shards, left_out = annotated_shards(context.instance, store)
        if left_out:
            context.log.warning(f"shards left out: {left_out}")
        return tuple(shards), {"shards_left_out": dg.MetadataValue.json(left_out)}
    if reading == "benchmark_model":
        runs = scored_runs(context.instance, store)
        if not runs:
            raise dg.Failure(f"no (benchmark, model) has scores: materialize {', '.join(spec.upstream)} "
                             "for a registered model")
        return tuple(runs), {}
    return (AGGREGATE,), {}


def _run_key(context: dg.AssetExecutionContext, partitioning: str) -> str:
    if partitioning == "aggregate":
        return AGGREGATE
    if partitioning == "benchmark_model":
        keys = context.partition_key.keys_by_dimension
        return run_key(keys["benchmark"], keys["model"])
    return context.partition_key


def _register(instance: dg.DagsterInstance, model: str | None) -> None:
    if model and not instance.has_dynamic_partition(MODELS, model):
        instance.add_dynamic_partitions(MODELS, [model])


def stage_asset(spec: StageSpec, stages: Mapping[str, StageSpec], traits: AssetTraits | None = None
                ) -> dg.AssetsDefinition:
    """The asset of `spec`; `stages` holds its upstream stages (their partitionings set the mappings)."""
    traits = traits or asset_traits(spec.name)
    reading = read_partitioning(spec, stages)

    @dg.asset(
        name=spec.name,
        partitions_def=PARTITIONS[spec.partitions],
        deps=asset_deps(spec, stages, traits.after),
        group_name=traits.group,
        description=spec.description,
        kinds=set(traits.kinds),
        metadata={"params_sections": ", ".join(spec.sections), "partitioning": spec.partitions},
        code_version=asset_code_version(spec),
        pool=GPU_POOL if traits.gpu else None,
    )
    def _asset(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        params = reactid.load_params()
        store = reactid.store(params)
        if spec.partitions == "model":
            return _run_each_model(context, spec, params, store)
        if traits.gated:
            annotated_shards(context.instance, store)  # no shard passed the gates: dg.Failure before any work
        reads, read_metadata = _reads(context, spec, reading, params, store)
        key = _run_key(context, spec.partitions)
        result, metadata = run_stage_in_asset(context, spec, key, params, store, reads)
        metadata.update(read_metadata)
        metadata.update(_result_metadata(context, spec.name, result, store))
        if traits.plots:
            metadata.update(traits.plots(store, params, key, result.metadata))
        recorded = after_run(spec, params, store, result.fingerprint, reads, context.run.run_id)
        metadata.update({f"lakefs_{k}": dg.MetadataValue.text(v) for k, v in recorded.items()})
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.fingerprint))

    return _asset


def _result_metadata(context: dg.AssetExecutionContext, name: str, result: StageResult,
                     store) -> dict[str, dg.MetadataValue]:
    """A model the stage exported becomes a "models" partition; its loss curve goes to the metadata."""
    meta = result.metadata
    _register(context.instance, meta.get("registered_model"))
    if meta.get("loss_curve_key") and store.exists(meta["loss_curve_key"]):
        return {"loss_curve": png_markdown(store.get_bytes(meta["loss_curve_key"]), f"{name} loss")}
    return {}


def _run_each_model(context: dg.AssetExecutionContext, spec: StageSpec, params: Params,
                    store) -> dg.MaterializeResult:
    """Run the stage for every model params list (`evaluation.untrained_models`) and register each."""
    fingerprints, skipped = {}, []
    for model in params_value(params, PARTITION_LISTS[spec.partitions]):
        result, _ = run_stage_in_asset(context, spec, model, params, store)
        fingerprints[model] = result.fingerprint
        skipped.append(result.skipped)
        _register(context.instance, model)
    return dg.MaterializeResult(
        metadata={"models": dg.MetadataValue.json(fingerprints), "registry": location(store, layout.MODELS),
                  "up_to_date_skip": dg.MetadataValue.bool(all(skipped))},
        data_version=dg.DataVersion("-".join(fingerprints[n] for n in sorted(fingerprints))),
    )


def build_stage_assets(stages: Mapping[str, StageSpec]) -> dict[str, dg.AssetsDefinition]:
    """The asset of every stage in `stages`, by name."""
    return {name: stage_asset(spec, stages) for name, spec in stages.items()}


# What the code location loads: the project's params.yaml decides how many curriculum phases there are.
PROJECT_PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
PROJECT_STAGES = project_stages(PROJECT_PARAMS)
STAGE_ASSETS = build_stage_assets(PROJECT_STAGES)


def model_producers(stages: Mapping[str, StageSpec]) -> list[str]:
    """Stages whose runs export a model (they write under models/): each registers "models" partitions."""
    return [name for name, spec in stages.items() if any(out.path.startswith(f"{layout.MODELS}/") for out in spec.written)]
