"""Curriculum assets: one output over every shard whose annotations completed and passed
the annotation quality gates.

annotations (per shard) -> training_samples -> difficulty_scores -> difficulty_quartiles
                                                                 -> curriculum_schedule
clip_previews (per shard), curated_clips, annotations, the curriculum tables -> dataset_browser
"""

import dagster as dg

from assets.metadata import png_markdown
from assets.partitions import shard_partitions
from assets.resources import ReactIDResource
from assets.runner import asset_code_version, run_stage_in_asset
from core.markdown import markdown_table
from core.stage import AGGREGATE, marker_key
from training.stages import HISTOGRAM_PNG_KEY, TRAINING_STAGES

CURRICULUM_GROUP = "curriculum"
ALL_ANNOTATIONS = dg.AssetDep("annotations", partition_mapping=dg.AllPartitionMapping())


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


def curriculum_asset(name: str, deps: list, kinds: set[str]) -> dg.AssetsDefinition:
    """A non-partitioned asset that runs stage `name` under the pseudo-shard AGGREGATE."""
    spec = TRAINING_STAGES[name]

    @dg.asset(
        name=name,
        deps=deps,
        group_name=CURRICULUM_GROUP,
        description=spec.description,
        kinds=kinds,
        metadata={"params_sections": ", ".join(spec.sections)},
        code_version=asset_code_version(spec),
    )
    def _asset(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        params = reactid.load_params()
        store = reactid.store(params)
        shards, failed = annotated_shards(context.instance, store) if spec.aggregate else ([], {})
        if failed:
            context.log.warning(f"shards left out: {failed}")
        result, metadata = run_stage_in_asset(context, spec, AGGREGATE, params, store, tuple(shards))
        if spec.aggregate:
            metadata["shards_left_out"] = dg.MetadataValue.json(failed)
        if name == "difficulty_quartiles" and store.exists(HISTOGRAM_PNG_KEY):
            metadata["plot_histogram"] = png_markdown(store.get_bytes(HISTOGRAM_PNG_KEY),
                                                      "D_overall with the phase thresholds")
        if name == "curriculum_schedule":
            metadata["phases"] = dg.MetadataValue.md(markdown_table(result.metadata["preview"]))
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.fingerprint))

    return _asset


training_samples = curriculum_asset("training_samples", [ALL_ANNOTATIONS], {"pyav", "opencv", "parquet"})
difficulty_scores = curriculum_asset("difficulty_scores", ["training_samples", ALL_ANNOTATIONS], {"numpy", "parquet"})
difficulty_quartiles = curriculum_asset("difficulty_quartiles", ["difficulty_scores"], {"numpy", "matplotlib"})
curriculum_schedule = curriculum_asset("curriculum_schedule", ["difficulty_quartiles", "difficulty_scores"],
                                       {"deepspeed", "json"})

CURRICULUM_ASSETS = [training_samples, difficulty_scores, difficulty_quartiles, curriculum_schedule]

# The dataset browser page: in the curriculum group (the demo's curriculum run builds it), over
# the same gated shards, reading their previews, clips and annotations and the curriculum tables.
dataset_browser = curriculum_asset(
    "dataset_browser",
    [*(dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping())
       for name in ("clip_previews", "curated_clips", "annotations")),
     "training_samples", "difficulty_scores", "difficulty_quartiles"],
    {"html"})
BROWSER_ASSETS = [dataset_browser]
