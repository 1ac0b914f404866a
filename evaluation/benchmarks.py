"""Benchmark files: OpenS2V-Eval, timeline sets (ReactID-Eval-SEQ, IPVG Track 2), IPVG Track 1.

Shapes read here:

* **OpenS2V-Eval** (``Open-Domain_Eval.json``, ``Human-Domain_Eval.json``,
  ``Single-Domain_Eval.json``; PKU-YuanGroup/OpenS2V-Nexus ``eval/demo_result/input_json``):
  a JSON object keyed by sample id (``singleface_3``); each entry has ``img_paths`` (list),
  ``prompt`` (str), ``class_label`` (list, one label per image) and extra keys such as
  ``synthesis_flag`` that are ignored. Generated videos are named ``<sample id>.mp4``.
* **Timeline sets** (IPVG 2026 Track 2 ``eval.json``, and the ReactID-Eval-SEQ shape this
  project uses for its own sequential-action set): entries with ``img_paths``,
  ``class_label``, ``global_prompt`` and ``temporal_captions``, a list of
  ``{"start": s, "end": s, "description": str}`` in seconds.
* **IPVG Track 1**: entries with ``img_paths``, ``prompt`` and optional ``class_label``;
  an entry may instead carry ``prompts`` (a list), which expands into one sample per prompt
  with ``identity`` and ``prompt_index`` set (the proposal's ``idNNN/promptK`` grouping).
  Flat entries may carry ``identity`` and ``prompt_index`` themselves.

For timeline and Track 1 files the top level is either a JSON list (sample ids are the
1-based positions, ``"1"`` … ``"N"``, matching the published ``1.mp4 … N.mp4`` names) or an
object keyed by sample id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.timeline import SubAction, TimelineError, parse_ipvg_entry
from evaluation.errors import BenchmarkFormatError

Domain = Literal["open", "single", "human"]

# OpenS2V's get_facesim.py scores only these sample families, taking the first reference
# image whose path marks it as a person crop.
FACE_CATEGORIES = frozenset({"singlehuman", "singleface", "faceobj", "humanobj"})
_FACE_PATH_MARKERS = ("/man/", "/woman/", "/crop_man/", "/crop_woman/")
_DOMAIN_BY_FILE = {
    "open-domain_eval.json": "open",
    "human-domain_eval.json": "human",
    "single-domain_eval.json": "single",
    "singleobject_eval.json": "single",
}


# A timed sub-action is the platform's own timeline record: the reader validates Track 2
# captions with the same parser the model's timeline prompts use.
TimelineEvent = SubAction


@dataclass(frozen=True)
class SubjectSample:
    """An OpenS2V-Eval entry: reference images and one prompt."""

    sample_id: str
    img_paths: tuple[str, ...]
    prompt: str
    class_labels: tuple[str, ...]

    @property
    def category(self) -> str:
        """The sample family, e.g. ``singleface`` for ``singleface_3``."""
        return self.sample_id.rsplit("_", 1)[0]

    @property
    def scores_face(self) -> bool:
        """Whether OpenS2V computes FaceSim for this sample."""
        return self.category in FACE_CATEGORIES

    @property
    def face_reference(self) -> str | None:
        """The reference image OpenS2V compares faces against, or None."""
        return next((p for p in self.img_paths if any(m in p for m in _FACE_PATH_MARKERS)), None)


@dataclass(frozen=True)
class TimelineSample:
    """A sequential-action entry: reference images, a global prompt and a timeline."""

    sample_id: str
    img_paths: tuple[str, ...]
    class_labels: tuple[str, ...]
    global_prompt: str
    events: tuple[TimelineEvent, ...]

    @property
    def timeline_end(self) -> float:
        """End of the last sub-action in seconds (the shortest video that can hold it)."""
        return max(e.end for e in self.events)


@dataclass(frozen=True)
class FacialSample:
    """An IPVG Track 1 pair: identity images and one prompt."""

    sample_id: str
    img_paths: tuple[str, ...]
    prompt: str
    class_labels: tuple[str, ...] = ()
    identity: str | None = None
    prompt_index: int | None = None


@dataclass(frozen=True)
class OpenS2VBenchmark:
    domain: Domain
    samples: tuple[SubjectSample, ...]


@dataclass(frozen=True)
class TimelineBenchmark:
    samples: tuple[TimelineSample, ...]


@dataclass(frozen=True)
class FacialBenchmark:
    samples: tuple[FacialSample, ...]


# --------------------------------------------------------------------------- readers


def opens2v_domain(file_name: str) -> Domain:
    """The OpenS2V-Eval domain a benchmark file's name states.

    Args:
        file_name: the file's name or object key (``…/Human-Domain_Eval.json``).

    Returns:
        ``open``, ``single`` or ``human`` (``SingleObject_Eval.json`` is single-domain).

    Raises:
        BenchmarkFormatError: the name is none of OpenS2V's benchmark files.
    """
    name = Path(file_name).name
    domain = _DOMAIN_BY_FILE.get(name.lower())
    if domain is None:
        raise BenchmarkFormatError(
            f"{file_name}: cannot infer the OpenS2V domain from the file name "
            f"({sorted(_DOMAIN_BY_FILE)}); pass domain='open', 'single' or 'human'"
        )
    return domain  # type: ignore[return-value]


def read_opens2v(path: str | Path, domain: Domain | None = None) -> OpenS2VBenchmark:
    """Read an OpenS2V-Eval benchmark file.

    Args:
        path: the JSON file.
        domain: ``open``, ``single`` or ``human``; inferred from the file name when None.

    Returns:
        The benchmark with samples in file order.

    Raises:
        BenchmarkFormatError: naming the entry and field that is wrong.
    """
    path = Path(path)
    if domain is None:
        domain = opens2v_domain(path.name)
    elif domain not in ("open", "single", "human"):
        raise BenchmarkFormatError(f"{path}: unknown domain {domain!r}")
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BenchmarkFormatError(f"{path}: top level must be an object keyed by sample id")
    samples = []
    for sample_id, entry in data.items():
        where = _Where(path, sample_id)
        entry = where.mapping(entry)
        img_paths = where.str_list(entry, "img_paths")
        labels = where.str_list(entry, "class_label")
        if len(labels) != len(img_paths):
            where.fail("class_label", f"has {len(labels)} labels for {len(img_paths)} images")
        samples.append(SubjectSample(sample_id, img_paths, where.text(entry, "prompt"), labels))
    return OpenS2VBenchmark(domain, tuple(samples))


def read_timeline_benchmark(path: str | Path) -> TimelineBenchmark:
    """Read a timeline set (IPVG Track 2 ``eval.json`` or the ReactID-Eval-SEQ shape).

    Args:
        path: the JSON file.

    Returns:
        The benchmark; each sample's events keep file order, which must be by start time.

    Raises:
        BenchmarkFormatError: naming the entry and field that is wrong.
    """
    path = Path(path)
    samples = []
    for sample_id, entry in _entries(path):
        where = _Where(path, sample_id)
        captions = entry.get("temporal_captions")
        if not isinstance(captions, list) or not captions:
            where.fail("temporal_captions", "must be a non-empty list of {start, end, description}")
        try:
            timeline = parse_ipvg_entry(
                {"global_prompt": where.text(entry, "global_prompt"), "temporal_captions": captions}
            )
        except TimelineError as exc:
            where.fail("temporal_captions", str(exc))
        events = timeline.actions
        samples.append(
            TimelineSample(
                sample_id,
                where.str_list(entry, "img_paths"),
                where.str_list(entry, "class_label"),
                where.text(entry, "global_prompt"),
                events,
            )
        )
    return TimelineBenchmark(tuple(samples))


def read_facial_benchmark(path: str | Path) -> FacialBenchmark:
    """Read an IPVG Track 1 file (flat pairs, or identities with a ``prompts`` list).

    Args:
        path: the JSON file.

    Returns:
        The benchmark; grouped entries expand to one sample per prompt, numbered on.

    Raises:
        BenchmarkFormatError: naming the entry and field that is wrong.
    """
    path = Path(path)
    raw = _load_json(path)
    samples: list[FacialSample] = []
    for position, (key, entry) in enumerate(_entries(path, raw), start=1):
        where = _Where(path, key)
        img_paths = where.str_list(entry, "img_paths")
        labels = where.str_list(entry, "class_label") if "class_label" in entry else ()
        if "prompts" in entry:
            prompts = where.str_list(entry, "prompts")
            identity = key if isinstance(raw, dict) else f"id{position:03d}"
            for k, prompt in enumerate(prompts, start=1):
                sid = str(len(samples) + 1)
                samples.append(FacialSample(sid, img_paths, prompt, labels, identity, k))
            continue
        identity = entry.get("identity")
        if identity is not None and (not isinstance(identity, str) or not identity):
            where.fail("identity", "must be a non-empty string")
        prompt_index = entry.get("prompt_index")
        if prompt_index is not None and (
            isinstance(prompt_index, bool) or not isinstance(prompt_index, int) or prompt_index < 1
        ):
            where.fail("prompt_index", "must be a positive integer")
        sid = key if isinstance(raw, dict) else str(len(samples) + 1)
        samples.append(
            FacialSample(
                sid, img_paths, where.text(entry, "prompt"), labels, identity, prompt_index
            )
        )
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        raise BenchmarkFormatError(f"{path}: sample ids repeat after expanding 'prompts'")
    return FacialBenchmark(tuple(samples))


# --------------------------------------------------------------------------- helpers


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BenchmarkFormatError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc


def _entries(path: Path, raw: Any = None) -> Iterator[tuple[str, Mapping[str, Any]]]:
    data = _load_json(path) if raw is None else raw
    if isinstance(data, list):
        items = ((str(i), e) for i, e in enumerate(data, start=1))
    elif isinstance(data, dict):
        items = ((str(k), e) for k, e in data.items())
    else:
        raise BenchmarkFormatError(f"{path}: top level must be a list or an object of entries")
    empty = True
    for key, entry in items:
        empty = False
        yield key, _Where(path, key).mapping(entry)
    if empty:
        raise BenchmarkFormatError(f"{path}: has no entries")


@dataclass(frozen=True)
class _Where:
    """Names the file and entry in every error raised while reading one entry."""

    path: Path
    sample_id: str

    def fail(self, field: str, problem: str):  # -> NoReturn
        raise BenchmarkFormatError(
            f"{self.path}: entry {self.sample_id!r}: field {field!r} {problem}"
        )

    def mapping(self, entry: Any) -> Mapping[str, Any]:
        if not isinstance(entry, dict):
            raise BenchmarkFormatError(
                f"{self.path}: entry {self.sample_id!r} must be an object, got "
                f"{type(entry).__name__}"
            )
        return entry

    def text(self, entry: Mapping[str, Any], field: str) -> str:
        value = entry.get(field)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string" if field in entry else "is missing")
        return value

    def str_list(self, entry: Mapping[str, Any], field: str) -> tuple[str, ...]:
        if field not in entry:
            self.fail(field, "is missing")
        value = entry[field]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            self.fail(field, "must be a non-empty list of non-empty strings")
        return tuple(value)
