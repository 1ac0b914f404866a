"""The easy-to-hard curriculum of paper Sec. 3.2 / 4.1: quantile thresholds tau of D_overall,
phases that split the training steps by ratio (4:2:1:1), the inter-clip reference ratio per
phase, and the exports the trainer reads (schedule JSON) or DeepSpeed reads (its
data_efficiency curriculum config and metric index).

Steps are 0-based optimizer steps: phase k covers [start_step, end_step). DeepSpeed counts its
curriculum step from 1, so its fixed_discrete `max_step` list is exactly our phase end steps.
Everything on the per-sample path is vectorised numpy; nothing loops over samples in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ReactIDError

SCHEDULE_FORMAT = "reactid.curriculum_schedule/1"
# Inter-clip draws per step are counted with integer arithmetic (ratio x batch in millionths)
# so that every rank and every resume computes the same counts.
RATIO_DENOMINATOR = 1_000_000


class CurriculumError(ReactIDError):
    """The curriculum cannot be built from these scores and settings (the message has the counts)."""


def phase_thresholds(d_overall: np.ndarray, n_phases: int) -> tuple[np.ndarray, np.ndarray]:
    """tau_k = the (k / P)-quantile of D_overall; the last phase's tau is the maximum, so it
    admits every sample (P = 4 gives the quartiles of the paper).

    Args:
        d_overall: (S,) scores of the usable samples.
        n_phases: P >= 1.

    Returns:
        (quantile levels (P,), tau (P,)), non-decreasing.

    Raises:
        CurriculumError: no samples, or a score that is not finite.
    """
    d = np.asarray(d_overall, dtype=np.float64)
    if n_phases < 1:
        raise CurriculumError(f"need at least one phase, got {n_phases}")
    if not len(d):
        raise CurriculumError("no scored samples: every sample was excluded (see difficulty_scores reasons)")
    if not np.all(np.isfinite(d)):
        raise CurriculumError(f"{int((~np.isfinite(d)).sum())} D_overall values are not finite")
    levels = np.arange(1, n_phases + 1, dtype=np.float64) / n_phases
    taus = np.empty(n_phases, np.float64)
    if n_phases > 1:
        taus[:-1] = np.quantile(d, levels[:-1])  # linear interpolation between order statistics
    taus[-1] = d.max()
    return levels, taus


def phase_boundaries(total_steps: int, ratios: Sequence[float]) -> list[int]:
    """Split [0, total_steps) into phases by ratio: [0, b_1, ..., total_steps] with
    b_k = floor(T * sum_{j<=k} r_j / sum r), exact in fractions.

    4:2:1:1 of 10000 steps gives [0, 5000, 7500, 8750, 10000]. The ratios (finite, >= 0,
    summing to > 0) and every run's step count (at least one step per phase) are checked
    where params load (training/params.py).
    """
    exact = [Fraction(r) for r in ratios]
    total = sum(exact)
    bounds, acc = [0], Fraction(0)
    for r in exact:
        acc += r
        bounds.append(math.floor(total_steps * acc / total))
    bounds[-1] = total_steps
    return bounds


def phase_lengths(total_steps: int, ratios: Sequence[float]) -> list[int]:
    """Steps of each phase (see `phase_boundaries`)."""
    bounds = phase_boundaries(total_steps, ratios)
    return [b - a for a, b in zip(bounds, bounds[1:])]


def eligible_counts(
    d_overall: np.ndarray, is_inter: np.ndarray, taus: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Samples with D_overall <= tau_k per phase, split into intra- and inter-clip.

    Returns:
        (intra counts (P,), inter counts (P,)) as int64.
    """
    d = np.asarray(d_overall, np.float64)
    inter = np.asarray(is_inter, bool)
    intra_c, inter_c = np.zeros(len(taus), np.int64), np.zeros(len(taus), np.int64)
    for k, tau in enumerate(np.asarray(taus, np.float64)):  # a few phases: P vectorised passes
        admitted = d <= tau
        total = np.count_nonzero(admitted)
        admitted &= inter
        inter_c[k] = np.count_nonzero(admitted)
        intra_c[k] = total - inter_c[k]
    return intra_c, inter_c


def inter_quota(ratio: float, global_batch_size: int) -> int:
    """ratio x batch in units of 1 / RATIO_DENOMINATOR (an exact integer)."""
    return int(round(ratio * global_batch_size * RATIO_DENOMINATOR))


def inter_draws_before(local_step: int | np.ndarray, quota: int) -> int | np.ndarray:
    """Inter-clip samples drawn in a phase's first `local_step` steps: floor(t x ratio x B).

    The per-step count is the difference of consecutive values, so it is floor or ceil of
    ratio x B and the running share never drifts more than one sample from the ratio.
    """
    return (local_step * quota) // RATIO_DENOMINATOR


@dataclass(frozen=True)
class CurriculumPhase:
    """One phase: its steps, threshold and inter-clip share."""

    phase: int  # 1-based
    start_step: int
    end_step: int  # exclusive
    quantile: float
    tau: float
    inter_clip_ratio: float
    eligible_intra: int
    eligible_inter: int

    @property
    def steps(self) -> int:
        return self.end_step - self.start_step

    def draws_per_step(self, global_batch_size: int) -> tuple[int, int, int, int]:
        """(min inter, max inter, min intra, max intra) samples drawn in one step."""
        rb = Fraction(inter_quota(self.inter_clip_ratio, global_batch_size), RATIO_DENOMINATOR)
        lo, hi = math.floor(rb), math.ceil(rb)
        return lo, hi, global_batch_size - hi, global_batch_size - lo


@dataclass(frozen=True)
class CurriculumSchedule:
    """The whole curriculum: what the trainer and the sampler read (as JSON)."""

    phases: tuple[CurriculumPhase, ...]
    total_steps: int
    global_batch_size: int
    seed: int
    n_samples: int
    n_inter: int
    difficulty_table: str  # object-store key of difficulty_scores
    samples_table: str  # object-store key of training_samples
    weights: dict[str, float]

    def phase_at(self, step: int) -> CurriculumPhase:
        """The phase holding 0-based optimizer step `step`.

        Raises:
            CurriculumError: step outside [0, total_steps).
        """
        if not 0 <= step < self.total_steps:
            raise CurriculumError(f"step {step} is outside the schedule's [0, {self.total_steps})")
        starts = [p.start_step for p in self.phases]
        return self.phases[int(np.searchsorted(starts, step, side="right")) - 1]

    def tau_at(self, step: int) -> float:
        return self.phase_at(step).tau

    def to_json(self) -> dict[str, Any]:
        return {"format": SCHEDULE_FORMAT, **asdict(self), "phases": [asdict(p) for p in self.phases]}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CurriculumSchedule:
        """Rebuild a schedule written by `to_json`.

        Raises:
            CurriculumError: another format, or phases that do not tile [0, total_steps).
        """
        if payload.get("format") != SCHEDULE_FORMAT:
            raise CurriculumError(f"schedule format {payload.get('format')!r} is not {SCHEDULE_FORMAT!r}")
        names = {f.name for f in dataclass_fields(cls)} - {"phases"}
        fields = {k: v for k, v in payload.items() if k in names}
        schedule = cls(phases=tuple(CurriculumPhase(**p) for p in payload["phases"]), **fields)
        ends = [0] + [p.end_step for p in schedule.phases]
        if [p.start_step for p in schedule.phases] != ends[:-1] or ends[-1] != schedule.total_steps:
            raise CurriculumError(f"schedule phases {ends} do not tile [0, {schedule.total_steps})")
        return schedule


def build_schedule(
    d_overall: np.ndarray,
    is_inter: np.ndarray,
    levels: np.ndarray,
    taus: np.ndarray,
    *,
    total_steps: int,
    phase_ratios: Sequence[float],
    inter_clip_ratios: Sequence[float],
    global_batch_size: int,
    seed: int,
    difficulty_table: str,
    samples_table: str,
    weights: dict[str, float],
) -> CurriculumSchedule:
    """Phases, tau and inter-clip ratio per phase, checked against the samples each admits.

    Raises:
        CurriculumError: thresholds and ratios disagree in number; or a phase is empty or
            cannot fill a global batch without repeating a sample: no eligible sample, no
            inter-clip sample while its ratio asks for some (or no intra-clip one while
            it asks for less than 100%), or fewer eligible samples than one step draws.
            The message has the counts.
    """
    n_phases = len(taus)
    if not len(phase_ratios) == len(inter_clip_ratios) == n_phases:
        raise CurriculumError(
            f"{n_phases} thresholds, {len(phase_ratios)} curriculum.phase_ratios and {len(inter_clip_ratios)} "
            "curriculum.inter_clip_ratios: expected one of each per phase (re-run difficulty_quartiles?)"
        )
    if np.any(np.diff(taus) < 0):
        raise CurriculumError(f"thresholds must not decrease from phase to phase, got {list(taus)}")
    if global_batch_size < 1:
        raise CurriculumError(f"training.global_batch must be >= 1, got {global_batch_size}")
    inter = np.asarray(is_inter, bool)
    bounds = phase_boundaries(total_steps, phase_ratios)
    intra_c, inter_c = eligible_counts(d_overall, inter, taus)
    n, n_inter = len(inter), int(np.count_nonzero(inter))
    phases = []
    for k in range(n_phases):
        phase = CurriculumPhase(k + 1, bounds[k], bounds[k + 1], float(levels[k]), float(taus[k]),
                                float(inter_clip_ratios[k]), int(intra_c[k]), int(inter_c[k]))
        _check_phase(phase, global_batch_size, n, n_inter)
        phases.append(phase)
    return CurriculumSchedule(tuple(phases), total_steps, global_batch_size, seed, n, n_inter,
                              difficulty_table, samples_table, dict(weights))


def _check_phase(p: CurriculumPhase, batch: int, n: int, n_inter: int) -> None:
    counts = (f"phase {p.phase} (tau={p.tau:.4f}, steps {p.start_step}-{p.end_step}): eligible intra-clip "
              f"{p.eligible_intra}, inter-clip {p.eligible_inter} of {n} samples ({n_inter} inter-clip)")
    if p.eligible_intra + p.eligible_inter == 0:
        raise CurriculumError(f"empty phase, no sample has D_overall <= tau; {counts}")
    _, inter_hi, _, intra_hi = p.draws_per_step(batch)
    if inter_hi > p.eligible_inter:
        raise CurriculumError(
            f"{counts}; inter-clip ratio {p.inter_clip_ratio} draws up to {inter_hi} inter-clip samples per step "
            f"of {batch}, more than are eligible (a step never repeats a sample)"
        )
    if intra_hi > p.eligible_intra:
        raise CurriculumError(
            f"{counts}; inter-clip ratio {p.inter_clip_ratio} leaves up to {intra_hi} intra-clip samples per step "
            f"of {batch}, more than are eligible (a step never repeats a sample)"
        )


# ---------------------------------------------------------------- DeepSpeed export


def deepspeed_metric(d_overall: np.ndarray, scale: int) -> np.ndarray:
    """DeepSpeed's sampler indexes integer metrics: round(D_overall x scale) as int64."""
    return np.rint(np.asarray(d_overall, np.float64) * scale).astype(np.int64)


def deepspeed_curriculum(
    schedule: CurriculumSchedule, metric: np.ndarray, *, scale: int, index_dir: str, cluster_dir: str,
    metric_name: str = "d_overall",
) -> tuple[dict[str, Any], list[int], list[int]]:
    """The `data_efficiency` section that makes DeepSpeed's sampler follow the same tau steps.

    fixed_discrete with value-based difficulty: phase k admits metric <= round(tau_k x scale).
    Rounding to 1/scale can move samples within 1/(2 scale) of a tau across it, so the
    per-phase eligible counts under the integer metric are returned beside the config. The
    inter-clip ratio has no DeepSpeed equivalent (its batches mix clusters by size).

    Args:
        metric: (S,) deepspeed_metric of the samples, in sampler index order.
        index_dir: folder DeepSpeed reads the index files from (as it will see the path).
        cluster_dir: folder DeepSpeed may write its data clusters to.

    Returns:
        ({"data_efficiency": ...}, difficulty per phase, eligible samples per phase).
    """
    difficulties = [int(round(p.tau * scale)) for p in schedule.phases]
    difficulties[-1] = max(difficulties[-1], int(metric.max()))
    eligible = [int(np.count_nonzero(metric <= d)) for d in difficulties]
    epochs = max(1, math.ceil(schedule.total_steps * schedule.global_batch_size / max(1, len(metric))))
    config = {
        "data_efficiency": {
            "enabled": True,
            "seed": schedule.seed,
            "data_sampling": {
                "enabled": True,
                "num_epochs": epochs,
                "num_workers": 0,
                "curriculum_learning": {
                    "enabled": True,
                    "data_cluster_path": cluster_dir,
                    "curriculum_metrics": {
                        metric_name: {
                            "index_to_sample_path": f"{index_dir}/{metric_name}_index_to_sample",
                            "index_to_metric_path": f"{index_dir}/{metric_name}_index_to_metric",
                            "difficulty_type": "value",
                            "clustering_type": "schedule_based",
                            "min_difficulty": difficulties[0],
                            "max_difficulty": difficulties[-1],
                            "schedule_type": "fixed_discrete",
                            "schedule_config": {
                                "difficulty": difficulties,
                                "max_step": [p.end_step for p in schedule.phases[:-1]],
                            },
                        }
                    },
                },
            },
        }
    }
    return config, difficulties, eligible


def write_deepspeed_index(metric: np.ndarray, folder: Path, metric_name: str = "d_overall") -> list[Path]:
    """Write DeepSpeed's index_to_sample / index_to_metric files (its DataAnalyzer layout:
    one row per distinct metric value, ascending) with DeepSpeed's own mmap builder.

    Returns:
        The files written (.bin and .idx of both).
    """
    from deepspeed.runtime.data_pipeline.data_sampling.utils import (
        close_mmap_dataset_builder,
        create_mmap_dataset_builder,
        find_fit_int_dtype,
    )

    metric = np.asarray(metric, np.int64)
    order = np.argsort(metric, kind="stable")
    values, starts = np.unique(metric[order], return_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    sample_prefix = str(folder / f"{metric_name}_index_to_sample")
    metric_prefix = str(folder / f"{metric_name}_index_to_metric")
    samples = create_mmap_dataset_builder(sample_prefix, find_fit_int_dtype(0, max(1, len(metric))))
    samples.add_items(np.split(order, starts[1:]))
    close_mmap_dataset_builder(samples, sample_prefix)
    metrics = create_mmap_dataset_builder(metric_prefix, find_fit_int_dtype(int(values.min()), int(values.max())))
    metrics.add_items([v.reshape(1) for v in values])
    close_mmap_dataset_builder(metrics, metric_prefix)
    return [Path(f"{prefix}.{ext}") for prefix in (sample_prefix, metric_prefix) for ext in ("bin", "idx")]


# ---------------------------------------------------------------- histogram


def difficulty_histogram(d_overall: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts (bins,), edges (bins + 1,)) of D_overall."""
    return np.histogram(np.asarray(d_overall, np.float64), bins=bins)


def histogram_png(counts: np.ndarray, edges: np.ndarray, taus: Sequence[float], levels: Sequence[float]) -> bytes:
    """A bar chart of D_overall with each phase's tau drawn as a labelled vertical line."""
    from core.images import figure_png, pyplot

    fig, ax = pyplot().subplots(figsize=(7, 3.2), dpi=100)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#8aa9c8", edgecolor="#4a6a8a")
    top = ax.get_ylim()[1]
    for k, (tau, level) in enumerate(zip(taus, levels), start=1):
        ax.axvline(tau, color="#c0392b", lw=1.2, ls="--")
        # staggered so that labels of close thresholds do not overprint
        ax.text(tau, top * (0.97 - 0.16 * ((k - 1) % 4)), f" phase {k}: Q{level:.2f}, tau={tau:.3f}",
                color="#c0392b", fontsize=7, va="top")
    ax.set_xlabel("D_overall")
    ax.set_ylabel("samples")
    ax.set_title("Difficulty of the training samples and the curriculum thresholds")
    fig.tight_layout()
    return figure_png(fig)
