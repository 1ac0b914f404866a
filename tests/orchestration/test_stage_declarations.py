"""Every stage is declared once (assets.declarations): the code location holds an asset for each
declaration, split and wired as the declaration says, with as many curriculum phases as params
have; and every declared stage is reachable from `reactid run` with the options dvc.yaml passes."""

from __future__ import annotations

import shlex

import dagster as dg
import pytest
import yaml

from tests.orchestration.test_dvc_yaml import _project_params

SHARD = "tiny-000"


def _parents(graph) -> dict[str, dict[str, str]]:
    """asset -> {parent: partition mapping class name (NoneType: the default)}."""
    return {k.to_user_string(): {p.to_user_string(): type(graph.get(k).partition_mappings.get(p)).__name__
                                 for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}


def test_every_declared_stage_is_an_asset_split_and_wired_as_declared():
    from assets.declarations import producers
    from assets.stage_assets import PARTITIONS, asset_traits
    from orchestration.definitions import defs

    stages = _project_params_stages()
    graph = defs.resolve_asset_graph()
    parents = _parents(graph)
    for name, spec in stages.items():
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def is PARTITIONS[spec.partitions], name
        traits = asset_traits(name)
        assert node.group_name == traits.group and set(node.kinds) == set(traits.kinds), name
        assert node.description == spec.description, name
        assert set(parents[name]) == {*producers(spec, stages), *traits.after}, name
        assert set(node.pools or ()) == ({"gpu"} if traits.gpu else set()), name


def _project_params_stages():
    from assets.declarations import project_stages

    return project_stages(_project_params())


def test_partition_mappings_follow_the_partitionings():
    """A stage reading a differently split stage reads all its partitions; same split, the same one."""
    from orchestration.definitions import defs

    parents = _parents(defs.resolve_asset_graph())
    assert parents["training_samples"] == {"annotations": "AllPartitionMapping"}
    assert parents["difficulty_scores"] == {"training_samples": "NoneType", "annotations": "AllPartitionMapping"}
    assert parents["clip_dedup"] == {"clip_signatures": "NoneType"}  # a declared input of its own upstream
    assert parents["raw_videos"] == {"demo_pool": "NoneType"}
    assert parents["benchmark_scores"] == {"benchmark_videos": "NoneType", "demo_benchmarks": "NoneType"}
    phases = {f"curriculum_phase_{k}" for k in range(1, len(_project_params().curriculum.phase_ratios) + 1)}
    # every stage writing under models/ feeds the (benchmark, model) videos and the leaderboard
    for reader in ("benchmark_videos", "leaderboard"):
        assert parents[reader]["ablation_runs"] == "AllPartitionMapping"
        assert {parents[reader][p] for p in (*phases, "untrained_model")} == {"NoneType"}
    assert parents["leaderboard"]["benchmark_scores"] == "AllPartitionMapping"
    assert parents["ipvg_submission"]["benchmark_videos"] == "AllPartitionMapping"


def test_the_annotation_gate_is_a_blocking_check_and_the_pool_folders_agree(repo_root):
    """dvc's quality_gates stage is the blocking Dagster checks on `annotations`; raw_videos runs after
    demo_pool (assets.stage_assets ASSET_TRAITS) because both name the same pool folder."""
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.get_check_keys_for_assets({dg.AssetKey("annotations")})
    assert keys and all(graph.get_check_spec(k).blocking for k in keys)
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert params["demo_pool"]["pool_root"] == params["raw_videos"]["pool_root"]


def _phase_params(base_params_raw, tmp_path, ratios: list[float]):
    from orchestration.params import load_params
    from tests.conftest import write_params

    n = len(ratios)

    def made(model: str) -> str:  # a model of a phase beyond the last: the last phase's
        return f"phase_{n}" if model.startswith("phase_") and int(model.split("_")[1]) > n else model

    evaluation = base_params_raw["evaluation"]
    raw = {**base_params_raw,
           "curriculum": {**base_params_raw["curriculum"], "phase_ratios": ratios,
                          "inter_clip_ratios": [0.0] * n, "demo_inter_clip_ratios": [0.0] * n},
           "retraining": {**base_params_raw["retraining"], "score_models": [f"phase_{n}"]},
           "evaluation": {**evaluation, "models": list(dict.fromkeys(made(m) for m in evaluation["models"])),
                          "submission": {**evaluation["submission"], "runs": [
                              {**run, "model": made(run["model"])} for run in evaluation["submission"]["runs"]]}}}
    return load_params(write_params(tmp_path, raw))


@pytest.mark.parametrize("ratios", [[3, 1, 1], [2, 1, 1, 1, 1, 1]])
def test_the_graph_has_one_phase_asset_per_phase_ratio(base_params_raw, tmp_path, ratios):
    from assets.declarations import project_stages
    from assets.resources import ReactIDResource
    from assets.stage_assets import build_stage_assets

    params = _phase_params(base_params_raw, tmp_path, ratios)
    assets = build_stage_assets(project_stages(params))
    n = len(ratios)
    phases = sorted((name for name in assets if name.startswith("curriculum_phase_")), key=lambda s: int(s[17:]))
    assert phases == [f"curriculum_phase_{k}" for k in range(1, n + 1)]
    graph = dg.Definitions(assets=list(assets.values()), resources={"reactid": ReactIDResource()}).resolve_asset_graph()
    parents = _parents(graph)
    assert set(parents[f"curriculum_phase_{n}"]) == {f"curriculum_phase_{n - 1}", "latent_cache", "curriculum_schedule"}
    assert {p for p in parents["benchmark_videos"] if p.startswith("curriculum_phase_")} == set(phases)


def test_params_refuse_models_of_phases_the_curriculum_does_not_have(base_params_raw, tmp_path):
    from core.errors import ParamsError
    from orchestration.params import load_params
    from tests.conftest import write_params

    raw = {**base_params_raw, "curriculum": {**base_params_raw["curriculum"], "phase_ratios": [1, 1],
                                             "inter_clip_ratios": [0, 0], "demo_inter_clip_ratios": [0, 0]}}
    with pytest.raises(ParamsError, match="one per curriculum.phase_ratios"):
        load_params(write_params(tmp_path, raw))


def _partition_values(params) -> dict[str, str]:
    from evaluation.demo_benchmarks import BENCHMARKS

    return {"shard": SHARD, "variant": next(iter(params.ablations.variants)),
            "model": next(iter(params.evaluation.untrained_models)), "benchmark": next(iter(BENCHMARKS))}


def test_every_declared_stage_is_reachable_from_reactid_run(make_project, tmp_path):
    """Each dvc.yaml command parses as `reactid run` and names the run its stage's partition keys it by."""
    from assets.declarations import project_stages
    from core.stage import AGGREGATE, PARTITION_KEYS, marker_key
    from core.storage import LocalObjectStore
    from core.tables import write_json
    from curation.gate_status import record_gate
    from orchestration.cli import _run_key, run_cmd
    from orchestration.params import load_params
    from orchestration.dvc_yaml import stage_declarations

    params = load_params(make_project(shard=SHARD))  # the demo's one shard: SHARD
    stages = project_stages(params)
    store = LocalObjectStore(tmp_path / "data")
    write_json(store, marker_key("annotations", SHARD), {"stage": "annotations", "shard": SHARD,
                                                        "fingerprint": "probe", "metadata": {}})
    record_gate(store, SHARD, [])
    values = _partition_values(params)
    commands = {stage.name: stage.cmd.format(**values) for stage in stage_declarations(params)}
    assert set(stages) <= set(commands)
    for name, spec in stages.items():
        argv = shlex.split(commands[name])
        assert argv[:3] == ["reactid", "run", name], commands[name]
        options = run_cmd.make_context("run", argv[2:]).params
        key, reads = _run_key(spec, stages, params, store, options["shards"], options["variant"], options["model"],
                              options["benchmark"])
        assert key == PARTITION_KEYS[spec.partitions].format(**values), name
        if spec.aggregate and any(stages[up].partitions == "shard" for up in spec.upstream):
            assert reads == (SHARD,), name  # the demo's shards whose annotations passed the gates
        elif spec.aggregate and spec.partitions == "variant":
            assert reads == (AGGREGATE,), name


def test_reactid_run_names_the_options_a_stage_needs(make_project):
    from click.testing import CliRunner

    from orchestration.cli import cli

    params = str(make_project())

    def run(*args):
        return CliRunner().invoke(cli, ["--params", params, "run", *args])

    out = run("scene_clips")
    assert out.exit_code != 0 and "scene_clips is run per shard" in out.output and "--shard" in out.output
    out = run("ablation_runs", "--variant", "tarope_T4", "--model", "x")
    assert out.exit_code != 0 and "takes no --model" in out.output
    out = run("benchmark_scores", "--model", "phase_1")
    assert out.exit_code != 0 and "--benchmark and --model" in out.output
    out = run("curriculum_phase_99")
    assert out.exit_code != 0 and "unknown stage 'curriculum_phase_99'" in out.output
    out = CliRunner().invoke(cli, ["--params", params, "train-stage", "scene_clips"])
    assert out.exit_code != 0 and "unknown stage 'scene_clips'" in out.output
