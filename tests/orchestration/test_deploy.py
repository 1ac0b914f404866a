"""The at-scale configuration examples under deploy/ stay valid against the pinned Dagster and
the params schema."""

import copy
import subprocess

import yaml


def _instance_config_errors(config: dict) -> list[str]:
    # Dagster's own schema of dagster.yaml (private module of the pinned version)
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    result = process_config(dagster_instance_config_schema(), config)
    return [] if result.success else [e.message for e in result.errors]


def test_the_cluster_dagster_yaml_is_a_valid_instance_config(repo_root, monkeypatch):
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD",
                 "REACTID_IMAGE", "DAGSTER_LOG_BUCKET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    config = yaml.safe_load((repo_root / "deploy" / "dagster.yaml").read_text())
    assert set(config["storage"]) == {"postgres"}
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert _instance_config_errors(config) == []


def test_the_single_machine_template_is_a_valid_instance_config(repo_root):
    from orchestration.params import load_params
    from orchestration.instance_config import render_dagster_yaml

    config = yaml.safe_load(render_dagster_yaml(load_params(repo_root / "params.yaml")))
    assert "storage" not in config  # SQLite under DAGSTER_HOME, Dagster's default
    assert _instance_config_errors(config) == []


def test_the_scale_params_example_validates(repo_root):
    from orchestration.params import parse_params

    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    overlay = yaml.safe_load((repo_root / "deploy" / "params.scale.yaml").read_text())
    merged = copy.deepcopy(raw)
    for section, value in overlay.items():
        merged[section] = {**merged[section], **value}
    params = parse_params(merged, source="deploy/params.scale.yaml over params.yaml")
    assert params.storage.backend == "s3" and params.orchestration.concurrency.gpu_slots == 4


def test_the_deepspeed_launch_script_parses(repo_root):
    subprocess.run(["bash", "-n", str(repo_root / "deploy" / "deepspeed" / "launch_phase.sh")], check=True)
    hosts = [line.split() for line in (repo_root / "deploy" / "deepspeed" / "hostfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert hosts and all(len(h) == 2 and h[1].startswith("slots=") for h in hosts)
