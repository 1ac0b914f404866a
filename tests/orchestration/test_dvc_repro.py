"""`dvc repro` runs the curation stages on a tiny shard through the project's CLI, and the
outputs it produced go through the team's S3 remote and back (`dvc push` / `dvc pull` against
a real S3-protocol server, moto on 127.0.0.1)."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def _dvc(repo_root):
    dvc = repo_root / ".venv-dvc" / "bin" / "dvc"
    if not dvc.exists():
        pytest.fail("dvc environment missing: run `make dvc-env` (make test builds it)")
    return dvc


def _copy_code_deps(repo_root: Path, project: Path) -> None:
    """dvc.yaml and the code files dvc hashes as stage dependencies, into a tiny project."""
    shutil.copy(repo_root / "dvc.yaml", project / "dvc.yaml")
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    sources = {d for st in spec.values() for d in st.get("do", st).get("deps", []) if not d.startswith("$")}
    for src in sorted(sources):
        dest = project / src
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (repo_root / src).is_dir():
            shutil.copytree(repo_root / src, dest, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy(repo_root / src, dest)


def _digest(path: Path) -> str | dict[str, str]:
    """sha256 of a file, or of every file under a folder."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_dvc_repro_curation_stages_then_push_and_pull_them(tmp_path, repo_root, base_params_raw, make_project,
                                                            s3_bucket):
    dvc = _dvc(repo_root)
    project = make_project().parent
    _copy_code_deps(repo_root, project)
    endpoint, bucket, (access, secret, _) = s3_bucket
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AWS_", "REACTID_S3_"))
           and k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}}  # as below
    # The remote's credentials reach dvc only through the environment, never .dvc/config.
    env.update(PATH=f"{repo_root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1",
               AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")

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

    # The team's remote, configured as the README shows it.
    for args in (("remote", "add", "-d", "storage", f"s3://{bucket}/dvcstore"),
                 ("remote", "modify", "storage", "endpointurl", f"http://{endpoint}"),
                 ("remote", "modify", "storage", "region", "us-east-1")):
        assert run(*args).returncode == 0
    config = (project / ".dvc" / "config").read_text()
    assert endpoint in config and access not in config and secret not in config
    pushed = run("push", "--with-deps", "curation_report")
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
    from minio import Minio

    objects = {o.object_name for o in Minio(endpoint, access_key=access, secret_key=secret, secure=False,
                                            region="us-east-1").list_objects(bucket, recursive=True)}
    assert objects and all(o.startswith("dvcstore/files/md5/") for o in objects)
    # Every output that went to the remote (metrics and reports are `cache: false`: git keeps them).
    outs = sorted(e["path"] for st in lock["stages"].values() for e in st.get("outs", [])
                  if f"dvcstore/files/md5/{e['md5'][:2]}/{e['md5'][2:]}" in objects)
    assert "data/tables/curated_clips/tiny-000.parquet" in outs and any(o.startswith("data/clips/") for o in outs)
    before = {o: _digest(project / o) for o in outs}

    for o in outs:  # a fresh clone: no outputs and no cache, only dvc.lock and the remote
        shutil.rmtree(project / o) if (project / o).is_dir() else (project / o).unlink()
    shutil.rmtree(project / ".dvc" / "cache")
    pulled = run("pull", "--with-deps", "curation_report")
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert {o: _digest(project / o) for o in outs} == before
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
    from orchestration.params import load_params

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


def test_dvc_exp_run_trains_one_ablation_variant(repo_root, make_project):
    """The README's ablation interface for real: `dvc exp run -S ...` on a git repo reproduces
    the chain a variant needs (curation, annotation, gates, curriculum, latent cache) and
    trains that variant only; `dvc exp show` lists the experiment with its params."""
    dvc = _dvc(repo_root)

    def tiny_training(raw):  # the tiny shard: three subjects, no identity in two clips; all trained on
        raw["evaluation"]["held_out"].update(fraction=0.0, min_face_identities=0, min_other_identities=0)
        raw["curriculum"]["demo_inter_clip_ratios"] = [0.0, 0.0, 0.0, 0.0]
        raw["training"]["demo"].update(global_batch=1, micro_batch=1)
        raw["ablations"]["demo_total_steps"] = 8

    project = make_project(tiny_training).parent
    _copy_code_deps(repo_root, project)
    # Earlier in-process training tests made this process a world of one (RANK ... MASTER_PORT,
    # training.distributed) whose store still listens on MASTER_PORT: dvc's stages are their
    # own single processes and must pick their own port, as from a plain shell.
    rendezvous = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}
    env = {**{k: v for k, v in os.environ.items() if k not in rendezvous},
           "PATH": f"{repo_root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HOME": str(project / ".home"),  # no user git/dvc config leaks in
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

    def run(*args, tool=str(dvc)):
        done = subprocess.run([tool, *args], cwd=project, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    run("init", "-q", tool="git")
    run("init", "-q")
    (project / ".gitignore").write_text("/data/\n/.home/\n")
    run("add", "-A", tool="git")
    run("commit", "-q", "-m", "tiny project", tool="git")
    run("exp", "run", "-n", "t4", "-S", "ablations.variants=[tarope_T4]",
        "-S", "evaluation.models=[phase_3,phase_4,ablation-tarope_T4]", "ablation_runs@tarope_T4")

    marker = json.loads((project / "data/metrics/ablation_runs/tarope_T4.json").read_text())
    assert marker["metadata"]["variant"] == "tarope_T4" and marker["metadata"]["registered_model"] == "ablation-tarope_T4"
    assert (project / "data/models/ablation-tarope_T4").is_dir()
    assert not (project / "data/training/ablations/full_data").exists()  # only the asked variant trained
    shown = json.loads(run("exp", "show", "--json").stdout)
    experiments = [e for rev in shown for e in (rev.get("experiments") or [])]
    params = [exp["revs"][0]["data"]["params"]["params.yaml"]["data"] for exp in experiments if exp.get("name") == "t4"]
    assert params and params[0]["ablations"]["variants"] == ["tarope_T4"]
