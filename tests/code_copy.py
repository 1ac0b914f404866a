"""A copy of the project's packages to edit in a test, and the code scanner pointed at it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core import code_version

REPO = Path(__file__).resolve().parents[1]


def copy_project(dest: Path) -> Path:
    """The project's packages (and their data files) under `dest`."""
    for package in code_version.PROJECT_PACKAGES:
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the packages that every code version in the test is computed from."""
    root = copy_project(tmp_path / "checkout")
    monkeypatch.setattr(code_version, "PROJECT_ROOT", root)
    monkeypatch.setenv("REACTID_CODE_SCAN_CACHE", str(tmp_path / "code_scan.json"))
    return root


def edit(root: Path, relpath: str, old: str, new: str) -> None:
    """Replace the first `old` in a file of the copy (which must contain it)."""
    path = root / relpath
    text = path.read_text()
    assert old in text, f"{relpath} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


def edit_docstring(root: Path, relpath: str) -> None:
    """Append a sentence to the module docstring of a file of the copy."""
    path = root / relpath
    text = path.read_text()
    new, n = re.subn(r'^("""[^\n]*)', r"\1 Edited for a test.", text, count=1, flags=re.M)
    assert n == 1, f"{relpath} has no module docstring"
    path.write_text(new)


def add_comment(root: Path, relpath: str) -> None:
    """Add a comment line and a blank line to a file of the copy."""
    path = root / relpath
    path.write_text(path.read_text() + "\n\n# a comment added for a test\n")


def add_statement(root: Path, relpath: str) -> None:
    """Add a module-level statement to a file of the copy."""
    path = root / relpath
    path.write_text(path.read_text() + "\n_EDITED_FOR_A_TEST = 1\n")
