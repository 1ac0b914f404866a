"""DeepSpeed configuration from the typed ``training`` params.

The global batch is what the recipe fixes (paper: 32); how it is reached depends on the
job: ``global_batch = micro_batch x gradient_accumulation x world_size``. The optimizer
is PyTorch's AdamW (``torch_adam``), which needs no compiled DeepSpeed op; the learning
rate warms up linearly over ``warmup_steps`` optimizer steps and then stays constant
(``WarmupLR``) or decays linearly to 0 at ``total_steps`` (``WarmupDecayLR``). The
schedule is indexed by the global step, so a run split into curriculum phases follows
one schedule across them. DeepSpeed's convention: the first two updates run at
``warmup_min_lr`` (0) and update ``s >= 2`` at ``lr * min(1, (s - 1) / max(2, warmup))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ParamsError
from training.params import TrainingParams


@dataclass(frozen=True)
class BatchLayout:
    """How one optimizer step's samples are spread over ranks and forward passes."""

    global_batch: int
    micro_batch: int
    gradient_accumulation: int
    world_size: int

    @property
    def per_rank(self) -> int:
        """Samples one rank consumes per optimizer step."""
        return self.micro_batch * self.gradient_accumulation


def batch_layout(global_batch: int, micro_batch: int, world_size: int) -> BatchLayout:
    """Gradient accumulation steps that make ``micro_batch x world_size`` reach ``global_batch``.

    Raises:
        ParamsError: a value is not positive, or the global batch is not a multiple of
            ``micro_batch x world_size``.
    """
    for key, value in (("global_batch", global_batch), ("micro_batch", micro_batch),
                       ("world_size", world_size)):
        if not isinstance(value, int) or value < 1:
            raise ParamsError(f"training.{key}: expected a positive integer, got {value!r}")
    per_pass = micro_batch * world_size
    if global_batch % per_pass:
        raise ParamsError(
            f"training.global_batch ({global_batch}) must be a multiple of "
            f"training.micro_batch x world size ({micro_batch} x {world_size} = {per_pass})"
        )
    return BatchLayout(global_batch, micro_batch, global_batch // per_pass, world_size)


def scheduler_config(run: TrainingParams) -> dict[str, Any]:
    """DeepSpeed ``scheduler`` section: linear warmup, then constant or linear decay."""
    params: dict[str, Any] = {
        "warmup_min_lr": 0.0,
        "warmup_max_lr": run.lr,
        "warmup_num_steps": run.warmup_steps,
        "warmup_type": "linear",
    }
    if run.lr_schedule == "constant":
        return {"type": "WarmupLR", "params": params}
    return {"type": "WarmupDecayLR", "params": {**params, "total_num_steps": run.total_steps}}


def deepspeed_config(training: TrainingParams, world_size: int) -> dict[str, Any]:
    """The config dict for ``deepspeed.initialize``.

    Args:
        training: the ``training`` params section (its effective values are used).
        world_size: data-parallel ranks of the job.

    Raises:
        ParamsError: the batch sizes do not divide (see ``batch_layout``).
    """
    run = training.effective()
    layout = batch_layout(run.global_batch, run.micro_batch, world_size)
    config: dict[str, Any] = {
        "train_batch_size": layout.global_batch,
        "train_micro_batch_size_per_gpu": layout.micro_batch,
        "gradient_accumulation_steps": layout.gradient_accumulation,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": run.lr,
                "betas": [0.9, 0.999],
                "eps": 1e-8,
                "weight_decay": run.weight_decay,
                "torch_adam": True,
            },
        },
        "scheduler": scheduler_config(run),
        "zero_optimization": {"stage": run.zero_stage},
        "gradient_clipping": run.grad_clip,
        # The trainer reports every step itself.
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if run.precision == "bf16":
        config["bf16"] = {"enabled": True}
    return config
