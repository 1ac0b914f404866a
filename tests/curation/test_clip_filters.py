"""The curated_clips filters: the params section holds exactly their thresholds, and a filter
added to the list runs through the curated_clips stage with no other change."""

from __future__ import annotations

import typing

import pytest

from orchestration.params import ProjectParams as Params
from orchestration.params import load_params
from core.stage import StageContext
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


GOOD = {"motion_foreground": 1.0, "has_text": False, "text_free_area": 1.0, "sharpness": 100.0, "brightness": 0.5,
        "noise": 1.0, "blockiness": 1.0, "aesthetic": None, "crop": [0, 0, 32, 32]}


@pytest.fixture
def scored_shard(tmp_path, make_project):
    """Two kept scene clips with clip_quality rows that pass every filter, one analysed over
    fewer frames than the other; no duplicates."""
    params = load_params(make_project())
    store = LocalObjectStore(tmp_path / "data")

    def table(name, rows, schema):
        write_table(store, f"tables/{name}/tiny-000.parquet", to_table(rows, schema))

    clips = [{"clip_id": f"v0-s0{i}", "video_id": "v0", "shard": "tiny-000", "scene_index": i, "start_frame": 0,
              "end_frame": 8, "start_s": 0.0, "end_s": 1.0, "duration_s": 1.0, "fps": 8.0, "width": 32, "height": 32,
              "kept": True, "clip_key": f"clips/tiny-000/v0-s0{i}.mp4", "identity": "id0"} for i in range(2)]
    table("scene_clips", clips, schemas.SCENE_CLIPS)
    table("clip_quality", [{"clip_id": "v0-s00", "frames_analysed": 40, **GOOD},
                           {"clip_id": "v0-s01", "frames_analysed": 6, **GOOD}], schemas.CLIP_QUALITY)
    table("clip_dedup", [], schemas.CLIP_DEDUP)
    return params, store


def test_an_added_filter_rejects_through_the_stage(scored_shard):
    params, store = scored_shard
    added = ClipFilter("too_few_frames", "min_frames_analysed", lambda q, t: q["frames_analysed"] < t)
    # model_copy does not validate: the threshold stands in for the key the section model would declare
    cfg = params.curated_clips.model_copy(update={"min_frames_analysed": 10})
    ctx = StageContext("curated_clips", "tiny-000", params.model_copy(update={"curated_clips": cfg}), store)
    CLIP_FILTERS.append(added)
    try:
        meta = curated_clips(ctx)
    finally:
        CLIP_FILTERS.remove(added)
    rows = {r["clip_id"]: r for r in read_table(store, "tables/curated_clips/tiny-000.parquet").to_pylist()}
    assert rows["v0-s00"]["kept"] and rows["v0-s00"]["reasons"] == []
    assert not rows["v0-s01"]["kept"] and rows["v0-s01"]["reasons"] == ["too_few_frames"]
    assert meta["rejections_by_reason"] == {"too_few_frames": 1}
    assert added not in CLIP_FILTERS
