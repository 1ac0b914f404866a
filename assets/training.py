"""Training assets: the latent cache, the four curriculum phases and the ablation matrix.

training_samples, difficulty_scores -> latent_cache -> curriculum_phase_1 -> ... -> curriculum_phase_4
                  curriculum_schedule ─┘ (every phase reads its slice of the schedule)
latent_cache, difficulty_scores -> ablation_runs[<variant>]

Thin wrappers over ``training.run_stages``; every exported model is registered for
evaluation and becomes a "models" partition.
"""

import dagster as dg

from assets.curriculum import annotated_shards
from assets.metadata import png_markdown
from assets.partitions import MODELS
from assets.pools import GPU_POOL
from assets.resources import ReactIDResource
from assets.runner import asset_code_version, run_stage_in_asset
from core.stage import AGGREGATE
from training.ablations import ABLATION_VARIANTS
from training.run_stages import PHASES, TRAINING_RUN_STAGES

TRAINING_GROUP = "training"
ABLATION_GROUP = "ablations"
ablation_partitions = dg.StaticPartitionsDefinition(list(ABLATION_VARIANTS))


def _materialize(context: dg.AssetExecutionContext, reactid: ReactIDResource, name: str, shard: str,
                 shards: tuple[str, ...] = ()) -> dg.MaterializeResult:
    params = reactid.load_params()
    store = reactid.store(params)
    annotated_shards(context.instance, store)  # no shard passed the gates: dg.Failure before any work
    result, metadata = run_stage_in_asset(context, TRAINING_RUN_STAGES[name], shard, params, store, shards)
    meta = result.metadata
    if meta.get("loss_curve_key") and store.exists(meta["loss_curve_key"]):
        metadata["loss_curve"] = png_markdown(store.get_bytes(meta["loss_curve_key"]), f"{name} loss")
    model = meta.get("registered_model")
    if model and not context.instance.has_dynamic_partition(MODELS, model):
        context.instance.add_dynamic_partitions(MODELS, [model])
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.fingerprint))


@dg.asset(group_name=TRAINING_GROUP, deps=["training_samples", "difficulty_scores"], kinds={"pytorch", "safetensors"},
          description=TRAINING_RUN_STAGES["latent_cache"].description, pool=GPU_POOL,
          code_version=asset_code_version(TRAINING_RUN_STAGES["latent_cache"]))
def latent_cache(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    return _materialize(context, reactid, "latent_cache", AGGREGATE)


def phase_asset(k: int) -> dg.AssetsDefinition:
    """``curriculum_phase_<k>``: phase k of the schedule, continuing from phase k-1."""
    name = PHASES[k - 1]
    spec = TRAINING_RUN_STAGES[name]

    @dg.asset(name=name, group_name=TRAINING_GROUP, deps=list(spec.upstream), kinds={"deepspeed", "safetensors"},
              description=spec.description, metadata={"params_sections": ", ".join(spec.sections)}, pool=GPU_POOL,
              code_version=asset_code_version(spec))
    def _asset(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        return _materialize(context, reactid, name, AGGREGATE)

    return _asset


CURRICULUM_PHASE_ASSETS = [phase_asset(k) for k in range(1, len(PHASES) + 1)]


@dg.asset(group_name=ABLATION_GROUP, partitions_def=ablation_partitions, deps=["latent_cache", "difficulty_scores"],
          kinds={"deepspeed", "safetensors"}, description=TRAINING_RUN_STAGES["ablation_runs"].description,
          pool=GPU_POOL, code_version=asset_code_version(TRAINING_RUN_STAGES["ablation_runs"]))
def ablation_runs(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    return _materialize(context, reactid, "ablation_runs", context.partition_key, shards=(AGGREGATE,))


TRAINING_ASSETS = [latent_cache, *CURRICULUM_PHASE_ASSETS]
ABLATION_ASSETS = [ablation_runs]


def retraining_cron(params_path) -> str:
    """The retraining schedule's cron expression (``retraining.cron``)."""
    from orchestration.params import load_params

    return load_params(params_path).retraining.cron
