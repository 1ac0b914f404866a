"""The Dagster code location (workspace.yaml points here).

Loading it imports Dagster and our light modules only; torch, transformers, diffusers,
great_expectations and deepspeed are imported inside the functions that use them.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.annotation import ANNOTATION_ASSETS, ANNOTATION_GROUP
from assets.checks import ANNOTATION_CHECKS
from assets.curation import CURATION_ASSETS, CURATION_GROUP, DEMO_GROUP
from assets.curriculum import CURRICULUM_ASSETS, CURRICULUM_GROUP
from assets.evaluation import (
    EVALUATION_ASSETS,
    EVALUATION_INPUT_ASSETS,
    EVALUATION_PAIR_ASSETS,
    EVALUATION_REPORT_ASSETS,
    benchmark_model_partitions,
)
from assets.partitions import shard_partitions
from assets.reports import annotation_report, curation_report
from assets.resources import ReactIDResource
from assets.training import (
    ABLATION_ASSETS,
    TRAINING_ASSETS,
    TRAINING_GROUP,
    ablation_partitions,
    retraining_cron,
)

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
evaluation_inputs_job = dg.define_asset_job(
    "evaluation_inputs",
    selection=dg.AssetSelection.assets(*EVALUATION_INPUT_ASSETS),
    description="demo_benchmarks (held-out identities of every gated shard) and the untrained baseline models.",
)
evaluation_job = dg.define_asset_job(
    "evaluation",
    selection=dg.AssetSelection.assets(*EVALUATION_PAIR_ASSETS),
    partitions_def=benchmark_model_partitions,
    description="benchmark_videos -> benchmark_scores for one (benchmark, registered model) pair.",
)
evaluation_reports_job = dg.define_asset_job(
    "evaluation_reports",
    selection=dg.AssetSelection.assets(*EVALUATION_REPORT_ASSETS),
    description="leaderboard over every scored model, and the validated IPVG submission zips.",
)

retraining_job = dg.define_asset_job(
    "retraining",
    selection=dg.AssetSelection.groups(CURRICULUM_GROUP, TRAINING_GROUP),
    description="The curriculum, the latent cache and curriculum_phase_1 -> ... -> curriculum_phase_4 over every "
    "shard whose annotations passed the quality gates.",
)
ablations_job = dg.define_asset_job(
    "ablations",
    selection=dg.AssetSelection.assets(*ABLATION_ASSETS),
    partitions_def=ablation_partitions,
    description="One ablation variant: a short full training; its exported model is registered.",
)
retraining_schedule = dg.ScheduleDefinition(
    name="retraining_schedule",
    job=retraining_job,
    cron_schedule=retraining_cron(Path(__file__).resolve().parents[1] / "params.yaml"),
    description="Re-runs the retraining job (params: retraining.cron); up-to-date stages return at once.",
)

defs = dg.Definitions(
    assets=[*CURATION_ASSETS, *ANNOTATION_ASSETS, *CURRICULUM_ASSETS, curation_report, annotation_report,
            *EVALUATION_ASSETS, *TRAINING_ASSETS, *ABLATION_ASSETS],
    asset_checks=ANNOTATION_CHECKS,
    jobs=[curation_job, annotation_job, demo_shard_job, curriculum_job, reports_job, evaluation_inputs_job,
          evaluation_job, evaluation_reports_job, retraining_job, ablations_job],
    schedules=[retraining_schedule],
    resources={"reactid": ReactIDResource()},
)
