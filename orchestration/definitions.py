"""The Dagster code location (workspace.yaml points here).

Loading it imports Dagster and our light modules only; torch, transformers, diffusers,
great_expectations and deepspeed are imported inside the functions that use them.
"""

from __future__ import annotations

import dagster as dg

from assets.annotation import ANNOTATION_ASSETS, ANNOTATION_GROUP
from assets.checks import ANNOTATION_CHECKS
from assets.curation import CURATION_ASSETS, CURATION_GROUP, DEMO_GROUP
from assets.curriculum import CURRICULUM_ASSETS, CURRICULUM_GROUP
from assets.partitions import shard_partitions
from assets.reports import annotation_report, curation_report
from assets.resources import ReactIDResource

curation_job = dg.define_asset_job(
    "curation",
    selection=dg.AssetSelection.groups(CURATION_GROUP),
    partitions_def=shard_partitions,
    description="raw_videos -> scene_clips -> clip_quality -> curated_clips for one shard.",
)
annotation_job = dg.define_asset_job(
    "annotation",
    selection=dg.AssetSelection.groups(ANNOTATION_GROUP),
    partitions_def=shard_partitions,
    description="captions -> entities -> subjects -> faces / attributes / timelines -> annotations for one shard.",
)
demo_shard_job = dg.define_asset_job(
    "demo_shard",
    selection=dg.AssetSelection.groups(DEMO_GROUP, CURATION_GROUP, ANNOTATION_GROUP),
    partitions_def=shard_partitions,
    description="Generate a demo shard, curate and annotate it.",
)
curriculum_job = dg.define_asset_job(
    "curriculum",
    selection=dg.AssetSelection.groups(CURRICULUM_GROUP),
    description="training_samples -> difficulty_scores -> difficulty_quartiles -> curriculum_schedule over "
    "every shard whose annotations passed the quality gates.",
)
reports_job = dg.define_asset_job("reports", selection=dg.AssetSelection.groups("reports"))

defs = dg.Definitions(
    assets=[*CURATION_ASSETS, *ANNOTATION_ASSETS, *CURRICULUM_ASSETS, curation_report, annotation_report],
    asset_checks=ANNOTATION_CHECKS,
    jobs=[curation_job, annotation_job, demo_shard_job, curriculum_job, reports_job],
    resources={"reactid": ReactIDResource()},
)
