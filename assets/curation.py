"""Curation assets, one per stage, partitioned by shard (generated: assets/stage_assets.py).

demo_pool -> raw_videos -> scene_clips -> clip_quality -> curated_clips
                                   scene_clips -> clip_signatures -> clip_dedup -> curated_clips
"""

from assets.stage_assets import CURATION_GROUP, DEMO_GROUP, STAGE_ASSETS
from curation.stages import CURATION_STAGES

__all__ = ["CURATION_ASSETS", "CURATION_GROUP", "DEMO_GROUP"]

CURATION_ASSETS = [STAGE_ASSETS[name] for name in ("demo_pool", *CURATION_STAGES)]
