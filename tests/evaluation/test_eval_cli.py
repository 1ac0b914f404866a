import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from evaluation.cli import submission

DATA = Path(__file__).parent / "data"

TRACK1 = str(DATA / "ipvg" / "track1_eval.json")


def make_run(root, video, names=("1.mp4", "2.mp4", "3.mp4")):
    root.mkdir(parents=True)
    for name in names:
        shutil.copyfile(video, root / name)
    return root


def test_group_attaches_as_reactid_submission():
    import click

    assert submission.name == "submission"
    assert set(submission.commands) == {"validate", "package"}
    root = click.Group("reactid", commands=[submission])
    assert CliRunner().invoke(root, ["submission", "--help"]).exit_code == 0


def test_validate_valid_directory_exits_zero(tmp_path, h264_video):
    make_run(tmp_path / "sub" / "submission", h264_video)
    result = CliRunner().invoke(
        submission, ["validate", str(tmp_path / "sub"), "--track", "1", "--eval-json", TRACK1]
    )
    assert result.exit_code == 0, result.output
    assert "valid Track 1 submission" in result.output


def test_validate_prints_every_problem_and_fails(tmp_path, h264_video):
    make_run(tmp_path / "sub" / "submission", h264_video, ("1.mp4", "4.mp4"))
    result = CliRunner().invoke(
        submission, ["validate", str(tmp_path / "sub"), "--track", "1", "--eval-json", TRACK1]
    )
    assert result.exit_code == 1
    for line in (
        "[missing_video] submission/2.mp4",
        "[missing_video] submission/3.mp4",
        "[unexpected_entry] submission/4.mp4",
        "INVALID: 3 problems",
    ):
        assert line in result.output


def test_validate_rejects_bad_arguments(tmp_path):
    runner = CliRunner()
    assert runner.invoke(submission, ["validate", str(tmp_path), "--track", "3"]).exit_code == 2
    assert (
        runner.invoke(submission, ["validate", str(tmp_path / "nope"), "--track", "1"]).exit_code
        == 2
    )
    bad_eval = tmp_path / "eval.json"
    bad_eval.write_text("[]")
    result = runner.invoke(
        submission, ["validate", str(tmp_path), "--track", "2", "--eval-json", str(bad_eval)]
    )
    assert result.exit_code == 1 and "has no entries" in result.output


def test_package_then_validate_the_archive(tmp_path, h264_video):
    run = make_run(tmp_path / "run", h264_video)
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(
        submission,
        [
            "package",
            "--track",
            "1",
            "--run",
            f"main={run}",
            "--primary",
            "main",
            "--out",
            str(out),
            "--eval-json",
            TRACK1,
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["primary"] == "main"
    check = runner.invoke(
        submission,
        [
            "validate",
            str(out / "main" / "facial_results.zip"),
            "--track",
            "1",
            "--eval-json",
            TRACK1,
        ],
    )
    assert check.exit_code == 0, check.output


def test_package_refuses_invalid_runs_and_bad_specs(tmp_path, h264_video):
    run = make_run(tmp_path / "run", h264_video, ("1.mp4",))
    runner = CliRunner()
    result = runner.invoke(
        submission,
        [
            "package",
            "--track",
            "1",
            "--run",
            f"main={run}",
            "--primary",
            "main",
            "--out",
            str(tmp_path / "out"),
            "--eval-json",
            TRACK1,
        ],
    )
    assert result.exit_code == 1 and "NOT WRITTEN: 2 problems" in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()
    spec = runner.invoke(
        submission,
        [
            "package",
            "--track",
            "1",
            "--run",
            "nodir",
            "--primary",
            "x",
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert spec.exit_code == 2 and "NAME=DIR" in spec.output
    primary = runner.invoke(
        submission,
        [
            "package",
            "--track",
            "1",
            "--run",
            f"main={run}",
            "--primary",
            "other",
            "--out",
            str(tmp_path / "o3"),
        ],
    )
    assert primary.exit_code == 1 and "exactly one run must be primary" in primary.output
