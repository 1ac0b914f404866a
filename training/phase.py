"""One training phase: (start checkpoint, steps, sample ids per step) -> (checkpoint,
exported model, metrics).

A curriculum phase, an ablation run and the demo run are all this function with
different inputs. Every rank runs it with the same arguments:

- ``step_sample_ids`` gives, per optimizer step, the ``global_batch`` sample ids of the
  whole job; each rank takes its contiguous slice and splits it into micro-batches. It is
  either a function of the 0-based global step (the curriculum sampler's
  ``global_batch(t)``: stateless, so a resume just asks for the next step) or an iterable
  over this phase's steps, which must be deterministic (a resume skips the steps taken).
- ``<output_dir>/checkpoints`` holds the phase's checkpoints. If it already has one, the
  phase resumes from it (same phase only); otherwise it starts from
  ``start_checkpoint`` (the previous phase's checkpoint folder: weights, optimizer, LR
  schedule and global step carry over) or from the preset's initial weights.
- ``<output_dir>/model`` is the exported transformer (``save_pretrained``),
  ``metrics.json`` the phase summary and ``steps.jsonl`` one record per step (steps logged
  after the checkpoint a run starts from are dropped first, so each step appears once);
  ``ranks/rank_<r>.json`` has each rank's step losses and a digest of its parameters
  (data-parallel ranks must agree on both).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.batches import BatchSource
from training.params import TrainingParams
from training.trainer import StepRecord

# Sample ids of one optimizer step, by 0-based global step, or one entry per phase step.
StepSampleIds = Callable[[int], Sequence[str]] | Iterable[Sequence[str]]

CHECKPOINTS = "checkpoints"
MODEL = "model"


@dataclass(frozen=True)
class PhaseSpec:
    """What a phase is asked to do.

    Attributes:
        name: phase name (``curriculum_phase_1``); a checkpoint folder belongs to one name.
        steps: optimizer steps of this phase.
        output_dir: where checkpoints, the exported model and metrics go.
        start_checkpoint: previous phase's checkpoint folder (its ``latest`` tag is
            loaded), or None to start from the preset's initial weights.
        variant: model variant (``models.variants``); default the params' ``variant``.
    """

    name: str
    steps: int
    output_dir: Path
    start_checkpoint: Path | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"phase {self.name!r}: steps must be positive, got {self.steps}")


@dataclass(frozen=True)
class PhaseResult:
    """What a phase produced.

    Attributes:
        checkpoint_dir: the phase's checkpoint folder (start of the next phase).
        checkpoint: its final tag folder.
        model_dir: exported transformer.
        start_step, global_step: global steps before and after the phase.
        resumed_from: the checkpoint loaded at start, if any.
        records: steps run by this call (fewer than ``steps`` after a resume).
        metrics: the summary also written to ``metrics.json``.
    """

    name: str
    checkpoint_dir: Path
    checkpoint: Path
    model_dir: Path
    start_step: int
    global_step: int
    resumed_from: str | None
    records: list[StepRecord] = field(repr=False)
    metrics: dict[str, Any]


def rank_micro_batches(
    step_ids: Iterable[Sequence[str]],
    batch_source: BatchSource,
    *,
    global_batch: int,
    micro_batch: int,
    rank: int,
    world_size: int,
) -> Iterator[dict[str, Any]]:
    """This rank's micro-batches from the job's per-step sample ids.

    Raises:
        ValueError: a step has not exactly ``global_batch`` ids.
    """
    per_rank = global_batch // world_size
    for index, ids in enumerate(step_ids):
        ids = list(ids)
        if len(ids) != global_batch:
            raise ValueError(
                f"step {index} of the sampler has {len(ids)} sample ids; "
                f"the global batch is {global_batch}"
            )
        mine = ids[rank * per_rank : (rank + 1) * per_rank]
        for start in range(0, per_rank, micro_batch):
            yield batch_source(mine[start : start + micro_batch])


def run_phase(
    spec: PhaseSpec,
    training: TrainingParams,
    step_sample_ids: StepSampleIds,
    batch_source: BatchSource,
    *,
    null_prompt_embeds: Any = None,
    on_step: Callable[[StepRecord], None] | None = None,
    backend: str | None = None,
) -> PhaseResult:
    """Train one phase under DeepSpeed, checkpointing and exporting as it goes.

    Args:
        spec: name, steps, output folder, start checkpoint, variant.
        training: the ``training`` params section (effective values are used).
        step_sample_ids: the global batch's sample ids per step: a function of the
            0-based global step, or an iterable over this phase's steps.
        batch_source: ids of one micro-batch -> batch (``training.batches``).
        null_prompt_embeds: ``(L, D)`` embedding of the empty prompt, for CFG dropout
            (``EmbeddingCache.null_prompt_embeds``); required when ``cfg_dropout > 0``.
        on_step: called after each step on every rank.
        backend: process-group backend (default gloo on CPU, nccl on GPU).

    Returns:
        The ``PhaseResult``; the same files on disk.

    Raises:
        NonFiniteLossError: the loss diverged (names the step and the last checkpoint).
        CheckpointError: a checkpoint to start or resume from is missing or corrupt.
    """
    from models.presets import build_transformer, get_preset
    from training.checkpoint import export_model, latest_tag, load_checkpoint, save_checkpoint
    from training.deepspeed_config import batch_layout, deepspeed_config
    from training.distributed import init_distributed, is_main_process
    from training.trainer import CheckpointPolicy, LossOptions, build_engine, train_steps

    run = training.effective()
    preset = get_preset(run.preset)
    variant = spec.variant or run.variant
    info = init_distributed(backend)
    set_cpu_threads(run.cpu_threads)
    layout = batch_layout(run.global_batch, run.micro_batch, info.world_size)
    engine = build_engine(
        build_transformer(run.preset, variant, seed=run.seed),
        deepspeed_config(training, info.world_size),
        backend=backend,
    )
    checkpoint_dir = spec.output_dir / CHECKPOINTS

    # 1. Resume this phase, or start from the previous one, or from scratch
    if latest_tag(checkpoint_dir) is not None:
        loaded = load_checkpoint(engine, checkpoint_dir)
        if loaded.client_state.get("phase") != spec.name:
            raise ValueError(
                f"{checkpoint_dir} holds phase {loaded.client_state.get('phase')!r}, "
                f"not {spec.name!r}: give each phase its own output_dir"
            )
        start_step = int(loaded.client_state["phase_start_step"])
    elif spec.start_checkpoint is not None:
        loaded = load_checkpoint(engine, spec.start_checkpoint)
        start_step = loaded.global_step
    else:
        loaded, start_step = None, 0
    # A run killed before its next checkpoint logged steps that are about to be re-run; a
    # fresh start (no checkpoint of this phase yet) may find such steps too.
    _truncate_step_log(spec.output_dir / "steps.jsonl", engine.global_steps)
    done = engine.global_steps - start_step

    # 2. Sample ids from where this phase left off
    if callable(step_sample_ids):
        sampler = step_sample_ids
        ids: Iterable[Sequence[str]] = (
            sampler(step) for step in itertools.count(engine.global_steps)
        )
    else:
        ids = itertools.islice(step_sample_ids, done, None)
    micro_batches = rank_micro_batches(
        ids, batch_source, global_batch=layout.global_batch, micro_batch=layout.micro_batch,
        rank=info.rank, world_size=info.world_size,
    )

    def client_state(step: int) -> dict[str, Any]:
        return {"phase": spec.name, "phase_start_step": start_step, "variant": variant,
                "preset": run.preset}

    # 3. Train the remaining steps
    policy = CheckpointPolicy(checkpoint_dir, run.checkpoint_every, client_state,
                              last=None if loaded is None else str(loaded.path))
    options = LossOptions(
        flow_shift=preset.flow_shift,
        mask_loss_weight=run.mask_loss_weight,
        cfg_dropout=run.cfg_dropout,
        null_prompt_embeds=null_prompt_embeds,
        seed=run.seed,
    )
    started = time.perf_counter()
    steps_log = spec.output_dir / "steps.jsonl"
    spec.output_dir.mkdir(parents=True, exist_ok=True)

    def record_step(record: StepRecord) -> None:
        if is_main_process():
            with open(steps_log, "a") as fh:
                fh.write(json.dumps({"phase": spec.name, **asdict(record)}) + "\n")
        if on_step is not None:
            on_step(record)

    records = train_steps(engine, micro_batches, max(0, spec.steps - done), record_step,
                          options=options, checkpoints=policy)
    seconds = time.perf_counter() - started

    # 4. Final checkpoint and export
    final_tag = checkpoint_dir / f"step_{engine.global_steps:08d}"
    if latest_tag(checkpoint_dir) != final_tag.name:
        final_tag = save_checkpoint(engine, checkpoint_dir,
                                    client_state=client_state(engine.global_steps))
    model_dir = export_model(
        engine, spec.output_dir / MODEL,
        metadata={"phase": spec.name, "variant": variant, "preset": run.preset},
    )
    metrics = phase_metrics(spec, records, start_step, engine.global_steps, seconds, variant)
    rank_dir = spec.output_dir / "ranks"
    rank_dir.mkdir(exist_ok=True)
    (rank_dir / f"rank_{info.rank:05d}.json").write_text(json.dumps({
        "rank": info.rank,
        "world_size": info.world_size,
        "losses": [r.loss for r in records],
        "parameter_digest": parameter_digest(engine),
    }))
    if is_main_process():
        (spec.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return PhaseResult(
        name=spec.name,
        checkpoint_dir=checkpoint_dir,
        checkpoint=final_tag,
        model_dir=model_dir,
        start_step=start_step,
        global_step=engine.global_steps,
        resumed_from=None if loaded is None else str(loaded.path),
        records=records,
        metrics=metrics,
    )


def set_cpu_threads(threads: int) -> None:
    """Set torch's intra-op threads for a run without GPUs (0 keeps torch's default)."""
    import torch

    if threads > 0 and not torch.cuda.is_available():
        torch.set_num_threads(threads)


def parameter_digest(engine: Any) -> str | None:
    """SHA-256 over this rank's full parameters (None under ZeRO-3, where a rank holds a shard)."""
    import hashlib

    import torch

    if engine.zero_optimization_stage() == 3:
        return None
    digest = hashlib.sha256()
    for name, param in sorted(engine.module.named_parameters()):
        digest.update(name.encode())
        # The raw bytes, one parameter at a time (any dtype, bf16 included).
        digest.update(param.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _truncate_step_log(path: Path, global_step: int) -> None:
    """Drop logged steps after ``global_step`` (they are about to be re-run)."""
    from training.distributed import is_main_process

    if not path.is_file() or not is_main_process():
        return
    lines = [line for line in path.read_text().splitlines()
             if line and json.loads(line)["step"] <= global_step]
    path.write_text("".join(line + "\n" for line in lines))


def phase_metrics(
    spec: PhaseSpec, records: Sequence[StepRecord], start_step: int, global_step: int,
    seconds: float, variant: str,
) -> dict[str, Any]:
    """Summary of a phase run for asset metadata and DVC metrics."""
    losses = [r.loss for r in records]
    tail = losses[-max(1, len(losses) // 4):] if losses else []
    samples = sum(r.samples for r in records)
    return {
        "phase": spec.name,
        "variant": variant,
        "start_step": start_step,
        "global_step": global_step,
        "steps_run": len(records),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "tail_mean_loss": sum(tail) / len(tail) if tail else None,
        "final_lr": records[-1].lr if records else None,
        "samples": samples,
        "cfg_dropped_share": sum(r.cfg_dropped for r in records) / samples if samples else None,
        "seconds": round(seconds, 3),
        "samples_per_second": round(samples / seconds, 3) if seconds > 0 and samples else None,
        "data_share": (sum(r.data_seconds for r in records) / sum(r.seconds for r in records))
        if records else None,
    }
