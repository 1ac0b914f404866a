"""``reactid submission …``: validate and package IPVG submissions.

The top-level CLI attaches :data:`submission` as a sub-group.
"""

from __future__ import annotations

from pathlib import Path

import click

from evaluation.errors import BenchmarkFormatError, InvalidSubmissionError

_TRACK = click.Choice(["1", "2"])
_LAYOUT = click.Choice(["published", "proposal"])


@click.group("submission")
def submission() -> None:
    """Validate and package IPVG 2026 submissions (Track 1 facial, Track 2 sequential)."""


@submission.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--track", type=_TRACK, required=True, help="1 = facial, 2 = sequential actions.")
@click.option("--layout", type=_LAYOUT, default="published", show_default=True)
@click.option(
    "--eval-json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The track's eval file; checks names and count against its samples.",
)
def validate_cmd(path: Path, track: str, layout: str, eval_json: Path | None) -> None:
    """Check a submission zip or directory; exit 0 only when it is valid."""
    from evaluation.submission import validate

    try:
        problems = validate(path, int(track), layout, eval_json)  # type: ignore[arg-type]
    except BenchmarkFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        click.echo(f"INVALID: {len(problems)} problems in {path}", err=True)
        raise SystemExit(1)
    click.echo(f"valid Track {track} submission ({layout} layout): {path}")


@submission.command("package")
@click.option("--track", type=_TRACK, required=True)
@click.option(
    "--run",
    "runs",
    multiple=True,
    required=True,
    metavar="NAME=DIR",
    help="A run: its name and the directory holding what goes under submission/. Up to 3.",
)
@click.option("--primary", required=True, help="Name of the primary run.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--layout", type=_LAYOUT, default="published", show_default=True)
@click.option("--eval-json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def package_cmd(
    track: str,
    runs: tuple[str, ...],
    primary: str,
    out: Path,
    layout: str,
    eval_json: Path | None,
) -> None:
    """Validate and zip up to three runs of one track, and write their manifest."""
    from evaluation.packaging import RunSource, package_runs

    sources = []
    for spec in runs:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise click.BadParameter(f"expected NAME=DIR, got {spec!r}", param_hint="--run")
        sources.append(RunSource(name, Path(directory), primary=(name == primary)))
    try:
        manifest = package_runs(
            sources,
            int(track),
            out,
            layout=layout,
            eval_json=eval_json,  # type: ignore[arg-type]
        )
    except InvalidSubmissionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"NOT WRITTEN: {len(exc.problems)} problems", err=True)
        raise SystemExit(1) from exc
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {manifest}")
