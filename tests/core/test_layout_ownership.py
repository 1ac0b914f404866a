"""Every store key is built by core.layout: a key spelled out anywhere else fails here.

The scan reads the syntax tree of the project's packages, so docstrings and comments may
name keys freely; what it flags is code: a string or f-string that starts with one of the
store's top-level folders (``"tables/"``, ``f"metrics/{stage}"``), and a bare folder name
(``"models"``) given to a store call, a table reader or writer, a stage output, or bound to
a module constant.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import layout

PACKAGES = ("core", "curation", "models", "training", "evaluation", "versioning", "assets", "orchestration")
OWNER = "core/layout.py"
# Calls whose first argument is a key.
STORE_METHODS = {"list", "exists", "get_bytes", "put_bytes", "put_file", "writer", "delete_prefix", "local_path",
                 "open_stream", "staged_prefix", "uri", "filesystem_path"}
# Calls whose second argument (after the store) is a key.
TABLE_FUNCTIONS = {"read_table", "write_table", "read_json", "write_json", "location"}
# Module constants named like a key (a Dagster group or partition set named "models" is not one).
KEY_CONSTANT = re.compile(r"KEY|PREFIX|ROOT|DIR|PATH|FOLDER")
# Layout's folders that are nested (index/shard_order) start with their first segment.
TOP_LEVEL = tuple(sorted(set(layout.TOP_LEVEL)))


def _skipped(tree: ast.AST) -> set[int]:
    """ids of the constants not to judge on their own: docstrings and bare string statements,
    and the pieces of an f-string (judged as a whole)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(id(node.value))
        elif isinstance(node, ast.JoinedStr):
            out.update(id(v) for v in node.values)
    return out


def _leading_text(node: ast.AST) -> str | None:
    """The literal text a string or f-string starts with (None: not a string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
    return None


def _is_key_prefix(text: str) -> bool:
    return any(text.startswith(f"{top}/") for top in TOP_LEVEL)


def _is_folder(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.rstrip("/") in TOP_LEVEL


def hand_built_keys(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, code) of every key this source builds itself instead of asking core.layout."""
    tree = ast.parse(source, filename=filename)
    skipped = _skipped(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        text = _leading_text(node)
        if text is not None and _is_key_prefix(text):
            found.append((node.lineno, ast.unparse(node)))
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = 0 if name in STORE_METHODS or name == "Output" else 1 if name in TABLE_FUNCTIONS else None
            if position is not None and len(node.args) > position and _is_folder(node.args[position]):
                found.append((node.lineno, ast.unparse(node)))
    for node in tree.body if isinstance(tree, ast.Module) else ():
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_folder(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and KEY_CONSTANT.search(t.id) for t in targets):
                found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


def test_no_key_is_built_outside_the_layout_module(repo_root: Path):
    problems = []
    for package in PACKAGES:
        for path in sorted((repo_root / package).rglob("*.py")):
            rel = path.relative_to(repo_root).as_posix()
            if rel == OWNER:
                continue
            problems += [f"{rel}:{line}: {code}" for line, code in hand_built_keys(path.read_text(), rel)]
    assert not problems, "keys built by hand (use core.layout):\n" + "\n".join(problems)


@pytest.mark.parametrize("code", [
    'key = f"tables/{stage}/{shard}.parquet"',
    'store.exists("metrics/x.json")',
    'store.list("videos")',
    'read_table(store, "tables/a/b.parquet")',
    'PREFIX = "previews"',
    'Output("references")',
    'x = "clips_cropped/" + shard',
    'ROOT_KEY: str = "reports"',
])
def test_the_scan_flags_a_hand_built_key(code):
    assert hand_built_keys(code, "example.py")


@pytest.mark.parametrize("code", [
    '"""Reads tables/<stage>/<shard>.parquet."""',
    'def f():\n    """Writes metrics/<stage>.json."""\n    return 1',
    '# tables/x.parquet\nx = 1',
    'meta = {"models": 3}',
    'MODELS = "models"  # a partition set',
    'msg = f"see {key}: tables/ are missing"',
    'key = layout.table("a", shard)',
])
def test_the_scan_leaves_docstrings_comments_and_layout_calls_alone(code):
    assert hand_built_keys(code, "example.py") == []
