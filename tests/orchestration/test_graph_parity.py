"""dvc.yaml and the Dagster asset graph name the same stages with the same dependencies,
and each dvc stage lists exactly the params sections its stage function reads."""

import re

import yaml


def _dvc_graph(repo_root):
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    outs: dict[str, str] = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        for out in body.get("outs", []) + body.get("metrics", []):
            path = out if isinstance(out, str) else next(iter(out))
            outs[path] = name
    edges: dict[str, set[str]] = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        ups = set()
        for dep in body.get("deps", []):
            for path, producer in outs.items():
                # a dep is a producer's output, or a folder holding that output
                if producer != name and (path == dep or path.startswith(dep.rstrip("/") + "/")):
                    ups.add(producer)
            if dep == "${raw_videos.pool_root}/${key}":
                ups.add("demo_pool")  # same folder as ${demo_pool.pool_root}/${key}
        edges[name] = ups
    return spec, edges


# dvc stages that are Dagster asset checks, not assets: stage -> the asset they check.
DVC_CHECK_STAGES = {"quality_gates": "annotations"}


def test_same_stages_same_dependencies(repo_root):
    from orchestration.definitions import defs

    _, dvc_edges = _dvc_graph(repo_root)
    # A check stage stands for its asset: an edge through it is an edge from that asset.
    for check, asset in DVC_CHECK_STAGES.items():
        assert asset in dvc_edges.pop(check)
        for ups in dvc_edges.values():
            if check in ups:
                ups.discard(check)
                ups.add(asset)
    graph = defs.resolve_asset_graph()
    dagster_edges = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()
    }
    assert dvc_edges == dagster_edges


def test_check_stages_are_blocking_dagster_checks(repo_root):
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    for asset in DVC_CHECK_STAGES.values():
        keys = graph.get_check_keys_for_assets({__import__("dagster").AssetKey(asset)})
        assert keys, asset
        assert all(graph.get_check_spec(k).blocking for k in keys)


def test_pool_roots_agree(repo_root):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert params["demo_pool"]["pool_root"] == params["raw_videos"]["pool_root"]


def test_dvc_params_match_stage_sections(repo_root):
    from curation.stages import STAGES

    spec, _ = _dvc_graph(repo_root)
    for name, stage_spec in STAGES.items():
        listed = spec[name]["do"]["params"]
        sections = {p.split(".")[0] for p in listed} - {"storage"}
        assert sections == set(stage_spec.sections), name
        assert "storage" in listed


def test_dvc_params_match_curriculum_stage_sections(repo_root):
    from training.stages import TRAINING_STAGES

    spec, _ = _dvc_graph(repo_root)
    for name, stage_spec in TRAINING_STAGES.items():
        listed = spec[name]["params"]
        # demo_pool.shards is read by `reactid train-stage` to pick the shards of an aggregate stage
        assert ("demo_pool.shards" in listed) == stage_spec.aggregate, name
        # a whole section is listed by name, a key inside one (evaluation.held_out) in full
        sections = {p if p in stage_spec.sections else p.split(".")[0] for p in listed} - {"storage", "demo_pool"}
        assert sections == set(stage_spec.sections), name
        assert "storage" in listed


# Evaluation stages: a (benchmark, model) pair is one dvc matrix stage, an untrained baseline one
# foreach stage; the aggregate ones read the shards or models they need from params.
EVAL_STAGE_CMDS = {
    "demo_benchmarks": "reactid eval-stage demo_benchmarks",
    "untrained_model": "reactid eval-stage untrained_model --model ${key}",
    "benchmark_videos": "reactid eval-stage benchmark_videos --benchmark ${item.benchmark} --model ${item.model}",
    "benchmark_scores": "reactid eval-stage benchmark_scores --benchmark ${item.benchmark} --model ${item.model}",
    "leaderboard": "reactid eval-stage leaderboard",
    "ipvg_submission": "reactid eval-stage ipvg_submission",
}
# params keys `reactid eval-stage` reads to choose what a stage runs over (not part of its function)
EVAL_SELECTION_KEYS = {"demo_benchmarks": {"demo_pool.shards"}, "leaderboard": {"evaluation.models"}}


def test_dvc_params_match_evaluation_stage_keys(repo_root):
    from evaluation.stages import EVAL_STAGES

    spec, _ = _dvc_graph(repo_root)
    assert set(EVAL_STAGES) == set(EVAL_STAGE_CMDS)
    for name, stage_spec in EVAL_STAGES.items():
        listed = set(spec[name].get("do", spec[name])["params"])
        # evaluation stages fingerprint exact keys of the evaluation section, so dvc lists the same keys
        assert listed == {"storage", *stage_spec.sections, *EVAL_SELECTION_KEYS.get(name, ())}, name


def test_pair_stages_run_over_every_benchmark_and_the_evaluated_models(repo_root):
    from assets.evaluation import benchmark_model_partitions
    from evaluation.demo_benchmarks import BENCHMARKS

    spec, _ = _dvc_graph(repo_root)
    dims = {d.name: d.partitions_def for d in benchmark_model_partitions.partitions_defs}
    assert dims["benchmark"].get_partition_keys() == list(BENCHMARKS)
    for name in ("benchmark_videos", "benchmark_scores"):
        assert spec[name]["matrix"] == {"benchmark": list(BENCHMARKS), "model": "${evaluation.models}"}, name


def test_model_producing_stages_are_upstream_of_the_benchmark_videos(repo_root):
    """A dvc stage writing under models/ registers models: in Dagster it must be one of the assets
    benchmark_videos and leaderboard depend on (the dynamic "models" partitions carry no edge)."""
    from assets.evaluation import MODEL_PRODUCERS

    spec, edges = _dvc_graph(repo_root)
    producers = {name for name, stage in spec.items()
                 for out in stage.get("do", stage).get("outs", [])
                 if (out if isinstance(out, str) else next(iter(out))).startswith("${storage.root}/models/")}
    assert producers == set(MODEL_PRODUCERS)
    assert producers <= edges["benchmark_videos"] and producers <= edges["leaderboard"]


def test_dvc_stages_call_the_cli_for_the_same_asset(repo_root):
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    spec, _ = _dvc_graph(repo_root)
    for name, stage in spec.items():
        cmd = stage.get("do", stage)["cmd"]
        if name.endswith("_report"):
            assert cmd == f"reactid report --kind {name.removesuffix('_report')}"
        elif name in DVC_CHECK_STAGES:
            assert cmd == "reactid gate --shard ${key}", cmd
        elif name in TRAINING_STAGES:
            assert cmd == f"reactid train-stage {name}", cmd
        elif name == "ablation_runs":
            assert cmd == "reactid train-stage ablation_runs --variant ${item}", cmd
        elif name in TRAINING_RUN_STAGES:
            assert cmd == f"reactid train-stage {name}", cmd
        elif name in EVAL_STAGE_CMDS:
            assert cmd == EVAL_STAGE_CMDS[name], cmd
        else:
            assert re.fullmatch(rf"reactid stage {name} --shard \$\{{key\}}", cmd), cmd


def test_dvc_params_match_training_run_stage_keys(repo_root):
    """Training stages fingerprint exact keys; dvc lists the same (so `dvc exp run -S` on any of
    them re-runs exactly the stages whose result it changes)."""
    from training.run_stages import TRAINING_RUN_STAGES

    spec, _ = _dvc_graph(repo_root)
    for name, stage_spec in TRAINING_RUN_STAGES.items():
        listed = set(spec[name].get("do", spec[name])["params"])
        assert listed == {"storage", *stage_spec.sections}, name
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert spec["ablation_runs"]["foreach"] == "${ablations.variants}"
    assert params["ablations"]["variants"], "the dvc ablation matrix is empty"
