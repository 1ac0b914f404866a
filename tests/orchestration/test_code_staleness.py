"""Dagster sees what the runner sees: a stage asset's code_version is the stage's (every module
it imports, comments and docstrings aside) and its data version the runner's fingerprint. A
statement changed in a module the stage imports makes it stale, and after it reruns what is
downstream; a comment or docstring edit makes nothing stale, and a skipped rerun leaves the
data version, so nothing downstream goes stale either."""

from __future__ import annotations

import importlib.util
import sys

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from core.stage import StageSpec
from tests.code_copy import add_comment, add_statement, edit_docstring, project_copy  # noqa: F401

SHARD = "probe-000"
# Two stages in the copied project: the first imports curation.rle inside its function (a lazy
# import), the second reads what the first wrote.
PROBE_MODULES = {
    "curation/probe_first.py": '''"""First probe stage."""


def first(ctx):
    from curation import rle

    ctx.store.put_bytes(f"probe/first/{ctx.shard}", rle.__name__.encode())
    return {"wrote": 1}
''',
    "curation/probe_second.py": '''"""Second probe stage."""


def second(ctx):
    ctx.store.put_bytes(f"probe/second/{ctx.shard}", ctx.store.get_bytes(f"probe/first/{ctx.shard}"))
    return {"wrote": 1}
''',
}


def _load(root, relpath, monkeypatch):
    name = relpath.removesuffix(".py").replace("/", ".")
    spec = importlib.util.spec_from_file_location(name, root / relpath)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def probe(project_copy, tmp_path, monkeypatch, base_params_raw):
    from assets.resources import ReactIDResource
    from curation import stages
    from tests.conftest import tiny_params, write_params

    for relpath, text in PROBE_MODULES.items():
        (project_copy / relpath).write_text(text)
    first = _load(project_copy, "curation/probe_first.py", monkeypatch).first
    second = _load(project_copy, "curation/probe_second.py", monkeypatch).second
    monkeypatch.setitem(stages.STAGES, "probe_first", StageSpec("probe_first", first, (), ()))
    monkeypatch.setitem(stages.STAGES, "probe_second", StageSpec("probe_second", second, (), ("probe_first",)))
    project = tmp_path / "project"
    write_params(project, tiny_params(project, base_params_raw))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [SHARD])
    return project_copy, instance, {"reactid": ReactIDResource(project_dir=str(project))}


def _assets():
    """The assets as the code location builds them now (code versions read at definition)."""
    from assets.stage_assets import AssetTraits, stage_asset
    from curation.stages import STAGES

    probes = {name: STAGES[name] for name in ("probe_first", "probe_second")}
    return [stage_asset(spec, probes, AssetTraits("probe", ("python",))) for spec in probes.values()]


def _status(instance) -> dict[str, StaleStatus]:
    resolver = get_stale_status_resolver(instance, _assets())
    return {name: resolver.get_status(dg.AssetKey(name), SHARD) for name in ("probe_first", "probe_second")}


def _materialize(instance, resources, names):
    result = dg.materialize([a for a in _assets() if a.key.to_user_string() in names], instance=instance,
                            resources=resources, partition_key=SHARD, selection=names)
    assert result.success
    return {m.asset_key.to_user_string(): m.materialization for m in result.get_asset_materialization_events()}


def test_code_edits_make_dagster_assets_stale_exactly_when_the_runner_reruns(probe):
    root, instance, resources = probe
    first = _materialize(instance, resources, ["probe_first", "probe_second"])
    fresh = {"probe_first": StaleStatus.FRESH, "probe_second": StaleStatus.FRESH}
    assert _status(instance) == fresh

    edit_docstring(root, "curation/rle.py")
    add_comment(root, "curation/rle.py")
    assert _status(instance) == fresh

    # a statement in a module the first stage imports lazily: the first is stale for its code
    add_statement(root, "curation/rle.py")
    assert _status(instance)["probe_first"] == StaleStatus.STALE
    again = _materialize(instance, resources, ["probe_first"])["probe_first"]
    assert again.metadata["up_to_date_skip"].value is False
    assert again.tags["dagster/data_version"] != first["probe_first"].tags["dagster/data_version"]
    # ... and what reads it is stale until it reruns
    assert _status(instance) == {"probe_first": StaleStatus.FRESH, "probe_second": StaleStatus.STALE}
    _materialize(instance, resources, ["probe_second"])
    assert _status(instance) == fresh


def test_a_skipped_rerun_keeps_the_data_version_and_downstream_fresh(probe):
    _, instance, resources = probe
    first = _materialize(instance, resources, ["probe_first", "probe_second"])["probe_first"]
    again = _materialize(instance, resources, ["probe_first"])["probe_first"]
    assert again.metadata["up_to_date_skip"].value is True
    assert again.tags["dagster/data_version"] == first.tags["dagster/data_version"]
    assert again.tags["dagster/code_version"] == first.tags["dagster/code_version"]
    assert _status(instance)["probe_second"] == StaleStatus.FRESH


def test_the_code_location_gives_every_stage_asset_its_stage_code_version():
    from core.stage import stage_code_version
    from orchestration.definitions import defs
    from orchestration.dvc_yaml import stage_declarations

    from tests.orchestration.test_dvc_yaml import _project_params, _registries

    graph = defs.resolve_asset_graph()
    versions = {node.key.to_user_string(): node.code_version for node in graph.asset_nodes}
    for name, spec in _registries().items():
        assert versions[name] == stage_code_version(spec).version, name
    assert {s.name for s in stage_declarations(_project_params())} >= set(_registries())
