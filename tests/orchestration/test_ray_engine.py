"""Tier 2: the curation and annotation groups on a local Ray (engine ray, 2 workers) write the
same tables, byte for byte, as the embedded local engine; and a stage killed with SIGKILL in
the middle of a shard resumes with only its unfinished items."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import tiny_params, write_params

pytestmark = pytest.mark.slow

FANNED_OUT = ("raw_videos", "scene_clips", "clip_quality", "curated_clips", "captions", "entities", "subjects", "faces", "attributes", "timelines")


def _materialize(project):
    import dagster as dg

    from assets.annotation import ANNOTATION_ASSETS
    from assets.curation import CURATION_ASSETS
    from assets.resources import ReactIDResource

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["tiny-000"])
    result = dg.materialize([*CURATION_ASSETS, *ANNOTATION_ASSETS], partition_key="tiny-000", instance=instance,
                            resources={"reactid": ReactIDResource(project_dir=str(project))})
    assert result.success
    return {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}


def test_local_ray_writes_the_same_tables_as_the_local_engine(tmp_path, base_params_raw):
    pytest.importorskip("ray")
    from core.storage import LocalObjectStore

    project = tmp_path / "project"
    raw = tiny_params(project, base_params_raw)
    write_params(project, raw)
    store = LocalObjectStore(project / "data")
    local_meta = _materialize(project)
    local = {key: store.get_bytes(key) for key in store.list("tables")}

    # The same folder (the raw_videos table holds the pool's absolute paths), outputs removed.
    shutil.rmtree(project / "data")
    raw["execution"].update(engine="ray", workers=2, batch_size=2)
    write_params(project, raw)
    ray_meta = _materialize(project)
    on_ray = {key: store.get_bytes(key) for key in store.list("tables")}

    for stage in FANNED_OUT:
        assert local_meta[stage]["engine"].value == "local" and ray_meta[stage]["engine"].value == "ray", stage
        if stage == "clip_quality":  # every clip was analysed in scene_clips' pass, on each engine
            assert ray_meta[stage]["items_processed"].value == local_meta[stage]["items_processed"].value == 0
            assert ray_meta[stage]["clips_from_scene_pass"].value == local_meta[stage]["clips_from_scene_pass"].value > 0
            continue
        assert ray_meta[stage]["items_processed"].value == local_meta[stage]["items_processed"].value > 0, stage
    assert sorted(on_ray) == sorted(local) and len(local) >= 12
    assert [key for key in local if on_ray[key] != local[key]] == []


def _progress_files(project, stage: str) -> list:
    root = project / "data" / "progress" / stage / "tiny-000"
    return sorted(root.rglob("*.pkl")) if root.exists() else []


def _items(store, stage: str) -> int:
    """The items of `stage` on tiny-000: usable videos for scene_clips, kept clips for clip_quality,
    the clips that pass every filter (the clips it writes) for curated_clips."""
    from orchestration.params import load_params
    from core.tables import read_table
    from curation.clip_filters import rejection_reasons

    if stage == "scene_clips":
        return sum(r["status"] == "ok" for r in read_table(store, "tables/raw_videos/tiny-000.parquet").to_pylist())
    if stage == "curated_clips":
        cfg = load_params(store.root.parent / "params.yaml").curated_clips
        copies = {r["clip_id"] for r in read_table(store, "tables/clip_dedup/tiny-000.parquet").to_pylist() if r["duplicate"]}
        return sum(not rejection_reasons(q, cfg) and q["clip_id"] not in copies
                   for q in read_table(store, "tables/clip_quality/tiny-000.parquet").to_pylist())
    return sum(r["kept"] for r in read_table(store, "tables/scene_clips/tiny-000.parquet").to_pylist())


@pytest.mark.parametrize("stage", ["scene_clips", "clip_quality", "curated_clips"])
def test_a_stage_killed_mid_shard_resumes_with_only_the_unfinished_items(tmp_path, base_params_raw, repo_root, stage):
    from orchestration.params import load_params
    from core.stage import marker_key, run_stage
    from core.storage import LocalObjectStore
    from core.tables import read_table
    from curation.stages import STAGES

    project = tmp_path / "project"
    raw = tiny_params(project, base_params_raw)
    raw["demo_pool"]["procedural"]["n_videos"] = 6  # more videos and clips: a kill lands mid-shard
    # clip_quality's own items: the clips scene_clips' pass would otherwise analyse
    raw["scene_clips"]["quality_in_pass"] = stage != "clip_quality"
    params = load_params(write_params(project, raw))
    store = LocalObjectStore(project / "data")
    upstream = ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup",
                "curated_clips")
    for name in upstream[: upstream.index(stage) if stage in upstream else None]:
        run_stage(STAGES[name], "tiny-000", params, store)
    items = _items(store, stage)
    assert items >= 4

    # A real run of the stage in its own process, killed with SIGKILL after its first item is recorded.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", "from orchestration.cli import main; main()",
                             "--params", str(project / "params.yaml"),
                             "stage", stage, "--shard", "tiny-000"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _progress_files(project, stage) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    recorded = len(_progress_files(project, stage))
    assert not store.exists(marker_key(stage, "tiny-000")), "the run finished before it could be killed"
    assert 1 <= recorded < items

    resumed = run_stage(STAGES[stage], "tiny-000", params, store)
    assert resumed.metadata["items_resumed"] == recorded
    assert resumed.metadata["items_processed"] == items - recorded
    assert _progress_files(project, stage) == []  # dropped once the marker is written
    assert store.list(f"progress/{stage}/tiny-000") == []  # with the objects the items put (clips)
    table = store.get_bytes(f"tables/{stage}/tiny-000.parquet")
    if stage == "curated_clips":  # the resumed clips are published with the rest
        kept = [r["clip_key"] for r in read_table(store, "tables/curated_clips/tiny-000.parquet").to_pylist() if r["kept"]]
        assert kept and sorted(kept) == store.list("clips/tiny-000") + store.list("clips_cropped/tiny-000")
        clips = {key: store.get_bytes(key) for key in kept}

    again = run_stage(STAGES[stage], "tiny-000", params, store, force=True)
    assert again.metadata["items_processed"] == items and again.metadata["items_resumed"] == 0
    assert store.get_bytes(f"tables/{stage}/tiny-000.parquet") == table
    if stage == "curated_clips":
        assert {key: store.get_bytes(key) for key in kept} == clips


def test_a_lost_ray_worker_is_retried_and_a_stage_error_on_ray_is_not():
    ray_exceptions = pytest.importorskip("ray.exceptions")
    from assets.runner import is_transient

    assert is_transient(ray_exceptions.WorkerCrashedError())
    assert is_transient(ray_exceptions.ActorDiedError())
    try:
        raise ValueError("clip decoded to zero frames")
    except ValueError as cause:
        on_ray = ray_exceptions.RayTaskError("analyse_stored_clip", "traceback", cause).as_instanceof_cause()
    assert isinstance(on_ray, ValueError) and not is_transient(on_ray)
