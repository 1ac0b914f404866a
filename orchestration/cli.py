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
    from core.params import load_params

    return load_params(ctx.obj["params"])


@cli.command("check-params")
@click.pass_context
def check_params(ctx: click.Context) -> None:
    """Validate params.yaml and exit non-zero naming every bad key."""
    _params(ctx)
    click.echo(f"{ctx.obj['params']}: ok")


@cli.command()
@click.option("--shard", required=True, help="Shard name, e.g. demo-000.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Pool root; the shard goes to OUT/SHARD/.")
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="Ground-truth folder (default: OUT/../ground_truth).")
@click.option("--kind", type=click.Choice(["procedural", "real_footage"]), default="procedural", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-videos", type=int, default=10, show_default=True)
@click.option("--size", default="320x240", show_default=True, help="WIDTHxHEIGHT of procedural videos.")
@click.option("--fps", type=int, default=12, show_default=True)
def synth(shard: str, out: Path, truth: Path | None, kind: str, seed: int, n_videos: int, size: str, fps: int) -> None:
    """Generate a demo shard: videos + manifest.jsonl, ground truth kept apart."""
    from core.params import check_shard_name
    from curation.synth import build_demo_shard

    check_shard_name(shard)
    width, height = (int(v) for v in size.lower().split("x"))
    folder, truth_path = build_demo_shard(out, truth or out.parent / "ground_truth", shard=shard, kind=kind, seed=seed,
                                          n_videos=n_videos, width=width, height=height, fps=fps)
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
    from core.storage import open_store
    from curation.stages import STAGES
    from orchestration.progress import terminal_progress

    if name not in STAGES:
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {sorted(STAGES)}", param_hint="NAME")
    params = _params(ctx)
    check_shard_name(shard)
    store = open_store(params.storage.backend, str(params.resolve(params.storage.root)))
    with terminal_progress():
        result = run_stage(STAGES[name], shard, params, store, force=force)
    summary = {k: v for k, v in result.metadata.items() if not k.endswith("preview")}
    state = "up to date" if result.skipped else f"done in {result.seconds:.1f}s"
    click.echo(f"{name}[{shard}] {state}: {json.dumps(summary, default=str)}")


@cli.command("train-stage")
@click.argument("name")
@click.option("--shard", "shards", multiple=True, help="Annotated shards to read (default: the demo shards in params).")
@click.option("--force", is_flag=True, help="Recompute even when the outputs are up to date.")
@click.pass_context
def train_stage(ctx: click.Context, name: str, shards: tuple[str, ...], force: bool) -> None:
    """Run one curriculum stage over all shards (what each curriculum dvc.yaml stage calls)."""
    from core.params import check_shard_name
    from core.stage import AGGREGATE, run_stage
    from core.storage import open_store
    from orchestration.progress import terminal_progress
    from training.stages import TRAINING_STAGES

    if name not in TRAINING_STAGES:
        raise click.BadParameter(f"unknown stage {name!r}; expected one of {sorted(TRAINING_STAGES)}", param_hint="NAME")
    params = _params(ctx)
    shards = tuple(check_shard_name(s) for s in (shards or params.demo_pool.shards))
    store = open_store(params.storage.backend, str(params.resolve(params.storage.root)))
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


@cli.command()
@click.option("--shard", "shards", multiple=True, help="Shards to report (default: the demo shards in params).")
@click.option("--kind", type=click.Choice(["curation", "annotation", "all"]), default="all", show_default=True)
@click.pass_context
def report(ctx: click.Context, shards: tuple[str, ...], kind: str) -> None:
    """Write the curation and annotation reports and their metrics."""
    from core.storage import open_store
    from curation import annotation_report, report as curation_report

    params = _params(ctx)
    store = open_store(params.storage.backend, str(params.resolve(params.storage.root)))
    wanted = list(shards or params.demo_pool.shards)
    root = params.resolve(params.storage.root)
    if kind in ("curation", "all"):
        curation_report.build_curation_report(params, store, wanted)
        click.echo(f"report: {root / curation_report.REPORT_KEY}")
    if kind in ("annotation", "all"):
        ready = [s for s in wanted if annotation_report.report_inputs_ready(store, s)]
        annotation_report.build_annotation_report(params, store, ready)
        click.echo(f"report: {root / annotation_report.REPORT_KEY}")


@cli.command()
@click.option("--shard", required=True)
@click.pass_context
def gate(ctx: click.Context, shard: str) -> None:
    """Run every annotation quality-gate suite on a shard and record its verdict (what the
    blocking Dagster checks do; dvc.yaml's quality_gates stage calls this). Exit 1 on failure."""
    from core.params import check_shard_name
    from core.storage import open_store
    from curation.gate_status import run_shard_gates

    params = _params(ctx)
    store = open_store(params.storage.backend, str(params.resolve(params.storage.root)))
    results = run_shard_gates(params, store, check_shard_name(shard))
    for result in results.values():
        click.echo(result.summary())
    if not all(r.success for r in results.values()):
        sys.exit(1)


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
