"""The `reactid` command line. `dvc repro` calls `reactid stage ...`; `make demo` calls
`reactid demo`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from core.errors import ReactIDError
from evaluation.cli import submission


@click.group()
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=click.Path(path_type=Path),
              help="The params file that owns every setting.")
@click.pass_context
def cli(ctx: click.Context, params_path: Path) -> None:
    """reactid-ops: raw video pools to a ranked, submittable identity-preserving video generator."""
    ctx.obj = {"params": params_path}


def _params(ctx: click.Context):
    from orchestration.params import load_params

    return load_params(ctx.obj["params"])


@cli.command("check-params")
@click.pass_context
def check_params(ctx: click.Context) -> None:
    """Validate params.yaml and exit non-zero naming every bad key."""
    _params(ctx)
    click.echo(f"{ctx.obj['params']}: ok")


@cli.command("dagster-home")
@click.option("--force", is_flag=True, help="Overwrite a dagster.yaml that was edited by hand.")
@click.pass_context
def dagster_home_cmd(ctx: click.Context, force: bool) -> None:
    """Write $DAGSTER_HOME/dagster.yaml (run retries, run queue, gpu pool limit) from params.

    SQLite instance storage under DAGSTER_HOME (default .dagster_home); `make ui` and
    `make demo` call this first.
    """
    from orchestration.instance_config import dagster_home, ensure_dagster_home

    params = _params(ctx)
    path, action = ensure_dagster_home(dagster_home(Path(ctx.obj["params"]).resolve().parent), params, force=force)
    click.echo(f"{path}: {action}")


@cli.command()
@click.option("--shard", required=True, help="Shard name, e.g. demo-000.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Pool root; the shard goes to OUT/SHARD/.")
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="Ground-truth folder (default: OUT/../ground_truth).")
@click.option("--kind", type=click.Choice(["procedural", "real_footage", "copies", "real_cuts"]), default="procedural", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-videos", type=int, default=10, show_default=True)
@click.option("--size", default="320x240", show_default=True, help="WIDTHxHEIGHT of procedural videos.")
@click.option("--fps", type=int, default=12, show_default=True)
@click.option("--shots-per-video", type=int, default=8, show_default=True, help="Shots per video of a real_cuts shard.")
def synth(shard: str, out: Path, truth: Path | None, kind: str, seed: int, n_videos: int, size: str, fps: int,
          shots_per_video: int) -> None:
    """Generate a demo shard: videos + manifest.jsonl, ground truth kept apart."""
    from core.params import check_shard_name
    from curation.synth import build_demo_shard

    check_shard_name(shard)
    width, height = (int(v) for v in size.lower().split("x"))
    folder, truth_path = build_demo_shard(out, truth or out.parent / "ground_truth", shard=shard, kind=kind, seed=seed,
                                          n_videos=n_videos, width=width, height=height, fps=fps,
                                          real_cuts={"n_videos": n_videos, "shots_per_video": shots_per_video})
    click.echo(f"shard {shard}: {folder}  ground truth: {truth_path}")


@cli.command()
@click.argument("name")
@click.option("--shard", required=True)
@click.option("--force", is_flag=True, help="Recompute even when the outputs are up to date.")
@click.pass_context
def stage(ctx: click.Context, name: str, shard: str, force: bool) -> None:
    """Run one stage for one shard (what each dvc.yaml stage calls)."""
    from core.params import check_shard_name
    from core.stage import run_stage
    from core.storage import open_params_store
    from curation.stages import STAGES
    from orchestration.progress import terminal_progress

    if name not in STAGES:
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {sorted(STAGES)}", param_hint="NAME")
    params = _params(ctx)
    check_shard_name(shard)
    store = open_params_store(params)
    with terminal_progress():
        result = run_stage(STAGES[name], shard, params, store, force=force)
    summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview")}
    state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
    click.echo(f"{name}[{shard}] {state}: {json.dumps(summary, default=str)}")


@cli.command("train-stage")
@click.argument("name")
@click.option("--shard", "shards", multiple=True, help="Annotated shards to read (default: the demo shards in params).")
@click.option("--variant", default=None, help="Ablation variant (ablation_runs only), e.g. tarope_T4.")
@click.option("--force", is_flag=True, help="Recompute even when the outputs are up to date.")
@click.pass_context
def train_stage(ctx: click.Context, name: str, shards: tuple[str, ...], variant: str | None, force: bool) -> None:
    """Run one curriculum or training stage over all shards (what each training dvc.yaml stage calls):
    training_samples ... curriculum_schedule, latent_cache, curriculum_phase_1..4, ablation_runs --variant V."""
    from core.params import check_shard_name
    from core.stage import AGGREGATE, run_stage
    from core.storage import open_params_store
    from orchestration.progress import terminal_progress
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    if name in TRAINING_RUN_STAGES:
        params = _params(ctx)
        store = open_params_store(params)
        if (name == "ablation_runs") != (variant is not None):
            raise click.BadParameter("--variant is required for ablation_runs and only for it", param_hint="--variant")
        if variant is not None:
            from training.ablations import ABLATION_VARIANTS

            if variant not in ABLATION_VARIANTS:
                raise click.BadParameter(f"unknown variant {variant!r}; expected one of {list(ABLATION_VARIANTS)}",
                                         param_hint="--variant")
        shard, upstream = (variant, (AGGREGATE,)) if variant else (AGGREGATE, ())
        with terminal_progress():
            result = run_stage(TRAINING_RUN_STAGES[name], shard, params, store, force=force, shards=upstream)
        summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview")}
        state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
        click.echo(f"{name}[{shard}] {state}: {json.dumps(summary, default=str)}")
        return
    if name not in TRAINING_STAGES:
        known = sorted([*TRAINING_STAGES, *TRAINING_RUN_STAGES])
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {known}", param_hint="NAME")
    params = _params(ctx)
    shards = tuple(check_shard_name(s) for s in (shards or params.demo_pool.shards))
    store = open_params_store(params)
    if TRAINING_STAGES[name].aggregate:
        from curation.gate_status import passed_shards

        shards, left_out = passed_shards(store, shards)
        if left_out:
            click.echo(f"shards left out: {left_out}", err=True)
        if not shards:
            raise click.ClickException("no shard's annotations passed the quality gates; run `reactid gate` first")
    with terminal_progress():
        result = run_stage(TRAINING_STAGES[name], AGGREGATE, params, store, force=force, shards=shards)
    summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview")}
    state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
    click.echo(f"{name}[{AGGREGATE}] {state}: {json.dumps(summary, default=str)}")


@cli.command("phase-plan")
@click.option("--phase", "phase", type=click.IntRange(min=1), required=True, help="Curriculum phase, 1-based.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Schedule file for `training.launch --data cache --schedule`.")
@click.option("--previous-output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder of the previous phase's launch (default: the checkpoint its stage recorded).")
@click.pass_context
def phase_plan_cmd(ctx: click.Context, phase: int, out: Path, previous_output: Path | None) -> None:
    """Write phase K's global-batch sample ids, one JSON list per step, from the curriculum schedule;
    print the checkpoint folder it starts from when known (nothing for phase 1)."""
    from core.storage import open_params_store
    from training.phase_plan import phase_plan, write_step_ids

    plan = phase_plan(open_params_store(_params(ctx)), phase, previous_output=previous_output)
    write_step_ids(out, plan.step_ids)
    click.echo(f"{plan.name}: steps {plan.start_step}-{plan.end_step} ({len(plan.step_ids)}) -> {out}", err=True)
    if plan.note:
        click.echo(plan.note, err=True)
    if plan.start_checkpoint is not None:
        click.echo(str(plan.start_checkpoint))


@cli.command("eval-stage")
@click.argument("name")
@click.option("--benchmark", default=None, help="benchmark_videos / benchmark_scores: the benchmark.")
@click.option("--model", default=None, help="The registered model (untrained_model: the configured name).")
@click.option("--force", is_flag=True, help="Recompute even when the outputs are up to date.")
@click.pass_context
def eval_stage(ctx: click.Context, name: str, benchmark: str | None, model: str | None, force: bool) -> None:
    """Run one evaluation stage (what each evaluation dvc.yaml stage calls)."""
    from core.params import check_shard_name
    from core.stage import AGGREGATE, run_stage
    from core.storage import open_params_store
    from evaluation.demo_benchmarks import BENCHMARKS
    from evaluation.stages import EVAL_STAGES, run_key, submission_runs
    from orchestration.progress import terminal_progress

    if name not in EVAL_STAGES:
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {sorted(EVAL_STAGES)}", param_hint="NAME")
    params = _params(ctx)
    store = open_params_store(params)
    shard, shards = AGGREGATE, ()
    if name in ("benchmark_videos", "benchmark_scores"):
        if not benchmark or not model:
            raise click.UsageError(f"{name} needs --benchmark and --model")
        shard = run_key(benchmark, model)
    elif name == "untrained_model":
        if not model:
            raise click.UsageError("untrained_model needs --model (a name in evaluation.untrained_models)")
        shard = model
    elif name == "demo_benchmarks":
        from curation.gate_status import passed_shards

        shards, left_out = passed_shards(store, tuple(check_shard_name(s) for s in params.demo_pool.shards))
        if left_out:
            click.echo(f"shards left out: {left_out}", err=True)
        if not shards:
            raise click.ClickException("no shard's annotations passed the quality gates; run `reactid gate` first")
    elif name == "leaderboard":
        shards = tuple(run_key(b, m) for b in BENCHMARKS for m in params.evaluation.models)
    elif name == "ipvg_submission":
        shards = submission_runs(params)
    with terminal_progress():
        result = run_stage(EVAL_STAGES[name], shard, params, store, force=force, shards=tuple(shards))
    summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview") and k != "scores"}
    state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
    click.echo(f"{name}[{shard}] {state}: {json.dumps(summary, default=str)}")
    if name == "leaderboard" and params.lakefs.enabled:  # merge the run's lakeFS branch into main, tag it
        import uuid

        from versioning.hooks import promote_evaluation

        promotion = promote_evaluation(params, store, run_id=f"cli-{uuid.uuid4().hex[:12]}",
                                       evaluation_fingerprint=result.fingerprint,
                                       models=[s.split("/", 1)[1] for s in shards])
        click.echo(f"lakeFS: tag {promotion['tag']} -> {promotion['commit_id']} (data {promotion['data_commit']})")


@cli.command("lakefs-lineage")
@click.argument("tag")
@click.pass_context
def lakefs_lineage(ctx: click.Context, tag: str) -> None:
    """Print, as JSON, what a lakeFS promotion tag holds: the merge commit, the run branch's
    data commit and each validated shard's commit with its metadata (run id, params hash,
    check results). Needs lakefs.enabled and LAKEFS_ACCESS_KEY_ID / LAKEFS_SECRET_ACCESS_KEY."""
    from versioning.lakefs_store import LakeFSVersioning

    params = _params(ctx)
    if not params.lakefs.enabled:
        raise click.ClickException("lakefs.enabled is false in params.yaml")
    click.echo(json.dumps(LakeFSVersioning(params.lakefs).lineage(tag).to_dict(), indent=2, sort_keys=True))


@cli.command("lineage")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every node typed.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Samples listed per training run (the most drawn first); totals are always given.")
@click.pass_context
def lineage_cmd(ctx: click.Context, target: str, as_json: bool, limit: int) -> None:
    """Where TARGET came from: a submission video (FILE.mp4 or ZIP::member, e.g.
    data/submissions/track1/run1/facial_results.zip::submission/1.mp4), a model name, a training
    sample id or a clip id -> model, phase or ablation run (checkpoint, params, code versions),
    the samples it drew, their annotations, clips and raw videos (source, time span), and the
    lakeFS commits recorded with each shard's gate verdict. Reads the object store only."""
    from core.storage import open_params_store
    from evaluation.lineage import lineage

    params = _params(ctx)
    graph = lineage(open_params_store(params), target, limit=limit, lakefs=params.lakefs.enabled)
    click.echo(json.dumps(graph.to_dict(), indent=2, default=str) if as_json else graph.text())


@cli.command("register-model")
@click.argument("name")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["phase", "ablation", "external", "untrained"]), required=True)
@click.option("--description", required=True, help="One line for the leaderboard.")
@click.option("--variant", default=None, help="Model variant (default: the export's training.json, else reactid).")
@click.option("--preset", default=None, help="Model preset (default: the export's training.json, else tiny).")
@click.option("--encoder-seed", type=int, default=0, show_default=True,
              help="Seed of the preset's encoders (transformer-only exports).")
@click.option("--training-log", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The run's steps.jsonl, for the leaderboard's loss curves.")
@click.pass_context
def register_model_cmd(ctx: click.Context, name: str, export_dir: Path, kind: str, description: str,
                       variant: str | None, preset: str | None, encoder_seed: int, training_log: Path | None) -> None:
    """Register an exported model (save_pretrained folder) under models/NAME/ for evaluation.

    Dagster picks it up as a "models" partition at the next `reactid demo`; dvc evaluates it once
    NAME is in evaluation.models.
    """
    from core.storage import open_params_store
    from models.registry import store_model

    params = _params(ctx)
    store = open_params_store(params)
    record = store_model(store, name, export_dir, kind=kind, description=description, preset=preset,
                         variant=variant, encoder_seed=encoder_seed, training_log=training_log)
    click.echo(f"registered {record.name} ({record.kind}, {record.layout} export, variant {record.variant})")


@cli.command()
@click.option("--shard", "shards", multiple=True, help="Shards to report (default: the demo shards in params).")
@click.option("--kind", type=click.Choice(["curation", "annotation", "all"]), default="all", show_default=True)
@click.pass_context
def report(ctx: click.Context, shards: tuple[str, ...], kind: str) -> None:
    """Write the curation and annotation reports and their metrics."""
    from core.storage import open_params_store
    from curation import annotation_report, report as curation_report

    params = _params(ctx)
    store = open_params_store(params)
    wanted = list(shards or params.demo_pool.shards)
    if kind in ("curation", "all"):
        curation_report.build_curation_report(params, store, wanted)
        click.echo(f"report: {store.uri(curation_report.REPORT_KEY)}")
    if kind in ("annotation", "all"):
        ready = [s for s in wanted if annotation_report.report_inputs_ready(store, s)]
        annotation_report.build_annotation_report(params, store, ready)
        click.echo(f"report: {store.uri(annotation_report.REPORT_KEY)}")


@cli.command()
@click.option("--shard", required=True)
@click.pass_context
def gate(ctx: click.Context, shard: str) -> None:
    """Run every annotation quality-gate suite on a shard and record its verdict (what the
    blocking Dagster checks do; dvc.yaml's quality_gates stage calls this). Exit 1 on failure."""
    from core.params import check_shard_name
    from core.storage import open_params_store
    from curation.gate_status import run_shard_gates

    params = _params(ctx)
    store = open_params_store(params)
    results = run_shard_gates(params, store, check_shard_name(shard))
    for result in results.values():
        click.echo(result.summary())
    if not all(r.success for r in results.values()):
        sys.exit(1)
    if params.lakefs.enabled:  # commit the validated shard to the run's lakeFS branch
        import uuid

        from versioning.hooks import version_gate_verdict

        record = version_gate_verdict(params, store, shard, run_id=f"cli-{uuid.uuid4().hex[:12]}", results=results)
        if record:
            click.echo(f"lakeFS: {record['repository']}@{record['branch']} commit {record['commit_id']}"
                       f"{'' if record['created'] else ' (unchanged)'}")


@cli.command()
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--suite", required=True, help="Quality-gate suite: captions, entities, subjects, faces, timelines "
                                              "or annotations.")
@click.option("--clips", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The shard's curated_clips table (faces and timelines suites; default: "
                   "tables/curated_clips/<same file name> beside TABLE's folder).")
@click.option("--data-docs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write great-expectations Data Docs (HTML) to this folder.")
@click.pass_context
def validate(ctx: click.Context, table: Path, suite: str, clips: Path | None, data_docs: Path | None) -> None:
    """Run an annotation quality-gate suite on a Parquet table: exit 0 when it passes,
    1 with the list of failed expectations and sample rows when it does not."""
    import pyarrow.parquet as pq

    from curation.gate_suites import NEEDS_CLIPS
    from curation.quality_gates import SUITES, run_suite

    if suite not in SUITES:
        raise click.BadParameter(f"unknown suite {suite!r}; expected one of {list(SUITES)}", param_hint="--suite")
    params = _params(ctx)
    if clips is None and suite in NEEDS_CLIPS:
        clips = table.parent.parent / "curated_clips" / table.name
        if not clips.is_file():
            raise click.UsageError(f"suite {suite!r} needs the shard's curated_clips table ({NEEDS_CLIPS[suite]}): "
                                   f"pass --clips; {clips} does not exist")
    result = run_suite(suite, pq.read_table(table), params=params.quality_gates,
                       clips=pq.read_table(clips) if clips else None, data_docs_dir=data_docs,
                       run_name=f"validate-{table.stem}")
    click.echo(result.summary())
    if not result.success:
        sys.exit(1)


@cli.command()
@click.option("--shard", "shards", multiple=True, help="Demo shards to run (default: all in params).")
@click.pass_context
def demo(ctx: click.Context, shards: tuple[str, ...]) -> None:
    """Build the demo pool and run the curation graph through Dagster."""
    from orchestration.demo import run_demo

    sys.exit(run_demo(ctx.obj["params"], list(shards) or None, echo=click.echo))


@cli.command("dvc-yaml")
@click.option("--out", "out", default="dvc.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Exit 1 when OUT differs from what the declarations generate.")
def dvc_yaml_cmd(out: Path, check: bool) -> None:
    """Write dvc.yaml from the stage declarations (the registries and orchestration/dvc_yaml.py)."""
    from orchestration.dvc_yaml import dvc_yaml

    text = dvc_yaml()
    if check:
        if not out.is_file() or out.read_text() != text:
            click.echo(f"{out} differs from the stage declarations: run `reactid dvc-yaml`", err=True)
            sys.exit(1)
        click.echo(f"{out}: up to date")
        return
    out.write_text(text)
    click.echo(f"{out}: written")


@cli.command("code-versions")
@click.pass_context
def code_versions_cmd(ctx: click.Context) -> None:
    """Write each dvc.yaml stage's code version to <storage.root>/code_versions/<stage>.json (the
    always-run first dvc.yaml stage: a stage reruns under dvc exactly when its file changes)."""
    from orchestration.dvc_yaml import CODE_VERSIONS_DIR, code_version_key, code_versions

    params = _params(ctx)
    root = params.resolve(params.storage.root)
    versions = code_versions()
    for stage, version in versions.items():
        path = root / code_version_key(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"stage": stage, "code_version": version}) + "\n"
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    click.echo(f"{len(versions)} code versions in {root / CODE_VERSIONS_DIR}")


cli.add_command(submission)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ReactIDError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
