"""`make demo`, training part: the retraining job (latent cache and the curriculum phases)
and every ablation variant of params as one short partitioned run each, through Dagster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core import layout
from core.stage import AGGREGATE, recorded_metadata
from training.run_stages import ablation_steps, phase_name

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _failures(result: Any) -> list[str]:
    return [f"{e.step_key}: {e.step_failure_data.error.message.strip()}" for e in result.all_events
            if e.is_step_failure]


def run_training(defs: Any, instance: Any, params: Any, store: Any, echo: Callable[[str], None]) -> bool:
    """Train the phases and the ablation matrix; print losses and where the models are.

    Returns:
        False when a run failed (its errors are printed).
    """
    from core.storage import location
    from orchestration.progress import terminal_progress

    run = params.training.effective()
    phases = [phase_name(k) for k in range(1, len(params.curriculum.phase_ratios) + 1)]
    echo(f"[training] latent cache + curriculum_phase_1..{len(phases)}: preset {run.preset}, {run.total_steps} steps, "
         f"batch {run.global_batch}, {run.precision}")
    started = time.perf_counter()
    with terminal_progress():
        result = defs.resolve_job_def("retraining").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False)
    if not result.success:
        for line in _failures(result):
            echo(f"[training] {line}")
        return False
    echo(f"[training] done in {time.perf_counter() - started:.0f}s")
    for name in phases:
        m = recorded_metadata(store, name, AGGREGATE) or {}
        echo(f"  {name}: steps {m['start_step']}-{m['global_step']}  tau {m['tau']:.3f}  inter-clip "
             f"{m['inter_clip_ratio_achieved']:.0%}  loss {m['loss_first']:.3f} -> {m['loss_final']:.3f}  "
             f"{m['samples_per_second']} samples/s  model {location(store, m['model_dir'])}")
    variants = list(params.ablations.variants)
    echo(f"[ablations] {len(variants)} variants, {ablation_steps(params)} steps each")
    job = defs.resolve_job_def("ablations")
    started = time.perf_counter()
    for variant in variants:
        with terminal_progress():
            result = job.execute_in_process(partition_key=variant, instance=instance, run_config=QUIET,
                                            raise_on_error=False)
        if not result.success:
            for line in _failures(result):
                echo(f"[ablations] {variant}: {line}")
            return False
        m = recorded_metadata(store, "ablation_runs", variant) or {}
        echo(f"  {variant:<18} ({m['table']}, model {m['model_variant']}): loss {m['loss_first']:.3f} -> "
             f"{m['loss_final']:.3f}  registered as {m['registered_model']}")
    echo(f"[ablations] done in {time.perf_counter() - started:.0f}s; models under {location(store, layout.MODELS)}")
    return True

