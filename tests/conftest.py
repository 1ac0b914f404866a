"""Shared fixtures: a tiny generated demo shard and params pointing at temp folders."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def base_params_raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def tiny_params(root: Path, base: dict, shard: str = "tiny-000") -> dict:
    """The repo's params with every path under `root` and one small procedural shard."""
    raw = copy.deepcopy(base)
    raw["storage"]["root"] = "data"
    raw["demo_pool"]["shards"] = {shard: {"kind": "procedural", "seed": 3}}
    raw["demo_pool"]["procedural"].update(n_videos=4, width=256, height=192, fps=10)
    raw["demo_pool"]["pool_root"] = raw["raw_videos"]["pool_root"] = "data/pool"
    raw["demo_pool"]["ground_truth_root"] = "data/ground_truth"
    raw["clip_quality"]["analysis_width"] = 256
    return raw


def write_params(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def curated_project(tmp_path_factory, base_params_raw):
    """A project folder whose tiny shard went through the curation and annotation assets
    and the blocking quality gates on them.

    Returns (project_dir, params, store, materialize_result, instance).
    """
    import dagster as dg

    from assets.annotation import ANNOTATION_ASSETS
    from assets.checks import ANNOTATION_CHECKS
    from assets.curation import CURATION_ASSETS
    from assets.resources import ReactIDResource
    from orchestration.params import load_params
    from core.storage import LocalObjectStore

    project = tmp_path_factory.mktemp("project")
    params_path = write_params(project, tiny_params(project, base_params_raw))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["tiny-000"])
    result = dg.materialize(
        [*CURATION_ASSETS, *ANNOTATION_ASSETS, *ANNOTATION_CHECKS],
        partition_key="tiny-000",
        instance=instance,
        resources={"reactid": ReactIDResource(project_dir=str(project))},
    )
    params = load_params(params_path)
    return project, params, LocalObjectStore(project / "data"), result, instance


@pytest.fixture
def make_project(tmp_path, base_params_raw):
    """Write a tiny project (params.yaml under tmp_path); `edit` may change the raw dict."""

    def make(edit=None, shard: str = "tiny-000") -> Path:
        raw = tiny_params(tmp_path, base_params_raw, shard)
        if edit:
            edit(raw)
        return write_params(tmp_path, raw)

    return make


# ---------------------------------------------------------------- S3-protocol server

S3_TEST_ACCESS_KEY = "reactid-test-access"
S3_TEST_SECRET_KEY = "reactid-test-secret-0123456789"


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto) on 127.0.0.1, a random free port, for the session.

    Returns its endpoint "127.0.0.1:PORT" (plain http). moto keeps its state per process, so
    each test uses its own bucket (`s3_bucket`).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh, empty bucket on `s3_server`; returns (endpoint, bucket, credentials)."""
    import re
    import uuid

    from minio import Minio

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    Minio(s3_server, access_key=S3_TEST_ACCESS_KEY, secret_key=S3_TEST_SECRET_KEY, secure=False,
          region="us-east-1").make_bucket(bucket)
    return s3_server, bucket, (S3_TEST_ACCESS_KEY, S3_TEST_SECRET_KEY, None)


# ---------------------------------------------------------------- a traced project

TRACED_SHARD = "tiny-real"


def traced_params(root: Path, base: dict) -> dict:
    """Params of a project that goes from raw videos to an IPVG submission in about a minute:
    the real-footage demo shard (its faces make IPVG Track 1 possible; the procedural one has
    none), two short curriculum phases of one sample per step, one model submitted."""
    raw = tiny_params(root, base, TRACED_SHARD)
    raw["demo_pool"]["shards"] = {TRACED_SHARD: {"kind": "real_footage", "seed": 0}}
    raw["training"]["demo"].update(total_steps=8, warmup_steps=2, checkpoint_every=4, global_batch=1, micro_batch=1)
    raw["curriculum"]["phase_ratios"] = [1, 1, 1, 1]
    raw["curriculum"]["inter_clip_ratios"] = raw["curriculum"]["demo_inter_clip_ratios"] = [0.0] * 4
    ev = raw["evaluation"]
    ev["held_out"] = {"seed": 0, "fraction": 0.0, "min_face_identities": 1, "min_other_identities": 0}
    ev["demo_sets"].update(entries_per_set=2, reference_crop_size=64)
    ev["models"] = ["phase_2"]
    ev["untrained_models"] = {}
    ev["generation"].update(num_frames=9, num_inference_steps=1, guidance_scale=1.0)
    ev["submission"] = {"runs": [{"name": "run1", "model": "phase_2", "primary": True}], "proposal_layout": False}
    return raw


def build_traced_project(project: Path, raw: dict):
    """Every stage from the raw pool to the IPVG zips, through the shared stage runner (what both
    Dagster and dvc run): curation, annotation, previews, the gate, the curriculum, the dataset
    browser, curriculum phases 1-2, the demo benchmarks, phase 2's videos and the submission.

    Returns (params, store).
    """
    from orchestration.params import load_params
    from core.stage import AGGREGATE, run_stage
    from core.storage import open_params_store
    from curation.gate_status import run_shard_gates
    from curation.stages import ANNOTATION_STAGES, CURATION_STAGES, PREVIEW_STAGES, STAGES
    from evaluation.stages import EVAL_STAGES, run_key, submission_runs
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    params = load_params(write_params(project, raw))
    store = open_params_store(params)
    for name in ("demo_pool", *CURATION_STAGES, *ANNOTATION_STAGES, *PREVIEW_STAGES):
        run_stage(STAGES[name], TRACED_SHARD, params, store)
    assert all(r.success for r in run_shard_gates(params, store, TRACED_SHARD).values())
    shards = (TRACED_SHARD,)
    for name in ("training_samples", "difficulty_scores", "difficulty_quartiles", "curriculum_schedule",
                 "dataset_browser"):
        run_stage(TRAINING_STAGES[name], AGGREGATE, params, store, shards=shards)
    for name in ("latent_cache", "curriculum_phase_1", "curriculum_phase_2"):
        run_stage(TRAINING_RUN_STAGES[name], AGGREGATE, params, store)
    run_stage(EVAL_STAGES["demo_benchmarks"], AGGREGATE, params, store, shards=shards)
    for pair in submission_runs(params):
        run_stage(EVAL_STAGES["benchmark_videos"], pair, params, store)
    run_stage(EVAL_STAGES["ipvg_submission"], AGGREGATE, params, store, shards=submission_runs(params))
    return params, store


@pytest.fixture(scope="session")
def traced_project(tmp_path_factory, base_params_raw):
    """A project run from raw videos to a validated IPVG submission (see build_traced_project).

    Returns (project_dir, params, store).
    """
    project = tmp_path_factory.mktemp("traced")
    params, store = build_traced_project(project, traced_params(project, base_params_raw))
    return project, params, store
