"""Run a stage inside an asset: progress to the run log, the skip logged, metadata converted."""

import dagster as dg

from assets.metadata import to_dagster
from core.params import Params
from core.progress import reporting
from core.stage import StageResult, StageSpec, run_stage
from core.storage import ObjectStore


def log_progress(context: dg.AssetExecutionContext):
    """Log about every quarter of a stage's items to the run's event log."""
    last: dict[str, int] = {}

    def reporter(task: str, done: int, total: int, detail: str) -> None:
        quarter = (4 * done) // max(1, total)
        if done == total or quarter > last.get(task, -1):
            last[task] = quarter
            context.log.info(f"{task}: {done}/{total} {detail}")

    return reporter


def run_stage_in_asset(
    context: dg.AssetExecutionContext, spec: StageSpec, shard: str, params: Params, store: ObjectStore,
    shards: tuple[str, ...] = (),
) -> tuple[StageResult, dict[str, dg.MetadataValue]]:
    """Run `spec` through the idempotent runner; return its result and Dagster metadata."""
    with reporting(log_progress(context)):
        result = run_stage(spec, shard, params, store, shards=shards)
    if result.skipped:
        context.log.info(f"{spec.name}[{shard}] is up to date (fingerprint {result.fingerprint})")
    return result, to_dagster(result.metadata, skipped=result.skipped, root=str(params.resolve(params.storage.root)))
