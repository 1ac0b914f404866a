"""IPVG 2026 submission layout and validation.

Layouts (the archive root is the zip's root, or the directory passed in):

* ``published`` — what the 2026 challenge site asks for: one video per test sample,
  ``submission/1.mp4 … submission/N.mp4`` (names are the sample ids of the eval file), zipped
  as ``facial_results.zip`` (Track 1) or ``sequential_action_results.zip`` (Track 2).
* ``proposal`` — the challenge proposal's ``submission/idNNN/promptK.mp4`` (five prompts per
  identity), kept as an option.

Every video must be H.264 in an MP4 (ISO base-media) container, decode, have frames and a
plausible duration. No entry may escape the archive root (absolute paths, ``..``, links).
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from evaluation.benchmarks import read_facial_benchmark, read_timeline_benchmark
from evaluation.errors import BenchmarkFormatError, VideoDecodeError
from evaluation.video import MP4_BRANDS, probe_video

Track = Literal[1, 2]
Layout = Literal["published", "proposal"]

ROOT = "submission"
ARCHIVE_NAMES: dict[int, str] = {1: "facial_results.zip", 2: "sequential_action_results.zip"}
PROPOSAL_PROMPTS_PER_ID = 5
_PUBLISHED = re.compile(r"^submission/([^/]+)\.mp4$")
_PUBLISHED_NUMBER = re.compile(r"^[1-9][0-9]*$")
_PROPOSAL = re.compile(r"^submission/id([0-9]{3})/prompt([1-9][0-9]*)\.mp4$")
_SYMLINK_MODE = 0o120000


@dataclass(frozen=True)
class Problem:
    """One finding of the validator; ``entry`` is the archive-relative name ('' = whole)."""

    kind: str
    entry: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.entry or '<submission>'}: {self.message}"


@dataclass(frozen=True)
class DurationBounds:
    """Accepted video length in seconds; Track 2 videos must also cover their timeline."""

    min_s: float = 1.0
    max_s: float = 60.0
    timeline_tolerance_s: float = 0.25


DEFAULT_DURATION = DurationBounds()


def validate(
    path: str | Path,
    track: int,
    layout: Layout = "published",
    eval_json: str | Path | None = None,
    duration: DurationBounds = DEFAULT_DURATION,
) -> list[Problem]:
    """Check a submission zip or directory against the IPVG format.

    Args:
        path: a ``.zip`` file, or a directory that is the archive root (holds ``submission/``).
        track: 1 (facial) or 2 (sequential actions).
        layout: ``published`` (``submission/<id>.mp4``) or ``proposal``
            (``submission/idNNN/promptK.mp4``).
        eval_json: the track's eval file; without it names are checked for a complete
            ``1..N`` (or ``id001..idNNN`` x ``prompt1..5``) run instead of exact ids.
        duration: accepted duration range.

    Returns:
        Every problem found; empty when the submission is valid.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        BenchmarkFormatError: when ``eval_json`` is unreadable or cannot name videos.
    """
    path = Path(path)
    if track not in ARCHIVE_NAMES:
        raise ValueError(f"track must be 1 or 2, got {track!r}")
    if layout not in ("published", "proposal"):
        raise ValueError(f"layout must be 'published' or 'proposal', got {layout!r}")
    if not path.exists():
        raise FileNotFoundError(path)
    expected, min_length = _expected(track, layout, eval_json)
    if path.is_dir() and path.name == ROOT and not (path / ROOT).exists():
        return [
            Problem(
                "archive_root", "", f"pass the folder that contains {ROOT}/, not {ROOT}/ itself"
            )
        ]
    problems: list[Problem] = []
    if path.is_file() and path.suffix.lower() == ".zip" and path.name != ARCHIVE_NAMES[track]:
        problems.append(
            Problem(
                "archive_name",
                "",
                f"Track {track} archives are named {ARCHIVE_NAMES[track]!r}, not {path.name!r}",
            )
        )
    with _archive(path, problems) as archive:
        if archive is None:
            return problems
        names, open_video = archive
        videos = _check_names(names, layout, expected, problems)
        for name in videos:
            try:
                with open_video(name) as video_path:
                    problems.extend(_check_video(name, video_path, duration, min_length.get(name)))
            except zipfile.BadZipFile as exc:
                problems.append(Problem("undecodable", name, f"corrupt zip member ({exc})"))
    return problems


def expected_names(track: int, layout: Layout, eval_json: str | Path) -> list[str]:
    """Archive names the eval file asks for, in sample order.

    Args:
        track: 1 or 2.
        layout: ``published`` or ``proposal``.
        eval_json: the track's eval file.

    Returns:
        Names such as ``submission/1.mp4`` or ``submission/id001/prompt1.mp4``.
    """
    expected, _ = _expected(track, layout, eval_json)
    return expected or []


# --------------------------------------------------------------------------- names


def _expected(
    track: int, layout: Layout, eval_json: str | Path | None
) -> tuple[list[str] | None, dict[str, float]]:
    if eval_json is None:
        return None, {}
    if track == 2:
        samples = read_timeline_benchmark(eval_json).samples
        if layout == "proposal":
            raise BenchmarkFormatError(
                f"{eval_json}: Track 2 eval entries carry no identity/prompt numbering, so "
                f"they cannot name proposal-layout videos; use layout='published'"
            )
        names = [f"{ROOT}/{s.sample_id}.mp4" for s in samples]
        return names, {n: s.timeline_end for n, s in zip(names, samples, strict=True)}
    facial = read_facial_benchmark(eval_json).samples
    if layout == "published":
        return [f"{ROOT}/{s.sample_id}.mp4" for s in facial], {}
    names = []
    for s in facial:
        if s.identity is None or s.prompt_index is None:
            raise BenchmarkFormatError(
                f"{eval_json}: entry {s.sample_id!r}: proposal layout needs 'identity' and "
                f"'prompt_index' (or a grouped 'prompts' list)"
            )
        if not re.fullmatch(r"id[0-9]{3}", s.identity):
            raise BenchmarkFormatError(
                f"{eval_json}: entry {s.sample_id!r}: identity {s.identity!r} is not of the "
                f"proposal's form idNNN"
            )
        names.append(f"{ROOT}/{s.identity}/prompt{s.prompt_index}.mp4")
    return names, {}


def _check_names(
    names: list[str], layout: Layout, expected: list[str] | None, problems: list[Problem]
) -> list[str]:
    """Report unsafe, unexpected, duplicate and missing names; return the videos to decode."""
    seen: set[str] = set()
    videos: list[str] = []
    expected_set = set(expected or ())
    pattern = _PUBLISHED if layout == "published" else _PROPOSAL
    for name in names:
        if unsafe := _unsafe_reason(name):
            problems.append(Problem("unsafe_path", name, unsafe))
            continue
        if name in seen:
            problems.append(Problem("duplicate_entry", name, "appears more than once"))
            continue
        seen.add(name)
        if not name.startswith(f"{ROOT}/"):
            problems.append(Problem("unexpected_entry", name, f"lies outside {ROOT}/"))
        elif expected is not None and name not in expected_set:
            problems.append(Problem("unexpected_entry", name, "is not a sample of the eval file"))
        elif expected is None and not _well_named(name, pattern):
            problems.append(Problem("bad_name", name, f"does not match the {layout} layout"))
        else:
            videos.append(name)
    wanted = expected if expected is not None else _implied_names(videos, layout)
    for name in wanted:
        if name not in seen:
            problems.append(Problem("missing_video", name, "no video for this sample"))
    if not videos and not any(p.kind == "missing_video" for p in problems):
        problems.append(Problem("empty", "", f"no videos under {ROOT}/"))
    return videos


def _well_named(name: str, pattern: re.Pattern[str]) -> bool:
    match = pattern.match(name)
    if match is None:
        return False
    return pattern is _PROPOSAL or bool(_PUBLISHED_NUMBER.match(match.group(1)))


def _implied_names(videos: list[str], layout: Layout) -> list[str]:
    """Without an eval file: a complete 1..N, or id001..idN each with prompt1..prompt5."""
    if layout == "published":
        numbers = [int(_PUBLISHED.match(v).group(1)) for v in videos]  # type: ignore[union-attr]
        return [f"{ROOT}/{n}.mp4" for n in range(1, max(numbers, default=0) + 1)]
    ids = [int(_PROPOSAL.match(v).group(1)) for v in videos]  # type: ignore[union-attr]
    return [
        f"{ROOT}/id{i:03d}/prompt{k}.mp4"
        for i in range(1, max(ids, default=0) + 1)
        for k in range(1, PROPOSAL_PROMPTS_PER_ID + 1)
    ]


def _unsafe_reason(name: str) -> str | None:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name:
        return "backslash in name (Windows separator)"
    if ".." in PurePosixPath(name).parts:
        return "'..' escapes the archive root"
    return None


# --------------------------------------------------------------------------- videos


def _check_video(
    name: str, video_path: Path, duration: DurationBounds, timeline_end: float | None
) -> list[Problem]:
    try:
        probe = probe_video(video_path)
    except VideoDecodeError as exc:
        return [Problem("undecodable", name, str(exc.__cause__ or exc))]
    problems = []
    if probe.brand not in MP4_BRANDS:
        what = f"brand {probe.brand!r}" if probe.brand else "no ftyp box"
        problems.append(Problem("not_mp4", name, f"not an MP4 container ({what})"))
    if probe.codec != "h264":
        problems.append(Problem("not_h264", name, f"video codec is {probe.codec!r}, not h264"))
    if probe.frames == 0:
        problems.append(Problem("no_frames", name, "no decodable frames"))
    elif not duration.min_s <= probe.duration_s <= duration.max_s:
        problems.append(
            Problem(
                "duration",
                name,
                f"{probe.duration_s:.2f} s is outside [{duration.min_s}, {duration.max_s}] s",
            )
        )
    if timeline_end is not None and probe.duration_s + duration.timeline_tolerance_s < timeline_end:
        problems.append(
            Problem(
                "shorter_than_timeline",
                name,
                f"{probe.duration_s:.2f} s cannot hold a "
                f"timeline that ends at {timeline_end:.2f} s",
            )
        )
    return problems


@contextmanager
def _archive(path: Path, problems: list[Problem]) -> Iterator[tuple | None]:
    """Yield (names, open_video) for a zip or directory, or None after recording why not."""
    if path.is_dir():
        yield _directory_names(path, problems), _dir_opener(path)
        return
    if not zipfile.is_zipfile(path):
        problems.append(Problem("not_a_zip", "", f"{path.name} is neither a zip nor a directory"))
        yield None
        return
    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as scratch:
        names = []
        for info in zf.infolist():
            if (info.external_attr >> 16) & 0o170000 == _SYMLINK_MODE:
                problems.append(Problem("unsafe_path", info.filename, "symbolic link"))
            elif not info.is_dir():
                names.append(info.filename)
        yield names, _zip_opener(zf, Path(scratch))


def _directory_names(root: Path, problems: list[Problem]) -> list[str]:
    names = []
    for here, dirs, files in os.walk(root, followlinks=False):
        for entry in sorted(dirs + files):
            full = Path(here, entry)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                problems.append(Problem("unsafe_path", rel, "symbolic link"))
            elif entry in files:
                names.append(rel)
        dirs[:] = [d for d in dirs if not Path(here, d).is_symlink()]
    return names


def _dir_opener(root: Path):
    @contextmanager
    def open_video(name: str) -> Iterator[Path]:
        yield root / name

    return open_video


def _zip_opener(zf: zipfile.ZipFile, scratch: Path):
    @contextmanager
    def open_video(name: str) -> Iterator[Path]:
        # One member at a time on disk: PyAV needs a seekable file and submissions are GBs.
        target = scratch / "video.mp4"
        with zf.open(name) as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        try:
            yield target
        finally:
            target.unlink(missing_ok=True)

    return open_video
