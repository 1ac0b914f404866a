"""The pipeline's lakeFS hooks: the quality gate commits a validated shard (the Dagster check),
the leaderboard's promotion tags it, `reactid lakefs-lineage` reads it back;
and with lakefs.enabled false (the default) nothing reaches the network or imports the SDK."""

# No `from __future__ import annotations`: Dagster reads the asset functions' resource types.

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.stage import AGGREGATE, marker_key
from orchestration.params import load_params
from core.storage import LocalObjectStore
from core.tables import read_json, write_json, write_table
from curation.gate_status import GATE_SUITES, gate_key

REPO = "/repositories/reactid-data"


def _load_gate_tables():
    spec = importlib.util.spec_from_file_location("gate_tables", Path(__file__).resolve().parents[1] / "gate_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def lakefs_project(make_project, fake_lakefs):
    """A tiny project whose params turn lakeFS on (or not) against the fake server."""

    def make(enabled: bool = True, **lakefs):
        def edit(raw):
            raw["quality_gates"]["data_docs"] = False  # not what these tests look at; saves seconds
            raw["lakefs"] = {**raw["lakefs"], "enabled": enabled, "endpoint": fake_lakefs.endpoint, "retries": 0,
                             **lakefs}

        path = make_project(edit)
        return path, load_params(path), LocalObjectStore(path.parent / "data")

    return make


def _passed_shard(store, shard: str = "s-000") -> dict:
    """A shard's annotation tables (stand-in bytes) and a passed verdict, as the gate leaves them."""
    for suite in GATE_SUITES:
        store.put_bytes(f"tables/{suite}/{shard}.parquet", f"PAR1 {suite} {shard}".encode())
    verdict = {"shard": shard, "passed": True, "failed_suites": [], "annotations_fingerprint": "fp-123"}
    write_json(store, gate_key(shard), verdict)
    return verdict


def _trained_on(store, *shards: str) -> None:
    """The marker training_samples leaves: the shards the training data was built from."""
    write_json(store, marker_key("training_samples", AGGREGATE), {"shards": list(shards)})


def test_promotion_holds_the_data_trained_on_not_shards_gated_later(lakefs_project, fake_lakefs, lakefs_env):
    from versioning.hooks import promote_evaluation, version_gate_verdict
    from versioning.lakefs_store import LakeFSVersioning

    _, params, store = lakefs_project(run_name="exp-8")
    _passed_shard(store, "s-000")
    trained = version_gate_verdict(params, store, "s-000", run_id="gate-1")
    _trained_on(store, "s-000")
    _passed_shard(store, "s-001")  # gated after the models were trained: on the branch, never trained on
    later = version_gate_verdict(params, store, "s-001", run_id="gate-2")
    assert later["commit_id"] == fake_lakefs.repos["reactid-data"].branches["train-exp-8"].head != trained["commit_id"]

    promotion = promote_evaluation(params, store, run_id="eval", evaluation_fingerprint="feedfacefeedface",
                                   models=["phase_4"])
    assert promotion["data_commit"] == trained["commit_id"]
    main = fake_lakefs.tree("reactid-data", "main")
    assert "reactid/tables/faces/s-000.parquet" in main and "reactid/tables/faces/s-001.parquet" not in main
    lineage = LakeFSVersioning(params.lakefs).lineage(promotion["tag"])
    assert [s.shard for s in lineage.shards] == ["s-000"]
    assert json.loads(lineage.metadata["reactid.training_shards"]) == ["s-000"]


def test_promotion_refuses_a_trained_shard_without_a_commit(lakefs_project, fake_lakefs, lakefs_env):
    from core.errors import VersioningError
    from versioning.hooks import promote_evaluation, version_gate_verdict

    _, params, store = lakefs_project()
    _passed_shard(store, "s-000")
    version_gate_verdict(params, store, "s-000", run_id="gate-1")
    _passed_shard(store, "s-001")  # gated before lakeFS was on: its verdict has no commit
    _trained_on(store, "s-000", "s-001")
    with pytest.raises(VersioningError, match=r"'s-001'.*reactid gate --shard s-001"):
        promote_evaluation(params, store, run_id="eval", evaluation_fingerprint="feedfacefeedface", models=["p"])
    assert "reactid/tables/faces/s-000.parquet" not in fake_lakefs.tree("reactid-data", "main")


def _gate(project: Path, gt):
    """Materialize a stand-in `annotations` (the valid gate tables) and the real blocking checks."""
    import dagster as dg

    from assets.checks import annotation_quality_gates
    from assets.partitions import shard_partitions
    from assets.resources import ReactIDResource

    @dg.asset(name="annotations", partitions_def=shard_partitions)
    def annotations(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
        store = reactid.store(reactid.load_params())
        for name, table in gt.to_tables(gt.good_rows()).items():
            write_table(store, f"tables/{name}/{context.partition_key}.parquet", table)
        return dg.MaterializeResult()

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [gt.SHARD])
    return dg.materialize([annotations, annotation_quality_gates], partition_key=gt.SHARD, instance=instance,
                          resources={"reactid": ReactIDResource(project_dir=str(project))}, raise_on_error=False)


def test_disabled_makes_no_network_call(lakefs_project, fake_lakefs, lakefs_env):
    from versioning.hooks import promote_evaluation, version_gate_verdict

    _, params, store = lakefs_project(enabled=False)
    verdict = _passed_shard(store)
    assert version_gate_verdict(params, store, "s-000", run_id="r") is None
    assert promote_evaluation(params, store, run_id="r", evaluation_fingerprint="f" * 20, models=["m"]) is None
    assert fake_lakefs.requests == []
    assert read_json(store, gate_key("s-000")) == verdict  # untouched
    assert not store.exists("metrics/lakefs")


def test_default_params_keep_lakefs_off_and_the_sdk_unloaded(repo_root):
    code = ("import sys; from orchestration.params import load_params; import assets.checks, assets.evaluation, "
            "versioning.hooks; p = load_params('params.yaml'); "
            "print(p.lakefs.enabled, [m for m in ('lakefs', 'lakefs_sdk') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []"


def test_failed_shard_is_not_committed(lakefs_project, fake_lakefs, lakefs_env):
    from versioning.hooks import version_gate_verdict

    _, params, store = lakefs_project()
    _passed_shard(store)
    write_json(store, gate_key("s-000"), {"shard": "s-000", "passed": False, "failed_suites": ["faces"],
                                          "annotations_fingerprint": "fp"})
    assert version_gate_verdict(params, store, "s-000", run_id="r") is None
    assert fake_lakefs.requests == []


def test_verdict_records_the_commit_and_promotion_traces_back_to_it(lakefs_project, fake_lakefs, lakefs_env):
    from versioning.hooks import params_hash, promote_evaluation, version_gate_verdict
    from versioning.lakefs_store import LakeFSVersioning

    _, params, store = lakefs_project(run_name="exp-7")
    verdict = _passed_shard(store)
    record = version_gate_verdict(params, store, "s-000", run_id="dagster-run-1")
    assert record["branch"] == "train-exp-7" and record["created"]
    assert record["commit_id"] == fake_lakefs.repos["reactid-data"].branches["train-exp-7"].head
    assert read_json(store, gate_key("s-000")) == {**verdict, "lakefs": record}
    committed = fake_lakefs.tree("reactid-data", "train-exp-7")
    assert json.loads(committed["reactid/metrics/quality_gates/s-000.json"]) == verdict  # as the gate recorded it
    assert committed["reactid/tables/faces/s-000.parquet"] == store.get_bytes("tables/faces/s-000.parquet")

    # the gate runs again on the same tables: nothing new is committed
    write_json(store, gate_key("s-000"), verdict)
    again = version_gate_verdict(params, store, "s-000", run_id="dagster-run-2")
    assert not again["created"] and again["commit_id"] == record["commit_id"]

    _trained_on(store, "s-000")
    promotion = promote_evaluation(params, store, run_id="eval-run", evaluation_fingerprint="0123456789abcdef0123",
                                   models=["phase_4", "phase_4", "ablation-base"])
    assert promotion["tag"] == "model-exp-7-0123456789ab" and promotion["data_commit"] == record["commit_id"]
    assert read_json(store, f"metrics/lakefs/promotions/{promotion['tag']}.json") == promotion

    lineage = LakeFSVersioning(params.lakefs).lineage(promotion["tag"])
    (shard,) = lineage.shards
    assert shard.shard == "s-000" and shard.commit_id == record["commit_id"]
    assert shard.metadata["reactid.run_id"] == "dagster-run-1"
    assert shard.metadata["reactid.params_hash"] == params_hash(params)
    assert shard.metadata["reactid.annotations_fingerprint"] == "fp-123"
    assert json.loads(lineage.metadata["reactid.models"]) == ["ablation-base", "phase_4"]


def test_params_hash_ignores_where_lakefs_is(lakefs_project):
    from versioning.hooks import params_hash

    _, on, _ = lakefs_project(enabled=True, run_name="a")
    _, off, _ = lakefs_project(enabled=False, run_name="b")
    assert params_hash(on) == params_hash(off) and len(params_hash(on)) == 20


@pytest.mark.slow  # a real great-expectations run in Dagster
def test_gate_check_commits_the_validated_shard(lakefs_project, fake_lakefs, lakefs_env):
    """The real Dagster check (great-expectations on real tables) commits the shard to lakeFS.
    (`reactid gate` calls the same hook after the same run_shard_gates.)"""
    from assets.checks import check_name

    gt = _load_gate_tables()
    path, _, store = lakefs_project()

    result = _gate(path.parent, gt)
    assert result.success
    (commit,) = fake_lakefs.calls("POST", rf"{REPO}/branches/train-demo-tx-[0-9a-f]+/commits")
    meta = commit.json["metadata"]
    assert meta["reactid.run_id"] == result.run_id and meta["reactid.shard"] == gt.SHARD
    checks = json.loads(meta["reactid.checks"])
    assert set(checks) == set(GATE_SUITES) and all(c["passed"] for c in checks.values())
    head = fake_lakefs.repos["reactid-data"].branches["train-demo"].head
    verdict = read_json(store, gate_key(gt.SHARD))
    assert verdict["passed"] and verdict["lakefs"]["commit_id"] == head
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations[check_name("faces")].metadata["lakefs_commit"].value == head
    committed = fake_lakefs.tree("reactid-data", "train-demo")
    assert set(committed) == {f"reactid/tables/{s}/{gt.SHARD}.parquet" for s in GATE_SUITES} | {
        f"reactid/{gate_key(gt.SHARD)}"}
    assert all(committed[f"reactid/tables/{s}/{gt.SHARD}.parquet"] == store.get_bytes(f"tables/{s}/{gt.SHARD}.parquet")
               for s in GATE_SUITES)  # the exact tables the gate validated


@pytest.mark.slow  # a real great-expectations run in Dagster
def test_gate_check_reports_verdicts_then_fails_on_lakefs_errors(lakefs_project, fake_lakefs, monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", fake_lakefs.access_key)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", "not-the-secret")
    gt = _load_gate_tables()
    path, _, _ = lakefs_project()

    result = _gate(path.parent, gt)
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(GATE_SUITES) and all(e.passed for e in evaluations)
    error = evaluations[0].metadata["lakefs_error"].value
    assert "LAKEFS_ACCESS_KEY_ID" in error and "LAKEFS_SECRET_ACCESS_KEY" in error and "not-the-secret" not in error


def test_lineage_cli_prints_the_shards(lakefs_project, fake_lakefs, lakefs_env, capsys):
    from orchestration.cli import cli
    from versioning.hooks import promote_evaluation, version_gate_verdict

    path, params, store = lakefs_project()
    _passed_shard(store)
    record = version_gate_verdict(params, store, "s-000", run_id="r-1")
    _trained_on(store, "s-000")
    promotion = promote_evaluation(params, store, run_id="e-1", evaluation_fingerprint="abcdef012345xyz",
                                   models=["phase_4"])
    cli.main(["--params", str(path), "lakefs-lineage", promotion["tag"]], standalone_mode=False)
    lineage = json.loads(capsys.readouterr().out)
    assert lineage["data_commit"] == record["commit_id"]
    assert [s["shard"] for s in lineage["shards"]] == ["s-000"]
    assert lineage["shards"][0]["metadata"]["reactid.run_id"] == "r-1"
