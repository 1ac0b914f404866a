"""The filters of curated_clips: each reads a clip's clip_quality row and one threshold of the
params section `curated_clips`, and names the reason a failing clip is rejected with.

A clip is kept when it fails none of them (and clip_dedup found no earlier copy of it);
a rejected clip keeps its row with every reason it failed, in the order below. Adding a
filter over a column clip_quality already writes is one entry here, its threshold in the
`curated_clips` section model and its value in params.yaml (tests/curation/test_clip_filters.py
checks that the section holds exactly the filters' thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

QualityRow = Mapping[str, Any]


@dataclass(frozen=True)
class ClipFilter:
    """One curation filter.

    Attributes:
        reason: the rejection reason a failing clip gets (curated_clips `reasons`).
        params_key: the `curated_clips` key holding its threshold.
        fails: `fails(quality_row, threshold) -> True` when the clip fails; a measure that
            was not computed (None) fails nothing.
    """

    reason: str
    params_key: str
    fails: Callable[[QualityRow, float], bool]


CLIP_FILTERS: list[ClipFilter] = [
    ClipFilter("low_motion", "min_motion", lambda q, t: q["motion_foreground"] < t),
    # text the crop cannot remove: a caption bar over most of the frame
    ClipFilter("text_overlay_uncroppable", "min_text_free_area",
               lambda q, t: bool(q["has_text"]) and q["text_free_area"] is not None and q["text_free_area"] < t),
    ClipFilter("blurry", "min_sharpness", lambda q, t: q["sharpness"] < t),
    ClipFilter("underexposed", "min_brightness", lambda q, t: q["brightness"] < t),
    ClipFilter("overexposed", "max_brightness", lambda q, t: q["brightness"] > t),
    ClipFilter("noisy", "max_noise", lambda q, t: q["noise"] > t),
    ClipFilter("blocky", "max_blockiness", lambda q, t: q["blockiness"] is not None and q["blockiness"] > t),
    ClipFilter("low_aesthetic", "min_aesthetic", lambda q, t: q["aesthetic"] is not None and q["aesthetic"] < t),
]


def rejection_reasons(quality: QualityRow, cfg) -> list[str]:
    """Every filter a clip fails (empty when it passes), thresholds from `cfg` (the
    `curated_clips` params section), in the order of CLIP_FILTERS."""
    return [f.reason for f in CLIP_FILTERS if f.fails(quality, getattr(cfg, f.params_key))]
