"""The retraining schedule: retrain only when the validated data changed.

On each tick (cron ``retraining.cron``) the schedule fingerprints the *validated data*: every
known shard whose current annotations passed their quality gates
(``curation.gate_status.passed_shards``), each with the annotations fingerprint its verdict
under ``metrics/quality_gates/<shard>.json`` judged. It compares that with the fingerprint
tagged (``reactid/validated_data``) on the last successful ``retraining`` run:

- no shard passed its gates            -> SkipReason, logged;
- a retraining run is queued/running   -> SkipReason (two runs would write the same outputs);
- same fingerprint as the last success -> SkipReason naming that run;
- otherwise                            -> one RunRequest tagged with the new fingerprint.

A new shard passing its gates, a re-annotated shard passing again, or a shard whose gates now
fail all change the fingerprint. The run itself (curriculum -> latent cache -> phases ->
demo_benchmarks) is followed by scoring (orchestration/sensors.py ``retraining_scoring``).
"""

from __future__ import annotations

import hashlib

import dagster as dg

from assets.partitions import shard_partitions
from assets.resources import ReactIDResource

VALIDATED_TAG = "reactid/validated_data"
VALIDATED_COUNT_TAG = "reactid/validated_shards"
IN_PROGRESS = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED)
LOOKBACK_RUNS = 100


def validated_data(instance: dg.DagsterInstance, store) -> tuple[str | None, list[str], dict[str, str]]:
    """(fingerprint or None when no shard passed, the passed shards, why each other shard is out)."""
    from core.tables import read_json
    from curation.gate_status import gate_key, passed_shards

    known = sorted(instance.get_dynamic_partitions(shard_partitions.name))
    ok, left_out = passed_shards(store, known)
    if not ok:
        return None, [], left_out
    h = hashlib.sha256()
    for shard in ok:
        h.update(f"{shard}:{read_json(store, gate_key(shard))['annotations_fingerprint']}\n".encode())
    return h.hexdigest()[:16], ok, left_out


def retraining_decision(context: dg.ScheduleEvaluationContext, reactid: ReactIDResource,
                        job_name: str = "retraining") -> dg.RunRequest | dg.SkipReason:
    """The body of ``retraining_schedule``."""
    params = reactid.load_params()
    fingerprint, shards, left_out = validated_data(context.instance, reactid.store(params))

    def skip(reason: str) -> dg.SkipReason:
        context.log.info(f"retraining skipped: {reason}")
        return dg.SkipReason(reason)

    if fingerprint is None:
        return skip(f"no shard has annotations that passed the quality gates (left out: {left_out})")
    runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=job_name), limit=LOOKBACK_RUNS)
    # only runs this schedule launched: an in-process run of a crashed `make demo` stays "started" for ever
    running = [r for r in runs if r.status in IN_PROGRESS and VALIDATED_TAG in r.tags]
    if running:
        return skip(f"retraining run {running[0].run_id} is still {running[0].status.value.lower()}")
    last = next((r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS and VALIDATED_TAG in r.tags), None)
    if last is not None and last.tags[VALIDATED_TAG] == fingerprint:
        return skip(f"validated data unchanged since retraining run {last.run_id} ({len(shards)} shards passed "
                    f"their gates, fingerprint {fingerprint})")
    before = f"was {last.tags[VALIDATED_TAG]} at run {last.run_id}" if last else "no earlier retraining run"
    context.log.info(f"retraining: validated data {fingerprint} ({len(shards)} shards; {before})")
    return dg.RunRequest(tags={VALIDATED_TAG: fingerprint, VALIDATED_COUNT_TAG: str(len(shards))})


def build_retraining_schedule(job, cron: str, running: bool) -> dg.ScheduleDefinition:
    @dg.schedule(name="retraining_schedule", cron_schedule=cron, job=job,
                 default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
                 description="Retrains (curriculum -> phases -> demo_benchmarks; scoring follows) when the set of "
                             "shards that passed their quality gates changed since the last successful retraining "
                             "run; otherwise skips with the reason (params retraining.cron).")
    def retraining_schedule(context: dg.ScheduleEvaluationContext, reactid: ReactIDResource):
        return retraining_decision(context, reactid, job.name)

    return retraining_schedule
