"""Register a shard of raw videos from a folder or a manifest file.

A shard named S under the pool root is either
- a folder `<root>/S/`: every file in it (an optional `manifest.jsonl` inside adds
  captions and identities), or
- a manifest `<root>/S.jsonl` or `<root>/S.csv` whose rows carry `path` (absolute or
  relative to the manifest's folder), `caption` and `identity`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import StageInputError

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")


@dataclass(frozen=True)
class PoolEntry:
    video_id: str
    path: Path
    caption: str | None
    identity: str | None
    source: str | None
    # Sidecar extras some pools ship: per-segment captions with timestamps (Panda-70M
    # style `segments`) and person attributes (DH-FaceVid style `attributes`).
    segments: tuple[dict, ...] = ()
    attributes: dict | None = None


def _entry(video_id: str, path: Path, row: dict) -> PoolEntry:
    segments = row.get("segments") or ()
    if not isinstance(segments, list | tuple) or not all(isinstance(s, dict) for s in segments):
        raise StageInputError(f"{path}: manifest 'segments' must be a list of objects")
    attributes = row.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise StageInputError(f"{path}: manifest 'attributes' must be an object")
    return PoolEntry(video_id, path, row.get("caption") or None, row.get("identity") or None,
                     row.get("source") or None, tuple(segments), attributes)


def _read_manifest(path: Path) -> list[dict]:
    rows: list[dict] = []
    if path.suffix == ".jsonl":
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StageInputError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "path" not in row:
                raise StageInputError(f"{path}:{n}: expected an object with a 'path' field")
            rows.append(row)
    elif path.suffix == ".csv":
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise StageInputError(f"{path}: CSV manifest needs a 'path' column")
            rows = [dict(r) for r in reader]
    else:
        raise StageInputError(f"{path}: manifest must be .jsonl or .csv")
    return rows


def _video_id(path: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "video"
    vid = base
    if vid in taken:
        vid = f"{base}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"
    taken.add(vid)
    return vid


def locate_shard(pool_root: Path, shard: str) -> Path:
    """The folder or manifest that holds `shard`.

    Raises:
        StageInputError: neither exists.
    """
    for candidate in (pool_root / shard, pool_root / f"{shard}.jsonl", pool_root / f"{shard}.csv"):
        if candidate.exists():
            return candidate
    raise StageInputError(
        f"shard {shard!r} not found: expected a folder {pool_root / shard} or a manifest "
        f"{pool_root / shard}.jsonl|.csv"
    )


def list_shard(pool_root: Path, shard: str) -> list[PoolEntry]:
    """Every file the shard names, in a stable order, with its sidecar metadata."""
    location = locate_shard(pool_root, shard)
    taken: set[str] = set()
    if location.is_dir():
        meta: dict[str, dict] = {}
        for name in MANIFEST_NAMES:
            if (location / name).is_file():
                for row in _read_manifest(location / name):
                    meta[str(Path(row["path"]))] = row
        files = sorted(p for p in location.iterdir() if p.is_file() and not p.name.startswith(".") and p.name not in MANIFEST_NAMES)
        out = []
        for p in files:
            row = meta.get(p.name, {})
            out.append(_entry(_video_id(p, taken), p, row))
        return out
    rows = _read_manifest(location)
    out = []
    for row in rows:
        p = Path(row["path"])
        if not p.is_absolute():
            p = location.parent / p
        out.append(_entry(_video_id(p, taken), p, row))
    return out


def shard_content_hash(pool_root: Path, shard: str) -> str:
    """Changes whenever a file of the shard (or its manifest) is added, removed or rewritten."""
    location = locate_shard(pool_root, shard)
    h = hashlib.sha256()
    paths = [location] if location.is_file() else sorted(location.iterdir())
    if location.is_file():
        paths += [e.path for e in list_shard(pool_root, shard)]
    for p in paths:
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        else:
            h.update(f"{p.name}:missing\n".encode())
    return h.hexdigest()[:16]
