"""Run a stage inside an asset: progress to the run log, the skip logged, metadata converted,
transient errors retried (params `orchestration.op_retries`)."""

import dagster as dg

from assets.metadata import to_dagster
from core.errors import ReactIDError, StorageError
from core.params import Params
from core.progress import reporting
from core.stage import StageResult, StageSpec, run_stage, stage_code_version
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


def asset_code_version(spec: StageSpec) -> str:
    """The asset's Dagster code version: the stage's, which covers every project module it imports."""
    return stage_code_version(spec).version


def run_stage_in_asset(
    context: dg.AssetExecutionContext, spec: StageSpec, shard: str, params: Params, store: ObjectStore,
    shards: tuple[str, ...] = (),
) -> tuple[StageResult, dict[str, dg.MetadataValue]]:
    """Run `spec` through the idempotent runner; return its result and Dagster metadata."""
    try:
        with reporting(log_progress(context)):
            result = run_stage(spec, shard, params, store, shards=shards)
    except Exception as exc:
        retry = params.orchestration.op_retries
        if is_transient(exc) and context.retry_number < retry.max_retries:
            wait = retry_delay_s(retry.delay_s, retry.backoff, context.retry_number)
            context.log.warning(f"{spec.name}[{shard}]: transient {type(exc).__name__}: {exc}; retry "
                                f"{context.retry_number + 1}/{retry.max_retries} in {wait:.0f}s")
            raise dg.RetryRequested(max_retries=retry.max_retries, seconds_to_wait=wait) from exc
        raise
    if result.skipped:
        context.log.info(f"{spec.name}[{shard}] is up to date (fingerprint {result.fingerprint})")
    return result, to_dagster(result.metadata, skipped=result.skipped, root=_root_uri(store, params))


def _root_uri(store: ObjectStore, params: Params) -> str:
    """Where the store's keys live, for metadata paths (s3://bucket/prefix on S3)."""
    return getattr(store, "root_uri", None) or str(params.resolve(params.storage.root))


# Errors a second attempt can cure: I/O and network trouble, storage hiccups, a GPU that ran
# out of memory or lost its peers. Everything else (bad params, missing upstream outputs,
# invalid data, bugs) fails at once: retrying would only repeat it. A Dagster RetryPolicy
# retries every exception, so the asset asks for its retries itself (dg.RetryRequested).
_DETERMINISTIC_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                            PermissionError)
_TRANSIENT_MESSAGES = ("CUDA out of memory", "CUDA error", "NCCL", "out of memory", "Connection reset",
                       "timed out")
_TRANSIENT_MODULES = ("botocore", "urllib3", "requests", "http", "lakefs", "lakefs_sdk", "minio")
# Ray losing a worker, an actor, a node or an object (preemption, OOM kill): the step's rerun
# resumes from its recorded items. An exception raised by a stage's own code arrives as
# RayTaskError and is judged by its cause, like any other.
_TRANSIENT_RAY_ERRORS = {"RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError",
                         "LocalRayletDiedError", "OutOfMemoryError"}


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is worth another attempt of the same step."""
    if isinstance(exc, StorageError):  # the store wraps what went wrong underneath ("not found" wraps nothing)
        return exc.__cause__ is not None and is_transient(exc.__cause__)
    if isinstance(exc, (ReactIDError, *_DETERMINISTIC_OS_ERRORS)):
        return False
    if isinstance(exc, (OSError, TimeoutError, MemoryError)):
        return True
    if type(exc).__module__.split(".")[0] in _TRANSIENT_MODULES:
        return True
    if any(c.__module__ == "ray.exceptions" and c.__name__ in _TRANSIENT_RAY_ERRORS for c in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _TRANSIENT_MESSAGES)


def retry_delay_s(delay_s: float, backoff: str, retry_number: int) -> float:
    """Seconds before attempt `retry_number + 1`: delay, 2x, 4x ... (exponential) or 1x, 2x, 3x (linear)."""
    return delay_s * (2 ** retry_number if backoff == "exponential" else retry_number + 1)
