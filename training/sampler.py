"""The curriculum sampler: which samples make up the global batch of every optimizer step.

At global step t in phase k it draws only samples with D_overall <= tau_k, with
floor/ceil(r_k x B) of the B samples from the inter-clip pool (r_k the phase's inter-clip
ratio, the running share exact to one sample), and the rest from the intra-clip pool.

Properties, each tested:
- eligible only: every index drawn at step t has D_overall <= tau(t);
- no repeats inside a step, and none inside an epoch of a pool: each pool is walked in a
  seeded permutation, an epoch ends at the last step whose draws still fit, so a step never
  straddles two epochs (the few samples left over at an epoch's end wait for the next one);
- deterministic and stateless: the batch of step t is a function of (seed, schedule,
  scores, t) alone. Resuming at step t is calling `global_batch(t)`; nothing is carried
  from step to step, so there is no sampler state to save or to get wrong;
- rank sharding: every rank computes the same global batch and takes its contiguous slice of
  B / world_size indices; no communication, no overlap between ranks. Inter-clip samples
  sit at evenly spaced slots of the batch, so each rank's slice gets its share of them.

Why this is written here and not taken from DeepSpeed (`DeepSpeedDataSampler`, 0.19):
its curriculum indexes integer metrics in mmap files, and value-based lookups loop over the
distinct values in Python; rank 0 builds the clusters and broadcasts every batch, so indices
need a process group; its checkpoint saves `np.random.get_state()` (the legacy global RNG)
while it draws from its own Generator, so a resumed run continues with a different sequence
(open issue #8405); batches come out short when clusters run dry (#8520); and it mixes
clusters by their size, with no way to hold a share of inter-clip samples per batch. The
schedule stage still exports the equivalent DeepSpeed config for teams that use its sampler.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from training.curriculum import (
    CurriculumError,
    CurriculumPhase,
    CurriculumSchedule,
    eligible_counts,
    inter_draws_before,
    inter_quota,
)

INTRA, INTER = 0, 1  # stream ids in the RNG keys


def interleave(intra: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """One global batch with the n inter-clip samples spread evenly over its B slots (slot
    floor((2j + 1) B / 2n) for the j-th), so that every rank's slice gets its share."""
    size = len(intra) + len(inter)
    slots = np.zeros(size, bool)
    if len(inter):
        slots[((2 * np.arange(len(inter)) + 1) * size) // (2 * len(inter))] = True
    out = np.empty(size, np.int64)
    out[slots] = inter
    out[~slots] = intra
    return out


@dataclass
class _Stream:
    """One pool of a phase (intra- or inter-clip) walked epoch by epoch."""

    pool: np.ndarray  # (M,) sample indices, ascending
    before: Callable[[int], int]  # local step t -> samples this stream drew in the phase's steps [0, t)
    length: int  # steps in the phase
    epoch_starts: list[int]  # local steps at which epochs start (extended lazily)
    perm_epoch: int = -1
    perm: np.ndarray | None = None

    def epoch_of(self, t: int) -> int:
        while self.epoch_starts[-1] <= t and self.epoch_starts[-1] < self.length:
            self.epoch_starts.append(self._next_start(self.epoch_starts[-1]))
        return bisect_right(self.epoch_starts, t) - 1

    def _next_start(self, s: int) -> int:
        """The first step whose draws would no longer fit in the epoch that starts at s."""
        budget = self.before(s) + len(self.pool)
        lo, hi = s + 1, self.length  # before(s + 1) - before(s) <= M was checked up front
        if self.before(hi) <= budget:
            return hi
        while hi - lo > 1:  # invariant: before(lo) <= budget < before(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.before(mid) <= budget else (lo, mid)
        return lo


class CurriculumSampler:
    """Global and per-rank batches of sample indices for every step of a schedule.

    Args:
        schedule: the curriculum (phases, tau, inter-clip ratios, batch, seed).
        d_overall: (S,) D_overall of the usable samples, in the order indices refer to (the
            `ok` rows of difficulty_scores, as `load_curriculum` returns them).
        is_inter: (S,) True for inter-clip samples (D_sam = 1).
        rank, world_size: this data-parallel rank and the number of ranks; the global batch
            must split evenly.
        sample_ids: (S,) ids of the samples (for `global_sample_ids`), in the same order.

    Raises:
        CurriculumError: the arrays do not match the schedule (different counts per phase),
            or the batch does not split over the ranks.
    """

    def __init__(self, schedule: CurriculumSchedule, d_overall: np.ndarray, is_inter: np.ndarray, *,
                 rank: int = 0, world_size: int = 1, sample_ids: np.ndarray | None = None) -> None:
        self.schedule = schedule
        self.sample_ids = None if sample_ids is None else np.asarray(sample_ids, dtype=object)
        self.d_overall = np.asarray(d_overall, np.float64)
        self.is_inter = np.asarray(is_inter, bool)
        if self.d_overall.shape != self.is_inter.shape or self.d_overall.ndim != 1:
            raise CurriculumError(f"d_overall {self.d_overall.shape} and is_inter {self.is_inter.shape} differ")
        if self.sample_ids is not None and self.sample_ids.shape != self.d_overall.shape:
            raise CurriculumError(f"{len(self.sample_ids)} sample ids for {len(self.d_overall)} scores")
        if world_size < 1 or not 0 <= rank < world_size:
            raise CurriculumError(f"rank {rank} is not in [0, world_size={world_size})")
        if schedule.global_batch_size % world_size:
            raise CurriculumError(
                f"global batch {schedule.global_batch_size} does not split over {world_size} data-parallel ranks"
            )
        self.rank, self.world_size = rank, world_size
        self.local_size = schedule.global_batch_size // world_size
        self._check_counts()
        self._phase: CurriculumPhase | None = None
        self._streams: tuple[_Stream, _Stream] | None = None

    def _check_counts(self) -> None:
        taus = np.array([p.tau for p in self.schedule.phases])
        intra, inter = eligible_counts(self.d_overall, self.is_inter, taus)
        expected = [(p.eligible_intra, p.eligible_inter) for p in self.schedule.phases]
        found = list(zip(intra.tolist(), inter.tolist()))
        if found != expected:
            raise CurriculumError(
                f"the scores give eligible (intra, inter) per phase {found}, the schedule recorded {expected}: "
                "the difficulty table changed since the schedule was built (re-run curriculum_schedule)"
            )

    # ------------------------------------------------------------ phases and pools

    def _enter(self, phase: CurriculumPhase) -> tuple[_Stream, _Stream]:
        if self._phase is not phase:
            eligible = self.d_overall <= phase.tau
            batch = self.schedule.global_batch_size
            quota = inter_quota(phase.inter_clip_ratio, batch)

            def inter_before(t: int) -> int:
                return inter_draws_before(t, quota)

            def intra_before(t: int) -> int:
                return t * batch - inter_draws_before(t, quota)

            self._streams = (
                _Stream(np.flatnonzero(eligible & ~self.is_inter), intra_before, phase.steps, [0]),
                _Stream(np.flatnonzero(eligible & self.is_inter), inter_before, phase.steps, [0]),
            )
            self._phase = phase
        return self._streams

    def _draw(self, phase: CurriculumPhase, stream_id: int, stream: _Stream, t: int) -> np.ndarray:
        n = stream.before(t + 1) - stream.before(t)
        if n == 0:
            return np.zeros(0, np.int64)
        epoch = stream.epoch_of(t)
        if stream.perm_epoch != epoch:
            rng = np.random.default_rng([self.schedule.seed, phase.phase, stream_id, epoch])
            stream.perm, stream.perm_epoch = rng.permutation(len(stream.pool)), epoch
        a = stream.before(t) - stream.before(stream.epoch_starts[epoch])
        return stream.pool[stream.perm[a:a + n]]

    # ------------------------------------------------------------ batches

    def global_batch(self, step: int) -> np.ndarray:
        """(B,) int64 sample indices of 0-based optimizer step `step`, over all ranks."""
        phase = self.schedule.phase_at(step)
        intra, inter = self._enter(phase)
        t = step - phase.start_step
        return interleave(self._draw(phase, INTRA, intra, t), self._draw(phase, INTER, inter, t))

    def global_sample_ids(self, step: int) -> list[str]:
        """The B sample ids of step `step` (what `training.phase.run_phase` takes per step)."""
        if self.sample_ids is None:
            raise CurriculumError("this sampler was built without sample_ids")
        return self.sample_ids[self.global_batch(step)].tolist()

    def local_batch(self, step: int) -> np.ndarray:
        """(B / world_size,) this rank's slice of `global_batch(step)`."""
        start = self.rank * self.local_size
        return self.global_batch(step)[start:start + self.local_size]

    def iter_batches(self, start_step: int = 0, stop_step: int | None = None
                     ) -> Iterator[tuple[int, np.ndarray]]:
        """(step, this rank's indices) for steps [start_step, stop_step); resume by passing
        the first step not yet trained."""
        stop = self.schedule.total_steps if stop_step is None else stop_step
        for step in range(start_step, stop):
            yield step, self.local_batch(step)


def load_curriculum(store, schedule_key: str) -> tuple[CurriculumSchedule, np.ndarray, np.ndarray, np.ndarray]:
    """Read a schedule JSON and the scores it was built from.

    Returns:
        (schedule, sample_ids (S,) object, d_overall (S,), is_inter (S,)), in sampler index order.
    """
    import pyarrow.compute as pc

    from core.tables import read_json, read_table

    schedule = CurriculumSchedule.from_json(read_json(store, schedule_key))
    table = read_table(store, schedule.difficulty_table, needed_by="the curriculum sampler")
    table = table.filter(pc.equal(table["status"], "ok"))
    ids = table["sample_id"].to_numpy(zero_copy_only=False)
    d = table["d_overall"].to_numpy()
    inter = table["d_sam"].to_numpy() == 1
    return schedule, ids, d, inter


def open_sampler(store, schedule_key: str, *, rank: int = 0, world_size: int = 1) -> CurriculumSampler:
    """The trainer's entry point: the sampler of `schedule_key` in `store`, with sample ids."""
    schedule, ids, d, inter = load_curriculum(store, schedule_key)
    return CurriculumSampler(schedule, d, inter, rank=rank, world_size=world_size, sample_ids=ids)
