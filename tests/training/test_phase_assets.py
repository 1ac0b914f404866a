"""Tier 2: the latent cache, the four curriculum phases and the ablation runs, materialised by
Dagster (and run_stage) on the generated annotated pool of tests/training/conftest.py, with
the tiny preset on CPU: 2 steps per phase, fp32, a checkpoint every step."""

from __future__ import annotations

import json
import shutil

import pytest

from core.stage import AGGREGATE, run_stage
from core.tables import read_json, read_table
from tests.training.conftest import build_annotated_pool, curriculum_params_raw

pytestmark = pytest.mark.slow


def _params_raw(base):
    raw = curriculum_params_raw(base)
    raw["curriculum"]["phase_ratios"] = [1, 1, 1, 1]
    raw["training"]["demo"].update(total_steps=8, warmup_steps=2, checkpoint_every=1)
    raw["ablations"]["demo_total_steps"] = 4
    return raw


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_params_raw):
    import dagster as dg
    import yaml

    from assets.curriculum import CURRICULUM_ASSETS
    from assets.resources import ReactIDResource
    from assets.training import TRAINING_ASSETS
    from orchestration.params import load_params
    from core.storage import LocalObjectStore

    project = tmp_path_factory.mktemp("phases")
    (project / "params.yaml").write_text(yaml.safe_dump(_params_raw(base_params_raw), sort_keys=False))
    params = load_params(project / "params.yaml")
    store = LocalObjectStore(project / "data")
    build_annotated_pool(store)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["gen-000", "gen-001"])
    result = dg.materialize([*CURRICULUM_ASSETS, *TRAINING_ASSETS], instance=instance,
                            resources={"reactid": ReactIDResource(project_dir=str(project))})
    meta = {m.asset_key.to_user_string(): m.materialization.metadata
            for m in result.get_asset_materialization_events()}
    return project, params, store, result, meta, instance


def _recorded(store, stage, shard=AGGREGATE):
    return read_json(store, f"metrics/{stage}/{shard}.json")["metadata"]


def test_phases_materialise_with_their_metadata(trained):
    _, _, store, result, meta, instance = trained
    assert result.success
    assert meta["latent_cache"]["samples"].value == _recorded(store, "difficulty_scores")["scored"]
    from training.distributed import training_device

    assert meta["latent_cache"]["encoder_device"].value == training_device()
    schedule = read_json(store, "curriculum/schedule.json")
    for k, phase in enumerate(schedule["phases"], start=1):
        m = meta[f"curriculum_phase_{k}"]
        assert m["steps"].value == phase["end_step"] - phase["start_step"] == 2
        assert m["global_step"].value == phase["end_step"]
        assert m["samples_seen"].value == 2 * schedule["global_batch_size"]
        assert m["tau"].value == phase["tau"]
        assert m["samples_per_second"].value > 0
        assert "loss_curve" in m and m["registered_model"].value == f"phase_{k}"
        assert store.exists(f"models/phase_{k}/model.json")
    assert set(instance.get_dynamic_partitions("models")) >= {f"phase_{k}" for k in range(1, 5)}


def test_every_sample_of_phase_k_has_difficulty_within_tau_k(trained):
    _, params, store, _, _, _ = trained
    scores = {r["sample_id"]: r for r in read_table(store, "tables/difficulty_scores/all-shards.parquet").to_pylist()
              if r["status"] == "ok"}
    schedule = read_json(store, "curriculum/schedule.json")
    root = params.resolve(params.storage.root)
    for k, phase in enumerate(schedule["phases"], start=1):
        run_dir = root / _recorded(store, f"curriculum_phase_{k}")["run_dir"]
        logged = [json.loads(line) for line in (run_dir / "sample_ids.jsonl").read_text().splitlines()]
        steps = sorted({e["step"] for e in logged})
        assert steps == list(range(phase["start_step"], phase["end_step"]))
        ids = [i for e in logged for i in e["ids"]]
        assert all(scores[i]["d_overall"] <= phase["tau"] for i in ids), k
        inter = sum(scores[i]["d_sam"] == 1 for i in ids) / len(ids)
        assert _recorded(store, f"curriculum_phase_{k}")["inter_clip_ratio_achieved"] == round(inter, 4)
        assert abs(inter - phase["inter_clip_ratio"]) <= 1 / schedule["global_batch_size"]


def test_each_phase_continues_from_the_previous_checkpoint(trained):
    _, _, store, _, _, _ = trained
    assert _recorded(store, "curriculum_phase_1")["resumed_from"] is None
    for k in range(2, 5):
        before, now = _recorded(store, f"curriculum_phase_{k - 1}"), _recorded(store, f"curriculum_phase_{k}")
        assert now["resumed_from"] == f"{before['checkpoint_dir']}/step_{before['global_step']:08d}"
        assert now["start_step"] == before["global_step"]


def test_the_exported_model_loads_with_from_pretrained(trained):
    from models.transformer_reactid import ReactIDTransformer3DModel

    _, params, store, _, _, _ = trained
    root = params.resolve(params.storage.root)
    model = ReactIDTransformer3DModel.from_pretrained(root / _recorded(store, "curriculum_phase_4")["model_dir"])
    assert model.config.use_timeline_modules is True
    registered = ReactIDTransformer3DModel.from_pretrained(root / "models/phase_4/export")
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), registered.state_dict().values()))


def test_an_interrupted_phase_resumes_with_the_same_losses(trained):
    """Cut phase 4 back to its first step (as a kill after step 7 leaves it) and re-run."""
    _, params, store, _, _, _ = trained
    root = params.resolve(params.storage.root)
    first = _recorded(store, "curriculum_phase_4")
    run_dir = root / first["run_dir"]
    uninterrupted = [json.loads(line)["loss"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    checkpoints = root / first["checkpoint_dir"]
    shutil.rmtree(checkpoints / "step_00000008")
    (checkpoints / "latest").write_text("step_00000007")
    store.delete_prefix("metrics/curriculum_phase_4/all-shards.json")
    from training.run_stages import TRAINING_RUN_STAGES

    again = run_stage(TRAINING_RUN_STAGES["curriculum_phase_4"], AGGREGATE, params, store).metadata
    assert again["resumed_from"].endswith("checkpoints/step_00000007")
    assert again["steps_run"] == 1 and again["run_dir"] == first["run_dir"]
    resumed = [json.loads(line)["loss"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert resumed == uninterrupted


def test_a_docstring_edit_in_the_trainer_resumes_the_phase(trained, tmp_path, monkeypatch):
    """An interrupted phase, then a docstring and a comment edited in the trainer and the model:
    the stage is still up to date, and a forced rerun resumes the same run folder."""
    from core import code_version
    from tests.code_copy import add_comment, add_statement, copy_project, edit_docstring
    from training.run_stages import TRAINING_RUN_STAGES

    _, params, store, _, _, _ = trained
    spec = TRAINING_RUN_STAGES["curriculum_phase_4"]
    root = params.resolve(params.storage.root)
    first = _recorded(store, "curriculum_phase_4")
    checkpoints = root / first["checkpoint_dir"]
    shutil.rmtree(checkpoints / "step_00000008")
    (checkpoints / "latest").write_text("step_00000007")
    checkout = copy_project(tmp_path / "checkout")
    monkeypatch.setattr(code_version, "PROJECT_ROOT", checkout)
    edit_docstring(checkout, "training/phase.py")
    add_comment(checkout, "models/transformer_reactid.py")
    assert run_stage(spec, AGGREGATE, params, store).skipped
    again = run_stage(spec, AGGREGATE, params, store, force=True).metadata
    assert again["run_dir"] == first["run_dir"]
    assert again["resumed_from"].endswith("checkpoints/step_00000007") and again["steps_run"] == 1
    add_statement(checkout, "training/phase.py")
    assert not run_stage(spec, AGGREGATE, params, store).skipped
    assert _recorded(store, "curriculum_phase_4")["run_dir"] != first["run_dir"]


ABLATIONS = ("full_data", "random_expansion", "no_d_sub", "no_d_app", "no_d_sam", "full_curriculum",
             "attention_mask", "vanilla_rope", "tarope_T8", "tarope_T4", "tarope_T2", "label_adaptive",
             "label_uniform", "label_values_0_1", "label_values_2_20", "base", "reactid")


def test_the_ablation_matrix_lists_every_table_variant():
    from training.ablations import ABLATION_VARIANTS

    assert ABLATION_VARIANTS == ABLATIONS


@pytest.mark.parametrize("variant", ABLATIONS)
def test_each_ablation_variant_builds_and_trains(trained, variant):
    from training.checkpoint import load_exported_model
    from training.run_stages import TRAINING_RUN_STAGES

    _, params, store, _, _, _ = trained
    meta = run_stage(TRAINING_RUN_STAGES["ablation_runs"], variant, params, store, shards=(AGGREGATE,)).metadata
    assert meta["steps"] == 4 and meta["samples_seen"] == 4 * params.training.effective().global_batch
    assert meta["loss_final"] is not None
    record = read_json(store, f"models/ablation-{variant}/model.json")
    assert record["kind"] == "ablation"
    model = load_exported_model(params.resolve(params.storage.root) / meta["model_dir"])
    if variant == "base":
        assert model.config.use_timeline_modules is False
    if variant == "tarope_T8":
        assert model.config.tarope_rescale_length == 8.0


def test_a_phase_refuses_to_run_when_a_shard_failed_its_gates(trained, tmp_path):
    from core.errors import StageInputError
    from orchestration.params import load_params
    from core.storage import LocalObjectStore
    from curation.gate_status import record_gate
    from training.run_stages import TRAINING_RUN_STAGES

    project, _, _, _, _, _ = trained
    shutil.copytree(project / "data", tmp_path / "data")
    shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    params, store = load_params(tmp_path / "params.yaml"), LocalObjectStore(tmp_path / "data")
    record_gate(store, "gen-001", ["subjects"])
    store.delete_prefix("metrics/curriculum_phase_1/all-shards.json")
    with pytest.raises(StageInputError, match="gen-001.*gates failed: subjects"):
        run_stage(TRAINING_RUN_STAGES["curriculum_phase_1"], AGGREGATE, params, store, force=True)


def test_the_phase_asset_fails_when_no_shard_passed_the_gates(trained, tmp_path):
    import dagster as dg

    from assets.resources import ReactIDResource
    from assets.training import CURRICULUM_PHASE_ASSETS
    from core.storage import LocalObjectStore
    from curation.gate_status import record_gate

    project, _, _, _, _, _ = trained
    shutil.copytree(project / "data", tmp_path / "data")
    shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    store = LocalObjectStore(tmp_path / "data")
    for shard in ("gen-000", "gen-001"):
        record_gate(store, shard, ["annotations"])
    store.delete_prefix("metrics/curriculum_phase_1/all-shards.json")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["gen-000", "gen-001"])
    result = dg.materialize([CURRICULUM_PHASE_ASSETS[0]], instance=instance, raise_on_error=False,
                            resources={"reactid": ReactIDResource(project_dir=str(tmp_path))})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no shard has completed annotations that passed the quality gates" in \
        failure.step_failure_data.error.message
    assert not store.exists("metrics/curriculum_phase_1/all-shards.json")
