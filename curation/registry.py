"""Register a shard of raw videos from the raw pool: a folder on disk or a prefix of the object store.

On disk (params `raw_videos.pool_root`), a shard named S is either
- a folder `<root>/S/`: every file in it (an optional `manifest.jsonl` or `manifest.csv`
  inside adds captions and identities), or
- a manifest `<root>/S.jsonl` or `<root>/S.csv` whose rows carry `path` (absolute or
  relative to the manifest's folder), `caption` and `identity`.

In the object store params `storage` names (params `raw_videos.pool_prefix`), a shard named
S is the objects `<prefix>/S/...`, with the conventions of a folder on disk: every object
directly under it is a video, an optional `manifest.jsonl` or `manifest.csv` among them adds
captions and identities.

A `PoolEntry.location` says where a video is read: an absolute path on disk, or an object
key of the store (always relative); `curation.video_io.open_location` opens either for PyAV,
a stored video as a stream (ranged reads on S3, never a whole copy).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Protocol

from core import layout
from core.errors import StageInputError

if TYPE_CHECKING:
    from core.params import Params
    from core.storage import ObjectStore

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
_HASH_CHUNK = 1 << 20
# Quarantine reason of a raw video whose bytes repeat an earlier video of its shard.
DUPLICATE = "duplicate"


def content_sha256(src: str | Path | IO[bytes]) -> str:
    """SHA-256 of a file's bytes, streamed in chunks: a path, or a seekable binary stream
    (`ObjectStore.open_stream`; on S3 ranged reads, never a whole copy), read from its start."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        stream = src if hasattr(src, "read") else stack.enter_context(open(src, "rb"))
        stream.seek(0)
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PoolEntry:
    video_id: str
    location: str  # an absolute path on disk, or an object key of the store
    caption: str | None
    identity: str | None
    source: str | None
    # Sidecar extras some pools ship: per-segment captions with timestamps (Panda-70M
    # style `segments`) and person attributes (DH-FaceVid style `attributes`).
    segments: tuple[dict, ...] = ()
    attributes: dict | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.location).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.location).suffix


def _entry(video_id: str, location: str, row: dict) -> PoolEntry:
    segments = row.get("segments") or ()
    if not isinstance(segments, list | tuple) or not all(isinstance(s, dict) for s in segments):
        raise StageInputError(f"{location}: manifest 'segments' must be a list of objects")
    attributes = row.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise StageInputError(f"{location}: manifest 'attributes' must be an object")
    return PoolEntry(video_id, location, row.get("caption") or None, row.get("identity") or None,
                     row.get("source") or None, tuple(segments), attributes)


def parse_manifest(data: bytes, suffix: str, where: str) -> list[dict]:
    """The rows of a manifest's bytes.

    Args:
        suffix: ".jsonl" or ".csv".
        where: the manifest's path or URI, for messages.

    Raises:
        StageInputError: not UTF-8, a line that is not a JSON object with `path`, a CSV
            without a `path` column, or another suffix.
    """
    if suffix not in (".jsonl", ".csv"):
        raise StageInputError(f"{where}: manifest must be .jsonl or .csv")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StageInputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[dict] = []
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StageInputError(f"{where}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "path" not in row:
                raise StageInputError(f"{where}:{n}: expected an object with a 'path' field")
            rows.append(row)
        return rows
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise StageInputError(f"{where}: CSV manifest needs a 'path' column")
    return [dict(r) for r in reader]


def _video_id(location: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", PurePosixPath(location).stem) or "video"
    vid = base
    if vid in taken:
        vid = f"{base}-{hashlib.sha1(location.encode()).hexdigest()[:6]}"
    taken.add(vid)
    return vid


class RawPool(Protocol):
    """Where raw_videos finds shards."""

    def where(self, shard: str) -> str:
        """The shard's location, for messages and metadata."""
        ...

    def list_shard(self, shard: str) -> list[PoolEntry]:
        """Every video the shard holds, in a stable order, with its sidecar metadata."""
        ...

    def content_hash(self, shard: str) -> str:
        """Changes whenever a file of the shard (or its manifest) is added, removed or rewritten."""
        ...


@dataclass(frozen=True)
class LocalPool:
    """A raw pool folder on disk (params `raw_videos.pool_root`)."""

    root: Path

    def locate(self, shard: str) -> Path:
        """The folder or manifest that holds `shard`.

        Raises:
            StageInputError: neither exists.
        """
        for candidate in (self.root / shard, self.root / f"{shard}.jsonl", self.root / f"{shard}.csv"):
            if candidate.exists():
                return candidate
        raise StageInputError(
            f"shard {shard!r} not found: expected a folder {self.root / shard} or a manifest "
            f"{self.root / shard}.jsonl|.csv (raw_videos.pool_root)"
        )

    def where(self, shard: str) -> str:
        return str(self.locate(shard))

    def list_shard(self, shard: str) -> list[PoolEntry]:
        location = self.locate(shard)
        taken: set[str] = set()
        if location.is_dir():
            meta: dict[str, dict] = {}
            for name in MANIFEST_NAMES:
                if (location / name).is_file():
                    for row in parse_manifest((location / name).read_bytes(), Path(name).suffix, str(location / name)):
                        meta[str(Path(row["path"]))] = row
            files = sorted(p for p in location.iterdir()
                           if p.is_file() and not p.name.startswith(".") and p.name not in MANIFEST_NAMES)
            return [_entry(_video_id(str(p), taken), str(p), meta.get(p.name, {})) for p in files]
        out = []
        for row in parse_manifest(location.read_bytes(), location.suffix, str(location)):
            p = Path(row["path"])
            if not p.is_absolute():
                p = location.parent / p
            out.append(_entry(_video_id(str(p), taken), str(p), row))
        return out

    def content_hash(self, shard: str) -> str:
        """From names, sizes and modification times (cheap: nothing is read)."""
        location = self.locate(shard)
        h = hashlib.sha256()
        paths = [location] if location.is_file() else sorted(location.iterdir())
        if location.is_file():
            paths += [Path(e.location) for e in self.list_shard(shard)]
        for p in paths:
            if p.is_file():
                st = p.stat()
                h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
            else:
                h.update(f"{p.name}:missing\n".encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class StorePool:
    """A key prefix of the object store (params `raw_videos.pool_prefix`): shards `<prefix>/<shard>/`."""

    store: ObjectStore
    prefix: str

    def _objects(self, shard: str) -> dict[str, str]:
        """{name relative to the shard folder: object key} of every object under it.

        Raises:
            StageInputError: the shard folder holds no object.
        """
        base = layout.pool_shard(self.prefix, shard)
        objects = {k[len(base) + 1:]: k for k in self.store.list(base) if k.startswith(base + "/")}
        if not objects:
            raise StageInputError(f"shard {shard!r} not found: no object under {self.store.uri(base)}/ "
                                  "(raw_videos.pool_prefix)")
        return objects

    def where(self, shard: str) -> str:
        return self.store.uri(layout.pool_shard(self.prefix, shard)) + "/"

    def list_shard(self, shard: str) -> list[PoolEntry]:
        objects = self._objects(shard)
        meta: dict[str, dict] = {}
        for name in MANIFEST_NAMES:
            if name in objects:
                key = objects[name]
                for row in parse_manifest(self.store.get_bytes(key), PurePosixPath(name).suffix, self.store.uri(key)):
                    meta[PurePosixPath(row["path"]).as_posix()] = row
        # Objects directly under the shard, like the files of a folder (sub-folders are not videos).
        names = sorted(n for n in objects if "/" not in n and n not in MANIFEST_NAMES)
        taken: set[str] = set()
        return [_entry(_video_id(objects[n], taken), objects[n], meta.get(n, {})) for n in names]

    def content_hash(self, shard: str) -> str:
        """From names and SHA-256 of the contents of every object of the shard.

        Reads every byte (streamed, never copied whole): the store interface exposes no
        per-object checksum. raw_videos reads every byte anyway when it probes the shard.
        """
        h = hashlib.sha256()
        for name, key in sorted(self._objects(shard).items()):
            with self.store.open_stream(key) as stream:
                h.update(f"{name}:{content_sha256(stream)}\n".encode())
        return h.hexdigest()[:16]


def raw_pool(params: Params, store: ObjectStore) -> LocalPool | StorePool:
    """The raw pool params `raw_videos` names: `pool_prefix` in `store`, else the folder `pool_root`."""
    cfg = params.raw_videos
    if cfg.pool_prefix:
        return StorePool(store, cfg.pool_prefix)
    return LocalPool(params.resolve(cfg.pool_root))

