"""Sensors: new shards in the raw pool, scoring after retraining, alerts on failed runs.

- ``new_shard_sensor`` watches the raw pool that ``raw_videos`` reads (``raw_videos.pool_root``
  on disk, or ``raw_videos.pool_prefix`` in the object store; timing: params
  ``orchestration.new_shards``), registers every shard that is
  complete (curation/pool_watch.py says when) as a "shards" partition and requests one
  ``ingest`` run (curation, annotation and the blocking quality gates) for it. A shard is
  registered once: it is skipped when the instance already has the partition (``make demo``
  or a hand registration) or when the sensor's cursor lists it (a partition an operator
  deleted on purpose is not brought back).
- ``retraining_scoring`` runs after each successful ``retraining`` run: benchmark videos and
  scores of the phase models in ``retraining.score_models`` on every benchmark;
  ``leaderboard_after_scoring`` then refreshes the leaderboard and submission once all of
  that run's scoring runs succeeded.
- ``run_failure_alert`` appends one JSON line per failed run to
  ``<storage root>/<orchestration.alerts.key>`` and POSTs it to the webhook named by the
  environment variable ``orchestration.alerts.webhook_env`` when that is set.

Every sensor reads params at evaluation time through the ``reactid`` resource; only the
intervals and default statuses are read when the code location loads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request

import dagster as dg

from assets.partitions import MODELS, shard_partitions
from assets.resources import ReactIDResource

SHARD_SOURCE_TAG = "reactid/source"
RETRAINING_RUN_TAG = "reactid/retraining_run"
SCORING_RUNS_TAG = "reactid/scoring_runs"
MAX_LOGGED = 10


def _status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


# ---------------------------------------------------------------- new shards


def read_cursor(cursor: str | None) -> set[str]:
    """Shards this sensor registered before (the cursor is ``{"registered": [...]}``)."""
    return set(json.loads(cursor)["registered"]) if cursor else set()


def scan_pool(reactid: ReactIDResource):
    """(where, {shard: ShardState}) of the pool ``raw_videos`` reads."""
    from curation.pool_watch import scan_local_pool, scan_store_pool

    params = reactid.load_params()
    prefix = params.raw_videos.pool_prefix
    if prefix:
        store = reactid.store(params)
        return f"{prefix}/ in {store.root_uri}", scan_store_pool(store, prefix)
    root = params.resolve(params.raw_videos.pool_root)
    return str(root), scan_local_pool(root, params.orchestration.new_shards.settle_s)


def evaluate_new_shards(context: dg.SensorEvaluationContext, reactid: ReactIDResource) -> dg.SensorResult:
    """The body of ``new_shard_sensor`` (a function so tests and other sensors can call it)."""
    where, states = scan_pool(reactid)
    known = set(context.instance.get_dynamic_partitions(shard_partitions.name))
    registered = read_cursor(context.cursor)
    fresh = [s for s in states.values() if s.name not in known and s.name not in registered]
    new = [s for s in fresh if s.ready]
    waiting = [s for s in fresh if not s.ready]
    for s in waiting[:MAX_LOGGED]:
        context.log.info(f"shard {s.name!r} not ready: {s.reason}")
    if len(waiting) > MAX_LOGGED:
        context.log.info(f"... and {len(waiting) - MAX_LOGGED} more shards not ready")
    if not new:
        reason = f"no new complete shard under {where}" + (f" ({len(waiting)} not ready yet)" if waiting else "")
        return dg.SensorResult(skip_reason=reason)
    names = [s.name for s in new]
    for s in new:
        context.log.info(f"registering shard {s.name!r} ({s.reason}) and requesting its ingest run")
    return dg.SensorResult(
        dynamic_partitions_requests=[shard_partitions.build_add_request(names)],
        run_requests=[dg.RunRequest(run_key=f"shard:{name}", partition_key=name,
                                    tags={SHARD_SOURCE_TAG: "new_shard_sensor"}) for name in names],
        cursor=json.dumps({"registered": sorted(registered | set(names))}),
    )


def build_new_shard_sensor(job, interval_s: int, running: bool) -> dg.SensorDefinition:
    @dg.sensor(name="new_shard_sensor", job=job, minimum_interval_seconds=interval_s, default_status=_status(running),
               description="Registers every complete new shard of the raw pool as a 'shards' partition and runs "
                           "curation + annotation + quality gates on it (pool: params raw_videos.pool_root or "
                           "raw_videos.pool_prefix; timing: orchestration.new_shards).")
    def new_shard_sensor(context: dg.SensorEvaluationContext, reactid: ReactIDResource) -> dg.SensorResult:
        return evaluate_new_shards(context, reactid)

    return new_shard_sensor


# ---------------------------------------------------------------- scoring after retraining


def scoring_requests(context: dg.RunStatusSensorContext, reactid: ReactIDResource):
    """Run requests for (benchmark, model) of every ``retraining.score_models`` model."""
    from evaluation.demo_benchmarks import BENCHMARKS

    params = reactid.load_params()
    run_id = context.dagster_run.run_id
    models = [m for m in params.retraining.score_models if context.instance.has_dynamic_partition(MODELS, m)]
    missing = [m for m in params.retraining.score_models if m not in models]
    if missing:
        context.log.warning(f"retraining run {run_id} registered no model {missing}: not scored")
    if not models:
        return dg.SkipReason(f"no model of retraining.score_models {params.retraining.score_models} is registered")
    pairs = [(b, m) for m in models for b in BENCHMARKS]
    context.log.info(f"retraining run {run_id} succeeded: scoring {len(pairs)} (benchmark, model) pairs")
    return [
        dg.RunRequest(run_key=f"{run_id}:{b}|{m}", partition_key=dg.MultiPartitionKey({"benchmark": b, "model": m}),
                      tags={RETRAINING_RUN_TAG: run_id, SCORING_RUNS_TAG: str(len(pairs))})
        for b, m in pairs
    ]


def build_scoring_sensors(retraining_job, evaluation_job, evaluation_reports_job) -> list[dg.SensorDefinition]:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS, name="retraining_scoring", monitored_jobs=[retraining_job],
        request_job=evaluation_job, default_status=dg.DefaultSensorStatus.RUNNING,
        description="After a successful retraining run: benchmark_videos -> benchmark_scores of the models in "
                    "params retraining.score_models on every benchmark.")
    def retraining_scoring(context: dg.RunStatusSensorContext, reactid: ReactIDResource):
        return scoring_requests(context, reactid)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS, name="leaderboard_after_scoring", monitored_jobs=[evaluation_job],
        request_job=evaluation_reports_job, default_status=dg.DefaultSensorStatus.RUNNING,
        description="Once every scoring run a retraining run asked for succeeded: leaderboard + IPVG submission.")
    def leaderboard_after_scoring(context: dg.RunStatusSensorContext):
        return reports_request(context)

    return [retraining_scoring, leaderboard_after_scoring]


def reports_request(context: dg.RunStatusSensorContext):
    tags = context.dagster_run.tags
    origin = tags.get(RETRAINING_RUN_TAG)
    if not origin:
        return dg.SkipReason("not a scoring run of a retraining run")
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={RETRAINING_RUN_TAG: origin}))
    # a retried run and its retries share the tags: a pair counts once, by its newest run
    latest: dict[str, dg.DagsterRun] = {}
    for run in sorted(runs, key=lambda r: r.tags.get("dagster/retry_number", "0")):
        latest[run.tags.get("dagster/partition", run.run_id)] = run
    done = sum(r.status == dg.DagsterRunStatus.SUCCESS for r in latest.values())
    expected = int(tags.get(SCORING_RUNS_TAG, "0"))
    if done < expected:
        return dg.SkipReason(f"{done}/{expected} scoring runs of retraining run {origin} succeeded so far")
    return dg.RunRequest(run_key=f"{origin}:reports", tags={RETRAINING_RUN_TAG: origin})


# ---------------------------------------------------------------- alerts


def failure_record(context: dg.RunFailureSensorContext) -> dict:
    """What an alert says about a failed run."""
    run = context.dagster_run
    steps = [{"step": e.step_key, "error": _error_text(e.step_failure_data.error)[:2000]}
             for e in context.get_step_failure_events()]
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "retry_number": int(run.tags.get("dagster/retry_number", "0")),
        "will_retry": run.tags.get("dagster/will_retry") == "true",
        "message": (context.failure_event.message or "").strip(),
        "failed_steps": steps,
        "ui_path": f"/runs/{run.run_id}",
    }


def _error_text(error) -> str:
    """A step error and its causes (the user's exception sits in Dagster's wrapper's cause)."""
    lines = []
    while error is not None:
        lines.append(error.message.strip())
        error = error.cause
    return "\n".join(reversed(lines))


def record_alert(store, key: str, record: dict) -> None:
    """Append `record` as one JSON line to `key` (read-modify-write: objects cannot be appended to;
    the sensor's ticks never overlap)."""
    old = store.get_bytes(key) if store.exists(key) else b""
    store.put_bytes(key, old + (json.dumps(record, sort_keys=True) + "\n").encode())


def post_webhook(url: str, record: dict, timeout_s: float = 10.0) -> None:
    request = urllib.request.Request(url, data=json.dumps(record).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (operator-set URL)
        response.read()


def alert_on_failure(context: dg.RunFailureSensorContext, reactid: ReactIDResource) -> dict:
    params = reactid.load_params()
    cfg = params.orchestration.alerts
    record = failure_record(context)
    record_alert(reactid.store(params), cfg.key, record)
    steps = ", ".join(s["step"] for s in record["failed_steps"]) or "no step"
    context.log.error(f"run {record['run_id']} of job {record['job']} failed ({steps}; partition "
                      f"{record['partition']}); alert recorded under {cfg.key}")
    url = os.environ.get(cfg.webhook_env)
    if url:
        try:
            post_webhook(url, record)
        except Exception as exc:  # an unreachable webhook must not hide the recorded alert
            context.log.warning(f"alert webhook (${cfg.webhook_env}) failed: {exc}")
    return record


@dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Records every failed run of this code location as a JSON line under "
                                   "<storage root>/<orchestration.alerts.key>; POSTs it to $<alerts.webhook_env> "
                                   "when set.")
def run_failure_alert(context: dg.RunFailureSensorContext, reactid: ReactIDResource) -> None:
    alert_on_failure(context, reactid)
