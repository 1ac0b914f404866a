"""`reactid lineage` with lakeFS on names the commit the quality gate made of a clip's shard
(read from the gate verdict: no request to lakeFS), and none with lakeFS off."""

# No `from __future__ import annotations`, as in the other versioning tests.

import pytest

from orchestration.params import load_params
from core.storage import LocalObjectStore
from core.tables import to_table, write_json, write_table
from curation import schemas
from curation.gate_status import GATE_SUITES, gate_key

SHARD = "s-000"
CLIP = "s-000_000-s00"


@pytest.fixture
def gated_shard(make_project, fake_lakefs, lakefs_env):
    """One clip cut from one raw video of a shard that passed its gates and was committed to lakeFS."""
    from versioning.hooks import version_gate_verdict

    def edit(raw):
        raw["lakefs"] = {**raw["lakefs"], "enabled": True, "endpoint": fake_lakefs.endpoint, "retries": 0}

    path = make_project(edit)
    params, store = load_params(path), LocalObjectStore(path.parent / "data")
    write_table(store, f"tables/raw_videos/{SHARD}.parquet", to_table([{
        "video_id": "s-000_000", "shard": SHARD, "source_path": "pool/s-000/a.mp4", "status": "ok",
        "duration_s": 9.0}], schemas.RAW_VIDEOS))
    write_table(store, f"tables/scene_clips/{SHARD}.parquet", to_table([{
        "clip_id": CLIP, "video_id": "s-000_000", "shard": SHARD, "scene_index": 0, "start_frame": 24,
        "end_frame": 96, "start_s": 1.0, "end_s": 4.0, "kept": True}],
        schemas.SCENE_CLIPS))
    write_table(store, f"tables/curated_clips/{SHARD}.parquet", to_table([{
        "clip_id": CLIP, "video_id": "s-000_000", "shard": SHARD, "kept": True, "reasons": [],
        "clip_key": f"clips/{SHARD}/{CLIP}.mp4"}], schemas.CURATED_CLIPS))
    for suite in GATE_SUITES:
        store.put_bytes(f"tables/{suite}/{SHARD}.parquet", f"PAR1 {suite}".encode())
    write_json(store, gate_key(SHARD), {"shard": SHARD, "passed": True, "failed_suites": [],
                                        "annotations_fingerprint": "fp"})
    record = version_gate_verdict(params, store, SHARD, run_id="gate-1")
    return params, store, record


def test_lineage_names_the_lakefs_commit_of_the_clips_shard(gated_shard):
    from evaluation.lineage import lineage

    params, store, record = gated_shard
    graph = lineage(store, CLIP, lakefs=params.lakefs.enabled)
    commits = graph.of_type("lakefs_commit")
    assert [c.attrs["commit_id"] for c in commits] == [record["commit_id"]]
    assert commits[0].attrs["branch"] == record["branch"] and commits[0].attrs["shard"] == SHARD
    raw = graph.of_type("raw_video")[0]
    assert raw.attrs["source_path"] == "pool/s-000/a.mp4"
    assert any(r.startswith("cut at 1.00-4.00 s (frames 24-96)") for _, b, r in graph.edges if b == raw.id)
    assert not lineage(store, CLIP, lakefs=False).of_type("lakefs_commit")
