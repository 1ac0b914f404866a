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
    from core.params import load_params
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
