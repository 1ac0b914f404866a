"""Training on S3 (moto): the latent cache and curriculum phases 1-2 with `storage.backend: s3`.

DeepSpeed trains in a local scratch mirror; checkpoints, the exported model and the logs end
up as objects under the run's key, phase 2 starts from phase 1's checkpoint downloaded from
the bucket, an interrupted phase resumes from the bucket, a missing or corrupt checkpoint is
reported by name, and nothing is written under the local storage root."""

from __future__ import annotations

import json
import re

import pytest

from core.stage import AGGREGATE, run_stage
from tests.training.conftest import build_annotated_pool, curriculum_params_raw

pytestmark = pytest.mark.slow

SHARDS = ("gen-000", "gen-001")


def _params_raw(base, endpoint, bucket):
    raw = curriculum_params_raw(base)
    raw["curriculum"]["phase_ratios"] = [1, 1, 1, 1]
    raw["training"]["demo"].update(total_steps=8, warmup_steps=2, checkpoint_every=1)
    raw["storage"] = {"backend": "s3", "root": "data",
                      "s3": {"endpoint": endpoint, "bucket": bucket, "prefix": "team/reactid", "secure": False,
                             "region": "us-east-1", "part_size_mb": 5}}
    return raw


@pytest.fixture
def s3_project(tmp_path, base_params_raw, s3_bucket, monkeypatch):
    import yaml

    from orchestration.params import load_params
    from core.storage import open_params_store
    from core.storage_s3 import S3ObjectStore

    endpoint, bucket, (access, secret, _) = s3_bucket
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REACTID_STORAGE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REACTID_S3_ACCESS_KEY", access)
    monkeypatch.setenv("REACTID_S3_SECRET_KEY", secret)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params_raw(base_params_raw, endpoint, bucket),
                                                         sort_keys=False))
    params = load_params(tmp_path / "params.yaml")
    store = open_params_store(params)
    assert isinstance(store, S3ObjectStore)
    build_annotated_pool(store)
    return tmp_path, params, store


def _steps(store, run_dir):
    return [json.loads(line) for line in store.get_bytes(f"{run_dir}/steps.jsonl").decode().splitlines() if line]


def test_latent_cache_and_two_phases_on_s3(s3_project, tmp_path_factory):
    from training.checkpoint import CheckpointError
    from training.run_stages import TRAINING_RUN_STAGES, RunFolders
    from training.stages import TRAINING_STAGES

    project, params, store = s3_project
    run_stage(TRAINING_STAGES["training_samples"], AGGREGATE, params, store, shards=SHARDS)
    for name in ("difficulty_scores", "difficulty_quartiles", "curriculum_schedule"):
        run_stage(TRAINING_STAGES[name], AGGREGATE, params, store)
    cache = run_stage(TRAINING_RUN_STAGES["latent_cache"], AGGREGATE, params, store).metadata
    assert cache["samples"] > 0 and store.exists("cache/index.json")
    one = run_stage(TRAINING_RUN_STAGES["curriculum_phase_1"], AGGREGATE, params, store).metadata
    two = run_stage(TRAINING_RUN_STAGES["curriculum_phase_2"], AGGREGATE, params, store).metadata

    # Metadata records store keys, as on the local backend.
    for meta in (one, two):
        run_dir = meta["run_dir"]
        assert meta["checkpoint_dir"] == f"{run_dir}/checkpoints" and meta["model_dir"] == f"{run_dir}/model"
        tag = f"step_{meta['global_step']:08d}"
        assert store.get_bytes(f"{meta['checkpoint_dir']}/latest").decode().strip() == tag
        assert store.exists(f"{meta['checkpoint_dir']}/{tag}/manifest.json")
        assert store.exists(f"{meta['model_dir']}/config.json")
        assert store.exists(f"{meta['model_dir']}/diffusion_pytorch_model.safetensors")
        for name in ("steps.jsonl", "sample_ids.jsonl", "metrics.json"):
            assert store.exists(f"{run_dir}/{name}")
        assert [r["step"] for r in _steps(store, run_dir)] == list(range(meta["start_step"] + 1,
                                                                          meta["global_step"] + 1))
    assert one["resumed_from"] is None
    assert two["resumed_from"] == f"{one['checkpoint_dir']}/step_{one['global_step']:08d}"  # chained via S3
    assert two["start_step"] == one["global_step"] and two["global_step"] == one["global_step"] + 2
    assert store.exists("models/phase_1/model.json") and store.exists("models/phase_2/model.json")
    assert not (project / "data").exists()  # nothing under the local storage root

    # The lineage of a model trained on S3, read from the bucket alone: its run, the run it continued
    # from, the samples both drew (their compact draws record) and the annotations and clips behind them.
    from evaluation.lineage import lineage
    from training.draws import read_draws

    graph = lineage(store, "phase_2")
    assert graph.nodes[graph.root].attrs["training_run"] == two["run_dir"]
    phases = {n.attrs["stage"]: n for n in graph.of_type("phase")}
    assert set(phases) == {"curriculum_phase_1", "curriculum_phase_2"}
    assert phases["curriculum_phase_2"].attrs["checkpoint"] == two["checkpoint_dir"]
    drawn = set()
    for meta in (one, two):
        draws = read_draws(store, meta["run_dir"])
        drawn |= set(draws.sample_ids[draws.indices.ravel()].tolist())
    assert {n.attrs["sample_id"] for n in graph.of_type("sample")} == drawn
    annotated = {n.attrs["entity_id"] for n in graph.of_type("annotation")}
    assert annotated == {sid.split(":")[0] for sid in drawn}
    assert {n.attrs["clip_key"] for n in graph.of_type("clip")} == {
        f"clips/{n.attrs['shard']}/{n.attrs['clip_id']}.mp4" for n in graph.of_type("clip")}
    assert not (project / "data").exists()

    # An interrupted phase 2 (its last checkpoint never reached the bucket) resumes from the bucket.
    uninterrupted = [r["loss"] for r in _steps(store, two["run_dir"])]
    checkpoints = two["checkpoint_dir"]
    store.delete_prefix(f"{checkpoints}/step_{two['global_step']:08d}")
    store.put_bytes(f"{checkpoints}/latest", f"step_{two['global_step'] - 1:08d}".encode())
    store.delete_prefix("metrics/curriculum_phase_2/all-shards.json")
    again = run_stage(TRAINING_RUN_STAGES["curriculum_phase_2"], AGGREGATE, params, store).metadata
    assert again["resumed_from"] == f"{checkpoints}/step_{two['global_step'] - 1:08d}"
    assert again["steps_run"] == 1 and again["run_dir"] == two["run_dir"]
    assert [r["loss"] for r in _steps(store, two["run_dir"])] == uninterrupted

    # A missing checkpoint is reported by its key.
    with pytest.raises(CheckpointError, match="training/main/nowhere/checkpoints/latest"):
        RunFolders(store, tmp_path_factory.mktemp("scratch")).download_checkpoint("training/main/nowhere/checkpoints")

    # A corrupt one (phase 1's weights altered in the bucket) fails phase 2 by file name, never
    # trains on random weights.
    tag_prefix = f"{one['checkpoint_dir']}/step_{one['global_step']:08d}"
    victim = next(k for k in store.list(tag_prefix) if k.endswith(".pt"))
    store.put_bytes(victim, b"not a checkpoint")
    store.delete_prefix(two["run_dir"])
    with pytest.raises(CheckpointError, match=victim.rsplit("/", 1)[-1]):
        run_stage(TRAINING_RUN_STAGES["curriculum_phase_2"], AGGREGATE, params, store, force=True)
    assert not (project / "data").exists()


def test_a_bucket_checkpoint_without_latest_is_an_error_and_manifests_upload_last(s3_bucket, tmp_path):
    from core.storage_s3 import S3ObjectStore
    from training.checkpoint import LATEST, MANIFEST, CheckpointError
    from training.run_stages import RunFolders

    endpoint, bucket, credentials = s3_bucket
    store = S3ObjectStore(endpoint, bucket, "team/reactid", secure=False, region="us-east-1", part_size_mb=5,
                          credentials=credentials)
    uploaded: list[str] = []

    class RecordingStore:
        """The bucket, recording the order of uploads."""

        def __getattr__(self, name):
            return getattr(store, name)

        def put_file(self, key, path):
            uploaded.append(key)
            return store.put_file(key, path)

    folders = RunFolders(RecordingStore(), tmp_path / "scratch")
    prefix = "training/main/curriculum_phase_1/f/checkpoints"
    tag = folders.local(f"{prefix}/step_00000002")
    tag.mkdir(parents=True)
    for name in ("mp_rank_00_model_states.pt", MANIFEST, "zero_pp_rank_0_optim_states.pt"):
        (tag / name).write_bytes(name.encode())
    (tag.parent / LATEST).write_text("step_00000002")
    folders.upload(prefix, last=(MANIFEST, LATEST))
    assert [key.rsplit("/", 1)[-1] for key in uploaded][-2:] == [MANIFEST, LATEST]

    # A tag whose upload stopped before its manifest is an interrupted save: nothing to resume.
    store.delete_prefix(f"{prefix}/{LATEST}")
    store.delete_prefix(f"{prefix}/step_00000002/{MANIFEST}")
    assert folders.has_checkpoint(prefix) is False
    # A complete tag without `latest` is named, never taken for "no checkpoint".
    store.put_bytes(f"{prefix}/step_00000002/{MANIFEST}", b"{}")
    expected = f"checkpoint folder {store.uri(prefix)} holds complete checkpoints ['step_00000002']"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        folders.has_checkpoint(prefix)
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        folders.download_checkpoint(prefix)
