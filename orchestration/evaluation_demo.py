"""The evaluation part of `make demo`: benchmark sets and baselines, every (benchmark, model) pair
of every registered model that is not up to date, then the leaderboard and the submission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.stage import AGGREGATE, completed, recorded_metadata
from evaluation.demo_benchmarks import BENCHMARKS
from evaluation.stages import EVAL_STAGES, run_key

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class EvaluationOutcome:
    ok: bool
    archives: list[dict[str, Any]] = field(default_factory=list)  # ipvg_submission's archives (store keys)


def _failed(result, label: str, echo: Callable[[str], None]) -> bool:
    if result.success:
        return False
    for event in result.all_events:
        if event.is_step_failure:
            echo(f"[{label}] {event.step_key} failed: {event.step_failure_data.error.message.strip()}")
    return True


def sync_model_partitions(instance, store) -> list[str]:
    """Make every model registered in the store (e.g. by `reactid register-model`) a partition."""
    from assets.partitions import MODELS
    from models.registry import registered_models

    stored = registered_models(store)
    missing = [m for m in stored if not instance.has_dynamic_partition(MODELS, m)]
    if missing:
        instance.add_dynamic_partitions(MODELS, missing)
    return stored


def run_evaluation(defs, instance, params, store, echo: Callable[[str], None]) -> EvaluationOutcome:
    """Run the evaluation jobs in process; report what failed through ``echo``."""
    from dagster import MultiPartitionKey

    from assets.partitions import MODELS
    from orchestration.progress import terminal_progress

    echo("[evaluation] demo benchmark sets (held-out identities) and untrained baselines")
    with terminal_progress():
        inputs = defs.resolve_job_def("evaluation_inputs").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False)
    if _failed(inputs, "evaluation", echo):
        return EvaluationOutcome(False)
    stored = set(sync_model_partitions(instance, store))
    models = sorted(instance.get_dynamic_partitions(MODELS))
    for model in models:
        if model not in stored:
            echo(f"[evaluation] model {model!r} is a partition but not registered in the store: skipped")
            continue
        for benchmark in BENCHMARKS:
            pair = run_key(benchmark, model)
            if all(completed(EVAL_STAGES[s], pair, params, store) for s in ("benchmark_videos", "benchmark_scores")):
                continue
            echo(f"[evaluation] {pair}: videos and scores")
            with terminal_progress():
                result = defs.resolve_job_def("evaluation").execute_in_process(
                    partition_key=MultiPartitionKey({"benchmark": benchmark, "model": model}),
                    instance=instance, run_config=QUIET, raise_on_error=False)
            if _failed(result, pair, echo):
                return EvaluationOutcome(False)
    echo("[evaluation] leaderboard and IPVG submission")
    reports = defs.resolve_job_def("evaluation_reports").execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False)
    if _failed(reports, "evaluation", echo):
        return EvaluationOutcome(False)
    submission = recorded_metadata(store, "ipvg_submission", AGGREGATE) or {}
    return EvaluationOutcome(True, list(submission.get("preview", [])))


def leaderboard_tables(markdown: str) -> str:
    """The per-benchmark tables of the leaderboard, without notes, plots and deltas (for the terminal)."""
    body = markdown.split("\n## Per-metric comparison", 1)[0]
    keep = [line for line in body.splitlines() if line.startswith(("#", "|"))]
    return "\n".join(keep)
