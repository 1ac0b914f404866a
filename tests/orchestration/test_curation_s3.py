"""Tier 2 on S3: the curation group materialised by Dagster with `storage.backend: s3`
against a real S3-protocol server (moto on 127.0.0.1): every output is an object in the
bucket, nothing lands under the local storage root, and the credentials reach the store
only through `dg.EnvVar`, never the run's config, events or metadata."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

SHARD = "tiny-000"


def _on_s3(raw: dict, s3_bucket, prefix: str) -> None:
    """Params of a tiny project whose store is `prefix` in the test bucket."""
    endpoint, bucket, _ = s3_bucket
    raw["storage"] = {"backend": "s3", "root": "data",
                      "s3": {"endpoint": endpoint, "bucket": bucket, "prefix": prefix, "secure": False,
                             "region": "us-east-1", "part_size_mb": 5}}


def _credentials_from_env(monkeypatch, s3_bucket) -> None:
    """The store's credentials only in REACTID_S3_*, nothing else that could stand in."""
    _, _, (access, secret, _) = s3_bucket
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REACTID_STORAGE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REACTID_S3_ACCESS_KEY", access)
    monkeypatch.setenv("REACTID_S3_SECRET_KEY", secret)


def test_materialize_curation_group_on_s3(make_project, s3_bucket, monkeypatch):
    import dagster as dg

    from assets.curation import CURATION_ASSETS
    from assets.resources import reactid_resource
    from orchestration.params import load_params
    from core.stage import marker_key
    from core.storage import open_params_store
    from core.storage_s3 import S3ObjectStore
    from core.tables import read_table

    _, bucket, (access, secret, _) = s3_bucket

    def on_s3(raw):
        _on_s3(raw, s3_bucket, "team/reactid")
        # The raw pool is the pipeline's input folder, not the object store: keep it outside "data".
        raw["demo_pool"]["pool_root"] = raw["raw_videos"]["pool_root"] = "pool"
        raw["demo_pool"]["ground_truth_root"] = "ground_truth"

    params_path = make_project(on_s3, shard=SHARD)
    project = params_path.parent
    _credentials_from_env(monkeypatch, s3_bucket)

    resource = reactid_resource(project_dir=str(project))
    assert "REACTID_S3_SECRET_KEY" in repr(resource) and secret not in repr(resource)  # what the UI shows
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [SHARD])
    result = dg.materialize(CURATION_ASSETS, partition_key=SHARD, instance=instance, resources={"reactid": resource})
    assert result.success
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert set(mats) == {"demo_pool", "raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup",
                         "curated_clips"}

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
    curated = read_table(store, f"tables/curated_clips/{SHARD}.parquet").to_pylist()
    assert any(c["kept"] for c in curated)
    # only the clips that pass are written
    assert store.list(f"clips/{SHARD}") == sorted(c["clip_key"] for c in curated if c["kept"] and not c["cropped"])
    cropped = [c for c in curated if c["cropped"]]
    assert cropped and all(store.exists(c["clip_key"]) for c in cropped)
    # each video streamed from the store once, by scene_clips, whose pass also analysed its clips
    assert mats["scene_clips"].materialization.metadata["decode_passes_per_video"].value == 1.0
    assert mats["clip_quality"].materialization.metadata["decode_passes_per_clip"].value == 0.0

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


BUCKET_SHARD = "batch-007"


def test_a_shard_uploaded_to_the_bucket_is_sensed_and_curated_from_the_bucket(make_project, s3_bucket, monkeypatch,
                                                                               tmp_path):
    """raw_videos.pool_prefix: a shard is the objects <prefix>/<shard>/ of the S3 store. The new-shard
    sensor finds it once its manifest is there, and the curation group probes and cuts its videos
    by streaming them from the bucket: same tables as the same shard read from a folder on disk."""
    import json

    import dagster as dg

    from assets.curation import CURATION_ASSETS, CURATION_GROUP
    from assets.resources import reactid_resource
    from orchestration.params import load_params, parse_params
    from core.stage import completed, run_stage
    from core.storage import LocalObjectStore, open_params_store
    from core.tables import read_table
    from curation.stages import STAGES
    from curation.synth import build_demo_shard
    from curation.video_io import DECODE_STATS
    from orchestration.definitions import new_shard_sensor

    _, bucket, _ = s3_bucket

    def on_s3(raw):
        _on_s3(raw, s3_bucket, "team/reactid")
        raw["raw_videos"]["pool_prefix"] = "incoming"

    params_path = make_project(on_s3)
    project = params_path.parent
    _credentials_from_env(monkeypatch, s3_bucket)
    params = load_params(params_path)
    store = open_params_store(params)

    # A procedural shard with its deliberately broken files, uploaded manifest last.
    folder, truth_path = build_demo_shard(tmp_path / "upload", tmp_path / "truth", shard=BUCKET_SHARD,
                                          kind="procedural", seed=5, n_videos=4, width=256, height=192, fps=10)
    truth = json.loads(truth_path.read_text())
    files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.jsonl")
    for name in files:
        store.put_file(f"incoming/{BUCKET_SHARD}/{name}", folder / name)

    resource = reactid_resource(project_dir=str(project))
    instance = dg.DagsterInstance.ephemeral()

    def sense(cursor=None):
        return new_shard_sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                        resources={"reactid": resource}))

    waiting = sense()
    assert not waiting.run_requests and "1 not ready yet" in waiting.skip_reason.skip_message
    assert f"incoming/ in s3://{bucket}/team/reactid" in waiting.skip_reason.skip_message
    store.put_file(f"incoming/{BUCKET_SHARD}/manifest.jsonl", folder / "manifest.jsonl")
    found = sense(waiting.cursor)
    assert [(r.partition_key, r.run_key) for r in found.run_requests] == [(BUCKET_SHARD, f"shard:{BUCKET_SHARD}")]
    for request in found.dynamic_partitions_requests:  # what the sensor daemon does
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert instance.get_dynamic_partitions("shards") == [BUCKET_SHARD]

    curation = [a for a in CURATION_ASSETS if a.group_names_by_key[a.key] == CURATION_GROUP]
    result = dg.materialize(curation, partition_key=BUCKET_SHARD, instance=instance, resources={"reactid": resource})
    assert result.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert set(mats) == {"raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips"}
    assert mats["raw_videos"]["pool"].value == f"s3://{bucket}/team/reactid/incoming/{BUCKET_SHARD}/"

    # Registered and probed from the bucket; the broken files quarantined for their reason.
    raw = read_table(store, f"tables/raw_videos/{BUCKET_SHARD}.parquet").to_pylist()
    assert sorted(r["source_path"] for r in raw) == [f"incoming/{BUCKET_SHARD}/{n}" for n in files]
    quarantined = {r["source_path"].rsplit("/", 1)[-1]: r["reason"] for r in raw if r["status"] != "ok"}
    assert quarantined == {b["file"]: b["expected_quarantine"] for b in truth["broken"]}
    assert {"empty_file", "truncated", "not_a_video"} <= set(quarantined.values())
    ok = [r for r in raw if r["status"] == "ok"]
    assert len(ok) == len(files) - len(truth["broken"]) >= 4
    # Decoded through ranged reads of the objects (a stream is named by its URI), not local copies.
    for r in ok:
        assert DECODE_STATS.passes.get(store.uri(r["source_path"]), 0) >= 1

    clips = read_table(store, f"tables/scene_clips/{BUCKET_SHARD}.parquet").to_pylist()
    kept = [c for c in clips if c["kept"]]
    assert kept and {c["video_id"] for c in clips} == {r["video_id"] for r in ok}
    curated = read_table(store, f"tables/curated_clips/{BUCKET_SHARD}.parquet").to_pylist()
    assert store.list(f"clips/{BUCKET_SHARD}") == sorted(c["clip_key"] for c in curated if c["kept"] and not c["cropped"])
    assert {c["clip_id"] for c in curated} == {c["clip_id"] for c in kept}
    assert any(c["kept"] for c in curated) and all(store.exists(c["clip_key"]) for c in curated if c["kept"])
    assert not (project / "data").exists() and not (project / "pool").exists()

    # The same shard as a folder on disk gives the same registration, probes and cuts.
    local_raw = {**load_params(params_path).model_dump(), "storage": {"backend": "local", "root": str(tmp_path / "lo")}}
    local_raw["raw_videos"] = {**local_raw["raw_videos"], "pool_prefix": None, "pool_root": str(tmp_path / "upload")}
    local_params, local_store = parse_params(local_raw), LocalObjectStore(tmp_path / "lo")
    for stage in ("raw_videos", "scene_clips"):
        run_stage(STAGES[stage], BUCKET_SHARD, local_params, local_store)

    def without_location(rows):
        return [{k: v for k, v in r.items() if k != "source_path"} for r in rows]

    local_rows = read_table(local_store, f"tables/raw_videos/{BUCKET_SHARD}.parquet").to_pylist()
    assert without_location(local_rows) == without_location(raw)
    assert without_location(read_table(local_store, f"tables/scene_clips/{BUCKET_SHARD}.parquet").to_pylist()) == \
        without_location(clips)

    # The shard's fingerprint follows the objects' contents: a rewrite of the same size is seen.
    assert completed(STAGES["raw_videos"], BUCKET_SHARD, params, store)
    broken = f"incoming/{BUCKET_SHARD}/{truth['broken'][-1]['file']}"
    data = store.get_bytes(broken)
    store.put_bytes(broken, data[::-1])
    assert len(store.get_bytes(broken)) == len(data)
    assert not completed(STAGES["raw_videos"], BUCKET_SHARD, params, store)


def test_demo_pool_publishes_its_shard_under_the_pool_prefix(make_project, s3_bucket, monkeypatch):
    """With the pool in the store, `make demo`'s own shards land there too, and raw_videos
    registers them from the bucket."""
    from orchestration.params import load_params
    from core.stage import run_stage
    from core.storage import open_params_store
    from core.tables import read_table
    from curation.stages import STAGES

    _, bucket, _ = s3_bucket

    def on_s3(raw):
        _on_s3(raw, s3_bucket, "p")
        raw["raw_videos"]["pool_prefix"] = "incoming"
        raw["demo_pool"]["pool_root"] = "pool"

    params_path = make_project(on_s3, shard=SHARD)
    _credentials_from_env(monkeypatch, s3_bucket)
    params = load_params(params_path)
    store = open_params_store(params)
    made = run_stage(STAGES["demo_pool"], SHARD, params, store)
    assert made.metadata["pool_folder"] == f"s3://{bucket}/p/incoming/{SHARD}"
    on_disk = sorted(p.name for p in (params_path.parent / "pool" / SHARD).iterdir())
    assert store.list(f"incoming/{SHARD}") == [f"incoming/{SHARD}/{n}" for n in on_disk]
    assert "manifest.jsonl" in on_disk and not any(".staging" in k for k in store.list("incoming"))

    run_stage(STAGES["raw_videos"], SHARD, params, store)
    rows = read_table(store, f"tables/raw_videos/{SHARD}.parquet").to_pylist()
    assert sorted(r["source_path"] for r in rows) == sorted(f"incoming/{SHARD}/{n}" for n in on_disk
                                                            if n != "manifest.jsonl")
