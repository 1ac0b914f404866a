"""Code versions that follow imports: what a stage runs, comments and docstrings aside.

A stage's code version covers every project module it transitively imports, found by a static
scan of the source (no module is imported): `import` and `from ... import` statements anywhere
in a module (inside functions too, where the heavy and lazy imports live), and string constants
that name a project module (lazy export tables, `importlib.import_module("...")`). Data files
that define behaviour (curation/data/taxonomy.json) count when a module names them.

Each module is hashed in a normalised form: the `ast.dump` of its syntax tree with docstrings
removed, so editing a comment, a docstring or the layout leaves the version unchanged while
changing a statement changes it. JSON data files are hashed after a canonical re-dump.

Scans are cached by each file's content: in-process, and on disk (`.cache/code_scan.json` under
the project, or $REACTID_CODE_SCAN_CACHE) so that loading the Dagster code location, which needs
every stage's version, parses only the files that changed since the last load.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The project's own packages; imports of anything else (the standard library, third-party
# libraries) are pinned by the environment, not by a stage's code version.
PROJECT_PACKAGES = ("core", "curation", "training", "models", "evaluation", "assets", "orchestration", "versioning")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Files inside the project's packages that a module can read to decide its behaviour.
DATA_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".txt")

_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


@dataclass(frozen=True)
class ScannedFile:
    """One source or data file: its normalised hash and the project names it refers to."""

    path: Path
    digest: str
    imports: tuple[str, ...]
    data_names: tuple[str, ...]
    # A package's lazy exports (`{"Name": "pkg.module"}` resolved on first access): a module
    # that imports Name from the package runs pkg.module.
    exports: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CodeVersion:
    """A stage's code version and the files it covers (repo-relative, sorted)."""

    version: str
    files: tuple[str, ...]


_scans: dict[str, tuple] = {}
_contents: dict[Path, tuple[tuple[int, int, int], str]] = {}
_closures: dict[tuple[tuple[str, ...], str], tuple[dict[str, Path], dict[Path, str]]] = {}
_versions: dict[tuple[tuple[str, ...], str], tuple[dict[Path, str], CodeVersion]] = {}
_RACY_NS = 3_000_000_000
_DISK_ENTRIES_MAX = 4000
_data_index: dict[str, tuple[Path, ...]] = {}
_disk: dict[str, dict] | None = None
_disk_dirty = False


def _cache_path() -> Path:
    return Path(os.environ.get("REACTID_CODE_SCAN_CACHE") or PROJECT_ROOT / ".cache" / "code_scan.json")


def _disk_entries() -> dict[str, dict]:
    global _disk
    if _disk is None:
        path = _cache_path()
        try:
            _disk = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            # a torn or foreign cache file only costs a rescan; it is rewritten below
            _disk = {}
    return _disk


def _save_disk_cache() -> None:
    global _disk, _disk_dirty
    if not _disk_dirty or _disk is None:
        return
    if len(_disk) > _DISK_ENTRIES_MAX:
        # entries of old file contents pile up as code is edited; keep this process's
        _disk = {k: v for k, v in _disk.items() if k in _scans}
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(_disk, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        # a read-only checkout keeps working: the cache saves time, never decides a version
        tmp.unlink(missing_ok=True)
        return
    _disk_dirty = False


def module_path(module: str, root: Path | None = None) -> Path | None:
    """The file that defines `module` under `root` (a package is its `__init__.py`), or None."""
    base = os.path.join(root or PROJECT_ROOT, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return Path(candidate)
    return None


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                # keep a body non-empty: a docstring-only function still needs one statement
                node.body = body[1:] or [ast.Pass()]


def _lazy_exports(tree: ast.AST) -> dict[str, str]:
    """`{"Name": "pkg.module", ...}` dict literals: names a package resolves on first access."""
    exports: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and node.keys and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) and isinstance(v, ast.Constant)
            and isinstance(v.value, str) and _MODULE_NAME.match(v.value) and _is_project(v.value)
            for k, v in zip(node.keys, node.values)
        ):
            exports.update({k.value: v.value for k, v in zip(node.keys, node.values)})
    return exports


def _referenced_modules(tree: ast.AST, module: str, path: Path) -> tuple[set[str], set[str], dict[str, str]]:
    """Project modules a module's source refers to, data files it names, and its lazy exports."""
    found: set[str] = set()
    data: set[str] = set()
    exports = _lazy_exports(tree)
    lazy_targets = set(exports.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = _package_of(module, path).split(".")
                base_parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base:
                continue
            found.add(base)
            # `from pkg import name`: name may be a submodule
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if _MODULE_NAME.match(value) and _is_project(value) and value not in lazy_targets:
                found.add(value)
            elif value.endswith(DATA_SUFFIXES) and "/" not in value:
                data.add(value)
    return {m for m in found if _is_project(m)}, data, exports


def _read(path: Path) -> tuple[bytes | None, str]:
    """A file's content hash, and its bytes when they had to be read.

    Within a process a file whose (mtime, size, inode) did not change is not read again, unless
    it was modified within the last few seconds, when a second edit could keep all three (the
    "racy" case git also guards against).
    """
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    known = _contents.get(path)
    if known and known[0] == key and time.time_ns() - stat.st_mtime_ns > _RACY_NS:
        return None, known[1]
    raw = path.read_bytes()
    content = hashlib.blake2b(raw, digest_size=16).hexdigest()
    _contents[path] = (key, content)
    return raw, content


def scan_file(path: Path, module: str | None = None) -> ScannedFile:
    """Hash one file (normalised) and list the project modules and data files it names; cached.

    `module` is the dotted name of a Python file (needed to resolve its relative imports). The
    cache is keyed by the file's raw bytes, so an edit is seen however close in time it came.
    """
    global _disk_dirty
    raw, content = _read(path)
    raw_key = f"{content}|{module or ''}"
    cached = _scans.get(raw_key)
    if cached is not None:
        return ScannedFile(path, *cached)
    entry = _disk_entries().get(raw_key)
    if entry is not None:
        fields = (entry["digest"], tuple(entry["imports"]), tuple(entry["data"]),
                  tuple((k, v) for k, v in entry["exports"]))
        _scans[raw_key] = fields
        return ScannedFile(path, *fields)
    imports: set[str] = set()
    data: set[str] = set()
    exports: dict[str, str] = {}
    if raw is None:
        raw = path.read_bytes()
    if path.suffix == ".py":
        tree = ast.parse(raw, filename=str(path))
        if module is not None:
            imports, data, exports = _referenced_modules(tree, module, path)
        _strip_docstrings(tree)
        digest = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    elif path.suffix == ".json":
        digest = hashlib.sha256(json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    else:
        digest = hashlib.sha256(raw).hexdigest()
    fields = (digest, tuple(sorted(imports)), tuple(sorted(data)), tuple(sorted(exports.items())))
    _scans[raw_key] = fields
    _disk_entries()[raw_key] = {"digest": digest, "imports": list(fields[1]), "data": list(fields[2]),
                                "exports": [list(e) for e in fields[3]]}
    _disk_dirty = True
    return ScannedFile(path, *fields)


def _data_files(package: str, root: Path) -> tuple[Path, ...]:
    """Data files shipped inside a top-level project package (indexed once per process)."""
    cache_key = f"{root}:{package}"
    if cache_key not in _data_index:
        found = []
        for dirpath, dirnames, filenames in os.walk(root / package):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
            found += [Path(dirpath) / f for f in filenames if f.endswith(DATA_SUFFIXES)]
        _data_index[cache_key] = tuple(sorted(found))
    return _data_index[cache_key]


def _outside_module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ModuleNotFoundError(f"code root {name!r} names no module with a Python source file")
    return Path(spec.origin).resolve()


def module_closure(roots: Iterable[str], root: Path | None = None) -> dict[str, Path]:
    """Every project module (and data file) reachable from `roots` by import; name -> file.

    Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` too, so parents count (without
    their lazy exports, which run only when a name is imported from the package or the package
    itself is imported). A data file counts under its repo-relative path when a reached module
    names it (by file name, within the same top-level package).

    A root outside the project's packages (a stage defined in a plugin or a test) counts by
    its own file and what it imports from the project.

    Raises:
        ModuleNotFoundError: a root names no module with a source file.
    """
    root = root or PROJECT_ROOT
    key = (tuple(roots), str(root))
    known = _closures.get(key)
    # the closure is a function of the contents of its files: reuse it while none changed
    if known is not None and all(_read(path)[1] == content for path, content in known[1].items()):
        return dict(known[0])
    closure = _closure(key[0], root)
    _closures[key] = (closure, {path: _read(path)[1] for path in closure.values()})
    return dict(closure)


def _closure(roots: tuple[str, ...], root: Path) -> dict[str, Path]:
    todo: list[tuple[str, bool]] = []
    outside: dict[str, Path] = {}
    for name in roots:
        if module_path(name, root) is None:
            outside[name] = _outside_module_path(name)
        todo.append((name, True))
    seen: dict[str, Path] = {}
    exports_done: set[str] = set()
    visited: set[tuple[str, bool]] = set()
    while todo:
        name, explicit = item = todo.pop()
        if item in visited:
            continue
        visited.add(item)
        path = outside.get(name) or module_path(name, root)
        if path is None:
            # `from pkg import name` where name is an attribute: a lazy export of pkg, or plain
            package, _, attr = name.rpartition(".")
            package_path = module_path(package, root) if package else None
            if package_path is not None:
                lazy = dict(scan_file(package_path, package).exports)
                if attr in lazy and lazy[attr] not in seen:
                    todo.append((lazy[attr], True))
            continue
        if name in seen and (not explicit or name in exports_done):
            continue
        seen[name] = path
        scanned = scan_file(path, name)
        if explicit:
            exports_done.add(name)
            todo += [(m, True) for _, m in scanned.exports if m not in seen]
        parts = name.split(".")
        todo += [(".".join(parts[:k]), False) for k in range(1, len(parts))]
        todo += [(m, True) for m in scanned.imports if m not in seen]
        for data_name in scanned.data_names:
            for data_path in _data_files(parts[0], root):
                if data_path.name == data_name:
                    seen[data_path.relative_to(root).as_posix()] = data_path
    return seen


def module_versions(roots: Iterable[str], root: Path | None = None) -> dict[str, str]:
    """The normalised digest (16 hex digits) of each module and data file `roots` reach."""
    closure = module_closure(roots, root)
    return {name: scan_file(path, name if path.suffix == ".py" else None).digest[:16]
            for name, path in sorted(closure.items())}


def code_version(roots: Iterable[str], root: Path | None = None) -> CodeVersion:
    """The code version of everything `roots` import (normalised), and the files it covers.

    `root` is the folder holding the project's packages (default: this checkout).
    """
    root = root or PROJECT_ROOT
    key = (tuple(roots), str(root))
    closure = module_closure(key[0], root)
    known = _versions.get(key)
    # module_closure has just checked every file of a remembered closure against its content
    if known is not None and known[0] == _closures[key][1]:
        return known[1]
    h = hashlib.sha256()
    for name in sorted(closure):
        path = closure[name]
        h.update(f"{name}\0{scan_file(path, name if path.suffix == '.py' else None).digest}\n".encode())
    files = tuple(sorted(p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
                         for p in closure.values()))
    _save_disk_cache()
    version = CodeVersion(h.hexdigest()[:16], files)
    _versions[key] = (_closures[key][1], version)
    return version
