"""The ablation matrix: which schedule and which model variant each ablation run trains.

Curriculum ablations (paper Table 5) change the data order and train the full ReactID
model; model ablations (Tables 3, 4 and 6) train a ``models.variants`` variant on the full
curriculum. Every schedule is built by ``training.curriculum.build_schedule`` from the
difficulty table's cues:

- ``full_curriculum``: D_overall with the params' lambdas, quantile thresholds;
- ``no_d_sub`` / ``no_d_app`` / ``no_d_sam``: the same with that lambda set to 0;
- ``random_expansion``: the same phase sizes (eligible intra- and inter-clip samples per
  phase as in the full curriculum), but which samples enter each phase is a seeded random
  draw instead of their difficulty;
- ``full_data``: one phase over every sample (no curriculum), at the last phase's
  inter-clip ratio.

The sampler's scores are returned with the schedule: for ``random_expansion`` they are the
phase in which a sample enters (tau_k = k), so the sampler's D <= tau_k rule admits
exactly the drawn samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.variants import ABLATION_TABLES
from training.curriculum import CurriculumSchedule, build_schedule, eligible_counts, phase_thresholds
from training.difficulty import DifficultyWeights, overall_difficulty

CURRICULUM_VARIANTS: tuple[str, ...] = (
    "full_data", "random_expansion", "no_d_sub", "no_d_app", "no_d_sam", "full_curriculum",
)
MODEL_ABLATIONS: tuple[str, ...] = tuple(dict.fromkeys(v for t in ("table4", "table3", "table6")
                                                       for v in ABLATION_TABLES[t]))
ABLATION_VARIANTS: tuple[str, ...] = CURRICULUM_VARIANTS + MODEL_ABLATIONS
TABLE_OF_VARIANT: dict[str, str] = {
    **{v: "table5" for v in CURRICULUM_VARIANTS},
    **{v: t for t in ("table4", "table3", "table6") for v in ABLATION_TABLES[t]},
}


@dataclass(frozen=True)
class DifficultyCues:
    """The scored samples of difficulty_scores, in sampler index order."""

    sample_ids: np.ndarray  # (S,) object
    d_sub: np.ndarray  # (S,)
    d_app: np.ndarray  # (S,)
    d_sam: np.ndarray  # (S,) 0 | 1

    @property
    def is_inter(self) -> np.ndarray:
        return self.d_sam == 1


@dataclass(frozen=True)
class AblationPlan:
    """What one ablation run trains: its schedule, the sampler's scores and the model variant."""

    variant: str
    model_variant: str
    schedule: CurriculumSchedule
    d_sampler: np.ndarray  # (S,) scores the sampler compares with each phase's tau
    is_inter: np.ndarray  # (S,)
    sample_ids: np.ndarray  # (S,)


def check_variant(name: str) -> str:
    """Raises KeyError naming the known variants when ``name`` is not one."""
    if name not in ABLATION_VARIANTS:
        raise KeyError(f"unknown ablation variant {name!r}; known: {list(ABLATION_VARIANTS)}")
    return name


def ablation_plan(
    variant: str,
    cues: DifficultyCues,
    weights: DifficultyWeights,
    *,
    total_steps: int,
    phase_ratios: Sequence[float],
    inter_clip_ratios: Sequence[float],
    global_batch_size: int,
    seed: int,
    main_variant: str,
    difficulty_table: str,
    samples_table: str,
) -> AblationPlan:
    """The schedule and model variant of one ablation run.

    Args:
        variant: one of ``ABLATION_VARIANTS``.
        cues: the scored samples.
        weights: the params' lambdas (the full curriculum's).
        total_steps: steps of the run; the phases split them by ``phase_ratios``.
        main_variant: model variant of the curriculum ablations (the params' ``training.variant``).

    Raises:
        KeyError: unknown variant.
        CurriculumError: the variant's schedule cannot fill a batch (counts in the message).
    """
    check_variant(variant)
    inter = cues.is_inter
    n_phases = len(phase_ratios)
    lambdas = {"lambda_sub": weights.lambda_sub, "lambda_app": weights.lambda_app, "lambda_sam": weights.lambda_sam}
    if variant in ("no_d_sub", "no_d_app", "no_d_sam"):
        lambdas[variant.replace("no_d_", "lambda_")] = 0.0
    d = overall_difficulty(cues.d_sub, cues.d_app, cues.d_sam, DifficultyWeights(**lambdas))
    levels, taus = phase_thresholds(d, n_phases)
    ratios, steps_ratios = list(inter_clip_ratios), list(phase_ratios)
    if variant == "full_data":
        levels, taus = np.array([1.0]), np.array([d.max()])
        ratios, steps_ratios = [inter_clip_ratios[-1]], [1.0]
    elif variant == "random_expansion":
        d = _random_entry_phase(inter, *eligible_counts(d, inter, taus), seed=seed)
        taus = np.arange(1, n_phases + 1, dtype=np.float64)
    schedule = build_schedule(
        d, inter, levels, taus, total_steps=total_steps, phase_ratios=steps_ratios, inter_clip_ratios=ratios,
        global_batch_size=global_batch_size, seed=seed, difficulty_table=difficulty_table,
        samples_table=samples_table, weights=lambdas,
    )
    model_variant = main_variant if variant in CURRICULUM_VARIANTS else variant
    return AblationPlan(variant, model_variant, schedule, d, inter, cues.sample_ids)


def _random_entry_phase(
    is_inter: np.ndarray, intra_counts: np.ndarray, inter_counts: np.ndarray, *, seed: int
) -> np.ndarray:
    """(S,) 1-based phase in which each sample enters: per pool, a seeded random order cut
    at the full curriculum's cumulative eligible counts."""
    entry = np.empty(len(is_inter), np.float64)
    rng = np.random.default_rng([seed, 5])
    for pool, counts in ((np.flatnonzero(~is_inter), intra_counts), (np.flatnonzero(is_inter), inter_counts)):
        order = pool[rng.permutation(len(pool))]
        phase_of_rank = np.searchsorted(np.asarray(counts), np.arange(len(pool)), side="right") + 1
        entry[order] = phase_of_rank
    return entry

