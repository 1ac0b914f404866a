"""Code versions follow imports (lazy ones inside functions included) and ignore comments and
docstrings; data files a module names count; scanning imports nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.code_version import code_version, module_closure
from tests.code_copy import add_comment, add_statement, edit, edit_docstring, project_copy  # noqa: F401


def _stage(name: str):
    from curation.stages import STAGES
    from evaluation.stages import EVAL_STAGES
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    return {**STAGES, **TRAINING_STAGES, **TRAINING_RUN_STAGES, **EVAL_STAGES}[name]


def _version(name: str) -> str:
    from core.stage import stage_code_version

    return stage_code_version(_stage(name)).version


@pytest.mark.parametrize("stage,module", [
    ("captions", "curation/pretrained/captioner.py"),  # imported inside a function
    ("captions", "curation/video_io.py"),
    ("subjects", "curation/pretrained/segmentation.py"),
    ("scene_clips", "curation/scenes.py"),
    ("benchmark_scores", "evaluation/metrics/gme.py"),  # built lazily by the metric registry
    ("benchmark_scores", "evaluation/metrics/unavailable.py"),
    ("curriculum_phase_2", "models/transformer_reactid.py"),
    ("training_samples", "core/stage.py"),
])
def test_a_statement_changes_the_version_a_comment_or_docstring_does_not(project_copy, stage, module):
    before = _version(stage)
    edit_docstring(project_copy, module)
    add_comment(project_copy, module)
    assert _version(stage) == before
    add_statement(project_copy, module)
    assert _version(stage) != before


def test_a_stage_does_not_cover_code_it_never_imports(project_copy):
    before = _version("captions")
    add_statement(project_copy, "training/phase.py")
    assert _version("captions") == before


def test_the_taxonomy_counts_by_content_not_layout(project_copy):
    before = _version("entities")
    path = project_copy / "curation/data/taxonomy.json"
    taxonomy = json.loads(path.read_text())
    path.write_text(json.dumps(taxonomy, indent=4))
    assert _version("entities") == before
    edit(project_copy, "curation/data/taxonomy.json", '"', '"zz_', )
    assert _version("entities") != before


def test_benchmark_scores_covers_every_metric_module_and_the_scoring_chain(repo_root):
    from core.stage import code_roots

    closure = set(module_closure(code_roots(_stage("benchmark_scores"))))
    metrics = {f"evaluation.metrics.{p.stem}" for p in (repo_root / "evaluation/metrics").glob("*.py")
               if p.stem != "__init__"}
    assert metrics - closure == set()
    assert {"evaluation.video", "evaluation.generation", "evaluation.benchmarks", "evaluation.benchmark_scores",
            "evaluation.total_score", "core.stage"} <= closure


def test_lazy_package_exports_resolve_to_the_module_that_defines_them(project_copy):
    (project_copy / "curation/uses_lazy_export.py").write_text("from models import PRESETS\n")
    (project_copy / "curation/imports_a_submodule.py").write_text("import models.variants\n")
    assert "models.presets" in module_closure(["curation.uses_lazy_export"])
    # importing a submodule runs the package __init__, not every module it could load lazily
    assert "models.presets" not in module_closure(["curation.imports_a_submodule"])


def test_relative_imports_resolve(project_copy):
    (project_copy / "curation/pretrained/relative_probe.py").write_text(
        "from . import errors\nfrom ..rle import encode\n")
    closure = module_closure(["curation.pretrained.relative_probe"])
    assert {"curation.pretrained.errors", "curation.rle", "curation.pretrained", "curation"} <= set(closure)


def test_a_root_that_is_not_a_module_is_refused(project_copy):
    with pytest.raises(ModuleNotFoundError, match="curation.no_such_module"):
        code_version(["curation.no_such_module"])


def test_versions_come_from_the_disk_cache_in_a_new_process(tmp_path, repo_root):
    code = ("import json, sys\nfrom core.code_version import code_version\n"
            "print(json.dumps(code_version(['evaluation.stages']).version))\n"
            "print(','.join(m for m in ('torch', 'transformers', 'cv2', 'dlib', 'dagster') if m in sys.modules))")
    env = {"REACTID_CODE_SCAN_CACHE": str(tmp_path / "scan.json"), "PYTHONPATH": str(repo_root),
           "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                           cwd=repo_root)
    assert (tmp_path / "scan.json").is_file()
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                            cwd=repo_root)
    version, heavy = first.stdout.splitlines()
    assert second.stdout.splitlines() == [version, ""] and heavy == ""


def test_a_torn_disk_cache_is_rescanned(tmp_path, repo_root, monkeypatch):
    from core import code_version as cv

    expected = code_version(["training.stages"]).version
    (tmp_path / "scan.json").write_text("{not json")
    monkeypatch.setenv("REACTID_CODE_SCAN_CACHE", str(tmp_path / "scan.json"))
    monkeypatch.setattr(cv, "_disk", None)
    for memo in ("_scans", "_contents", "_closures", "_versions"):
        monkeypatch.setattr(cv, memo, {})
    assert code_version(["training.stages"]).version == expected
    assert json.loads((tmp_path / "scan.json").read_text())
