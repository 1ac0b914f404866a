"""The new-shard sensor, the scoring sensors and the run-failure alert, evaluated with Dagster's
test contexts against a real pool folder, a real object store and a real instance."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import ReactIDResource
from core.storage import LocalObjectStore


def write_shard(pool: Path, shard: str, n: int = 2, manifest: bool = True, missing: int = 0) -> Path:
    """`n` video files and (optionally) a manifest naming them plus `missing` absent ones."""
    folder = pool / shard
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"v{i}.mp4" for i in range(n)]
    for name in names:
        (folder / name).write_bytes(b"\x00\x00\x00\x18ftypmp42" + name.encode())
    if manifest:
        rows = [{"path": p, "caption": f"clip {p}"} for p in names + [f"late{i}.mp4" for i in range(missing)]]
        (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def project(make_project):
    """(project dir, resource) with a settle time of 0 s (the settle rule has its own test)."""

    def edit(raw):
        raw["orchestration"]["new_shards"]["settle_s"] = 0

    params_path = make_project(edit)
    return params_path.parent, ReactIDResource(project_dir=str(params_path.parent))


def evaluate(instance, resource, cursor=None):
    from orchestration.definitions import new_shard_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"reactid": resource})
    return new_shard_sensor(context)


def apply(instance, result) -> list[str]:
    """What the sensor daemon does with a SensorResult's partition requests."""
    added = []
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        added += list(request.partition_keys)
    return added


def test_a_new_shard_is_registered_once_and_its_ingest_run_requested(project):
    from orchestration.definitions import new_shard_sensor

    folder, resource = project
    write_shard(folder / "data" / "pool", "shard-a")
    instance = dg.DagsterInstance.ephemeral()

    first = evaluate(instance, resource)
    assert apply(instance, first) == ["shard-a"]
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [("shard-a", "shard:shard-a")]
    assert new_shard_sensor.job_name == "ingest"
    assert instance.get_dynamic_partitions("shards") == ["shard-a"]

    second = evaluate(instance, resource, cursor=first.cursor)
    assert not second.dynamic_partitions_requests and not second.run_requests
    assert "no new complete shard" in second.skip_reason.skip_message

    # A partition deleted on purpose stays deleted: the cursor remembers the shard.
    instance.delete_dynamic_partition("shards", "shard-a")
    third = evaluate(instance, resource, cursor=first.cursor)
    assert not third.dynamic_partitions_requests and not third.run_requests
    # ... and a shard the instance already has (make demo, a hand registration) is left alone.
    instance.add_dynamic_partitions("shards", ["shard-a"])
    assert not evaluate(instance, resource).run_requests


def test_incomplete_shards_are_ignored_until_complete(project):
    folder, resource = project
    pool = folder / "data" / "pool"
    write_shard(pool, "no-manifest", manifest=False)
    write_shard(pool, "still-copying", missing=1)
    uploading = write_shard(pool, "uploading")
    (uploading / "v9.mp4.part").write_bytes(b"half")
    (pool / "bad name!").mkdir()
    half = write_shard(pool, "half-manifest")
    (half / "manifest.jsonl").write_text('{"path": "v0.mp4"}\n{"path": "v1.m')
    instance = dg.DagsterInstance.ephemeral()

    result = evaluate(instance, resource)
    assert not result.dynamic_partitions_requests and not result.run_requests
    assert "5 not ready yet" in result.skip_reason.skip_message

    # the uploader finishes: manifest written, late file arrived, partial renamed
    write_shard(pool, "no-manifest")
    (pool / "still-copying" / "late0.mp4").write_bytes(b"late")
    (uploading / "v9.mp4.part").rename(uploading / "v9.mp4")
    result = evaluate(instance, resource, cursor=result.cursor)
    assert sorted(apply(instance, result)) == ["no-manifest", "still-copying", "uploading"]
    assert sorted(r.partition_key for r in result.run_requests) == ["no-manifest", "still-copying", "uploading"]


def test_pool_scan_reasons_and_settle_time(tmp_path):
    from curation.pool_watch import scan_local_pool

    pool = tmp_path / "pool"
    write_shard(pool, "a")
    write_shard(pool, "b", missing=2)
    write_shard(pool, "c", manifest=False)
    (pool / "d.jsonl").write_text(json.dumps({"path": "a/v0.mp4"}) + "\n")  # a root manifest shard
    now = time.time()
    states = scan_local_pool(pool, settle_s=60, now=now)
    assert "settle time 60s" in states["a"].reason and not states["a"].ready
    later = scan_local_pool(pool, settle_s=60, now=now + 120)
    assert later["a"].ready and later["a"].n_files == 2
    assert later["d"].ready
    assert not later["b"].ready and "2 file(s) named in manifest.jsonl not present yet" in later["b"].reason
    assert not later["c"].ready and "no manifest.jsonl or manifest.csv" in later["c"].reason


def test_a_bucket_prefix_is_listed_through_the_object_store(make_project):
    def edit(raw):
        raw["raw_videos"]["pool_prefix"] = "incoming"

    folder = make_project(edit).parent
    resource = ReactIDResource(project_dir=str(folder))
    store = LocalObjectStore(folder / "data")
    store.put_bytes("incoming/bucket-1/v0.mp4", b"video")
    store.put_bytes("incoming/bucket-1/manifest.jsonl", b'{"path": "v0.mp4"}\n')
    store.put_bytes("incoming/bucket-2/v0.mp4", b"video")  # no manifest yet
    instance = dg.DagsterInstance.ephemeral()

    result = evaluate(instance, resource)
    assert apply(instance, result) == ["bucket-1"]
    store.put_bytes("incoming/bucket-2/manifest.jsonl", b'{"path": "v0.mp4"}\n')
    assert apply(instance, evaluate(instance, resource, cursor=result.cursor)) == ["bucket-2"]


# ---------------------------------------------------------------- scoring after retraining


@dg.op
def _ok():
    return 1


@dg.job
def retraining():  # the scoring sensor only reads the run id of the run it reacts to
    _ok()


def test_a_successful_retraining_run_requests_scoring_of_the_new_models(project):
    from orchestration.definitions import SCORING_SENSORS
    from orchestration.sensors import RETRAINING_RUN_TAG, SCORING_RUNS_TAG

    _, resource = project
    scoring, reports = SCORING_SENSORS
    instance = dg.DagsterInstance.ephemeral()
    result = retraining.execute_in_process(instance=instance)

    def context(run, event):
        return dg.build_run_status_sensor_context(sensor_name=scoring.name, dagster_event=event,
                                                  dagster_instance=instance, dagster_run=run,
                                                  resources={"reactid": resource})

    skipped = scoring(context(result.dagster_run, result.get_run_success_event()))
    assert isinstance(skipped, dg.SkipReason) and "phase_4" in skipped.skip_message
    instance.add_dynamic_partitions("models", ["phase_4"])
    requests = scoring(context(result.dagster_run, result.get_run_success_event()))
    assert len(requests) == 4
    assert {r.partition_key.keys_by_dimension["model"] for r in requests} == {"phase_4"}
    assert {r.tags[RETRAINING_RUN_TAG] for r in requests} == {result.run_id}
    assert len({r.run_key for r in requests}) == 4

    # the leaderboard waits for every scoring run of that retraining run
    runs = []
    for i, request in enumerate(requests):
        run = instance.add_run(dg.DagsterRun(
            job_name="evaluation", status=dg.DagsterRunStatus.SUCCESS if i < 3 else dg.DagsterRunStatus.STARTED,
            tags={**request.tags, "dagster/partition": str(request.partition_key)}))
        runs.append(run)
    waiting = reports(context(runs[0], result.get_run_success_event()))
    assert isinstance(waiting, dg.SkipReason) and "3/4" in waiting.skip_message
    # the unfinished pair's run failed and its automatic retry (same tags) succeeded
    instance.add_run(dg.DagsterRun(job_name="evaluation", status=dg.DagsterRunStatus.SUCCESS,
                                   tags={**runs[3].tags, "dagster/retry_number": "1"}))
    done = reports(context(runs[0], result.get_run_success_event()))
    assert isinstance(done, dg.RunRequest) and done.run_key == f"{result.run_id}:reports"
    assert runs[0].tags[SCORING_RUNS_TAG] == "4"


# ---------------------------------------------------------------- failure alerts


@dg.op
def _boom():
    raise RuntimeError("the GPU caught fire")


@dg.job
def flaky_job():
    _boom()


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failed_run_is_recorded_as_an_alert_and_posted_to_the_webhook(project, monkeypatch):
    from orchestration.sensors import run_failure_alert

    folder, resource = project
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REACTID_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/alert")
    _Hook.received.clear()
    instance = dg.DagsterInstance.ephemeral()
    try:
        for _ in range(2):
            result = flaky_job.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            context = dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert", dagster_event=result.get_run_failure_event(),
                dagster_instance=instance, dagster_run=result.dagster_run, resources={"reactid": resource},
            ).for_run_failure()
            run_failure_alert(context)
    finally:
        server.shutdown()

    lines = (folder / "data" / "alerts" / "failed_runs.jsonl").read_text().splitlines()
    assert len(lines) == 2
    alert = json.loads(lines[-1])
    assert alert["run_id"] == result.run_id and alert["job"] == "flaky_job"
    assert alert["failed_steps"][0]["step"] == "_boom"
    assert "the GPU caught fire" in alert["failed_steps"][0]["error"]
    assert [a["run_id"] for a in _Hook.received][-1] == result.run_id


def test_an_unreachable_webhook_does_not_lose_the_alert(project, monkeypatch):
    from orchestration.sensors import run_failure_alert

    folder, resource = project
    monkeypatch.setenv("REACTID_ALERT_WEBHOOK", "http://127.0.0.1:9/nothing-listens-here")
    instance = dg.DagsterInstance.ephemeral()
    result = flaky_job.execute_in_process(instance=instance, raise_on_error=False)
    run_failure_alert(dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run, resources={"reactid": resource}).for_run_failure())
    assert (folder / "data" / "alerts" / "failed_runs.jsonl").is_file()
