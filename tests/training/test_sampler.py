"""Tier 1: properties of the curriculum sampler: eligible samples only, the inter-clip share
per phase, determinism, exact resume, rank sharding, no repeats inside a step or an epoch."""

import numpy as np
import pytest

from training.curriculum import CurriculumError, build_schedule, phase_thresholds
from training.sampler import CurriculumSampler, interleave

STEPS, BATCH = 400, 8
INTER_RATIOS = [0.0, 0.0, 0.25, 0.4]


def _setup(n=600, seed=0, batch=BATCH, steps=STEPS, inter_ratios=INTER_RATIOS, sampler_seed=5):
    rng = np.random.default_rng(seed)
    inter = rng.random(n) < 0.45
    d = rng.uniform(0.2, 0.9, n) + inter * 0.8
    levels, taus = phase_thresholds(d, 4)
    schedule = build_schedule(d, inter, levels, taus, total_steps=steps, phase_ratios=[4, 2, 1, 1],
                              inter_clip_ratios=inter_ratios, global_batch_size=batch, seed=sampler_seed,
                              difficulty_table="t", samples_table="s", weights={})
    return schedule, d, inter


@pytest.fixture(scope="module")
def run():
    schedule, d, inter = _setup()
    sampler = CurriculumSampler(schedule, d, inter)
    batches = np.stack([sampler.global_batch(t) for t in range(STEPS)])
    return schedule, d, inter, batches


def test_only_eligible_samples(run):
    schedule, d, _, batches = run
    for step, batch in enumerate(batches):
        assert np.all(d[batch] <= schedule.tau_at(step)), step
    assert batches.shape == (STEPS, BATCH)


def test_inter_clip_share_per_phase(run):
    schedule, _, inter, batches = run
    for p in schedule.phases:
        per_step = inter[batches[p.start_step:p.end_step]].sum(axis=1)
        lo, hi, _, _ = p.draws_per_step(BATCH)
        assert set(per_step.tolist()) <= {lo, hi}  # floor or ceil of ratio x B every step
        expected = p.inter_clip_ratio * BATCH * p.steps
        assert abs(per_step.sum() - expected) <= 1  # the running share never drifts by a sample
    assert inter[batches[: schedule.phases[2].start_step]].sum() == 0  # 0%, 0% in phases 1-2


def test_no_repeats_inside_a_step_or_an_epoch(run):
    schedule, d, inter, batches = run
    assert all(len(set(b.tolist())) == BATCH for b in batches)
    p1 = schedule.phases[0]
    pool = p1.eligible_intra  # phase 1 draws only intra-clip samples
    per_epoch = pool // BATCH  # whole steps that fit in one pass over the pool
    first_epoch = batches[:per_epoch].ravel()
    assert len(set(first_epoch.tolist())) == per_epoch * BATCH
    assert set(first_epoch.tolist()) <= set(np.flatnonzero((d <= p1.tau) & ~inter).tolist())


def test_deterministic_given_seed_and_step(run):
    schedule, d, inter, batches = run
    again = CurriculumSampler(schedule, d, inter)
    assert np.array_equal(np.stack([again.global_batch(t) for t in range(STEPS)]), batches)
    other, _, _ = _setup(sampler_seed=6)
    different = CurriculumSampler(other, d, inter)
    assert not np.array_equal(np.stack([different.global_batch(t) for t in range(STEPS)]), batches)


@pytest.mark.parametrize("resume_at", [1, 137, 160, 241, 300, 399])
def test_exact_resume_from_any_step(run, resume_at):
    schedule, d, inter, batches = run
    fresh = CurriculumSampler(schedule, d, inter)  # a new process after a crash
    resumed = np.stack([b for _, b in fresh.iter_batches(start_step=resume_at)])
    assert np.array_equal(resumed, batches[resume_at:])


def test_random_access_equals_sequential(run):
    schedule, d, inter, batches = run
    sampler = CurriculumSampler(schedule, d, inter)
    for step in [399, 3, 250, 0, 251, 160, 159]:
        assert np.array_equal(sampler.global_batch(step), batches[step])


@pytest.mark.parametrize("world_size", [2, 4, 8])
def test_rank_sharding(run, world_size):
    schedule, d, inter, batches = run
    ranks = [CurriculumSampler(schedule, d, inter, rank=r, world_size=world_size) for r in range(world_size)]
    for step in (0, 170, 310, 399):
        parts = [r.local_batch(step) for r in ranks]
        assert all(len(p) == BATCH // world_size for p in parts)
        joined = np.concatenate(parts)
        assert np.array_equal(joined, batches[step])  # disjoint slices that make up the global batch
        assert len(set(joined.tolist())) == BATCH
    # inter-clip samples are spread over the slots, so every rank gets its share in phase 4
    last = schedule.phases[3]
    for r in ranks:
        got = np.concatenate([r.local_batch(t) for t in range(last.start_step, last.end_step)])
        share = inter[got].mean()
        assert abs(share - last.inter_clip_ratio) <= 1.0 / (BATCH // world_size)


def test_tiny_pool_cycles_without_repeats_inside_a_step():
    # the phase-1 intra pool holds exactly one step's draws: every step is a whole epoch
    schedule, d, inter = _setup(n=16, batch=4, steps=40, inter_ratios=[0.0, 0.0, 0.0, 0.0])
    sampler = CurriculumSampler(schedule, d, inter)
    assert schedule.phases[0].eligible_intra == 4
    first = [set(sampler.global_batch(t).tolist()) for t in range(schedule.phases[0].steps)]
    assert all(b == first[0] and len(b) == 4 for b in first)


def test_sampler_refuses_scores_the_schedule_was_not_built_from(run):
    schedule, d, inter, _ = run
    moved = d.copy()
    moved[np.argmin(d)] = d.max() + 1.0  # one sample left phase 1
    with pytest.raises(CurriculumError, match="changed since the schedule was built"):
        CurriculumSampler(schedule, moved, inter)
    with pytest.raises(CurriculumError, match="does not split over 3"):
        CurriculumSampler(schedule, d, inter, rank=0, world_size=3)
    with pytest.raises(CurriculumError, match="rank 4"):
        CurriculumSampler(schedule, d, inter, rank=4, world_size=4)


def test_interleave_spreads_inter_clip_samples():
    out = interleave(np.arange(6), np.array([100, 101]))
    assert out.tolist() == [0, 1, 100, 2, 3, 4, 101, 5]  # slots floor((2j + 1) 8 / 4) = 2, 6
    assert interleave(np.arange(3), np.zeros(0, np.int64)).tolist() == [0, 1, 2]
