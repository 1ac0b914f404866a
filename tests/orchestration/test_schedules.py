"""The retraining schedule runs only when the set of gated shard verdicts changed."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.resources import ReactIDResource
from core.stage import marker_key
from core.storage import LocalObjectStore
from core.tables import write_json


@pytest.fixture
def project(make_project):
    folder = make_project().parent
    return ReactIDResource(project_dir=str(folder)), LocalObjectStore(folder / "data")


def annotate(store, shard: str, fingerprint: str, failed: list[str] | None = None) -> None:
    """What the annotations asset and its blocking gates leave behind for a shard."""
    from curation.gate_status import record_gate

    write_json(store, marker_key("annotations", shard), {"fingerprint": fingerprint})
    record_gate(store, shard, failed or [])


def tick(instance, resource):
    from orchestration.definitions import retraining_schedule

    # `with`: the context opens its own handle on the instance and must close it again
    with dg.build_schedule_context(instance=instance, resources={"reactid": resource}) as context:
        return retraining_schedule(context)


def finish(instance, request: dg.RunRequest, status=dg.DagsterRunStatus.SUCCESS) -> dg.DagsterRun:
    """Record the run the schedule asked for, as the daemon + run worker would."""
    return instance.add_run(dg.DagsterRun(job_name="retraining", status=status, tags=request.tags))


def test_the_schedule_retrains_only_when_validated_data_changed(project):
    resource, store = project
    # a schedule context opens the instance from its ref: a temporary SQLite instance has one
    with dg.instance_for_test() as instance:
        check_the_schedule(instance, resource, store)


def check_the_schedule(instance, resource, store):
    from orchestration.schedules import VALIDATED_TAG

    instance.add_dynamic_partitions("shards", ["s1", "s2"])

    nothing = tick(instance, resource)
    assert isinstance(nothing, dg.SkipReason)
    assert "no shard has annotations that passed the quality gates" in nothing.skip_message

    annotate(store, "s1", "f1")
    annotate(store, "s2", "g1", failed=["faces"])  # a failed verdict does not count
    first = tick(instance, resource)
    assert isinstance(first, dg.RunRequest)
    assert first.tags["reactid/validated_shards"] == "1"

    # while that run is in progress, a second tick does not start another one
    queued = finish(instance, first, dg.DagsterRunStatus.STARTED)
    busy = tick(instance, resource)
    assert isinstance(busy, dg.SkipReason) and queued.run_id in busy.skip_message
    instance.delete_run(queued.run_id)

    done = finish(instance, first)
    same = tick(instance, resource)
    assert isinstance(same, dg.SkipReason)
    assert "validated data unchanged since retraining run" in same.skip_message and done.run_id in same.skip_message

    annotate(store, "s2", "g2")  # s2 re-annotated, its gates pass now: a new verdict
    second = tick(instance, resource)
    assert isinstance(second, dg.RunRequest)
    assert second.tags[VALIDATED_TAG] != first.tags[VALIDATED_TAG]
    assert second.tags["reactid/validated_shards"] == "2"

    # a failed retraining run does not count as trained: the next tick asks again
    finish(instance, second, dg.DagsterRunStatus.FAILURE)
    assert tick(instance, resource).tags[VALIDATED_TAG] == second.tags[VALIDATED_TAG]
    finish(instance, second)
    assert isinstance(tick(instance, resource), dg.SkipReason)

    # re-annotation without a new gate verdict: the old verdict no longer vouches for s1
    write_json(store, marker_key("annotations", "s1"), {"fingerprint": "f2"})
    changed = tick(instance, resource)
    assert isinstance(changed, dg.RunRequest) and changed.tags["reactid/validated_shards"] == "1"


def test_the_retraining_job_runs_difficulty_curriculum_phases_and_benchmarks():
    from orchestration.definitions import defs

    job = defs.resolve_job_def("retraining")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"difficulty_scores", "difficulty_quartiles", "curriculum_schedule", "latent_cache",
            "curriculum_phase_1", "curriculum_phase_4", "demo_benchmarks"} <= keys
    schedule = defs.resolve_schedule_def("retraining_schedule")
    assert schedule.job_name == "retraining"
    assert schedule.cron_schedule == "0 3 * * 0"
