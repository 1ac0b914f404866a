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


@cli.command()
@click.option("--shard", "shards", multiple=True, help="Shards to report (default: the demo shards in params).")
@click.pass_context
def report(ctx: click.Context, shards: tuple[str, ...]) -> None:
    """Write the curation report and its metrics for curated shards."""
    from core.storage import open_store
    from curation.report import REPORT_KEY, build_curation_report

    params = _params(ctx)
    store = open_store(params.storage.backend, str(params.resolve(params.storage.root)))
    build_curation_report(params, store, list(shards or params.demo_pool.shards))
    click.echo(f"report: {params.resolve(params.storage.root) / REPORT_KEY}")


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
