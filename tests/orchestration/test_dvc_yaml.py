"""dvc.yaml is generated from the stage declarations, and DVC decides freshness from the same
facts the runner fingerprints: a statement changed in a module a stage imports reruns that stage
and what is downstream under `dvc repro`; a comment or docstring edit reruns nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.code_copy import add_comment, add_statement, copy_project, edit_docstring, project_copy  # noqa: F401


def _project_params():
    from orchestration.params import load_params

    return load_params(Path(__file__).resolve().parents[2] / "params.yaml")


def _registries():
    from assets.declarations import project_stages

    return project_stages(_project_params())


def test_the_committed_dvc_yaml_is_the_generated_one(repo_root):
    from orchestration.dvc_yaml import dvc_yaml

    assert (repo_root / "dvc.yaml").read_text() == dvc_yaml(_project_params()), \
        "dvc.yaml is stale: run `reactid dvc-yaml`"


def test_dvc_yaml_has_one_stage_per_curriculum_phase_of_params(base_params_raw, tmp_path):
    from orchestration.params import load_params
    from orchestration.dvc_yaml import dvc_yaml
    from tests.conftest import write_params

    raw = {**base_params_raw, "curriculum": {**base_params_raw["curriculum"], "phase_ratios": [2, 1, 1, 1, 1],
                                             "inter_clip_ratios": [0, 0, 0.1, 0.2, 0.3],
                                             "demo_inter_clip_ratios": [0, 0, 0, 0.2, 0.3]}}
    stages = yaml.safe_load(dvc_yaml(load_params(write_params(tmp_path, raw))))["stages"]
    phases = sorted(name for name in stages if name.startswith("curriculum_phase_"))
    assert phases == [f"curriculum_phase_{k}" for k in range(1, 6)]
    assert stages["curriculum_phase_5"]["cmd"] == "reactid run curriculum_phase_5"
    assert "${storage.root}/models/phase_4" in stages["curriculum_phase_5"]["deps"]


def test_every_stage_depends_on_its_code_version_and_caches_its_marker(repo_root):
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    written = {next(iter(out)) for out in spec["code_versions"]["outs"]}
    assert spec["code_versions"]["always_changed"] is True
    for name in _registries():
        body = spec[name].get("do", spec[name])
        code_file = f"${{storage.root}}/code_versions/{name}.json"
        assert code_file in body["deps"] and code_file in written, name
        markers = [m for m in body["metrics"] if (m if isinstance(m, str) else next(iter(m))).startswith(
            f"${{storage.root}}/metrics/{name}/")]
        # a plain path: cached, so `dvc checkout` restores the marker with the outputs it vouches for
        assert len(markers) == 1 and isinstance(markers[0], str), name


def test_dvc_params_are_the_sections_the_runner_fingerprints(repo_root):
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    selection = {"demo_pool.shards", "evaluation.models"}
    stages = _registries()
    for name, stage in stages.items():
        listed = spec[name].get("do", spec[name]).get("params", [])
        assert set(listed) - selection == set(stage.sections) - selection, name
        # an aggregate over shards also reads which shards there are
        over_shards = stage.partitions == "aggregate" and (
            any(stages[up].partitions == "shard" for up in stage.upstream if up in stages)
            or any("{shard}" in template for template in stage.inputs))
        assert ("demo_pool.shards" in listed) == over_shards, name


def test_an_aggregate_reads_every_partition_folder_and_their_list():
    from core.stage import Output
    from orchestration.dvc_yaml import DvcStage, _body

    per_shard = DvcStage("a", "reactid stage a --shard {shard}", "shard", (), (), (),
                         (Output("tables/a/{shard}.parquet"), Output("${demo_pool.pool_root}/{shard}")), ("core.stage",))
    total = DvcStage("b", "reactid train-stage b", "aggregate", ("b",), ("a",), (), (), ("core.stage",))
    body = _body(total, {"a": per_shard, "b": total})
    assert body["deps"] == ["${storage.root}/code_versions/b.json", "${storage.root}/tables/a",
                            "${demo_pool.pool_root}"]
    assert body["params"] == ["b", "demo_pool.shards"]
    assert _body(per_shard, {"a": per_shard})["cmd"] == "reactid stage a --shard ${key}"


def test_code_version_files_change_with_statements_not_comments(tmp_path, project_copy, base_params_raw):
    from click.testing import CliRunner

    from orchestration.cli import cli
    from tests.conftest import tiny_params, write_params

    params = write_params(tmp_path / "project", tiny_params(tmp_path, base_params_raw))
    files = tmp_path / "project" / "data" / "code_versions"

    def written() -> dict[str, str]:
        result = CliRunner().invoke(cli, ["--params", str(params), "code-versions"])
        assert result.exit_code == 0, result.output
        return {p.stem: p.read_text() for p in sorted(files.glob("*.json"))}

    before = written()
    assert set(before) >= set(_registries()) | {"quality_gates", "annotation_report", "curation_report"}
    edit_docstring(project_copy, "curation/pretrained/captioner.py")
    add_comment(project_copy, "curation/pretrained/captioner.py")
    assert written() == before
    add_statement(project_copy, "curation/pretrained/captioner.py")
    after = written()
    changed = {name for name in before if after[name] != before[name]}
    assert {"captions", "entities", "timelines"} <= changed
    assert not changed & {"curriculum_phase_1", "difficulty_quartiles"}


def _dvc_env(checkout: Path, repo_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AWS_", "REACTID_S3_"))}
    # `reactid` (dvc runs it) imports the project from the edited copy
    env.update(PATH=f"{repo_root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1",
               PYTHONPATH=str(checkout), REACTID_CODE_SCAN_CACHE=str(checkout / "code_scan.json"))
    return env


@pytest.mark.slow
def test_dvc_repro_reruns_a_stage_when_code_it_imports_changes(tmp_path, repo_root, make_project):
    dvc = repo_root / ".venv-dvc" / "bin" / "dvc"
    if not dvc.exists():
        pytest.fail("dvc environment missing: run `make dvc-env` (make test builds it)")
    project = make_project().parent
    (project / "dvc.yaml").write_text((repo_root / "dvc.yaml").read_text())
    checkout = copy_project(tmp_path / "checkout")
    env = _dvc_env(checkout, repo_root)

    def run(*args):
        done = subprocess.run([str(dvc), *args], cwd=project, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def ran(stdout: str) -> set[str]:
        return {line.split("'")[1].split("@")[0] for line in stdout.splitlines() if line.startswith("Running stage")}

    run("init", "--no-scm", "-q")
    first = ran(run("repro", "clip_quality"))
    assert {"code_versions", "demo_pool", "raw_videos", "scene_clips", "clip_quality"} <= first
    marker = project / "data/metrics/clip_quality/tiny-000.json"
    recorded = json.loads(marker.read_text())["fingerprint"]

    # a comment and a docstring: only the code versions are rewritten, to the same bytes
    edit_docstring(checkout, "curation/scenes.py")
    add_comment(checkout, "curation/scenes.py")
    assert ran(run("repro", "clip_quality")) == {"code_versions"}

    # a statement in a module the curation stages import: they rerun, and the runner agrees
    add_statement(checkout, "curation/scenes.py")
    assert ran(run("repro", "clip_quality")) >= {"code_versions", "demo_pool", "raw_videos", "scene_clips",
                                                  "clip_quality"}
    assert json.loads(marker.read_text())["fingerprint"] != recorded

    # the marker is cached with the outputs: a checkout after deleting both restores both
    marker.unlink()
    (project / "data/tables/clip_quality/tiny-000.parquet").unlink()
    run("checkout", "clip_quality")
    assert marker.is_file() and (project / "data/tables/clip_quality/tiny-000.parquet").is_file()
