"""The curated_clips filters: the params section holds exactly their thresholds, and a filter
added to the list runs through the curated_clips stage with no other change."""

from __future__ import annotations

import typing

import pytest

from orchestration.params import ProjectParams as Params
from orchestration.params import load_params
from core import layout
from core.stage import StageContext, run_stage
from core.storage import LocalObjectStore
from core.tables import read_table, to_table, write_table
from curation import schemas
from curation.clip_filters import CLIP_FILTERS, ClipFilter
from curation.stages import curated_clips


def test_the_section_holds_exactly_the_filters_thresholds():
    section = typing.get_type_hints(Params)["curated_clips"]
    keys = [f.params_key for f in CLIP_FILTERS]
    assert sorted(keys) == sorted(section.model_fields)
    reasons = [f.reason for f in CLIP_FILTERS]
    assert len(set(reasons)) == len(reasons)


@pytest.fixture
def scored_shard(make_project):
    """The tiny shard's real scene clips (spans of its source videos), with clip_quality rows
    that pass every filter, the first two analysed over different numbers of frames; no
    duplicates."""
    from curation.stages import STAGES

    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    for stage in ("demo_pool", "raw_videos", "scene_clips"):
        run_stage(STAGES[stage], "tiny-000", params, store)
    clips = [r for r in read_table(store, layout.table("scene_clips", "tiny-000")).to_pylist() if r["kept"]][:2]
    assert len(clips) == 2
    good = {"motion_foreground": 1.0, "has_text": False, "text_free_area": 1.0, "sharpness": 100.0,
            "brightness": 0.5, "noise": 1.0, "blockiness": 1.0, "aesthetic": None}
    quality = [{"clip_id": c["clip_id"], "frames_analysed": n, "crop": [0, 0, c["width"], c["height"]], **good}
               for c, n in zip(clips, (40, 6))]
    write_table(store, layout.table("clip_quality", "tiny-000"), to_table(quality, schemas.CLIP_QUALITY))
    write_table(store, layout.table("clip_dedup", "tiny-000"), to_table([], schemas.CLIP_DEDUP))
    return params, store, [c["clip_id"] for c in clips]


def test_an_added_filter_rejects_through_the_stage(scored_shard):
    params, store, (first, second) = scored_shard
    added = ClipFilter("too_few_frames", "min_frames_analysed", lambda q, t: q["frames_analysed"] < t)
    # model_copy does not validate: the threshold stands in for the key the section model would declare
    cfg = params.curated_clips.model_copy(update={"min_frames_analysed": 10})
    ctx = StageContext("curated_clips", "tiny-000", params.model_copy(update={"curated_clips": cfg}), store)
    CLIP_FILTERS.append(added)
    try:
        meta = curated_clips(ctx)
    finally:
        CLIP_FILTERS.remove(added)
    rows = {r["clip_id"]: r for r in read_table(store, layout.table("curated_clips", "tiny-000")).to_pylist()}
    assert rows[first]["kept"] and rows[first]["reasons"] == []
    assert not rows[second]["kept"] and rows[second]["reasons"] == ["too_few_frames"]
    assert store.list(layout.clips("tiny-000")) == [layout.clip("tiny-000", first)]  # the rejected clip is never written
    assert meta["rejections_by_reason"] == {"too_few_frames": 1}
    assert added not in CLIP_FILTERS
