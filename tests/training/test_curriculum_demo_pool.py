"""Tier 2: the curriculum group materialised on the demo pool, after the curation and
annotation assets ran on it (the session's `curated_project`)."""

import copy

import numpy as np
import pytest
import yaml

from core.tables import read_json, read_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(curated_project):
    import dagster as dg

    from assets.curriculum import CURRICULUM_ASSETS
    from assets.resources import ReactIDResource

    project, params, store, result, instance = curated_project
    assert result.success
    raw = yaml.safe_load((project / "params.yaml").read_text())
    runs = {}
    for name, edit in {
        "params": {},  # the repo's params as they are
        # one sample per step and no inter-clip share: what any pool with a scored sample can fill
        "single": {"global_batch": 1, "micro_batch": 1, "inter_clip_ratios": [0.0, 0.0, 0.0, 0.0]},
    }.items():
        variant = copy.deepcopy(raw)
        # the tiny shard has a handful of identities: hold none out for the benchmarks here,
        # or nothing is left to train on (tests/evaluation covers the held-out rule)
        variant["evaluation"]["held_out"].update(fraction=0.0, min_face_identities=0, min_other_identities=0)
        variant["training"]["demo"].update({k: v for k, v in edit.items() if k != "inter_clip_ratios"})
        if "inter_clip_ratios" in edit:
            variant["curriculum"]["inter_clip_ratios"] = edit["inter_clip_ratios"]
            variant["curriculum"]["demo_inter_clip_ratios"] = edit["inter_clip_ratios"]
        (project / f"params-{name}.yaml").write_text(yaml.safe_dump(variant, sort_keys=False))
        runs[name] = dg.materialize(
            CURRICULUM_ASSETS, instance=instance, raise_on_error=False,
            resources={"reactid": ReactIDResource(project_dir=str(project), params_file=f"params-{name}.yaml")},
        )
        runs[name + "_schedule"] = (read_json(store, "curriculum/schedule.json")
                                    if store.exists("curriculum/schedule.json") else None)
    return project, store, runs


def test_samples_and_scores_on_the_demo_pool(demo_run):
    _, store, runs = demo_run
    done = {m.asset_key.to_user_string() for m in runs["single"].get_asset_materialization_events()}
    assert done == {"training_samples", "difficulty_scores", "difficulty_quartiles", "curriculum_schedule"}
    annotations = read_table(store, "tables/annotations/tiny-000.parquet").to_pylist()
    samples = read_table(store, "tables/training_samples/all-shards.parquet").to_pylist()
    assert {s["entity_id"] for s in samples if s["reference_kind"] == "intra"} == {a["entity_id"] for a in annotations}
    ok = [s for s in samples if s["status"] == "ok"]
    assert ok and all(store.exists(k) for s in ok for k in s["reference_keys"])
    scores = [s for s in read_table(store, "tables/difficulty_scores/all-shards.parquet").to_pylist()
              if s["status"] == "ok"]
    assert len(scores) == len(ok)
    for s in scores:
        assert 0.0 <= s["d_sub"] <= 1.0 and 0.0 <= s["d_app"] <= 2.0
        assert s["d_overall"] == pytest.approx(0.5 * s["d_sub"] + s["d_app"] + s["d_sam"])


def test_schedule_on_the_demo_pool(demo_run):
    from training.sampler import open_sampler

    _, store, runs = demo_run
    payload = runs["single_schedule"]
    assert [(p["start_step"], p["end_step"]) for p in payload["phases"]] == [(0, 24), (24, 36), (36, 42), (42, 48)]
    sampler = open_sampler(store, "curriculum/schedule.json")
    for step in range(48):
        batch = sampler.global_batch(step)
        assert len(batch) == 1 and np.all(sampler.d_overall[batch] <= sampler.schedule.tau_at(step))


def test_the_repo_params_on_the_demo_pool_fill_every_phase_or_say_why(demo_run):
    project, store, runs = demo_run
    paper = runs["params"]
    scores = [s for s in read_table(store, "tables/difficulty_scores/all-shards.parquet").to_pylist()
              if s["status"] == "ok"]
    failures = [e for e in paper.all_events if e.event_type_value == "STEP_FAILURE"]
    if paper.success:
        raw = yaml.safe_load((project / "params-params.yaml").read_text())
        key = "demo_inter_clip_ratios" if raw["training"]["use_demo"] else "inter_clip_ratios"
        assert [p["inter_clip_ratio"] for p in runs["params_schedule"]["phases"]] == raw["curriculum"][key]
    else:  # a small pool cannot fill 4 samples a step, or has no inter-clip sample: an error with the counts
        assert [e.step_key for e in failures] == ["curriculum_schedule"]
        message = failures[0].event_specific_data.error.cause.message
        assert f"of {len(scores)} samples" in message and "eligible intra-clip" in message
