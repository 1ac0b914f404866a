"""Annotation assets, one per stage, partitioned by shard (paper Sec. 3.1, App. B.2; generated:
assets/stage_assets.py).

curated_clips -> captions -> entities -> subjects -> faces / timelines -> annotations
                                      \\-> attributes
annotations, timelines, curated_clips -> clip_previews (annotated previews, contact sheet)
"""

from assets.stage_assets import ANNOTATION_GROUP, STAGE_ASSETS
from curation.stages import ANNOTATION_STAGES, PREVIEW_STAGES

__all__ = ["ANNOTATION_ASSETS", "ANNOTATION_GROUP"]

ANNOTATION_ASSETS = [STAGE_ASSETS[name] for name in (*ANNOTATION_STAGES, *PREVIEW_STAGES)]
