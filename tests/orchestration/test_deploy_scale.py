"""The cluster configuration under deploy/ loads through the real packages' config schemas
(dagster-postgres, dagster-k8s, dagster-aws, dagster-ray), so a typo fails here rather than on
a cluster; the KubeRay manifest agrees with the Ray version and the params that point at it."""

from __future__ import annotations

import copy
import importlib

import pytest
import yaml

INSTANCE_FILES = ("dagster.yaml", "dagster.ray.yaml")
ENV = {"DAGSTER_PG_HOST": "pg", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USERNAME": "u",
       "DAGSTER_PG_PASSWORD": "p", "REACTID_IMAGE": "reactid-ops:latest", "DAGSTER_LOG_BUCKET": "logs"}


def _errors(schema, config) -> list[str]:
    from dagster._config import process_config
    from dagster._core.definitions.definition_config_schema import convert_user_facing_definition_config_schema

    result = process_config(convert_user_facing_definition_config_schema(schema).config_type, config)
    return [] if result.success else [e.message for e in result.errors]


def _configured_classes(config: dict) -> dict[str, tuple[str, str, dict]]:
    """Every `module`/`class`/`config` entry of an instance file (run launcher, coordinator, logs)."""
    return {name: (entry["module"], entry["class"], entry.get("config") or {})
            for name, entry in config.items() if isinstance(entry, dict) and "module" in entry}


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_instance_files_load_through_each_configured_class(repo_root, monkeypatch, name):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_postgres import DagsterPostgresStorage

    config = yaml.safe_load((repo_root / "deploy" / name).read_text())
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    assert _errors(DagsterPostgresStorage.config_type(), config["storage"]["postgres"]) == []
    classes = _configured_classes(config)
    assert {"run_launcher", "run_coordinator", "compute_logs"} <= set(classes)
    for key, (module, cls_name, cls_config) in classes.items():
        cls = getattr(importlib.import_module(module), cls_name)
        assert _errors(cls.config_type(), cls_config) == [], f"{name}: {key} ({cls_name})"


def test_a_typo_in_a_class_config_is_caught(repo_root, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    from dagster_ray import RayRunLauncher

    config = yaml.safe_load((repo_root / "deploy" / "dagster.ray.yaml").read_text())
    launcher = copy.deepcopy(config["run_launcher"]["config"])
    launcher["ray"]["num_cpu"] = launcher["ray"].pop("num_cpus")
    assert _errors(RayRunLauncher.config_type(), launcher)


def test_executor_run_configs_match_their_executors(repo_root):
    from dagster_k8s import k8s_job_executor
    from dagster_ray import ray_executor

    for file, executor in (("k8s_job_executor.yaml", k8s_job_executor), ("ray_executor.yaml", ray_executor)):
        run_config = yaml.safe_load((repo_root / "deploy" / file).read_text())
        assert _errors(executor.config_schema, run_config["execution"]["config"]) == [], file


def test_the_raycluster_manifest_matches_ray_and_the_scale_params(repo_root):
    import ray
    from dagster_ray.kuberay.configs import RayClusterSpec

    from orchestration.params import parse_params

    manifest = yaml.safe_load((repo_root / "deploy" / "kuberay" / "raycluster.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    spec = manifest["spec"]
    RayClusterSpec.model_validate(spec)  # dagster-ray's model of the CR's spec
    assert spec["rayVersion"] == ray.__version__  # a Ray client refuses a cluster of another version
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    ports = {p["containerPort"] for c in head["template"]["spec"]["containers"] for p in c["ports"]}
    assert {10001, 8265} <= ports
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu-workers", "gpu-workers"}
    for group in groups.values():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    gpu = groups["gpu-workers"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["rayStartParams"]["num-gpus"] == limits["nvidia.com/gpu"]

    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    overlay = yaml.safe_load((repo_root / "deploy" / "params.scale.yaml").read_text())
    merged = {**raw, **{k: {**raw[k], **v} for k, v in overlay.items()}}
    execution = parse_params(merged, source="deploy/params.scale.yaml over params.yaml").execution
    service = f"{manifest['metadata']['name']}-head-svc.{manifest['metadata']['namespace']}.svc.cluster.local"
    assert execution.engine == "ray" and execution.ray_address == f"ray://{service}:10001"
    assert 0 < execution.gpus_per_actor < 1  # several model actors share a GPU
    for name in INSTANCE_FILES[1:]:
        launcher = yaml.safe_load((repo_root / "deploy" / name).read_text())["run_launcher"]["config"]["ray"]
        assert launcher["address"] == f"http://{service}:8265"
    executor = yaml.safe_load((repo_root / "deploy" / "ray_executor.yaml").read_text())["execution"]["config"]["ray"]
    assert executor["address"] == f"http://{service}:8265"
