"""Write IPVG submission archives: one validated zip per run, up to three runs, one primary.

On disk, for one track::

    <dest_root>/
      manifest.json                     # track, layout, primary run, sha256 of every archive
      <run name>/facial_results.zip     # or sequential_action_results.zip for Track 2
      <other run>/facial_results.zip

Each archive is built in a temporary file next to its destination (``core.storage``'s atomic
writer), validated with :func:`evaluation.submission.validate`, and only renamed into place
when it has no problems; the manifest is written last, once every run's archive is in place.
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

from core.storage import LocalObjectStore
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


def package_run(
    video_dir: str | Path,
    track: int,
    dest_dir: str | Path,
    *,
    layout: Layout = "published",
    eval_json: str | Path | None = None,
    duration: DurationBounds = DEFAULT_DURATION,
) -> Path:
    """Zip one run's videos under ``submission/`` and keep the zip only if it validates.

    Args:
        video_dir: directory whose files become ``submission/<relative path>``.
        track: 1 or 2; decides the archive name.
        dest_dir: where ``facial_results.zip`` / ``sequential_action_results.zip`` is written.
        layout: ``published`` or ``proposal``.
        eval_json: the track's eval file, to check names and (Track 2) timeline lengths.
        duration: accepted duration range.

    Returns:
        Path of the written archive.

    Raises:
        InvalidSubmissionError: listing every problem; nothing is written in that case.
    """
    video_dir, dest_dir = Path(video_dir), Path(dest_dir)
    if track not in ARCHIVE_NAMES:
        raise ValueError(f"track must be 1 or 2, got {track!r}")
    if not video_dir.is_dir():
        raise FileNotFoundError(f"{video_dir} is not a directory of videos")
    store = LocalObjectStore(dest_dir)
    with store.writer(ARCHIVE_NAMES[track]) as tmp:
        _write_zip(video_dir, tmp)
        problems = validate(tmp, track, layout, eval_json, duration)
        if problems:
            raise InvalidSubmissionError(problems)
    return store.path(ARCHIVE_NAMES[track])


def package_runs(
    runs: Sequence[RunSource],
    track: int,
    dest_root: str | Path,
    *,
    layout: Layout = "published",
    eval_json: str | Path | None = None,
    duration: DurationBounds = DEFAULT_DURATION,
) -> Path:
    """Package up to three runs of one track and write their manifest.

    Args:
        runs: one to three runs with distinct safe names, exactly one marked primary.
        track: 1 or 2.
        dest_root: directory receiving ``<run>/<archive>`` and ``manifest.json``.
        layout: ``published`` or ``proposal``.
        eval_json: the track's eval file.
        duration: accepted duration range.

    Returns:
        Path of ``manifest.json``.

    Raises:
        ValueError: for a wrong number of runs, bad or repeated names, or not one primary.
        InvalidSubmissionError: with every run's problems, names prefixed by the run; no
            manifest is written then.
    """
    _check_runs(runs)
    dest_root = Path(dest_root)
    packaged: list[PackagedRun] = []
    problems: list[Problem] = []
    for run in runs:
        try:
            archive = package_run(
                run.video_dir,
                track,
                dest_root / run.name,
                layout=layout,
                eval_json=eval_json,
                duration=duration,
            )
        except InvalidSubmissionError as exc:
            problems += [Problem(p.kind, f"{run.name}:{p.entry}", p.message) for p in exc.problems]
            continue
        with zipfile.ZipFile(archive) as zf:
            videos = sum(1 for i in zf.infolist() if i.filename.endswith(".mp4"))
        packaged.append(
            PackagedRun(
                name=run.name,
                archive=archive.relative_to(dest_root).as_posix(),
                sha256=_sha256(archive),
                videos=videos,
                bytes=archive.stat().st_size,
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
    store = LocalObjectStore(dest_root)
    store.put_bytes("manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return store.path("manifest.json")


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
