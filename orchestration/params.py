"""The project's full params model, assembled from every domain's sections, and the
sections orchestration owns (the retraining schedule, sensors, retries, concurrency, alerts).

`load_params` is what the CLI, the Dagster resource and the demo call: every section of
params.yaml is validated here, before any work starts, with each domain's rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from core.params import DEFAULT_PARAMS_PATH, NonNegative, Section, read_params, validate_params
from curation.params import CurationSections
from evaluation.params import EvaluationSections
from versioning.params import VersioningSections


class RetrainingParams(Section):
    """When the retraining job (curriculum, latent cache, the four phases) runs."""

    cron: str  # Dagster schedule, cron syntax
    # The schedule starts switched on (it still skips a tick when no gated verdict changed).
    schedule_running: bool = False
    # Phase models the retraining_scoring sensor scores on every benchmark after a successful retraining run.
    # (the curriculum has one phase per curriculum.phase_ratios entry: checked by ProjectParams)
    score_models: list[Annotated[str, Field(pattern=r"^phase_[1-9][0-9]*$")]] = ["phase_4"]

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression, got {value!r}")
        return value


class NewShardSensorParams(Section):
    """The sensor that registers shards appearing in the raw pool (orchestration/sensors.py)."""

    running: bool  # default status of the sensor (the UI can still switch it)
    interval_s: Annotated[int, Field(ge=5)]  # minimum seconds between evaluations
    # The sensor watches the pool raw_videos reads (raw_videos.pool_root or raw_videos.pool_prefix).
    settle_s: NonNegative  # local pools: the shard's newest file must be at least this old


class RunRetriesParams(Section):
    """Dagster run retries: a failed run is re-executed from its failure (instance dagster.yaml + job tags)."""

    max_retries: Annotated[int, Field(ge=0, le=10)]
    # false: only a crashed run worker (OOM kill, lost node) re-runs the whole run; asset failures
    # are retried by op_retries, which knows which errors are transient.
    retry_on_asset_or_op_failure: bool


class OpRetriesParams(Section):
    """RetryPolicy of every step of the platform's jobs (transient errors only)."""

    max_retries: Annotated[int, Field(ge=0, le=10)]
    delay_s: NonNegative
    backoff: Literal["linear", "exponential"]


class ConcurrencyParams(Section):
    """Instance-wide limits (written into $DAGSTER_HOME/dagster.yaml by `reactid dagster-home`)."""

    gpu_slots: Annotated[int, Field(ge=1)]  # runs holding the "gpu" pool (training, ablations, benchmark videos) at once
    max_concurrent_runs: Annotated[int, Field(ge=1)]


class AlertsParams(Section):
    """Where the run-failure sensor records failed runs."""

    key: str  # object-store key of the JSON-lines alert log
    webhook_env: str  # environment variable holding an optional webhook URL (never the URL itself)


class OrchestrationParams(Section):
    new_shards: NewShardSensorParams
    run_retries: RunRetriesParams
    op_retries: OpRetriesParams
    concurrency: ConcurrencyParams
    alerts: AlertsParams


class ProjectParams(CurationSections, EvaluationSections, VersioningSections):
    """Every section of params.yaml: each domain's (with its rules) and orchestration's."""

    retraining: RetrainingParams
    orchestration: OrchestrationParams

    @model_validator(mode="after")
    def _scored_phases_exist(self) -> ProjectParams:
        unknown = [m for m in self.retraining.score_models if m not in self.phase_models]
        if unknown:
            raise ValueError(f"retraining.score_models {unknown}: the curriculum has {len(self.phase_models)} phases "
                             f"(one per curriculum.phase_ratios), {', '.join(self.phase_models)}")
        return self


def parse_params(raw: Any, source: str = "params.yaml") -> ProjectParams:
    """Validate a parsed params mapping.

    Raises:
        ParamsError: listing every invalid key with what was expected.
    """
    return validate_params(ProjectParams, raw, source)


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> ProjectParams:
    """Read and validate params.yaml.

    The environment variable REACTID_STORAGE_BACKEND, when set, replaces `storage.backend`.

    Raises:
        ParamsError: the file is missing, not YAML, or has invalid settings.
    """
    return read_params(ProjectParams, path)
