"""Tier 2 on S3: the curation group materialised by Dagster with `storage.backend: s3`
against a real S3-protocol server (moto on 127.0.0.1): every output is an object in the
bucket, nothing lands under the local storage root, and the credentials reach the store
only through `dg.EnvVar`, never the run's config, events or metadata."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

SHARD = "tiny-000"


def test_materialize_curation_group_on_s3(make_project, s3_bucket, monkeypatch):
    import dagster as dg

    from assets.curation import CURATION_ASSETS
    from assets.resources import reactid_resource
    from core.params import load_params
    from core.stage import marker_key
    from core.storage import open_params_store
    from core.storage_s3 import S3ObjectStore
    from core.tables import read_table

    endpoint, bucket, (access, secret, _) = s3_bucket

    def on_s3(raw):
        raw["storage"] = {"backend": "s3", "root": "data",
                          "s3": {"endpoint": endpoint, "bucket": bucket, "prefix": "team/reactid", "secure": False,
                                 "region": "us-east-1", "part_size_mb": 5}}
        # The raw pool is the pipeline's input folder, not the object store: keep it outside "data".
        raw["demo_pool"]["pool_root"] = raw["raw_videos"]["pool_root"] = "pool"
        raw["demo_pool"]["ground_truth_root"] = "ground_truth"

    params_path = make_project(on_s3, shard=SHARD)
    project = params_path.parent
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REACTID_STORAGE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REACTID_S3_ACCESS_KEY", access)
    monkeypatch.setenv("REACTID_S3_SECRET_KEY", secret)

    resource = reactid_resource(project_dir=str(project))
    assert "REACTID_S3_SECRET_KEY" in repr(resource) and secret not in repr(resource)  # what the UI shows
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [SHARD])
    result = dg.materialize(CURATION_ASSETS, partition_key=SHARD, instance=instance, resources={"reactid": resource})
    assert result.success
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert set(mats) == {"demo_pool", "raw_videos", "scene_clips", "clip_quality", "curated_clips"}

    params = load_params(params_path)
    store = open_params_store(params)
    assert isinstance(store, S3ObjectStore)
    prefix = f"s3://{bucket}/team/reactid"
    assert mats["curated_clips"].materialization.metadata["table"].value == f"{prefix}/tables/curated_clips/{SHARD}.parquet"

    # Every output is an object in the bucket, under the configured prefix.
    names = {o.object_name for o in store._client.list_objects(bucket, recursive=True)}
    assert all(n.startswith("team/reactid/") for n in names)
    for stage in ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "curated_clips"):
        assert f"team/reactid/{marker_key(stage, SHARD)}" in names
    for table in ("raw_videos", "scene_clips", "scene_cuts", "clip_quality", "curated_clips"):
        assert f"team/reactid/tables/{table}/{SHARD}.parquet" in names
    assert not any(".staging-" in n for n in names)
    clips = read_table(store, f"tables/scene_clips/{SHARD}.parquet").to_pylist()
    kept = [c for c in clips if c["kept"]]
    assert kept and store.list(f"clips/{SHARD}") == sorted(c["clip_key"] for c in kept)
    curated = read_table(store, f"tables/curated_clips/{SHARD}.parquet").to_pylist()
    assert any(c["kept"] for c in curated)
    cropped = [c for c in curated if c["cropped"]]
    assert cropped and all(store.exists(c["clip_key"]) for c in cropped)
    assert mats["clip_quality"].materialization.metadata["decode_passes_per_clip"].value == 1.0  # streamed, one decode

    # Nothing was written under the local storage root.
    assert not (project / "data").exists()

    # The credentials appear nowhere in the run's record.
    run = instance.get_run_by_id(result.run_id)
    record = dg.serialize_value(run) + "".join(dg.serialize_value(e) for e in instance.all_logs(result.run_id))
    assert access not in record and secret not in record

    # A second run finds every marker in the bucket and skips.
    again = dg.materialize(CURATION_ASSETS, partition_key=SHARD, instance=instance, resources={"reactid": resource})
    assert again.success
    assert all(m.materialization.metadata["up_to_date_skip"].value for m in again.get_asset_materialization_events())
