"""Curation assets, one per stage, partitioned by shard.

demo_pool -> raw_videos -> scene_clips -> clip_quality -> curated_clips
                                   scene_clips -> clip_signatures -> clip_dedup -> curated_clips
"""


import dagster as dg

from assets.partitions import shard_partitions
from assets.resources import ReactIDResource
from assets.runner import asset_code_version, run_stage_in_asset
from curation.stages import STAGES

CURATION_GROUP = "curation"
DEMO_GROUP = "demo"


def stage_asset(name: str, deps: list[str] | None, group: str, kinds: set[str]) -> dg.AssetsDefinition:
    """A per-shard asset that runs stage `name` through the shared idempotent runner.

    `deps` defaults to the stages the runner reads (the spec's upstream).
    """
    spec = STAGES[name]
    deps = list(spec.upstream) if deps is None else deps

    @dg.asset(
        name=name,
        partitions_def=shard_partitions,
        deps=deps,
        group_name=group,
        description=spec.description,
        kinds=kinds,
        metadata={"params_sections": ", ".join(spec.sections)},
        code_version=asset_code_version(spec),
    )
    def _asset(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        params = reactid.load_params()
        store = reactid.store(params)
        result, metadata = run_stage_in_asset(context, spec, context.partition_key, params, store)
        metadata.update(_plots(name, result.metadata, context.partition_key, store, params.curated_clips.min_motion))
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(result.fingerprint))

    return _asset


def _plots(name: str, metadata: dict, shard: str, store, min_motion: float) -> dict[str, dg.MetadataValue]:
    from assets.metadata import png_markdown
    from curation.plots import quality_plot, rejection_plot

    if name == "clip_quality":
        png = quality_plot(store, shard, min_motion)
        return {"plot_quality": png_markdown(png, "Per-clip quality")} if png else {}
    if name == "curated_clips":
        png = rejection_plot(metadata.get("rejections_by_reason", {}), metadata.get("clips_out", 0))
        return {"plot_rejections": png_markdown(png, "Kept clips and rejections by reason")}
    if name == "clip_previews" and metadata.get("contact_sheet_key"):
        return {"contact_sheet": png_markdown(store.get_bytes(metadata["contact_sheet_key"]),
                                              f"Annotated previews of {shard}")}
    return {}


demo_pool = stage_asset("demo_pool", [], DEMO_GROUP, {"python"})
raw_videos = stage_asset("raw_videos", ["demo_pool"], CURATION_GROUP, {"pyav", "parquet"})
scene_clips = stage_asset("scene_clips", ["raw_videos"], CURATION_GROUP, {"pyscenedetect", "opencv", "parquet"})
clip_quality = stage_asset("clip_quality", ["scene_clips"], CURATION_GROUP, {"opencv", "rapidocr", "parquet"})
clip_signatures = stage_asset("clip_signatures", None, CURATION_GROUP, {"opencv", "parquet"})
# clip_dedup also reads the signatures of every shard registered before its own; Dagster's
# dynamic partitions cannot express "earlier partitions", so the stage's fingerprint carries
# that dependency (core.stage prior_upstream).
clip_dedup = stage_asset("clip_dedup", None, CURATION_GROUP, {"numpy", "parquet"})
curated_clips = stage_asset("curated_clips", ["scene_clips", "clip_quality", "clip_dedup"], CURATION_GROUP, {"pyav", "parquet"})

CURATION_ASSETS = [demo_pool, raw_videos, scene_clips, clip_quality, clip_signatures, clip_dedup, curated_clips]
