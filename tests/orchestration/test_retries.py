"""Transient errors retried inside the run, run retries and pool limits from params, the gpu pool."""

# No `from __future__ import annotations`: Dagster reads the asset's context annotation.

import dagster as dg
import pytest
import yaml

from assets.resources import ReactIDResource
from core.errors import StageInputError, StorageError
from orchestration.params import load_params
from core.stage import StageSpec


@pytest.mark.parametrize(("exc", "transient"), [
    (ConnectionResetError("peer reset"), True),
    (TimeoutError("read timed out"), True),
    (OSError(5, "Input/output error"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("NCCL communicator was aborted"), True),
    (StorageError("s3 get failed"), False),  # wraps nothing: e.g. "not found"
    (FileNotFoundError("data/pool/x.mp4"), False),
    (StageInputError("needs 'raw_videos'"), False),
    (ValueError("bad value"), False),
    (RuntimeError("shape mismatch"), False),
])
def test_which_errors_are_transient(exc, transient):
    from assets.runner import is_transient

    assert is_transient(exc) is transient


def test_a_storage_error_is_transient_when_what_it_wraps_is():
    from assets.runner import is_transient

    try:
        try:
            raise ConnectionError("connection refused")
        except ConnectionError as inner:
            raise StorageError("s3 put failed") from inner
    except StorageError as exc:
        assert is_transient(exc)


def test_retry_delays():
    from assets.runner import retry_delay_s

    assert [retry_delay_s(30, "exponential", n) for n in range(3)] == [30, 60, 120]
    assert [retry_delay_s(30, "linear", n) for n in range(3)] == [30, 60, 90]


def flaky_asset(errors: list[BaseException]):
    """An asset running a stage that raises `errors` one per attempt, then succeeds."""
    from assets.runner import run_stage_in_asset

    attempts = []

    def fn(ctx):
        attempts.append(1)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]
        return {"ok": True}

    spec = StageSpec("flaky", fn, sections=(), upstream=())

    @dg.asset(name="flaky")
    def _asset(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        params = reactid.load_params()
        result, metadata = run_stage_in_asset(context, spec, "s", params, reactid.store(params))
        return dg.MaterializeResult(metadata=metadata)

    return _asset, attempts


@pytest.fixture
def resource(make_project):
    def edit(raw):
        raw["orchestration"]["op_retries"].update(max_retries=2, delay_s=0)

    return ReactIDResource(project_dir=str(make_project(edit).parent))


def test_a_transient_error_is_retried_and_the_step_then_succeeds(resource):
    asset, attempts = flaky_asset([ConnectionResetError("peer reset")])
    result = dg.materialize([asset], resources={"reactid": resource})
    assert result.success and len(attempts) == 2
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_retries_stop_at_max_retries_with_the_original_error(resource):
    asset, attempts = flaky_asset([TimeoutError("timed out")] * 5)
    result = dg.materialize([asset], resources={"reactid": resource}, raise_on_error=False)
    assert not result.success and len(attempts) == 3
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "TimeoutError" in (failure.step_failure_data.error.cause or failure.step_failure_data.error).cls_name


def test_a_deterministic_error_fails_at_once(resource):
    asset, attempts = flaky_asset([StageInputError("flaky needs 'raw_videos'")])
    result = dg.materialize([asset], resources={"reactid": resource}, raise_on_error=False)
    assert not result.success and len(attempts) == 1
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_dagster_yaml_follows_params_and_keeps_hand_edits(make_project, tmp_path):
    from orchestration.instance_config import MARKER, ensure_dagster_home

    params_path = make_project()
    params = load_params(params_path)
    home = tmp_path / "home"
    path, action = ensure_dagster_home(home, params)
    assert action == "written"
    assert ensure_dagster_home(home, params)[1] == "up to date"

    config = yaml.safe_load(path.read_text())
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "run"
    finally:
        instance.dispose()

    raw = yaml.safe_load(params_path.read_text())
    raw["orchestration"]["concurrency"]["gpu_slots"] = 4
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert ensure_dagster_home(home, load_params(params_path))[1] == "updated"
    assert yaml.safe_load(path.read_text())["concurrency"]["pools"]["default_limit"] == 4

    path.write_text(path.read_text().replace(MARKER, "# edited by hand"))
    raw["orchestration"]["concurrency"]["gpu_slots"] = 2
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert ensure_dagster_home(home, load_params(params_path))[1] == "kept (hand-edited)"
    assert ensure_dagster_home(home, load_params(params_path), force=True)[1] == "updated"


def test_the_cli_writes_dagster_home(repo_root, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from orchestration.cli import cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    out = CliRunner().invoke(cli, ["--params", str(repo_root / "params.yaml"), "dagster-home"])
    assert out.exit_code == 0, out.output
    assert "written" in out.output and (tmp_path / "dh" / "dagster.yaml").is_file()


def test_gpu_assets_share_the_gpu_pool_and_jobs_carry_run_retry_tags():
    from assets.pools import GPU_POOL
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    pools = {k.to_user_string(): graph.get(k).pools for k in graph.get_all_asset_keys()}
    gpu = {name for name, p in pools.items() if p and GPU_POOL in p}
    assert {"curriculum_phase_1", "curriculum_phase_4", "ablation_runs", "benchmark_videos", "latent_cache"} <= gpu
    assert "scene_clips" not in gpu and "benchmark_scores" not in gpu
    for job in ("ingest", "retraining", "evaluation", "ablations", "curation"):
        assert defs.resolve_job_def(job).tags["dagster/max_retries"] == "2"
