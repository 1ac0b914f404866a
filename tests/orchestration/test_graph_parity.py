"""dvc.yaml (generated from the stage declarations: tests/orchestration/test_dvc_yaml.py) and the
Dagster asset graph name the same stages with the same dependencies."""

import yaml

# The dvc stage that writes every stage's code version (not an asset: Dagster has them as code_version).
DVC_ONLY_STAGES = {"code_versions"}


def _dvc_graph(repo_root):
    spec = {name: stage for name, stage in yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"].items()
            if name not in DVC_ONLY_STAGES}
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


