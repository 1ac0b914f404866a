"""Tier 1: quantile thresholds, the 4:2:1:1 phase split, the schedule's checks and exports."""

import numpy as np
import pytest

from training.curriculum import (
    CurriculumError,
    CurriculumSchedule,
    build_schedule,
    deepspeed_curriculum,
    deepspeed_metric,
    eligible_counts,
    phase_boundaries,
    phase_lengths,
    phase_thresholds,
)

WEIGHTS = {"lambda_sub": 0.5, "lambda_app": 1.0, "lambda_sam": 1.0}


def _schedule(d, inter, *, steps=10_000, ratios=(4, 2, 1, 1), inter_ratios=(0.0, 0.0, 0.11, 0.33), batch=32):
    levels, taus = phase_thresholds(d, len(ratios))
    return build_schedule(d, inter, levels, taus, total_steps=steps, phase_ratios=list(ratios),
                          inter_clip_ratios=list(inter_ratios), global_batch_size=batch, seed=7,
                          difficulty_table="tables/difficulty_scores/all-shards.parquet",
                          samples_table="tables/training_samples/all-shards.parquet", weights=WEIGHTS)


def _pool(n=400, seed=0, inter_share=0.5):
    """Intra-clip samples around 0.5, inter-clip ones (D_sam = 1) around 1.5, as in the paper."""
    rng = np.random.default_rng(seed)
    inter = rng.random(n) < inter_share
    return rng.uniform(0.3, 0.8, n) + inter * 1.0, inter


@pytest.mark.parametrize("steps, ratios, bounds", [
    (10_000, [4, 2, 1, 1], [0, 5000, 7500, 8750, 10_000]),  # the paper's update steps
    (48, [4, 2, 1, 1], [0, 24, 36, 42, 48]),
    (10, [1, 1, 1], [0, 3, 6, 10]),
    (100, [0.5, 0.25, 0.25], [0, 50, 75, 100]),
    (7, [1], [0, 7]),
])
def test_phase_boundaries(steps, ratios, bounds):
    assert phase_boundaries(steps, ratios) == bounds
    assert phase_lengths(steps, ratios) == [b - a for a, b in zip(bounds, bounds[1:])]


def test_a_split_too_short_shows_its_empty_phase():
    # what the params check (training/params.py) refuses, naming the step count's key
    assert phase_lengths(3, [4, 2, 1, 1]) == [1, 1, 0, 1]


def test_quartile_thresholds_by_hand():
    d = np.arange(1.0, 9.0)  # 1..8: linear quartiles 2.75, 4.5, 6.25; the last phase takes the max
    levels, taus = phase_thresholds(d, 4)
    assert levels.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert taus.tolist() == pytest.approx([2.75, 4.5, 6.25, 8.0])
    intra, inter = eligible_counts(d, np.zeros(8, bool), taus)
    assert intra.tolist() == [2, 4, 6, 8] and inter.tolist() == [0, 0, 0, 0]


def test_thresholds_refuse_no_scores():
    with pytest.raises(CurriculumError, match="no scored samples"):
        phase_thresholds(np.array([]), 4)
    with pytest.raises(CurriculumError, match="not finite"):
        phase_thresholds(np.array([0.5, np.nan]), 4)


def test_eligible_counts_match_brute_force():
    d, inter = _pool(1000, seed=3)
    taus = np.array([0.5, 0.9, 1.4, d.max()])
    intra_c, inter_c = eligible_counts(d, inter, taus)
    for k, tau in enumerate(taus):
        assert intra_c[k] == sum(1 for x, i in zip(d, inter) if x <= tau and not i)
        assert inter_c[k] == sum(1 for x, i in zip(d, inter) if x <= tau and i)


def test_schedule_of_the_paper_10k_steps():
    d, inter = _pool()
    s = _schedule(d, inter)
    assert [(p.start_step, p.end_step) for p in s.phases] == [(0, 5000), (5000, 7500), (7500, 8750), (8750, 10_000)]
    taus = [p.tau for p in s.phases]
    assert taus == pytest.approx(np.quantile(d, [0.25, 0.5, 0.75]).tolist() + [d.max()])
    for step, phase in [(0, 1), (4999, 1), (5000, 2), (7499, 2), (7500, 3), (8749, 3), (8750, 4), (9999, 4)]:
        assert s.phase_at(step).phase == phase
        assert s.tau_at(step) == taus[phase - 1]
    assert [p.inter_clip_ratio for p in s.phases] == [0.0, 0.0, 0.11, 0.33]
    assert s.phases[-1].eligible_intra + s.phases[-1].eligible_inter == len(d)  # the last phase admits all
    with pytest.raises(CurriculumError, match="outside"):
        s.phase_at(10_000)
    assert s.phases[2].draws_per_step(32) == (3, 4, 28, 29)  # 0.11 x 32 = 3.52 inter-clip per step


def test_schedule_json_round_trip():
    d, inter = _pool()
    s = _schedule(d, inter)
    payload = {**s.to_json(), "sampler": "training.sampler.open_sampler", "deepspeed": {"config": "x"}}
    assert CurriculumSchedule.from_json(payload) == s
    with pytest.raises(CurriculumError, match="format"):
        CurriculumSchedule.from_json({**payload, "format": "other/1"})
    broken = s.to_json()
    broken["phases"][1]["start_step"] += 1
    with pytest.raises(CurriculumError, match="do not tile"):
        CurriculumSchedule.from_json(broken)


def test_a_phase_without_the_inter_clip_samples_it_asks_for_is_an_error():
    d, inter = _pool(inter_share=0.2)  # a fifth of the pool: the 75% quantile is below every one of them
    with pytest.raises(CurriculumError, match=r"phase 3 .*eligible intra-clip 300, inter-clip 0 of 400 samples"):
        _schedule(d, inter)
    assert _schedule(d, inter, inter_ratios=(0.0, 0.0, 0.0, 0.33)).phases[3].eligible_inter == inter.sum()


def test_a_phase_without_intra_clip_samples_is_an_error():
    d, _ = _pool()
    with pytest.raises(CurriculumError, match=r"phase 1 .*intra-clip 0, inter-clip 100 of 400 samples \(400 inter"):
        _schedule(d, np.ones(len(d), bool), inter_ratios=(0.0, 0.5, 0.5, 0.5))


def test_a_pool_smaller_than_one_step_is_an_error():
    d, inter = _pool(n=40)
    with pytest.raises(CurriculumError, match="more than are eligible"):
        _schedule(d, inter, batch=32)
    assert _schedule(d, inter, batch=4).global_batch_size == 4


def test_ratio_counts_must_match_thresholds():
    d, inter = _pool()
    levels, taus = phase_thresholds(d, 4)
    with pytest.raises(CurriculumError, match="expected one of each per phase"):
        build_schedule(d, inter, levels, taus, total_steps=100, phase_ratios=[1, 1], inter_clip_ratios=[0, 0],
                       global_batch_size=4, seed=0, difficulty_table="", samples_table="", weights=WEIGHTS)


def test_deepspeed_export_follows_the_same_schedule(tmp_path):
    """DeepSpeed's own CurriculumScheduler and index reader, fed our export, admit the same
    samples at the same steps (up to the 1/scale quantisation, reported per phase)."""
    from types import SimpleNamespace

    from deepspeed.runtime.data_pipeline.curriculum_scheduler import CurriculumScheduler
    from deepspeed.runtime.data_pipeline.data_sampling.data_sampler import DeepSpeedDataSampler
    from deepspeed.runtime.data_pipeline.data_sampling.indexed_dataset import MMapIndexedDataset

    from training.curriculum import write_deepspeed_index

    d, inter = _pool()
    s = _schedule(d, inter)
    metric = deepspeed_metric(d, 1000)
    config, difficulties, eligible = deepspeed_curriculum(s, metric, scale=1000, index_dir=str(tmp_path),
                                                          cluster_dir=str(tmp_path / "clusters"))
    cl = config["data_efficiency"]["data_sampling"]["curriculum_learning"]
    m = cl["curriculum_metrics"]["d_overall"]
    assert m["schedule_config"]["max_step"] == [5000, 7500, 8750]
    assert difficulties == [round(p.tau * 1000) for p in s.phases]
    scheduler = CurriculumScheduler(m)
    for step in (0, 4999, 5000, 7499, 7500, 8749, 8750, 9999):  # DeepSpeed counts steps from 1
        assert scheduler.get_difficulty(step + 1) == difficulties[s.phase_at(step).phase - 1]
    write_deepspeed_index(metric, tmp_path)
    reader = SimpleNamespace(curriculum_index_to_sample={"d_overall": MMapIndexedDataset(m["index_to_sample_path"])},
                             curriculum_index_to_metric={"d_overall": MMapIndexedDataset(m["index_to_metric_path"])})
    for k, p in enumerate(s.phases):
        admitted = DeepSpeedDataSampler.get_sample_based_on_metric_value(reader, "d_overall", float("-inf"),
                                                                         difficulties[k])
        assert len(admitted) == eligible[k]
        exact = p.eligible_intra + p.eligible_inter
        assert abs(eligible[k] - exact) <= np.count_nonzero(np.abs(d - p.tau) <= 0.0005 + 1e-12)
        assert np.all(metric[admitted] <= difficulties[k])
