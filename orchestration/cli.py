"""The `reactid` command line. `dvc repro` calls `reactid run STAGE ...` (one entry for every declared
stage: assets.declarations); `make demo` calls `reactid demo`."""

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


def _run_key(spec, stages, params, store, shards: tuple[str, ...], variant: str | None, model: str | None,
             benchmark: str | None) -> tuple[str, tuple[str, ...]]:
    """The run of `spec` the options name (its partition) and the runs of its upstream stages it reads."""
    from assets.declarations import read_partitioning
    from core.params import check_shard_name
    from core.stage import AGGREGATE
    from evaluation.demo_benchmarks import BENCHMARKS
    from evaluation.stages import run_key

    part = spec.partitions
    reading = read_partitioning(spec, stages)
    given = {"--shard": bool(shards), "--variant": variant is not None, "--model": model is not None,
             "--benchmark": benchmark is not None}
    wanted = {"shard": {"--shard"}, "variant": {"--variant"}, "model": {"--model"},
              "benchmark_model": {"--benchmark", "--model"}, "aggregate": set()}[part]
    optional = {"--shard"} if reading == "shard" else set()
    for option, present in given.items():
        if present and option not in wanted | optional:
            raise click.UsageError(f"{spec.name} is run {_PER[part]}: it takes no {option}")
        if not present and option in wanted:
            raise click.UsageError(f"{spec.name} is run {_PER[part]}: it needs {' and '.join(sorted(wanted))}")
    if part == "shard":
        if len(shards) != 1:
            raise click.UsageError(f"{spec.name} is run per shard: give one --shard")
        key = check_shard_name(shards[0])
    elif part == "variant":
        from training.ablations import ABLATION_VARIANTS

        if variant not in ABLATION_VARIANTS:
            raise click.BadParameter(f"unknown variant {variant!r}; expected one of {list(ABLATION_VARIANTS)}",
                                     param_hint="--variant")
        key = variant
    elif part == "model":
        key = model
    elif part == "benchmark_model":
        if benchmark not in BENCHMARKS:
            raise click.BadParameter(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}",
                                     param_hint="--benchmark")
        key = run_key(benchmark, model)
    else:
        key = AGGREGATE
    if reading is None:
        return key, ()
    if spec.reads is not None:
        return key, spec.reads(params)
    if reading == "shard":  # the shards named (default: the demo's) whose annotations passed the gates
        from curation.gate_status import passed_shards

        read, left_out = passed_shards(store, tuple(check_shard_name(s) for s in (shards or params.demo_pool.shards)))
        if left_out:
            click.echo(f"shards left out: {left_out}", err=True)
        if not read:
            raise click.ClickException("no shard's annotations passed the quality gates; run `reactid gate` first")
        return key, tuple(read)
    if reading == "benchmark_model":
        return key, tuple(run_key(b, m) for b in BENCHMARKS for m in params.evaluation.models)
    return key, (AGGREGATE,)


_PER = {"shard": "per shard (--shard S)", "variant": "per ablation variant (--variant V)",
        "model": "per untrained model (--model M)",
        "benchmark_model": "per benchmark and model (--benchmark B --model M)",
        "aggregate": "once over all its inputs"}


def _run_stage(ctx: click.Context, name: str, *, domain: str | None = None, shards: tuple[str, ...] = (),
               variant: str | None = None, model: str | None = None, benchmark: str | None = None,
               force: bool = False) -> None:
    """Run stage `name` (declared in package `domain`, default: any) for the run its options name."""
    import uuid

    from assets.declarations import after_run, project_stages
    from core.params import check_shard_name
    from core.stage import run_stage
    from core.storage import open_params_store
    from orchestration.progress import terminal_progress

    params = _params(ctx)
    stages = project_stages(params)
    known = sorted(n for n, spec in stages.items() if domain in (None, spec.fn.__module__.split(".")[0]))
    if name not in known:
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {known}", param_hint="NAME")
    spec = stages[name]
    for shard in shards:  # a bad name stops before the store is touched
        check_shard_name(shard)
    store = open_params_store(params)
    key, reads = _run_key(spec, stages, params, store, shards, variant, model, benchmark)
    with terminal_progress():
        result = run_stage(spec, key, params, store, force=force, shards=reads)
    summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview") and k != "scores"}
    state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
    click.echo(f"{name}[{key}] {state}: {json.dumps(summary, default=str)}")
    recorded = after_run(spec, params, store, result.fingerprint, reads, run_id=f"cli-{uuid.uuid4().hex[:12]}")
    if recorded:
        click.echo(f"lakeFS: tag {recorded['tag']} -> {recorded['commit_id']} (data {recorded['data_commit']})")


_FORCE = click.option("--force", is_flag=True, help="Recompute even when the outputs are up to date.")


@cli.command("run")
@click.argument("name")
@click.option("--shard", "shards", multiple=True,
              help="Per-shard stages: the shard. Stages over all shards: the shards to read (repeatable; default: "
                   "params demo_pool.shards), of which those whose annotations passed the quality gates.")
@click.option("--variant", default=None, help="Per-variant stages (ablation_runs): the ablation variant.")
@click.option("--model", default=None, help="Per-model stages: the model (untrained_model: a name in "
                                            "evaluation.untrained_models).")
@click.option("--benchmark", default=None, help="Per-(benchmark, model) stages: the benchmark.")
@_FORCE
@click.pass_context
def run_cmd(ctx: click.Context, name: str, shards: tuple[str, ...], variant: str | None, model: str | None,
            benchmark: str | None, force: bool) -> None:
    """Run one declared stage (what each dvc.yaml stage calls) unless its outputs are up to date.

    The options name its run by how the stage is split: --shard S; --variant V; --model M;
    --benchmark B --model M; nothing for a stage over all its inputs."""
    _run_stage(ctx, name, shards=shards, variant=variant, model=model, benchmark=benchmark, force=force)


@cli.command()
@click.argument("name")
@click.option("--shard", required=True)
@_FORCE
@click.pass_context
def stage(ctx: click.Context, name: str, shard: str, force: bool) -> None:
    """Run one curation or annotation stage for one shard (`reactid run NAME --shard S`)."""
    _run_stage(ctx, name, domain="curation", shards=(shard,), force=force)


@cli.command("train-stage")
@click.argument("name")
@click.option("--shard", "shards", multiple=True, help="Annotated shards to read (default: the demo shards in params).")
@click.option("--variant", default=None, help="Ablation variant (ablation_runs only), e.g. tarope_T4.")
@_FORCE
@click.pass_context
def train_stage(ctx: click.Context, name: str, shards: tuple[str, ...], variant: str | None, force: bool) -> None:
    """Run one curriculum or training stage (`reactid run NAME ...`): training_samples ... curriculum_schedule,
    latent_cache, curriculum_phase_<k>, ablation_runs --variant V."""
    _run_stage(ctx, name, domain="training", shards=shards, variant=variant, force=force)


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
@_FORCE
@click.pass_context
def eval_stage(ctx: click.Context, name: str, benchmark: str | None, model: str | None, force: bool) -> None:
    """Run one evaluation stage (`reactid run NAME ...`)."""
    _run_stage(ctx, name, domain="evaluation", model=model, benchmark=benchmark, force=force)


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
@click.pass_context
def dvc_yaml_cmd(ctx: click.Context, out: Path, check: bool) -> None:
    """Write dvc.yaml from the stage declarations (assets/declarations.py and orchestration/dvc_yaml.py),
    with one stage per curriculum phase of params (curriculum.phase_ratios)."""
    from orchestration.dvc_yaml import dvc_yaml

    text = dvc_yaml(_params(ctx))
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
    versions = code_versions(params)
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
