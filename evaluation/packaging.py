"""Write IPVG submission archives: one validated zip per run, up to three runs, one primary.

On disk, for one track::

    <dest_root>/
      manifest.json                     # track, layout, primary run, sha256 of every archive
      <run name>/facial_results.zip     # or sequential_action_results.zip for Track 2
      <other run>/facial_results.zip

Each archive is built in a local scratch folder, validated with
:func:`evaluation.submission.validate`, and only then put into the store (an atomic write on
every backend) when it has no problems; the manifest is written last, once every run's
archive is in place.

``dest_root`` is a local directory, or, when a ``store`` is given, a key prefix in that
object store (any backend); the functions then return object keys instead of paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.storage import LocalObjectStore, ObjectStore, temp_dir
from evaluation.errors import InvalidSubmissionError
from evaluation.submission import (
    ARCHIVE_NAMES,
    DEFAULT_DURATION,
    ROOT,
    DurationBounds,
    Layout,
    Problem,
    validate,
)

MAX_RUNS = 3
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RunSource:
    """One run to package: a directory holding what goes under ``submission/``.

    ``video_dir`` contains ``1.mp4 … N.mp4`` (published layout) or ``idNNN/promptK.mp4``
    (proposal layout); ``description`` says which model/checkpoint produced it.
    """

    name: str
    video_dir: Path
    primary: bool = False
    description: str = ""


@dataclass(frozen=True)
class PackagedRun:
    name: str
    archive: str  # path relative to the manifest's directory
    sha256: str
    videos: int
    bytes: int
    primary: bool
    description: str


@dataclass(frozen=True)
class _Archive:
    key: str
    sha256: str
    videos: int
    bytes: int


def _destination(dest: str | Path, store: ObjectStore | None) -> tuple[ObjectStore, str]:
    """(store, key prefix) of a destination: a local directory, or a prefix in ``store``."""
    if store is None:
        Path(dest).mkdir(parents=True, exist_ok=True)
        return LocalObjectStore(dest), ""
    return store, str(dest).strip("/")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _located(store: ObjectStore, key: str, local: bool) -> Any:
    """A local destination's file path of ``key``, else the key itself."""
    return store.filesystem_path(key) if local else key


def _write_archive(video_dir: Path, track: int, store: ObjectStore, key: str, layout: Layout,
                   eval_json: str | Path | None, duration: DurationBounds) -> _Archive:
    with temp_dir("reactid-package-") as scratch:
        tmp = Path(scratch) / ARCHIVE_NAMES[track]
        _write_zip(video_dir, tmp)
        problems = validate(tmp, track, layout, eval_json, duration)
        if problems:
            raise InvalidSubmissionError(problems)
        with zipfile.ZipFile(tmp) as zf:
            videos = sum(1 for i in zf.infolist() if i.filename.endswith(".mp4"))
        archive = _Archive(key, _sha256(tmp), videos, tmp.stat().st_size)
        store.put_file(key, tmp)  # atomic on every backend
    return archive


def package_run(
    video_dir: str | Path,
    track: int,
    dest_dir: str | Path,
    *,
    layout: Layout = "published",
    eval_json: str | Path | None = None,
    duration: DurationBounds = DEFAULT_DURATION,
    store: ObjectStore | None = None,
) -> Any:
    """Zip one run's videos under ``submission/`` and keep the zip only if it validates.

    Args:
        video_dir: local directory whose files become ``submission/<relative path>``.
        track: 1 or 2; decides the archive name.
        dest_dir: where ``facial_results.zip`` / ``sequential_action_results.zip`` is written:
            a local directory, or a key prefix of ``store``.
        layout: ``published`` or ``proposal``.
        eval_json: the track's eval file, to check names and (Track 2) timeline lengths.
        duration: accepted duration range.
        store: write into this object store (any backend) instead of a local directory.

    Returns:
        Path of the written archive (its object key when ``store`` is given).

    Raises:
        InvalidSubmissionError: listing every problem; nothing is written in that case.
    """
    video_dir = Path(video_dir)
    if track not in ARCHIVE_NAMES:
        raise ValueError(f"track must be 1 or 2, got {track!r}")
    if not video_dir.is_dir():
        raise FileNotFoundError(f"{video_dir} is not a directory of videos")
    target, prefix = _destination(dest_dir, store)
    archive = _write_archive(video_dir, track, target, _join(prefix, ARCHIVE_NAMES[track]), layout, eval_json,
                             duration)
    return _located(target, archive.key, store is None)


def package_runs(
    runs: Sequence[RunSource],
    track: int,
    dest_root: str | Path,
    *,
    layout: Layout = "published",
    eval_json: str | Path | None = None,
    duration: DurationBounds = DEFAULT_DURATION,
    store: ObjectStore | None = None,
) -> Any:
    """Package up to three runs of one track and write their manifest.

    Args:
        runs: one to three runs with distinct safe names, exactly one marked primary.
        track: 1 or 2.
        dest_root: receives ``<run>/<archive>`` and ``manifest.json``: a local directory,
            or a key prefix of ``store``.
        layout: ``published`` or ``proposal``.
        eval_json: the track's eval file.
        duration: accepted duration range.
        store: write into this object store (any backend) instead of a local directory.

    Returns:
        Path of ``manifest.json`` (its object key when ``store`` is given).

    Raises:
        ValueError: for a wrong number of runs, bad or repeated names, or not one primary.
        InvalidSubmissionError: with every run's problems, names prefixed by the run; no
            manifest is written then.
    """
    _check_runs(runs)
    if track not in ARCHIVE_NAMES:
        raise ValueError(f"track must be 1 or 2, got {track!r}")
    target, prefix = _destination(dest_root, store)
    packaged: list[PackagedRun] = []
    problems: list[Problem] = []
    for run in runs:
        video_dir = Path(run.video_dir)
        if not video_dir.is_dir():
            raise FileNotFoundError(f"{video_dir} is not a directory of videos")
        relative = f"{run.name}/{ARCHIVE_NAMES[track]}"
        try:
            archive = _write_archive(video_dir, track, target, _join(prefix, relative), layout, eval_json, duration)
        except InvalidSubmissionError as exc:
            problems += [Problem(p.kind, f"{run.name}:{p.entry}", p.message) for p in exc.problems]
            continue
        packaged.append(
            PackagedRun(
                name=run.name,
                archive=relative,
                sha256=archive.sha256,
                videos=archive.videos,
                bytes=archive.bytes,
                primary=run.primary,
                description=run.description,
            )
        )
    if problems:
        raise InvalidSubmissionError(problems)
    manifest = {
        "track": track,
        "layout": layout,
        "archive_name": ARCHIVE_NAMES[track],
        "primary": next(r.name for r in runs if r.primary),
        "runs": [asdict(p) for p in packaged],
    }
    key = _join(prefix, "manifest.json")
    target.put_bytes(key, (json.dumps(manifest, indent=2) + "\n").encode())
    return _located(target, key, store is None)


def _check_runs(runs: Sequence[RunSource]) -> None:
    if not 1 <= len(runs) <= MAX_RUNS:
        raise ValueError(f"IPVG accepts 1 to {MAX_RUNS} runs per track, got {len(runs)}")
    names = [r.name for r in runs]
    bad = [n for n in names if not _RUN_NAME.match(n)]
    if bad:
        raise ValueError(f"run names must match {_RUN_NAME.pattern}: {bad}")
    if len(set(names)) != len(names):
        raise ValueError(f"run names repeat: {names}")
    primaries = [r.name for r in runs if r.primary]
    if len(primaries) != 1:
        raise ValueError(f"exactly one run must be primary, got {primaries or 'none'}")


def _write_zip(video_dir: Path, target: Path) -> None:
    # MP4 payloads are already compressed; storing them keeps packaging fast.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for here, dirs, files in os.walk(video_dir):
            dirs.sort()
            for name in sorted(files):
                full = Path(here, name)
                zf.write(full, f"{ROOT}/{full.relative_to(video_dir).as_posix()}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
