"""Every dvc.yaml stage depends on the code its Dagster twin fingerprints (StageSpec.code_modules):
an edit that makes Dagster redo a stage makes `dvc repro` redo it too."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml


def _registries():
    from curation.stages import STAGES
    from evaluation.stages import EVAL_STAGES
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    return {**STAGES, **TRAINING_STAGES, **TRAINING_RUN_STAGES, **EVAL_STAGES}


def _module_file(module: str, repo_root: Path) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    path = Path(spec.origin).resolve()
    # a package is its folder: dvc hashes every file under it
    return (path.parent if path.name == "__init__.py" else path).relative_to(repo_root).as_posix()


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") or dep.startswith(path + "/")
               for dep in deps)


@pytest.mark.parametrize("name", sorted(_registries()))
def test_dvc_stage_depends_on_the_code_dagster_fingerprints(name, repo_root):
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    if name not in spec:
        pytest.skip(f"{name} has no dvc.yaml stage (Dagster only)")
    body = spec[name].get("do", spec[name])
    deps = [d for d in body.get("deps", []) if not d.startswith("$")]
    # core/ is shared by every stage and listed by none
    needed = [_module_file(m, repo_root) for m in _registries()[name].code_modules if not m.startswith("core.")]
    missing = [path for path in needed if not _covered(path, deps)]
    assert not missing, f"dvc.yaml stage {name} does not list {missing}"
