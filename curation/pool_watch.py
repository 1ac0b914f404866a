"""Which shards of a raw pool are complete and ready to register (the new-shard sensor's view).

The pool is the one raw_videos reads (curation/registry.py): the folder params
`raw_videos.pool_root`, or the objects under `raw_videos.pool_prefix` in the object store.

A shard is **ready** when whoever uploads it has finished. The contract with the uploader:

1. the shard's manifest is written last: a folder shard `<pool>/<shard>/` is ready only once
   `manifest.jsonl` (or `manifest.csv`) is present and parses completely (a half-written JSON
   line fails to parse, so a manifest copied in place is not taken early);
2. every file the manifest names is present (videos still uploading are missing);
3. no partial-upload file is in the folder (`*.tmp`, `*.part`, `*.partial`, `*.crdownload`,
   `*.uploading`, `*.incomplete`, rsync's `.name.XXXXXX`, the store's `.name.tmp-XXXX`);
4. local folders only: nothing in it changed for `settle_s` seconds (a copy that writes files
   in place without temp names is still caught). Objects in a bucket appear whole (PUT or
   multipart complete), so 1-3 suffice there.

A manifest file at the pool root (`<pool>/<shard>.jsonl|.csv`, paths relative to the pool
root) is a shard too on a local pool, with the same rules. A folder without a manifest is
never registered automatically (register it by hand: `dagster` UI or `reactid`); a name
that is not a valid shard name is reported and ignored.

Nothing here imports Dagster: orchestration/sensors.py turns the result into partitions
and run requests.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import ParamsError
from core.params import check_shard_name
from core.storage import ObjectStore

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".uploading", ".incomplete")
_RSYNC_TEMP = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")
_STORE_TEMP = re.compile(r"^\..+\.(tmp|old|staging)-[0-9a-f]{8}$")


@dataclass(frozen=True)
class ShardState:
    """One shard of the pool: ready to register, or why not yet."""

    name: str
    ready: bool
    reason: str  # "3 videos" when ready; what is missing otherwise
    n_files: int = 0


def is_partial(name: str) -> bool:
    """A file name that an upload in progress leaves behind."""
    return name.lower().endswith(PARTIAL_SUFFIXES) or bool(_RSYNC_TEMP.match(name) or _STORE_TEMP.match(name))


def manifest_paths(data: bytes, suffix: str) -> list[str]:
    """The `path` of every row of a manifest's bytes.

    Raises:
        ValueError: not (yet) a complete manifest: a line that is not JSON, a row without `path`.
    """
    text = data.decode("utf-8")
    if suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)  # json.JSONDecodeError is a ValueError
            if not isinstance(row, dict) or not row.get("path"):
                raise ValueError(f"line {n}: expected an object with a 'path'")
            out.append(str(row["path"]))
        return out
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise ValueError("CSV manifest needs a 'path' column")
    rows = list(reader)
    if any(not r.get("path") for r in rows):
        raise ValueError("a CSV row has no 'path'")
    return [r["path"] for r in rows]


def _valid_name(name: str) -> bool:
    try:
        check_shard_name(name)
    except ParamsError:
        return False
    return True


def _judge(name: str, files: set[str], read_manifest, manifest: str | None, newest_age_s: float | None,
           settle_s: float) -> ShardState:
    """`files`: names relative to the shard's base; `read_manifest()`: the manifest's bytes."""
    partial = sorted(f for f in files if is_partial(PurePosixPath(f).name))
    if partial:
        return ShardState(name, False, f"upload in progress: {', '.join(partial[:3])}")
    if manifest is None:
        return ShardState(name, False, f"no {' or '.join(MANIFEST_NAMES)} yet (the manifest marks a complete shard)")
    try:
        paths = manifest_paths(read_manifest(), PurePosixPath(manifest).suffix)
    except (ValueError, UnicodeDecodeError) as exc:
        return ShardState(name, False, f"{manifest} is not complete yet ({exc})")
    if not paths:
        return ShardState(name, False, f"{manifest} lists no videos")
    missing = sorted(p for p in paths if PurePosixPath(p).as_posix() not in files)
    if missing:
        return ShardState(name, False, f"{len(missing)} file(s) named in {manifest} not present yet: "
                                       f"{', '.join(missing[:3])}")
    if newest_age_s is not None and newest_age_s < settle_s:
        return ShardState(name, False, f"changed {newest_age_s:.0f}s ago (settle time {settle_s:.0f}s)")
    return ShardState(name, True, f"{len(paths)} videos", len(paths))


def scan_local_pool(pool_root: Path, settle_s: float, now: float | None = None) -> dict[str, ShardState]:
    """Every shard folder (and root manifest) of a pool on disk, ready or not."""
    now = time.time() if now is None else now
    out: dict[str, ShardState] = {}
    if not pool_root.is_dir():
        return out
    for entry in sorted(pool_root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            name = entry.name
            if not _valid_name(name):
                out[name] = ShardState(name, False, "not a valid shard name (letters, digits, '_', '.', '-')")
                continue
            children = list(entry.rglob("*"))
            files = {p.relative_to(entry).as_posix() for p in children if p.is_file()}
            manifest = next((m for m in MANIFEST_NAMES if m in files), None)
            mtimes = [p.stat().st_mtime for p in children] + [entry.stat().st_mtime]
            out[name] = _judge(name, files, lambda e=entry, m=manifest: (e / m).read_bytes(), manifest,
                               now - max(mtimes), settle_s)
        elif entry.suffix in (".jsonl", ".csv") and entry.is_file():
            name = entry.stem
            if not _valid_name(name) or name in out:
                continue
            try:
                listed = manifest_paths(entry.read_bytes(), entry.suffix)
            except (ValueError, UnicodeDecodeError):
                listed = []
            targets = [Path(p) if Path(p).is_absolute() else pool_root / p for p in listed]
            files = {p for p, t in zip(listed, targets, strict=True) if t.is_file()}
            stamps = [t.stat().st_mtime for t in targets if t.is_file()] + [entry.stat().st_mtime]
            out[name] = _judge(name, files, entry.read_bytes, entry.name, now - max(stamps), settle_s)
    return out


def scan_store_pool(store: ObjectStore, prefix: str) -> dict[str, ShardState]:
    """Every shard folder `<prefix>/<shard>/` of a pool in an object store (params
    `raw_videos.pool_prefix`), ready or not."""
    prefix = prefix.strip("/")
    by_shard: dict[str, set[str]] = {}
    for key in store.list(prefix + "/"):
        rest = key[len(prefix) + 1:] if key.startswith(prefix + "/") else None
        if not rest or "/" not in rest:
            continue  # a loose object at the pool root is not a shard folder
        shard, inner = rest.split("/", 1)
        by_shard.setdefault(shard, set()).add(inner)
    out: dict[str, ShardState] = {}
    for name, files in sorted(by_shard.items()):
        if not _valid_name(name):
            out[name] = ShardState(name, False, "not a valid shard name (letters, digits, '_', '.', '-')")
            continue
        manifest = next((m for m in MANIFEST_NAMES if m in files), None)
        out[name] = _judge(name, files, lambda n=name, m=manifest: store.get_bytes(f"{prefix}/{n}/{m}"), manifest,
                           None, 0.0)
    return out
