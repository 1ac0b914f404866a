"""Tier 2: the curation group materialised by Dagster on a small generated shard."""

import json

import pytest

from core.tables import read_table

pytestmark = pytest.mark.slow


def test_materialize_curation_group(curated_project):
    project, params, store, result, _ = curated_project
    assert result.success
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert {"demo_pool", "raw_videos", "scene_clips", "clip_quality", "curated_clips"} <= set(mats)

    raw_meta = mats["raw_videos"].materialization.metadata
    assert raw_meta["quarantined"].value == 3
    assert raw_meta["quarantine_by_reason"].value == {"empty_file": 1, "not_a_video": 1, "truncated": 1}
    assert "quarantine_preview" in raw_meta

    raw = read_table(store, "tables/raw_videos/tiny-000.parquet").to_pylist()
    assert sum(r["status"] == "ok" for r in raw) == 4

    clips = read_table(store, "tables/scene_clips/tiny-000.parquet").to_pylist()
    kept = [c for c in clips if c["kept"]]
    assert kept and all(c["source_path"] and c["fps_num"] for c in kept)  # spans of the source, not files
    assert {c["drop_reason"] for c in clips if not c["kept"]} == {"below_min_duration"}

    quality_meta = mats["clip_quality"].materialization.metadata
    # every analyser shares scene_clips' decode of the whole video: no clip is decoded again
    assert quality_meta["decode_passes_per_clip"].value == 0.0
    assert quality_meta["clips_from_scene_pass"].value == len(kept) and quality_meta["clips_decoded_here"].value == 0
    assert mats["scene_clips"].materialization.metadata["decode_passes_per_video"].value == 1.0
    assert "plot_quality" in quality_meta
    quality = read_table(store, "tables/clip_quality/tiny-000.parquet").to_pylist()
    assert all(q["aesthetic"] is None and q["aesthetic_backend"].startswith("not computed") for q in quality)

    curated = read_table(store, "tables/curated_clips/tiny-000.parquet").to_pylist()
    assert any(c["kept"] for c in curated)
    assert all(c["reasons"] for c in curated if not c["kept"])
    # only the clips that pass are written
    assert all(c["clip_key"] is None for c in curated if not c["kept"])
    assert store.list("clips/tiny-000") + store.list("clips_cropped/tiny-000") == \
        sorted(c["clip_key"] for c in curated if c["kept"] and not c["cropped"]) + \
        sorted(c["clip_key"] for c in curated if c["kept"] and c["cropped"])
    static = [c for c in curated if c["video_id"].endswith("_002")]  # recipe "static"
    assert static and all("low_motion" in c["reasons"] for c in static)
    cropped = [c for c in curated if c["cropped"]]
    assert cropped and all(store.exists(c["clip_key"]) and c["height"] < 192 for c in cropped)


def test_rerun_is_idempotent_and_skips(curated_project):
    import dagster as dg

    from assets.annotation import ANNOTATION_ASSETS
    from assets.curation import CURATION_ASSETS
    from assets.resources import ReactIDResource

    project, _, store, _, instance = curated_project
    table_before = store.get_bytes("tables/curated_clips/tiny-000.parquet")
    again = dg.materialize([*CURATION_ASSETS, *ANNOTATION_ASSETS], partition_key="tiny-000", instance=instance,
                           resources={"reactid": ReactIDResource(project_dir=str(project))})
    assert again.success
    for m in again.get_asset_materialization_events():
        assert m.materialization.metadata["up_to_date_skip"].value is True
    assert store.get_bytes("tables/curated_clips/tiny-000.parquet") == table_before


def test_report_measures_accuracy_against_ground_truth(curated_project):
    from curation.report import METRICS_KEY, REPORT_KEY, build_curation_report

    _, params, store, _, _ = curated_project
    metrics = build_curation_report(params, store, ["tiny-000"])
    acc = metrics["shards"]["tiny-000"]["accuracy"]
    assert acc["quarantine"]["correct"] == acc["quarantine"]["expected"] == 3
    assert acc["scene_cuts"]["videos"] == 4
    assert acc["scene_cuts"]["final"]["recall"] is not None
    assert acc["short_scenes"]["short_scenes_kept"] == 0
    text = store.get_bytes(REPORT_KEY).decode()
    assert acc["scene_cuts"]["footage"] == "procedural"
    assert set(acc["scene_cuts"]["by_backend"]) == {"transnetv2", "pyscenedetect", "pyscenedetect_unrefined"}
    assert "procedural (generated footage)" in text
    assert "TransNetV2 (learned) [selected]" in text and "PySceneDetect + similarity refinement" in text
    assert json.loads(store.get_bytes(METRICS_KEY))["flow"][0]["shard"] == "tiny-000"
