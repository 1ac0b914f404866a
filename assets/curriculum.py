"""Curriculum assets: one output over every shard whose annotations completed and passed
the annotation quality gates (generated: assets/stage_assets.py).

annotations (per shard) -> training_samples -> difficulty_scores -> difficulty_quartiles
                                                                 -> curriculum_schedule
clip_previews (per shard), curated_clips, annotations, the curriculum tables -> dataset_browser
"""

from assets.stage_assets import CURRICULUM_GROUP, STAGE_ASSETS, annotated_shards

__all__ = ["BROWSER_ASSETS", "CURRICULUM_ASSETS", "CURRICULUM_GROUP", "annotated_shards", "training_samples"]

training_samples = STAGE_ASSETS["training_samples"]
CURRICULUM_ASSETS = [STAGE_ASSETS[name] for name in
                     ("training_samples", "difficulty_scores", "difficulty_quartiles", "curriculum_schedule")]
BROWSER_ASSETS = [STAGE_ASSETS["dataset_browser"]]
