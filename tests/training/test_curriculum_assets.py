"""Tier 2: the curriculum group materialised by Dagster over annotated shards, and the
`reactid train-stage` command dvc runs. The pool is generated (tests/training/conftest.py),
so every number checked here is known from its construction."""

import json

import numpy as np
import pytest

from core.tables import read_json, read_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def materialized(annotated_project):
    import dagster as dg

    from assets.curriculum import CURRICULUM_ASSETS
    from assets.resources import ReactIDResource

    project, params, store, rows = annotated_project
    instance = dg.DagsterInstance.ephemeral()
    # gen-002 is a known shard whose annotations never completed: it must not be read
    instance.add_dynamic_partitions("shards", ["gen-000", "gen-001", "gen-002"])
    result = dg.materialize(CURRICULUM_ASSETS, instance=instance,
                            resources={"reactid": ReactIDResource(project_dir=str(project))})
    return project, params, store, rows, result, instance


def _meta(result, name):
    events = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    return events[name].materialization.metadata


def test_training_samples(materialized):
    from core.images import decode_png

    _, params, store, rows, result, _ = materialized
    assert result.success
    meta = _meta(result, "training_samples")
    assert meta["shards"].value == ["gen-000", "gen-001"]
    assert meta["exclusions_by_reason"].value == {
        "invalid_mask": 1, "missing_mask": 1, "missing_reference": 1, "unverified_subject": 1}
    samples = read_table(store, "tables/training_samples/all-shards.parquet").to_pylist()
    ok = [s for s in samples if s["status"] == "ok"]
    intra = [s for s in ok if s["reference_kind"] == "intra"]
    inter = [s for s in ok if s["reference_kind"] == "inter"]
    assert len(intra) == 12 and inter  # 12 clean subjects; the defective ones are excluded
    annotated = {r["entity_id"]: r for shard_rows in rows.values() for r in shard_rows}
    for s in intra:
        assert s["d_sam"] == 0 and s["reference_clip_id"] == s["clip_id"] and s["reference_keys"]
        assert s["mask_frame_indices"] == annotated[s["entity_id"]]["frame_indices"]
    for s in inter:
        assert s["d_sam"] == 1 and s["reference_clip_id"] != s["clip_id"]
        assert s["identity"] == annotated[s["reference_entity_id"]]["identity"]
        assert s["inter_clip_similarity"] >= params.training_samples.inter_clip_similarity
    for key in {k for s in ok for k in s["reference_keys"]}:
        crop = decode_png(store.get_bytes(key))
        assert max(crop.shape[:2]) == 224 and crop.shape[2] == 3
    excluded = [s for s in samples if s["status"] == "excluded"]
    assert all(s["reason"] and not s["reference_keys"] for s in excluded)


def test_difficulty_scores(materialized):
    _, _, store, rows, result, _ = materialized
    scores = read_table(store, "tables/difficulty_scores/all-shards.parquet").to_pylist()
    annotated = {r["entity_id"]: r for shard_rows in rows.values() for r in shard_rows}
    scored = [s for s in scores if s["status"] == "ok"]
    excluded = [s for s in scores if s["status"] != "ok"]
    assert len(excluded) == 4 and all(s["d_overall"] is None and s["d_sub"] is None for s in excluded)
    for s in scored:
        fractions = annotated[s["entity_id"]]["mask_area_fractions"]
        assert s["d_sub"] == pytest.approx(1 - np.mean(fractions), abs=1e-6)  # Eq. 1 (rectangles: mask = box)
        assert s["d_overall"] == pytest.approx(0.5 * s["d_sub"] + s["d_app"] + s["d_sam"])
        human = annotated[s["entity_id"]]["is_human"]
        assert s["app_features"] == ("face:test:identity-vectors" if human else "appearance:embedded:colour-texture")
    intra_app = [s["d_app"] for s in scored if s["d_sam"] == 0]
    inter_app = [s["d_app"] for s in scored if s["d_sam"] == 1]
    assert np.mean(intra_app) < np.mean(inter_app)  # a reference from the clip itself looks more alike
    assert _meta(result, "difficulty_scores")["weights"].value == {"lambda_sub": 0.5, "lambda_app": 1.0,
                                                                   "lambda_sam": 1.0}


def test_quartiles_and_histogram(materialized):
    _, _, store, _, result, _ = materialized
    d = np.array([s["d_overall"] for s in read_table(store, "tables/difficulty_scores/all-shards.parquet").to_pylist()
                  if s["status"] == "ok"])
    meta = _meta(result, "difficulty_quartiles")
    edges = np.append(np.quantile(d, [0.25, 0.5, 0.75]), d.max())
    assert meta["edges"].value == pytest.approx(edges.tolist(), abs=1e-6)
    assert meta["phase_counts"].value == {f"phase_{k + 1}": int((d <= e).sum()) for k, e in enumerate(edges)}
    assert "plot_histogram" in meta
    csv = store.get_bytes("plots/difficulty_histogram.csv").decode().splitlines()
    assert csv[0] == "bin_left,bin_right,bin_centre,count" and len(csv) == 41
    assert sum(int(line.split(",")[3]) for line in csv[1:]) == len(d)


def test_schedule_json_and_deepspeed_config(materialized):
    from core.stage import AGGREGATE
    from training.sampler import open_sampler
    from training.stages import DEEPSPEED_CONFIG_KEY, SCHEDULE_KEY

    _, params, store, _, result, _ = materialized
    payload = read_json(store, SCHEDULE_KEY)
    run = params.training.effective()
    assert (payload["total_steps"], payload["global_batch_size"]) == (run.total_steps, run.global_batch) == (48, 4)
    assert [(p["start_step"], p["end_step"]) for p in payload["phases"]] == [(0, 24), (24, 36), (36, 42), (42, 48)]
    assert [p["inter_clip_ratio"] for p in payload["phases"]] == [0.0, 0.0, 0.11, 0.33]
    assert payload["deepspeed"]["config"] == DEEPSPEED_CONFIG_KEY
    ds = read_json(store, DEEPSPEED_CONFIG_KEY)["data_efficiency"]["data_sampling"]["curriculum_learning"]
    assert ds["curriculum_metrics"]["d_overall"]["schedule_config"]["max_step"] == [24, 36, 42]
    assert store.exists("curriculum/deepspeed/d_overall_index_to_sample.bin")
    table = read_table(store, f"tables/curriculum_schedule/{AGGREGATE}.parquet").to_pylist()
    assert [r["tau"] for r in table] == [p["tau"] for p in payload["phases"]]
    # the trainer's entry point: the batches it gets are eligible and split over two ranks
    r0 = open_sampler(store, SCHEDULE_KEY, rank=0, world_size=2)
    r1 = open_sampler(store, SCHEDULE_KEY, rank=1, world_size=2)
    scored = {s["sample_id"]: s for s in read_table(store, payload["difficulty_table"]).to_pylist()}
    for step in range(48):
        both = np.concatenate([r0.local_batch(step), r1.local_batch(step)])
        assert len(set(both.tolist())) == 4 and np.all(r0.d_overall[both] <= r0.schedule.tau_at(step))
        ids = r0.global_sample_ids(step)
        assert ids == r0.sample_ids[both].tolist()
        assert all(scored[i]["status"] == "ok" and scored[i]["d_overall"] <= r0.schedule.tau_at(step) for i in ids)
    assert "phases" in _meta(result, "curriculum_schedule")


def test_rerun_skips_and_keeps_outputs(materialized):
    import dagster as dg

    from assets.curriculum import CURRICULUM_ASSETS
    from assets.resources import ReactIDResource

    project, _, store, _, _, instance = materialized
    before = store.get_bytes("curriculum/schedule.json")
    again = dg.materialize(CURRICULUM_ASSETS, instance=instance,
                           resources={"reactid": ReactIDResource(project_dir=str(project))})
    assert again.success
    assert all(m.materialization.metadata["up_to_date_skip"].value for m in again.get_asset_materialization_events())
    assert store.get_bytes("curriculum/schedule.json") == before


def test_cli_train_stage(materialized):
    from click.testing import CliRunner

    from orchestration.cli import cli

    project, _, _, _, _, _ = materialized
    params = str(project / "params.yaml")
    out = CliRunner().invoke(cli, ["--params", params, "train-stage", "difficulty_quartiles"])
    assert out.exit_code == 0, out.output
    assert "difficulty_quartiles[all-shards] up to date" in out.output
    summary = json.loads(out.output.split(": ", 1)[1])
    assert summary["quantiles"] == [0.25, 0.5, 0.75, 1.0]
    bad = CliRunner().invoke(cli, ["--params", params, "train-stage", "scene_clips"])
    assert bad.exit_code != 0 and "unknown stage 'scene_clips'" in bad.output


def test_no_annotated_shard_is_a_failure(curriculum_project):
    import dagster as dg

    from assets.curriculum import training_samples
    from assets.resources import ReactIDResource

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["never-annotated"])
    with pytest.raises(dg.Failure, match="no shard has completed annotations"):
        dg.materialize([training_samples], instance=instance,
                       resources={"reactid": ReactIDResource(project_dir=str(curriculum_project))})


def test_shards_that_failed_the_quality_gates_are_left_out(curriculum_project):
    """A shard whose annotation gates failed keeps its annotations marker, but the
    curriculum must not read it; nor a shard whose gates never ran on its annotations."""
    import dagster as dg

    from assets.curriculum import training_samples
    from assets.resources import ReactIDResource
    from core.storage import LocalObjectStore
    from curation.gate_status import record_gate

    from .conftest import build_annotated_pool

    store = LocalObjectStore(curriculum_project / "data")
    build_annotated_pool(store)
    record_gate(store, "gen-001", ["subjects"])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", ["gen-000", "gen-001", "gen-002"])
    result = dg.materialize([training_samples], instance=instance,
                            resources={"reactid": ReactIDResource(project_dir=str(curriculum_project))})
    meta = _meta(result, "training_samples")
    assert meta["shards"].value == ["gen-000"]
    assert meta["shards_left_out"].value == {"gen-001": "gates failed: subjects", "gen-002": "not annotated"}
