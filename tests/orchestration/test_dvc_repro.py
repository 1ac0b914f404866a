"""`dvc repro` runs the curation stages on a tiny shard through the project's CLI."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

pytestmark = pytest.mark.slow


def _dvc(repo_root):
    dvc = repo_root / ".venv-dvc" / "bin" / "dvc"
    if not dvc.exists():
        pytest.fail("dvc environment missing: run `make dvc-env` (make test builds it)")
    return dvc


def test_dvc_repro_curation_stages(tmp_path, repo_root, base_params_raw, make_project):
    dvc = _dvc(repo_root)
    project = make_project().parent
    shutil.copy(repo_root / "dvc.yaml", project / "dvc.yaml")
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    sources = {d for st in spec.values() for d in st.get("do", st).get("deps", []) if not d.startswith("$")}
    for src in sorted(sources):  # the code files dvc hashes as stage dependencies
        dest = project / src
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (repo_root / src).is_dir():
            shutil.copytree(repo_root / src, dest, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy(repo_root / src, dest)
    env = {**os.environ, "PATH": f"{repo_root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def run(*args):
        return subprocess.run([str(dvc), *args], cwd=project, env=env, capture_output=True, text=True, timeout=900)

    assert run("init", "--no-scm", "-q").returncode == 0
    first = run("repro", "curation_report")  # the curation chain; annotation runs in the Dagster tests
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for stage in ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "curated_clips"):
        assert f"'{stage}@tiny-000'" in first.stdout
    metrics = json.loads((project / "data/metrics/curation_report.json").read_text())
    assert metrics["shards"]["tiny-000"]["accuracy"]["quarantine"]["correct"] == 3
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["curated_clips@tiny-000"]["params"]["params.yaml"]["curated_clips"]["min_motion"] == (
        base_params_raw["curated_clips"]["min_motion"]
    )
    status = run("status", "curation_report")
    assert status.returncode == 0 and "up to date" in status.stdout.lower(), status.stdout
