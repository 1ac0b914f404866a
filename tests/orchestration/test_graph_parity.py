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
        sections = {p.split(".")[0] for p in listed} - {"storage", "demo_pool"}
        assert sections == set(stage_spec.sections), name
        assert "storage" in listed


def test_dvc_stages_call_the_cli_for_the_same_asset(repo_root):
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
        else:
            assert re.fullmatch(rf"reactid stage {name} --shard \$\{{key\}}", cmd), cmd
