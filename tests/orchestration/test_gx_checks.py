"""The blocking great-expectations checks on `annotations`, run for real in Dagster: a
broken shard stops the run before anything downstream, a good one passes with its Data
Docs linked. And `reactid validate` gives the same verdict from the shell."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg
import pytest

from assets.checks import GATE_SUITES, annotation_quality_gates, check_name
from assets.partitions import shard_partitions
from assets.resources import ReactIDResource
from core.storage import LocalObjectStore
from core.tables import write_table
from orchestration.cli import main


def _load_gate_tables():
    spec = importlib.util.spec_from_file_location("gate_tables", Path(__file__).resolve().parents[1] / "gate_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gt = _load_gate_tables()


def _annotations_asset(tables):
    """Stand-in for the lead's per-shard `annotations` asset: writes the stage tables."""

    @dg.asset(name="annotations", partitions_def=shard_partitions)
    def annotations(context, reactid: ReactIDResource) -> dg.MaterializeResult:
        store = reactid.store(reactid.load_params())
        for name, table in tables.items():
            write_table(store, f"tables/{name}/{context.partition_key}.parquet", table)
        return dg.MaterializeResult(metadata={"tables": len(tables)})

    return annotations


@dg.asset(partitions_def=shard_partitions, deps=["annotations"])
def training_samples() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"reached": True})


def _materialize(project: Path, tables) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [gt.SHARD])
    return dg.materialize(
        [_annotations_asset(tables), annotation_quality_gates, training_samples], partition_key=gt.SHARD,
        instance=instance, resources={"reactid": ReactIDResource(project_dir=str(project))}, raise_on_error=False,
    )


def _materialized(result) -> set[str]:
    return {e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()}


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    evaluations = result.get_asset_check_evaluations()
    assert all(e.partition == gt.SHARD for e in evaluations)
    return {e.check_name: e for e in evaluations}


def _docs_index(evaluation) -> Path:
    return Path(url2pathname(urlparse(evaluation.metadata["data_docs"].value).path))


def test_checks_cover_every_suite_and_block():
    from curation.quality_gates import SUITES

    assert GATE_SUITES == SUITES
    specs = list(annotation_quality_gates.check_specs)
    assert {s.name for s in specs} == {check_name(s) for s in SUITES}
    assert all(s.blocking and s.asset_key == dg.AssetKey("annotations") and s.partitions_def == shard_partitions
               for s in specs)


def test_checks_module_loads_without_great_expectations_or_pandas(repo_root):
    code = "import sys, assets.checks; print([m for m in ('great_expectations', 'pandas') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_good_shard_passes_and_reaches_downstream_with_data_docs(make_project):
    project = make_project().parent
    result = _materialize(project, gt.to_tables(gt.good_rows()))
    assert result.success
    assert _materialized(result) == {"annotations", "training_samples"}
    checks = _checks(result)
    assert set(checks) == {check_name(s) for s in GATE_SUITES}
    assert all(e.passed for e in checks.values()), {k: e.metadata.get("failures") for k, e in checks.items()}
    joined = checks["gx_annotations"].metadata
    assert joined["captions_share_at_least_50_words"].value == 0.5
    assert joined["caption_word_count"].value["captions"] == 2 and "failures" not in joined
    index = _docs_index(checks["gx_captions"])
    assert index == project / "data" / "reports" / "gx" / gt.SHARD / result.run_id / "index.html"
    assert index.is_file() and "timelines.events" in index.read_text()


def test_broken_shard_blocks_downstream_naming_failures_and_rows(make_project):
    project = make_project().parent
    result = _materialize(project, gt.edited(gt.break_annotations))
    assert not result.success
    assert _materialized(result) == {"annotations"}  # training_samples never ran
    checks = _checks(result)
    assert not checks["gx_annotations"].passed
    assert all(e.passed for name, e in checks.items() if name != "gx_annotations")  # only the joined table is broken
    meta = checks["gx_annotations"].metadata
    assert meta["failed_expectations"].value == 4
    failures, samples = meta["failures"].value, meta["sample_rows"].value
    for expectation in ("event start < end", "events sorted by start time",
                        "box inside the frame: x1 <= frame width", "mask inside its box"):
        assert expectation in failures
    dog = f"{gt.CLIP_A}-e1"
    assert "**[boxes] box inside the frame: x1 <= frame width**" in samples
    assert f"| 1 | {gt.CLIP_A} | {dog} | 0 | 320 | 400 |" in samples
    assert _docs_index(checks["gx_annotations"]).is_file()


# ---------------------------------------------------------------- reactid validate


@pytest.fixture
def shard_tables(make_project):
    """A project whose store holds the good tables and a broken annotations table."""
    params = make_project()
    store = LocalObjectStore(params.parent / "data")
    for name, table in gt.to_tables(gt.good_rows()).items():
        write_table(store, f"tables/{name}/{gt.SHARD}.parquet", table)
    broken = store.path(f"broken/annotations/{gt.SHARD}.parquet")
    write_table(store, f"broken/annotations/{gt.SHARD}.parquet", gt.edited(gt.break_annotations)["annotations"])
    return params, store, broken


def _reactid(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["reactid", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_validate_exit_codes(shard_tables, monkeypatch, capsys):
    params, store, broken = shard_tables
    timelines = store.path(f"tables/timelines/{gt.SHARD}.parquet")
    code, out = _reactid(monkeypatch, capsys, "--params", params, "validate", timelines, "--suite", "timelines")
    assert code == 0, out
    assert out.startswith("timelines: passed")  # clip durations found beside the table

    code, out = _reactid(monkeypatch, capsys, "--params", params, "validate", broken, "--suite", "annotations")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("annotations: FAILED (4 of ")
    assert any(line.startswith("  - [events] event start < end") for line in lines)
    assert any(line.startswith("  - [boxes] box inside the frame: x1 <= frame width") for line in lines)
    assert any("x1=400" in line for line in lines)


def test_validate_usage_errors(shard_tables, monkeypatch, capsys, tmp_path):
    params, store, _ = shard_tables
    faces = tmp_path / "faces.parquet"
    faces.write_bytes(store.get_bytes(f"tables/faces/{gt.SHARD}.parquet"))
    code, out = _reactid(monkeypatch, capsys, "--params", params, "validate", faces, "--suite", "faces")
    assert code == 2 and "pass --clips" in out
    code, out = _reactid(monkeypatch, capsys, "--params", params, "validate", faces, "--suite", "attributes")
    assert code == 2 and "unknown suite 'attributes'" in out
    code, out = _reactid(monkeypatch, capsys, "--params", params, "validate", faces, "--suite", "timelines",
                         "--clips", store.path(f"tables/curated_clips/{gt.SHARD}.parquet"))
    assert code == 2 and "table lacks columns ['global_caption', 'event_count', 'events'" in out
