"""`make demo`: build the demo shards and curate them through Dagster, in process, on a
persistent instance (DAGSTER_HOME) so `dagster dev` shows every materialisation."""

from __future__ import annotations

import os
from pathlib import Path

from core.stage import completed
from core.storage import open_params_store
from curation.gate_status import gate_passed
from curation.stages import ANNOTATION_STAGES, CURATION_STAGES, PREVIEW_STAGES, STAGES
from orchestration.params import load_params

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def dagster_instance(project_dir: Path, params=None):
    """The persistent instance under the project, unless DAGSTER_HOME points elsewhere; its
    dagster.yaml comes from orchestration/dagster.yaml and params (`reactid dagster-home`)."""
    from dagster import DagsterInstance

    from orchestration.instance_config import ensure_dagster_home

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(project_dir / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if params is not None:
        ensure_dagster_home(home, params)
    elif not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.get()


def run_demo(params_path: Path, shards: list[str] | None = None, echo=print) -> int:
    """Curate the demo shards; return a process exit code."""
    from orchestration.definitions import defs
    from orchestration.progress import terminal_progress

    params = load_params(params_path)  # a bad setting stops here, before any work
    project_dir = params_path.resolve().parent
    store = open_params_store(params)
    shards = shards or list(params.demo_pool.shards)
    instance = dagster_instance(project_dir, params)
    known = set(instance.get_dynamic_partitions("shards"))
    new = [s for s in shards if s not in known]
    if new:
        instance.add_dynamic_partitions("shards", new)
    job = defs.resolve_job_def("demo_shard")
    for shard in shards:
        if all(completed(STAGES[s], shard, params, store) for s in ("demo_pool", *CURATION_STAGES, *ANNOTATION_STAGES,
                                                                    *PREVIEW_STAGES)) \
                and gate_passed(store, shard):
            echo(f"[{shard}] up to date, quality gates passed: nothing to redo")
            continue
        echo(f"[{shard}] curating (Dagster run, instance {os.environ['DAGSTER_HOME']})")
        with terminal_progress():
            result = job.execute_in_process(partition_key=shard, instance=instance, run_config=QUIET, raise_on_error=False)
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    echo(f"[{shard}] {event.step_key} failed: {event.step_failure_data.error.message.strip()}")
            return 1
    echo("[all shards] curriculum: training samples, difficulty, quartiles, schedule")
    with terminal_progress():
        curriculum = defs.resolve_job_def("curriculum").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False)
    if not curriculum.success:
        for event in curriculum.all_events:
            if event.is_step_failure:
                echo(f"[curriculum] {event.step_key} failed: {event.step_failure_data.error.message.strip()}")
        return 1
    from orchestration.training_demo import run_training

    if not run_training(defs, instance, params, store, echo):
        return 1
    report = defs.resolve_job_def("reports").execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    if not report.success:
        echo("curation_report failed")
        return 1
    from orchestration.evaluation_demo import run_evaluation

    evaluation = run_evaluation(defs, instance, params, store, echo)
    if not evaluation.ok:
        return 1
    print_results(store, evaluation.archives, echo)
    return 0


def print_results(store, archives: list[dict], echo=print) -> None:
    """The reports, the curriculum and the leaderboard, read through the store, and where each
    output is (a path on the local backend, its s3:// URI on S3).

    Args:
        archives: the IPVG submission archives (`key`, `track`, `layout`, `run`, `model`, `primary`).
    """
    import json

    from core.storage import location
    from curation import annotation_report, report as curation_report
    from curation.previews import contact_sheet_key, shards_with_previews
    from evaluation.stages import LEADERBOARD_HTML, LEADERBOARD_MD
    from orchestration.evaluation_demo import leaderboard_tables
    from training.dataset_browser import PAGE_KEY
    from training.stages import SCHEDULE_KEY

    for key in (curation_report.REPORT_KEY, annotation_report.REPORT_KEY):
        echo("")
        echo(store.get_bytes(key).decode())
    if store.exists(SCHEDULE_KEY):
        plan = json.loads(store.get_bytes(SCHEDULE_KEY))
        echo("")
        echo(f"# Curriculum ({plan['n_samples']} samples, {plan['n_inter']} inter-clip; {plan['total_steps']} steps)")
        for ph in plan["phases"]:
            echo(f"  phase {ph['phase']}: steps {ph['start_step']}-{ph['end_step']}  tau {ph['tau']:.3f}  "
                 f"inter-clip {ph['inter_clip_ratio']:.0%}  eligible {ph['eligible_intra']}+{ph['eligible_inter']}")
    echo("")
    echo(leaderboard_tables(store.get_bytes(LEADERBOARD_MD).decode()))
    echo("")
    echo(f"Results (tables, clips, metrics): {store.root_uri}")
    echo(f"Curation report:                  {location(store, curation_report.REPORT_KEY)}")
    echo(f"Annotation report:                {location(store, annotation_report.REPORT_KEY)}")
    echo("Browse the assets and their metadata: make ui  (Dagster on http://127.0.0.1:3000)")
    if store.exists(PAGE_KEY):
        echo(f"Dataset browser (static HTML):    {location(store, PAGE_KEY)}")
    for shard in shards_with_previews(store):
        echo(f"Annotated previews of {shard}:".ljust(34) + location(store, contact_sheet_key(shard)))
    echo(f"Leaderboard:                      {location(store, LEADERBOARD_MD)}")
    echo(f"Leaderboard (HTML with plots):    {location(store, LEADERBOARD_HTML)}")
    for a in archives:
        primary = ", primary" if a["primary"] else ""
        echo(f"IPVG Track {a['track']} submission ({a['layout']} layout, {a['run']}: {a['model']}{primary}, "
             f"validated): {location(store, a['key'])}")
    track1 = next((a for a in archives if a["track"] == 1 and a["primary"] and a["layout"] == "published"), None)
    if track1:
        echo(f"Where a video came from:          reactid lineage {location(store, track1['key'])}::submission/1.mp4")
