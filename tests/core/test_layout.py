"""core.layout: the keys the stages write are the keys layout names, and every declared
output (what dvc.yaml lists) lies in one of layout's folders."""

from __future__ import annotations

import pytest

from core import layout
from core.errors import StorageError
from orchestration.params import load_params
from core.stage import AGGREGATE, PARTITION_KEYS, StageContext, marker_key, run_stage
from core.storage import LocalObjectStore
from core.tables import read_table


def _all_specs():
    from curation.stages import STAGES
    from evaluation.stages import EVAL_STAGES
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    return {**STAGES, **TRAINING_STAGES, **TRAINING_RUN_STAGES, **EVAL_STAGES}


def test_key_patterns():
    assert layout.table("scene_clips", "demo-000") == "tables/scene_clips/demo-000.parquet"
    assert layout.table("benchmark_scores", "opens2v/phase_1") == "tables/benchmark_scores/opens2v/phase_1.parquet"
    assert layout.marker("training_samples", AGGREGATE) == "metrics/training_samples/all-shards.json"
    assert layout.progress("scene_clips", "s") == "progress/scene_clips/s"
    assert layout.clip("s", "v-s00") == "clips/s/v-s00.mp4"
    assert layout.cropped_clip("s", "v-s00") == "clips_cropped/s/v-s00.mp4"
    assert layout.reference("s", "e1", 7) == "references/s/e1/f00007.png"
    assert layout.main_run("curriculum_phase_2", "r1") == "training/main/curriculum_phase_2/r1"
    assert layout.ablation_run("base", "r1") == "training/ablations/base/r1"
    assert layout.training_loss_plot("ablation_base") == "reports/training/ablation_base_loss.png"
    assert layout.model_record("phase_1") == "models/phase_1/model.json"
    assert layout.benchmark_videos("opens2v", "phase_1") == "videos/opens2v/phase_1"
    assert layout.score_card("opens2v/phase_1") == "scores/opens2v/phase_1.json"
    assert layout.join("", "a.mp4") == "a.mp4" and layout.join("p/", "a.mp4") == "p/a.mp4"
    assert layout.join("/abs/root", "curriculum/deepspeed") == "/abs/root/curriculum/deepspeed"


def test_stage_helpers_delegate_to_layout(tmp_path):
    ctx = StageContext("clip_quality", "s-000", None, LocalObjectStore(tmp_path))
    assert ctx.table_key() == layout.table("clip_quality", "s-000")
    assert ctx.table_key("scene_clips") == layout.table("scene_clips", "s-000")
    assert marker_key("clip_quality", "s-000") == layout.marker("clip_quality", "s-000")


def test_every_declared_output_and_input_lies_in_a_layout_folder():
    for spec in _all_specs().values():
        paths = [o.path for o in spec.written] + list(spec.inputs)
        for path in paths:
            if path.startswith("${"):  # a params path outside the store
                continue
            assert path.split("/")[0] in layout.TOP_LEVEL, f"{spec.name}: {path}"
        if spec.outputs is None:  # the default output is the stage's table
            assert spec.written[0].path == layout.table(spec.name, PARTITION_KEYS[spec.partitions])


def test_a_stage_writes_where_layout_says(make_project):
    """The curation stages on a tiny shard: tables, markers and clips are at layout's keys,
    and a finished run leaves no progress behind."""
    from curation.stages import STAGES

    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    shard = "tiny-000"
    stages = ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")
    for stage in stages:
        run_stage(STAGES[stage], shard, params, store)
        assert store.exists(layout.marker(stage, shard))
        assert store.list(layout.progress(stage, shard)) == []
    for table in ("raw_videos", "scene_clips", "scene_cuts", "curated_clips"):
        assert store.exists(layout.table(table, shard))
    rows = read_table(store, layout.table("curated_clips", shard)).to_pylist()
    kept = [r for r in rows if r["kept"]]
    assert kept
    assert [r["clip_key"] for r in kept] == [(layout.cropped_clip if r["cropped"] else layout.clip)(shard, r["clip_id"])
                                             for r in kept]
    assert all(r["clip_key"] is None for r in rows if not r["kept"])
    written = store.list(layout.clips(shard)) + store.list(layout.cropped_clips(shard))
    assert sorted(written) == sorted(r["clip_key"] for r in kept)
    # the declared outputs (dvc.yaml's outs) are exactly what was written
    for output in STAGES["curated_clips"].written:
        path = output.path.format(shard=shard)
        assert store.exists(path) or store.list(path) or path.startswith(layout.CROPPED_CLIPS)


# ---------------------------------------------------------------- the filesystem capability


def test_local_store_names_its_files(tmp_path):
    from core.storage import location

    store = LocalObjectStore(tmp_path)
    key = layout.table("raw_videos", "s")
    assert store.filesystem_path(key) == tmp_path.resolve() / key  # before the object exists
    store.put_bytes(key, b"x")
    assert store.filesystem_path(key).read_bytes() == b"x"
    assert location(store, key) == str(tmp_path.resolve() / key)
    with pytest.raises(StorageError, match="invalid object key"):
        store.filesystem_path("../outside")


def test_s3_store_has_no_local_files(s3_bucket):
    from core.storage import location
    from core.storage_s3 import S3ObjectStore

    endpoint, bucket, credentials = s3_bucket
    store = S3ObjectStore(endpoint, bucket, "team", secure=False, region="us-east-1", credentials=credentials)
    key = layout.model_record("phase_1")
    store.put_bytes(key, b"{}")
    assert store.filesystem_path(key) is None
    assert location(store, key) == f"s3://{bucket}/team/{key}"
    with pytest.raises(StorageError, match="invalid object key"):
        store.filesystem_path("a//b")


def test_training_folders_follow_the_capability(tmp_path, s3_bucket):
    """On a filesystem store a run trains in the store's own folder; elsewhere in a mirror."""
    from core.storage_s3 import S3ObjectStore
    from training.run_stages import RunFolders, local_run_dir, run_folders

    local = LocalObjectStore(tmp_path / "store")
    run = layout.main_run("curriculum_phase_1", "r1")
    with run_folders(local) as folders:
        assert not folders.mirrored
        assert folders.local(run) == local.filesystem_path(run)
        assert folders.key(folders.local(run)) == run
    assert local_run_dir(local, run) == local.filesystem_path(run)

    endpoint, bucket, credentials = s3_bucket
    remote = S3ObjectStore(endpoint, bucket, "", secure=False, region="us-east-1", credentials=credentials)
    with run_folders(remote) as folders:
        assert folders.mirrored and folders.local(run).is_relative_to(folders.root)
    with pytest.raises(ValueError, match="scratch folder"):
        RunFolders(remote)
    from core.errors import StageInputError

    with pytest.raises(StageInputError, match="no local folder"):
        local_run_dir(remote, run)
