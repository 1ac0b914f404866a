"""DVC's S3 remote against a real S3-protocol server (moto on 127.0.0.1): `dvc push` a demo
output, drop the local cache and files, `dvc pull`, and get the same bytes back.

dvc runs from its own environment (`tools/dvc`); the credentials reach it only through the
environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never through `.dvc/config`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _demo_outputs(folder: Path) -> None:
    """A curated table and a clip, as the curation stages lay them out."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.video import ClipWriter

    (folder / "tables/curated_clips").mkdir(parents=True)
    pq.write_table(pa.table({"clip_id": ["v_000-s00", "v_001-s00"], "kept": [True, False]}),
                   folder / "tables/curated_clips/tiny-000.parquet")
    (folder / "clips/tiny-000").mkdir(parents=True)
    writer = ClipWriter(folder / "clips/tiny-000/v_000-s00.mp4", Fraction(12), 96, 64, 20, "veryfast")
    rng = np.random.default_rng(0)
    for _ in range(24):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.close()
    (folder / "metrics/curated_clips").mkdir(parents=True)
    (folder / "metrics/curated_clips/tiny-000.json").write_text('{"fingerprint": "demo"}\n')


def test_dvc_push_pull_through_s3_remote(tmp_path, repo_root, s3_bucket):
    dvc = repo_root / "tools" / "dvc"
    if not (repo_root / ".venv-dvc" / "bin" / "dvc").exists():
        pytest.fail("dvc environment missing: run `make dvc-env` (make test builds it)")
    endpoint, bucket, (access, secret, _) = s3_bucket
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AWS_", "REACTID_S3_"))}
    env.update(
        AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", DVC_NO_ANALYTICS="1",
        HOME=str(tmp_path / "home"),  # no user-level git/dvc config leaks in or out
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org",
    )

    def run(*args, tool=str(dvc)):
        out = subprocess.run([tool, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{args}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
        return out

    run("init", "-q", tool="git")
    run("init", "-q")
    # The team's remote, as the README shows it; the endpoint is not a secret, the keys are.
    run("remote", "add", "-d", "storage", f"s3://{bucket}/dvcstore")
    run("remote", "modify", "storage", "endpointurl", f"http://{endpoint}")
    run("remote", "modify", "storage", "region", "us-east-1")

    data = repo / "data"
    _demo_outputs(data)
    before = _tree(data)
    run("add", "data")
    run("add", "data.dvc", ".gitignore", ".dvc/config", tool="git")
    run("commit", "-q", "-m", "demo outputs", tool="git")
    pushed = run("push")
    assert "4 files pushed" in pushed.stdout + pushed.stderr, pushed.stdout + pushed.stderr

    from minio import Minio

    objects = [o.object_name for o in Minio(endpoint, access_key=access, secret_key=secret, secure=False,
                                            region="us-east-1").list_objects(bucket, recursive=True)]
    assert objects and all(o.startswith("dvcstore/files/md5/") for o in objects)
    config = (repo / ".dvc" / "config").read_text()
    assert endpoint in config and access not in config and secret not in config
    assert not (repo / ".dvc" / "config.local").exists()

    shutil.rmtree(data)
    shutil.rmtree(repo / ".dvc" / "cache")
    run("pull")
    assert _tree(data) == before
    status = run("status", "-c")  # local cache and remote agree
    assert "up to date" in status.stdout.lower() or "in sync" in status.stdout.lower(), status.stdout
