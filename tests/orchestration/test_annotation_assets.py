"""Tier 2: the annotation group materialised by Dagster on the tiny generated shard."""

import json

import pytest

from core.tables import read_table
from curation.rle import rle_area, rle_decode

pytestmark = pytest.mark.slow


def _t(store, name):
    return read_table(store, f"tables/{name}/tiny-000.parquet").to_pylist()


def test_annotation_tables(curated_project):
    _, params, store, result, _ = curated_project
    mats = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {"captions", "entities", "subjects", "faces", "attributes", "timelines", "annotations"} <= mats

    caps = _t(store, "captions")
    assert caps and all(c["caption_backend"].startswith("embedded:sidecar-caption") for c in caps if c["kept"])
    ents = _t(store, "entities")
    assert {e["label"] for e in ents} <= {"man", "woman"}  # the synthetic people; shirts are attributes
    subs = _t(store, "subjects")
    verified = [s for s in subs if s["verified"]]
    assert verified
    for s in verified:
        assert len(s["boxes"]) == len(s["mask_rles"]) == len(s["frame_indices"]) == len(s["mask_area_fractions"])
        for box, rle, area in zip(s["boxes"], s["mask_rles"], s["mask_area_fractions"], strict=True):
            m = rle_decode(rle)
            assert m.shape == (s["frame_height"], s["frame_width"])
            assert rle_area(rle) / m.size == pytest.approx(area, abs=1e-5)
            assert 0 <= box[0] < box[2] <= s["frame_width"] and 0 <= box[1] < box[3] <= s["frame_height"]
    attrs = _t(store, "attributes")
    assert attrs and all(a["gender"] in ("male", "female") for a in attrs)  # from the sidecar
    lines = _t(store, "timelines")
    for t in lines:
        assert t["event_count"] == len(t["events"]) > 0
        for ev in t["events"]:
            assert 0 <= ev["start"] < ev["end"]
    ann = _t(store, "annotations")
    assert len(ann) == len(verified)
    assert all(json.loads(a["backends"])["subject"].startswith("embedded") for a in ann)


def test_annotation_report_measures_accuracy(curated_project):
    from curation.annotation_report import METRICS_KEY, build_annotation_report

    _, params, store, _, _ = curated_project
    metrics = build_annotation_report(params, store, ["tiny-000"])
    acc = metrics["shards"]["tiny-000"]["accuracy"]["annotation"]
    assert acc["entity_recall"] == 1.0
    assert acc["box_iou"] > 0.5 and acc["mask_iou"] > 0.5  # measured ~0.7 on the demo shard
    assert acc["timeline"]["f1"] is not None
    assert json.loads(store.get_bytes(METRICS_KEY))["accuracy"][0]["shard"] == "tiny-000"


def test_clip_previews_asset_previews_every_clip_and_links_them(curated_project):
    """The previews of the tiny shard through Dagster: one per curated clip (the rejected one with
    its reasons), and the asset metadata links the previews and shows the contact sheet."""
    _, _, store, result, _ = curated_project
    meta = next(m.materialization.metadata for m in result.get_asset_materialization_events()
                if m.asset_key.to_user_string() == "clip_previews")
    curated = _t(store, "curated_clips")
    previews = {r["clip_id"]: r for r in _t(store, "clip_previews")}
    assert set(previews) == {c["clip_id"] for c in curated} and meta["previews"].value == len(curated)
    for clip in curated:
        assert store.exists(previews[clip["clip_id"]]["preview_key"])
        assert previews[clip["clip_id"]]["reasons"] == ([] if clip["kept"] else clip["reasons"])
    assert any(not c["kept"] for c in curated)
    assert meta["contact_sheet_key"].value == str(store.path("previews/tiny-000/contact_sheet.png"))
    assert meta["previews_key"].value == str(store.path("previews/tiny-000"))
    assert "data:image/png;base64," in meta["contact_sheet"].value
