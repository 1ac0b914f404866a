"""The design's floors, checked on the source: domain packages stay free of the layers above.

core       -> nothing of ours
curation   -> core
models     -> core
training   -> core, curation (tables/timelines it trains on), models
evaluation -> core, curation, models, training
versioning -> core, curation (the gate verdict it commits)
assets, orchestration -> anything (they are the thin layers on top)

Params follow the same floors: each domain's `params.py` owns its sections and their rules,
and the project's full model is assembled above them (orchestration/params.py), so no
domain's settings live in core.

Dagster is imported only by assets/ and orchestration/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ALLOWED = {
    "core": {"core"},
    "curation": {"core", "curation"},
    "models": {"core", "models"},
    "training": {"core", "curation", "models", "training"},
    "evaluation": {"core", "curation", "models", "training", "evaluation"},
    "versioning": {"core", "curation", "versioning"},
}
OURS = {"core", "curation", "models", "training", "evaluation", "assets", "orchestration", "versioning"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_domain_package_imports_only_lower_layers(repo_root, package):
    problems = []
    for path in sorted((repo_root / package).rglob("*.py")):
        imported = _imports(path)
        wrong = (imported & OURS) - ALLOWED[package]
        if wrong:
            problems.append(f"{path.relative_to(repo_root)} imports {sorted(wrong)}")
        if "dagster" in imported:
            problems.append(f"{path.relative_to(repo_root)} imports dagster")
    assert not problems, "\n".join(problems)
