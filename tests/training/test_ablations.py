"""The ablation matrix against the paper: each Table 5 variant's schedule, and the model
setting each Table 3/4/6 variant trains (paper Sec. 4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from training.ablations import (
    CURRICULUM_VARIANTS,
    MODEL_ABLATIONS,
    DifficultyCues,
    ablation_plan,
)
from training.curriculum import eligible_counts, phase_thresholds
from training.difficulty import DifficultyWeights, overall_difficulty

WEIGHTS = DifficultyWeights(0.5, 1.0, 1.0)  # the paper's lambdas
PHASE_RATIOS = [4, 2, 1, 1]
INTER_RATIOS = [0.0, 0.0, 0.11, 0.33]  # the paper's inter-clip shares per phase
N, BATCH, STEPS = 600, 8, 80


def make_cues(seed: int = 0) -> DifficultyCues:
    """A pool like the paper's: a third inter-clip, which D_sam = 1 makes hard."""
    rng = np.random.default_rng(seed)
    return DifficultyCues(np.array([f"s{i}" for i in range(N)], dtype=object), rng.uniform(0.2, 0.99, N),
                          rng.uniform(0.05, 0.6, N), (rng.random(N) < 1 / 3).astype(np.int64))


CUES = make_cues()


def plan(variant: str, cues: DifficultyCues = CUES, seed: int = 7):
    return ablation_plan(variant, cues, WEIGHTS, total_steps=STEPS, phase_ratios=PHASE_RATIOS,
                         inter_clip_ratios=INTER_RATIOS, global_batch_size=BATCH, seed=seed,
                         main_variant="reactid", difficulty_table="t/d", samples_table="t/s")


def eligible_sets(p) -> list[set[str]]:
    return [set(p.sample_ids[p.d_sampler <= phase.tau]) for phase in p.schedule.phases]


def ratios(p) -> list[float]:
    return [phase.inter_clip_ratio for phase in p.schedule.phases]


def eligible_shares(p) -> list[float]:
    return [phase.eligible_inter / (phase.eligible_intra + phase.eligible_inter) for phase in p.schedule.phases]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    rank = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable")  # noqa: E731
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def test_full_curriculum_is_the_paper_recipe():
    full = plan("full_curriculum")
    d = overall_difficulty(CUES.d_sub, CUES.d_app, CUES.d_sam, WEIGHTS)
    np.testing.assert_array_equal(full.d_sampler, d)
    assert full.schedule.weights == {"lambda_sub": 0.5, "lambda_app": 1.0, "lambda_sam": 1.0}
    assert [p.tau for p in full.schedule.phases] == phase_thresholds(d, 4)[1].tolist()
    assert [p.steps for p in full.schedule.phases] == [40, 20, 10, 10]  # 4:2:1:1
    assert ratios(full) == INTER_RATIOS
    assert full.model_variant == "reactid"
    # With lambda_sam = 1 the early quartiles admit no inter-clip sample, as in the paper.
    assert [p.eligible_inter for p in full.schedule.phases][:2] == [0, 0]


def test_full_data_is_one_phase_over_every_sample_at_its_inter_clip_share():
    full_data = plan("full_data")
    (phase,) = full_data.schedule.phases
    assert (phase.start_step, phase.end_step) == (0, STEPS)
    assert phase.eligible_intra + phase.eligible_inter == N
    assert phase.inter_clip_ratio == pytest.approx(CUES.is_inter.mean())
    assert full_data.model_variant == "reactid"


def test_random_expansion_grows_like_the_curriculum_but_blind_to_difficulty():
    full, random = plan("full_curriculum"), plan("random_expansion")
    sizes = lambda p: [q.eligible_intra + q.eligible_inter for q in p.schedule.phases]  # noqa: E731
    assert sizes(random) == sizes(full)
    assert [q.steps for q in random.schedule.phases] == [q.steps for q in full.schedule.phases]
    sets = eligible_sets(random)
    assert all(a <= b for a, b in zip(sets, sets[1:]))  # the set only grows
    assert [len(s) for s in sets] == sizes(full)
    # Which samples enter when has nothing to do with any cue.
    d = full.d_sampler
    assert spearman(random.d_sampler, d) == pytest.approx(0.0, abs=0.15)
    curriculum_entry = np.searchsorted([p.tau for p in full.schedule.phases], d) + 1
    assert spearman(curriculum_entry, d) > 0.9
    first = eligible_sets(full)[0]
    assert len(sets[0] & first) < 0.5 * len(first)
    # Inter-clip samples are not held back (that would be D_sam's ordering): they enter from
    # phase 1 and are drawn at their share of each phase's samples.
    assert random.schedule.phases[0].eligible_inter > 0
    assert ratios(random) == eligible_shares(random)
    assert min(ratios(random)) > 0.2
    # A seeded draw: the same seed gives the same order, another seed another.
    np.testing.assert_array_equal(plan("random_expansion").d_sampler, random.d_sampler)
    assert not np.array_equal(plan("random_expansion", seed=8).d_sampler, random.d_sampler)


@pytest.mark.parametrize("variant, cue", [("no_d_sub", "d_sub"), ("no_d_app", "d_app"), ("no_d_sam", "d_sam")])
def test_a_curriculum_without_one_cue_zeroes_its_lambda(variant, cue):
    ablated = plan(variant)
    lam = "lambda_" + cue.removeprefix("d_")
    expected = {"lambda_sub": 0.5, "lambda_app": 1.0, "lambda_sam": 1.0, lam: 0.0}
    assert ablated.schedule.weights == expected
    d = overall_difficulty(CUES.d_sub, CUES.d_app, CUES.d_sam, DifficultyWeights(**expected))
    np.testing.assert_array_equal(ablated.d_sampler, d)
    assert [p.tau for p in ablated.schedule.phases] == phase_thresholds(d, 4)[1].tolist()
    assert [p.steps for p in ablated.schedule.phases] == [40, 20, 10, 10]
    assert ablated.model_variant == "reactid"
    # The dropped cue does not change the order: scramble it and the schedule is the same.
    fields = {"sample_ids": CUES.sample_ids, "d_sub": CUES.d_sub, "d_app": CUES.d_app, "d_sam": CUES.d_sam}
    fields[cue] = np.random.default_rng(1).permutation(fields[cue])
    if cue == "d_sam":
        # D_sam also says which samples are inter-clip; only its weight in D_overall is dropped.
        return
    scrambled = plan(variant, DifficultyCues(**fields))
    assert scrambled.schedule == ablated.schedule
    np.testing.assert_array_equal(scrambled.d_sampler, ablated.d_sampler)


def test_without_d_sam_inter_clip_samples_come_at_their_eligible_share():
    no_sam, no_app = plan("no_d_sam"), plan("no_d_app")
    # Without D_sam nothing keeps inter-clip samples out of the early phases ...
    assert no_sam.schedule.phases[0].eligible_inter > 0
    # ... and the batch mix follows the admitted samples instead of re-imposing 0/0/11/33%.
    assert ratios(no_sam) == eligible_shares(no_sam) and ratios(no_sam)[0] > 0
    # D_sam still orders the other single-cue ablations: the paper's shares stay.
    assert ratios(no_app) == INTER_RATIOS


def test_curriculum_ablations_and_model_ablations_split_the_matrix():
    full = plan("full_curriculum")
    assert set(CURRICULUM_VARIANTS) == {"full_data", "random_expansion", "no_d_sub", "no_d_app", "no_d_sam",
                                        "full_curriculum"}
    for variant in MODEL_ABLATIONS:
        ablated = plan(variant)
        # A model ablation trains its model on the full curriculum.
        assert ablated.model_variant == variant
        assert ablated.schedule == full.schedule
        np.testing.assert_array_equal(ablated.d_sampler, full.d_sampler)


# Paper Tables 3, 4, 6: the settings each variant trains, and what the full model uses.
FULL_MODEL = {"use_timeline_modules": True, "timeline_rope": "tarope", "tarope_rescale_length": 2.0,
              "timeline_temporal_mask": False, "label_binding": "uniform", "label_alpha": 2.0, "label_beta": 20.0}
EXPECTED = {
    "reactid": {},
    "base": {"use_timeline_modules": False},  # Table 6: no timeline-specific modules
    # Table 4: a temporal mask on video tokens and no temporal RoPE; RoPE without rescaling; TARoPE T
    "attention_mask": {"timeline_rope": "none", "timeline_temporal_mask": True},
    "vanilla_rope": {"timeline_rope": "vanilla"},
    "tarope_T8": {"tarope_rescale_length": 8.0},
    "tarope_T4": {"tarope_rescale_length": 4.0},
    "tarope_T2": {},
    # Table 3: adaptive vs uniform labels; label values (alpha, beta) under uniform labelling
    "label_adaptive": {"label_binding": "adaptive"},
    "label_uniform": {},
    "label_values_0_1": {"label_alpha": 0.0, "label_beta": 1.0},
    "label_values_2_20": {},
}


def test_every_model_variant_is_listed():
    assert set(EXPECTED) == set(MODEL_ABLATIONS)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_each_model_variant_builds_a_model_with_its_setting(variant):
    from models.presets import build_transformer

    reference = build_transformer("tiny", "reactid", seed=0).config
    config = build_transformer("tiny", variant, seed=0).config
    assert {k: reference[k] for k in FULL_MODEL} == FULL_MODEL
    assert {k: config[k] for k in FULL_MODEL} == {**FULL_MODEL, **EXPECTED[variant]}
    # Nothing else changes: an ablation varies one setting of the full model.
    # (diffusers' private keys, such as which arguments were left at their defaults, are not settings)
    changed = {k for k in reference if not k.startswith("_") and config[k] != reference[k]}
    assert changed == {k for k, v in EXPECTED[variant].items() if FULL_MODEL[k] != v}
