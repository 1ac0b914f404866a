"""The DeepSpeed training loop over the ReactID loss.

One *step* is one optimizer step: ``gradient_accumulation`` micro-batches per rank, each
through ``models.losses.reactid_training_loss``. Everything random in a step is drawn
from generators seeded by ``(seed, global step, rank, micro-batch)``: the flow-matching
noise and noise levels, and the classifier-free-guidance dropout. A resumed run
therefore draws exactly what the uninterrupted run drew, whatever else touched the
global RNGs in between.

The loss of every micro-batch is summed over ranks before its backward pass, so a
non-finite loss on any rank stops every rank at the same step (no rank is left waiting
in a collective), and no checkpoint is written after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ReactIDError


class NonFiniteLossError(ReactIDError):
    """The loss became NaN or infinite; training stopped before that step's update.

    Attributes:
        step: the global optimizer step (1-based) whose loss was not finite.
        last_checkpoint: the newest checkpoint written before it (resume from there), or None.
    """

    def __init__(self, step: int, value: float, last_checkpoint: str | None) -> None:
        self.step, self.value, self.last_checkpoint = step, value, last_checkpoint
        where = last_checkpoint or "none written yet"
        super().__init__(
            f"loss is {value} at step {step}; training stopped before its update. "
            f"Last good checkpoint: {where}"
        )


class DataExhaustedError(ReactIDError):
    """The batch iterable ended before the requested number of steps."""


@dataclass(frozen=True)
class LossOptions:
    """What the loss and its conditioning dropout need besides the batch.

    Attributes:
        flow_shift: shift of the training noise-level distribution (the preset's).
        mask_loss_weight: weight of the focal subject-mask loss.
        cfg_dropout: probability that a sample loses its prompt and timeline.
        null_prompt_embeds: ``(L, text_dim)`` embedding a dropped prompt is replaced by
            (the encoded empty prompt, as the sampler's unconditional pass sees it);
            required when ``cfg_dropout > 0``.
        seed: root of every per-step random draw.
    """

    flow_shift: float
    mask_loss_weight: float = 1.0
    cfg_dropout: float = 0.0
    null_prompt_embeds: Any = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.cfg_dropout <= 1.0:
            raise ValueError(f"cfg_dropout must be in [0, 1], got {self.cfg_dropout}")
        if self.cfg_dropout > 0 and self.null_prompt_embeds is None:
            raise ValueError("cfg_dropout > 0 needs null_prompt_embeds (the encoded empty prompt)")


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step as every rank saw it (losses averaged over micro-batches and ranks).

    Attributes:
        step: global optimizer step after this update (1-based).
        loss, flow, mask: total, flow-matching and focal mask loss (mask None if unsupervised).
        lr: learning rate the update used.
        grad_norm: global gradient norm before clipping, when DeepSpeed computed one.
        samples: samples this step consumed over all ranks.
        cfg_dropped: samples whose prompt and timeline were dropped, over all ranks.
        seconds: wall time of the step on this rank.
        data_seconds: part of ``seconds`` spent waiting for batches.
    """

    step: int
    loss: float
    flow: float
    mask: float | None
    lr: float
    grad_norm: float | None
    samples: int
    cfg_dropped: int
    seconds: float
    data_seconds: float


@dataclass
class CheckpointPolicy:
    """When and where ``train_steps`` writes resumable checkpoints.

    Attributes:
        directory: DeepSpeed checkpoint folder (one tag per step inside).
        every: write after every global step that is a multiple of this.
        client_state: called with the global step; returns the caller's state to store
            (sampler position, phase name).
        last: the newest checkpoint (updated by ``train_steps``).
    """

    directory: Path
    every: int
    client_state: Callable[[int], dict[str, Any]] = field(default=lambda step: {})
    last: str | None = None


class LossModelView:
    """The engine as ``reactid_training_loss`` expects a model: callable, with the
    wrapped module's ``config`` and ``dtype``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.config = engine.module.config
        self.dtype = next(engine.module.parameters()).dtype

    def __call__(self, **kwargs: Any) -> Any:
        return self.engine(**kwargs)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (numpy's SeedSequence; stable across runs)."""
    import numpy as np

    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32)
               .astype(np.uint64).dot(np.array([1, 2**31], dtype=np.uint64)))


def build_engine(model: Any, config: dict[str, Any], *, backend: str | None = None) -> Any:
    """``deepspeed.initialize`` over the trainable parameters of ``model``.

    Returns:
        The ``DeepSpeedEngine`` (optimizer and LR scheduler inside).
    """
    import deepspeed

    from training.distributed import init_distributed

    init_distributed(backend)
    parameters = [p for p in model.parameters() if p.requires_grad]
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=parameters, config=config)
    return engine


def apply_cfg_dropout(
    batch: dict[str, Any], probability: float, generator: Any, null_prompt_embeds: Any
) -> tuple[dict[str, Any], Any]:
    """Drop the prompt and the timeline of each sample with ``probability``.

    A dropped sample's prompt becomes ``null_prompt_embeds`` and its timeline becomes
    empty (all action slots invalid), which is what the sampler's unconditional pass
    sees; references and mask supervision stay.

    Args:
        batch: a training batch (``models.losses`` keys); not modified.
        generator: CPU ``torch.Generator`` for the draws.
        null_prompt_embeds: ``(L, text_dim)``.

    Returns:
        The new batch and the ``(B,)`` bool tensor of dropped samples.
    """
    import torch

    size = batch["latents"].shape[0]
    dropped = torch.rand(size, generator=generator) < probability
    if probability <= 0 or not bool(dropped.any()):
        return batch, dropped
    out = dict(batch)
    prompts = batch["prompt_embeds"]
    null = torch.as_tensor(null_prompt_embeds).to(prompts.device, prompts.dtype)
    if tuple(null.shape) != tuple(prompts.shape[1:]):
        raise ValueError(
            f"null_prompt_embeds {tuple(null.shape)} does not match prompt_embeds per sample "
            f"{tuple(prompts.shape[1:])}"
        )
    rows = dropped.to(prompts.device)
    out["prompt_embeds"] = torch.where(rows.view(-1, 1, 1), null.unsqueeze(0), prompts)
    if "timeline_embeds" in batch:
        embeds = batch["timeline_embeds"]
        out["timeline_embeds"] = embeds.masked_fill(rows.view(-1, 1, 1, 1), 0.0)
        mask = batch.get("timeline_token_mask")
        if mask is None:
            mask = torch.ones(embeds.shape[:3], dtype=torch.bool, device=embeds.device)
        out["timeline_token_mask"] = mask & ~rows.view(-1, 1, 1)
        if "action_subjects" in batch:
            out["action_subjects"] = batch["action_subjects"].masked_fill(rows.view(-1, 1), -1)
        if "action_spans" in batch:
            out["action_spans"] = batch["action_spans"].masked_fill(rows.view(-1, 1, 1), 0.0)
    return out, dropped


# Conditioning inputs enter the transformer in its precision (bf16 under DeepSpeed's bf16);
# latents, noise and masks stay as given: the loss forms its targets from them in float.
MODEL_DTYPE_KEYS: tuple[str, ...] = ("prompt_embeds", "timeline_embeds", "reference_latents")


def _to_device(batch: dict[str, Any], device: Any, dtype: Any) -> dict[str, Any]:
    return {
        key: value.to(device, dtype) if key in MODEL_DTYPE_KEYS else value.to(device)
        for key, value in batch.items()
    }


def _current_lr(engine: Any) -> float:
    return float(engine.optimizer.param_groups[0]["lr"])


# Per micro-batch statistics, summed over micro-batches and ranks:
# [total loss, flow loss, mask loss, micro-batches with a mask loss, samples, CFG-dropped]
_STATS = 6


def _micro_batch_loss(
    model: LossModelView, batch: dict[str, Any], options: LossOptions, step: int, rank: int,
    micro: int,
) -> tuple[Any, Any]:
    """Loss of one micro-batch (CFG dropout, then the ReactID loss) and its statistics.

    Returns:
        The loss to back-propagate and a ``(6,)`` float64 tensor on the engine's device.
    """
    import torch

    from models.losses import reactid_training_loss

    engine = model.engine
    dropout = torch.Generator().manual_seed(derived_seed(options.seed, 1, step, rank, micro))
    batch, dropped = apply_cfg_dropout(batch, options.cfg_dropout, dropout,
                                       options.null_prompt_embeds)
    batch = _to_device(batch, engine.device, model.dtype)
    noise = torch.Generator(device=engine.device).manual_seed(
        derived_seed(options.seed, 2, step, rank, micro)
    )
    result = reactid_training_loss(model, batch, flow_shift=options.flow_shift,
                                   mask_loss_weight=options.mask_loss_weight, generator=noise)
    mask = 0.0 if result.mask is None else float(result.mask.detach())
    stats = torch.tensor(
        [float(result.loss.detach()), float(result.flow.detach()), mask,
         float(result.mask is not None), batch["latents"].shape[0], float(dropped.sum())],
        dtype=torch.float64, device=engine.device,
    )
    return result.loss, stats


def train_steps(
    engine: Any,
    batches: Iterable[dict[str, Any]],
    steps: int,
    on_step: Callable[[StepRecord], None] | None = None,
    *,
    options: LossOptions,
    checkpoints: CheckpointPolicy | None = None,
) -> list[StepRecord]:
    """Run ``steps`` optimizer steps on this rank's micro-batches.

    Args:
        engine: a ``DeepSpeedEngine`` around a ReactID transformer.
        batches: this rank's micro-batches (``models.losses`` keys, CPU or device tensors);
            ``engine.gradient_accumulation_steps()`` of them make one step.
        steps: optimizer steps to run.
        on_step: called after every step with its record (on every rank).
        options: loss settings and the seed of the per-step draws.
        checkpoints: write resumable checkpoints on this schedule (every rank takes part).

    Returns:
        The records of the steps run.

    Raises:
        NonFiniteLossError: a micro-batch's loss was not finite on some rank; the error
            names the step and ``checkpoints.last``.
        DataExhaustedError: ``batches`` ended early.
    """
    import torch
    import torch.distributed as dist

    from training.checkpoint import save_checkpoint

    model = LossModelView(engine)
    accumulation = engine.gradient_accumulation_steps()
    rank, world = engine.global_rank, engine.world_size
    iterator: Iterator[dict[str, Any]] = iter(batches)
    records: list[StepRecord] = []
    engine.train()
    for _ in range(steps):
        step = engine.global_steps + 1
        started, data_seconds = time.perf_counter(), 0.0
        sums = torch.zeros(_STATS, dtype=torch.float64)
        for micro in range(accumulation):
            fetch = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                raise DataExhaustedError(
                    f"batches ended at step {step}, micro-batch {micro} of {accumulation}"
                ) from None
            data_seconds += time.perf_counter() - fetch
            loss, parts = _micro_batch_loss(model, batch, options, step, rank, micro)
            if world > 1:
                dist.all_reduce(parts)
            parts = parts.cpu()
            if not torch.isfinite(parts[0]):
                raise NonFiniteLossError(
                    step, float(parts[0]), checkpoints.last if checkpoints else None
                )
            engine.backward(loss)
            # The optimizer's learning rate before the boundary step() is the update's.
            lr = _current_lr(engine)
            engine.step()
            sums += parts
        micro_count = accumulation * world
        grad_norm = engine.get_global_grad_norm()
        record = StepRecord(
            step=engine.global_steps,
            loss=float(sums[0]) / micro_count,
            flow=float(sums[1]) / micro_count,
            mask=None if sums[3] == 0 else float(sums[2] / sums[3]),
            lr=lr,
            grad_norm=None if grad_norm is None else float(grad_norm),
            samples=int(sums[4]),
            cfg_dropped=int(sums[5]),
            seconds=time.perf_counter() - started,
            data_seconds=data_seconds,
        )
        if engine.global_steps != step:
            raise RuntimeError(
                f"DeepSpeed did not step the optimizer after {accumulation} micro-batches "
                f"(global step {engine.global_steps}, expected {step})"
            )
        if checkpoints is not None and step % checkpoints.every == 0:
            path = save_checkpoint(engine, checkpoints.directory,
                                   client_state=checkpoints.client_state(step))
            checkpoints.last = str(path)
        records.append(record)
        if on_step is not None:
            on_step(record)
    return records
