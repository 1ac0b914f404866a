"""The ablation matrix: which schedule and which model variant each ablation run trains.

Curriculum ablations (paper Table 5) change the data order and train the full ReactID
model; model ablations (Tables 3, 4 and 6) train a ``models.variants`` variant on the full
curriculum. Every schedule is built by ``training.curriculum.build_schedule`` from the
difficulty table's cues:

- ``full_curriculum``: D_overall with the params' lambdas, quantile thresholds, the params'
  inter-clip ratio per phase;
- ``no_d_sub`` / ``no_d_app`` / ``no_d_sam``: the same with that lambda set to 0;
- ``random_expansion``: the training set still grows phase by phase with the full
  curriculum's sizes (samples eligible per phase), but which samples enter each phase is a
  seeded random draw over all samples, blind to every cue;
- ``full_data``: one phase over every sample (no curriculum).

Inter-clip share. The paper's 0/0/11/33% per phase (the params' ratios) is what its tau
schedule admits: "dynamically modulated by tau" through D_sam, which puts every inter-clip
sample above the early thresholds. A variant whose order ignores D_sam (``no_d_sam``,
``random_expansion``, ``full_data``) therefore draws inter-clip samples at their share of
each phase's eligible samples; imposing the curriculum's ratios there would put the D_sam
ordering back in through the batch mix.

The sampler's scores are returned with the schedule: for ``random_expansion`` they are the
phase in which a sample enters (tau_k = k), so the sampler's D <= tau_k rule admits
exactly the drawn samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
# Curriculum variants whose order ignores D_sam: inter-clip samples come at their eligible share.
SAMPLING_BLIND: tuple[str, ...] = ("full_data", "random_expansion", "no_d_sam")
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


def variant_weights(variant: str, weights: DifficultyWeights) -> DifficultyWeights:
    """The lambdas a variant scores with: the params' own, with a ``no_d_*`` variant's set to 0."""
    if variant not in ("no_d_sub", "no_d_app", "no_d_sam"):
        return weights
    return replace(weights, **{variant.replace("no_d_", "lambda_"): 0.0})


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
    scored = variant_weights(variant, weights)
    lambdas = {"lambda_sub": scored.lambda_sub, "lambda_app": scored.lambda_app, "lambda_sam": scored.lambda_sam}
    d = overall_difficulty(cues.d_sub, cues.d_app, cues.d_sam, scored)
    levels, taus = phase_thresholds(d, n_phases)
    steps_ratios = list(phase_ratios)
    if variant == "full_data":
        levels, taus = np.array([1.0]), np.array([d.max()])
        steps_ratios = [1.0]
    elif variant == "random_expansion":
        d = _random_entry_phase(np.add(*eligible_counts(d, inter, taus)), len(d), seed=seed)
        taus = np.arange(1, n_phases + 1, dtype=np.float64)
    if variant in SAMPLING_BLIND:
        ratios = eligible_inter_shares(d, inter, taus)
    else:
        ratios = list(inter_clip_ratios)
    schedule = build_schedule(
        d, inter, levels, taus, total_steps=total_steps, phase_ratios=steps_ratios, inter_clip_ratios=ratios,
        global_batch_size=global_batch_size, seed=seed, difficulty_table=difficulty_table,
        samples_table=samples_table, weights=lambdas,
    )
    model_variant = main_variant if variant in CURRICULUM_VARIANTS else variant
    return AblationPlan(variant, model_variant, schedule, d, inter, cues.sample_ids)


def eligible_inter_shares(d: np.ndarray, is_inter: np.ndarray, taus: np.ndarray) -> list[float]:
    """Per phase, the inter-clip share of the samples with ``d <= tau_k`` (0 for an empty phase,
    which ``build_schedule`` reports)."""
    intra, inter = eligible_counts(d, is_inter, taus)
    total = intra + inter
    return [float(i / t) if t else 0.0 for i, t in zip(inter.tolist(), total.tolist())]


def _random_entry_phase(sizes: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """(n,) 1-based phase in which each sample enters: a seeded random order of all samples,
    cut at the cumulative phase sizes ``sizes`` (P,) (the last is n)."""
    rng = np.random.default_rng([seed, 5])
    entry = np.empty(n, np.float64)
    entry[rng.permutation(n)] = np.searchsorted(np.asarray(sizes), np.arange(n), side="right") + 1
    return entry
