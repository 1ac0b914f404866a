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


def test_ablation_experiment_params_narrow_the_dvc_graph(tmp_path, repo_root):
    """What `dvc exp run -S 'ablations.variants=[tarope_T4]' -S 'evaluation.models=[...]'` sets
    gives a graph with that variant's training and evaluation stages only; forgetting to narrow
    evaluation.models is refused by the params check, naming the key."""
    dvc = _dvc(repo_root)
    shutil.copy(repo_root / "dvc.yaml", tmp_path / "dvc.yaml")
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["ablations"]["variants"] = ["tarope_T4"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    from core.errors import ParamsError
    from core.params import load_params

    with pytest.raises(ParamsError, match=r"evaluation.models \['ablation-full_data'"):
        load_params(tmp_path / "params.yaml")
    raw["evaluation"]["models"] = ["phase_3", "phase_4", "ablation-tarope_T4"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    load_params(tmp_path / "params.yaml")

    assert subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=tmp_path).returncode == 0
    listed = subprocess.run([str(dvc), "stage", "list", "--name-only"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    stages = set(listed.stdout.split())
    assert {s for s in stages if s.startswith("ablation_runs@")} == {"ablation_runs@tarope_T4"}
    videos = {s for s in stages if s.startswith("benchmark_videos@")}
    assert len(videos) == 4 * 3 and "benchmark_videos@opens2v-ablation-tarope_T4" in videos
