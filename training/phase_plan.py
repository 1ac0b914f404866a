"""The data plan of one curriculum phase for a launcher outside Dagster.

``reactid phase-plan --phase K --out FILE`` writes what ``training.launch --data cache
--schedule FILE`` reads: one JSON list per line, the ``global_batch`` sample ids of each
step of phase K, in step order. The ids come from the materialised curriculum schedule
through the same sampler ``curriculum_phase`` uses (``training.sampler.open_sampler``), so a
multi-node run of phase K sees exactly the batches the Dagster stage would.

The plan also names the checkpoint folder phase K starts from when it can be found: the
previous phase's output folder of an earlier launch (``previous_output``), or the
checkpoint ``curriculum_phase_<K-1>`` recorded in the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import StageInputError


@dataclass(frozen=True)
class PhasePlan:
    """The sample ids and start checkpoint of one curriculum phase.

    Attributes:
        phase: 1-based phase number.
        name: stage name (``curriculum_phase_<k>``), the name ``training.launch --phase`` takes.
        start_step, end_step: the phase's 0-based global steps ``[start_step, end_step)``.
        step_ids: ``end_step - start_step`` lists of ``global_batch`` sample ids.
        start_checkpoint: local checkpoint folder of the previous phase, or None when none is
            known (phase 1 starts from the preset's weights).
        note: why a known previous checkpoint is not a local folder, if that is the case.
    """

    phase: int
    name: str
    start_step: int
    end_step: int
    step_ids: list[list[str]]
    start_checkpoint: Path | None
    note: str | None = None


def write_step_ids(path: str | Path, step_ids: Sequence[Sequence[str]]) -> None:
    """Write one JSON list of sample ids per line (the ``--schedule`` file format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(list(ids)) + "\n" for ids in step_ids))


def read_step_ids(path: str | Path) -> list[list[str]]:
    """Read a file written by ``write_step_ids``.

    Raises:
        ValueError: a line is not a JSON list of strings (names the file and line).
    """
    steps = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        ids = json.loads(line)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{path}:{number}: expected a JSON list of sample ids, got {line[:80]!r}")
        steps.append(ids)
    return steps


def phase_plan(store: Any, phase: int, *, previous_output: Path | None = None) -> PhasePlan:
    """Sample ids of every step of curriculum phase ``phase`` and where it starts from.

    Args:
        store: the object store holding the curriculum schedule and the latent cache.
        phase: 1-based phase number.
        previous_output: output folder of phase ``phase - 1`` run by ``training.launch``
            (``checkpoints/`` and ``metrics.json`` inside); used when it holds a checkpoint,
            else the checkpoint recorded by the ``curriculum_phase_<k-1>`` stage is looked up.

    Raises:
        StageInputError: the schedule has no such phase; a shard's quality gates no longer
            pass; the latent cache has not run or lacks a planned sample; or the previous
            phase's checkpoint ended at another step than this phase starts at.
        CheckpointError: the previous output's checkpoint folder is inconsistent.
    """
    from training.run_stages import LATENT_INDEX_KEY, check_training_shards, phase_name
    from training.sampler import open_sampler
    from training.stages import SCHEDULE_KEY

    check_training_shards(store)
    sampler = open_sampler(store, SCHEDULE_KEY)
    phases = sampler.schedule.phases
    if not 1 <= phase <= len(phases):
        raise StageInputError(f"the curriculum schedule has phases 1-{len(phases)}, not {phase}")
    current = phases[phase - 1]
    step_ids = [sampler.global_sample_ids(step) for step in range(current.start_step, current.end_step)]
    _check_cached(store, LATENT_INDEX_KEY, step_ids)
    start, note = None, None
    if phase > 1:
        start, note = _previous_checkpoint(store, phase_name(phase - 1), current.start_step, previous_output)
    return PhasePlan(phase, phase_name(phase), current.start_step, current.end_step, step_ids, start, note)


def _check_cached(store: Any, index_key: str, step_ids: list[list[str]]) -> None:
    from training.latents import read_index

    if not store.exists(index_key):
        raise StageInputError(f"latent_cache has not run: {store.uri(index_key)} is missing")
    cached = read_index(store, index_key).samples
    missing = sorted({i for ids in step_ids for i in ids} - set(cached))
    if missing:
        raise StageInputError(
            f"{len(missing)} planned samples are not in the latent cache {store.uri(index_key)} "
            f"(first: {missing[:3]}); re-run latent_cache"
        )


def _previous_checkpoint(
    store: Any, previous: str, start_step: int, previous_output: Path | None
) -> tuple[Path | None, str | None]:
    """(local checkpoint folder, note) of the phase before one starting at ``start_step``."""
    from core.stage import AGGREGATE, recorded_metadata
    from training.checkpoint import latest_tag
    from training.phase import CHECKPOINTS

    if previous_output is not None and latest_tag(previous_output / CHECKPOINTS) is not None:
        metrics = previous_output / "metrics.json"
        ended = json.loads(metrics.read_text()).get("global_step") if metrics.is_file() else None
        if ended != start_step:
            raise StageInputError(
                f"{previous} in {previous_output} ended at step {ended} ({metrics}), but this phase "
                f"starts at step {start_step} of the schedule: finish {previous} first"
            )
        return previous_output / CHECKPOINTS, None
    recorded = recorded_metadata(store, previous, AGGREGATE)
    if not recorded:
        return None, None
    if recorded.get("global_step") != start_step:
        raise StageInputError(
            f"{previous} recorded in the store ended at step {recorded.get('global_step')}, but this "
            f"phase starts at step {start_step} of the schedule: re-run {previous}"
        )
    key = recorded["checkpoint_dir"]
    local = store.filesystem_path(key)
    if local is not None:
        return Path(local), None
    return None, (f"{previous}'s checkpoint is {store.uri(key)}: copy that folder to a filesystem "
                  "every node sees and pass it as --start-checkpoint")
