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
from assets.curriculum import BROWSER_ASSETS, CURRICULUM_ASSETS, CURRICULUM_GROUP
from assets.evaluation import (
    EVALUATION_ASSETS,
    EVALUATION_INPUT_ASSETS,
    EVALUATION_PAIR_ASSETS,
    EVALUATION_REPORT_ASSETS,
    benchmark_model_partitions,
)
from assets.partitions import shard_partitions
from assets.reports import annotation_report, curation_report
from assets.resources import reactid_resource
from assets.training import (
    ABLATION_ASSETS,
    TRAINING_ASSETS,
    TRAINING_GROUP,
    ablation_partitions,
)
from orchestration.instance_config import retry_tags
from orchestration.params import load_params
from orchestration.schedules import build_retraining_schedule
from orchestration.sensors import build_new_shard_sensor, build_scoring_sensors, run_failure_alert

# Read when the code location loads: the schedule's cron, sensor intervals and default statuses,
# and the run-retry tags of every job. Everything else is read by each run through the resource.
LOAD_PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
RUN_TAGS = retry_tags(LOAD_PARAMS)

curation_job = dg.define_asset_job(
    "curation",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.groups(CURATION_GROUP),
    partitions_def=shard_partitions,
    description="raw_videos -> scene_clips -> clip_quality -> curated_clips for one shard.",
)
annotation_job = dg.define_asset_job(
    "annotation",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.groups(ANNOTATION_GROUP),
    partitions_def=shard_partitions,
    description="captions -> entities -> subjects -> faces / attributes / timelines -> annotations for one shard.",
)
demo_shard_job = dg.define_asset_job(
    "demo_shard",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.groups(DEMO_GROUP, CURATION_GROUP, ANNOTATION_GROUP),
    partitions_def=shard_partitions,
    description="Generate a demo shard, curate and annotate it.",
)
curriculum_job = dg.define_asset_job(
    "curriculum",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.groups(CURRICULUM_GROUP),
    description="training_samples -> difficulty_scores -> difficulty_quartiles -> curriculum_schedule over "
    "every shard whose annotations passed the quality gates.",
)
reports_job = dg.define_asset_job("reports", tags=RUN_TAGS, selection=dg.AssetSelection.groups("reports"))
evaluation_inputs_job = dg.define_asset_job(
    "evaluation_inputs",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.assets(*EVALUATION_INPUT_ASSETS),
    description="demo_benchmarks (held-out identities of every gated shard) and the untrained baseline models.",
)
evaluation_job = dg.define_asset_job(
    "evaluation",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.assets(*EVALUATION_PAIR_ASSETS),
    partitions_def=benchmark_model_partitions,
    description="benchmark_videos -> benchmark_scores for one (benchmark, registered model) pair.",
)
evaluation_reports_job = dg.define_asset_job(
    "evaluation_reports",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.assets(*EVALUATION_REPORT_ASSETS),
    description="leaderboard over every scored model, and the validated IPVG submission zips.",
)

retraining_job = dg.define_asset_job(
    "retraining",
    tags=RUN_TAGS,
    # demo_benchmarks (unpartitioned) comes along so that the scoring the retraining_scoring sensor
    # requests next (benchmark_videos -> benchmark_scores, partitioned by benchmark x model) sees the
    # benchmark sets of the same gated shards.
    selection=dg.AssetSelection.groups(CURRICULUM_GROUP, TRAINING_GROUP) | dg.AssetSelection.assets("demo_benchmarks"),
    description="The curriculum (difficulty -> quartiles -> schedule), the latent cache, curriculum_phase_1 -> ... -> "
    "curriculum_phase_4 and the demo benchmark sets over every shard whose annotations passed the quality gates; "
    "the retraining_scoring sensor then scores the new phase models.",
)
ingest_job = dg.define_asset_job(
    "ingest",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.groups(CURATION_GROUP, ANNOTATION_GROUP),
    partitions_def=shard_partitions,
    description="curation + annotation + the blocking quality gates of one shard (what new_shard_sensor runs).",
)
ablations_job = dg.define_asset_job(
    "ablations",
    tags=RUN_TAGS,
    selection=dg.AssetSelection.assets(*ABLATION_ASSETS),
    partitions_def=ablation_partitions,
    description="One ablation variant: a short full training; its exported model is registered.",
)
retraining_schedule = build_retraining_schedule(retraining_job, LOAD_PARAMS.retraining.cron,
                                                LOAD_PARAMS.retraining.schedule_running)
new_shard_sensor = build_new_shard_sensor(ingest_job, LOAD_PARAMS.orchestration.new_shards.interval_s,
                                          LOAD_PARAMS.orchestration.new_shards.running)
SCORING_SENSORS = build_scoring_sensors(retraining_job, evaluation_job, evaluation_reports_job)

defs = dg.Definitions(
    assets=[*CURATION_ASSETS, *ANNOTATION_ASSETS, *CURRICULUM_ASSETS, curation_report, annotation_report,
            *EVALUATION_ASSETS, *TRAINING_ASSETS, *ABLATION_ASSETS, *BROWSER_ASSETS],
    asset_checks=ANNOTATION_CHECKS,
    jobs=[curation_job, annotation_job, demo_shard_job, curriculum_job, reports_job, evaluation_inputs_job,
          evaluation_job, evaluation_reports_job, retraining_job, ablations_job, ingest_job],
    schedules=[retraining_schedule],
    sensors=[new_shard_sensor, *SCORING_SENSORS, run_failure_alert],
    resources={"reactid": reactid_resource()},
)
