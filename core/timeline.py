"""Timeline prompts: a global prompt plus timed sub-actions, each bound to a subject.

ReactID (Sec. 3.3) conditions generation on a timeline: a monolithic prompt supplemented
by sub-actions with start/end times in seconds. Three external shapes carry timelines:

- the IPVG challenge string, ``"0-2s: [Action A]; 2-5s: [Action B]"``;
- the IPVG Track 2 ``eval.json`` entry: ``global_prompt`` and ``temporal_captions``
  (a list of ``{start, end, description}``);
- ReactID-Data timeline annotations: ``{key: {meta, global_caption, event_count,
  events: [...]}}``.

This module parses and formats all three into one validated, immutable ``Timeline``.
It is pure Python (stdlib only) because ``core`` is imported by every package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ReactIDError

# The challenge string and eval.json carry no subject; their actions belong to this one.
DEFAULT_SUBJECT = "subject"

# Times are compared after rounding so that 2.0000000001 and 2 are the same boundary.
_TIME_DECIMALS = 6


class TimelineError(ReactIDError, ValueError):
    """A timeline is malformed; the message names the offending part."""


@dataclass(frozen=True, slots=True)
class SubAction:
    """One timed sub-action of one subject.

    Args:
        start: Start time in seconds (inclusive).
        end: End time in seconds (exclusive), ``end > start``.
        description: What the subject does during ``[start, end)``.
        subject: Label of the subject performing the action.
    """

    start: float
    end: float
    description: str
    subject: str = DEFAULT_SUBJECT

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TimelineError(f"sub-action {name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value):
                raise TimelineError(f"sub-action {name} must be finite, got {value!r}")
            object.__setattr__(self, name, round(float(value), _TIME_DECIMALS))
        if self.start < 0:
            raise TimelineError(f"sub-action start {self.start:g}s is negative")
        if self.end <= self.start:
            raise TimelineError(
                f"sub-action {self.description!r}: end {self.end:g}s must be after "
                f"start {self.start:g}s"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise TimelineError(f"sub-action {self.start:g}-{self.end:g}s has an empty description")
        if not isinstance(self.subject, str) or not self.subject.strip():
            raise TimelineError(f"sub-action {self.description!r} has an empty subject label")
        object.__setattr__(self, "description", self.description.strip())
        object.__setattr__(self, "subject", self.subject.strip())

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Timeline:
    """A global prompt plus sub-actions, validated on construction.

    Invariants: ``0 <= start < end <= duration`` for every action; actions are sorted by
    ``(start, end)``; the actions of one subject do not overlap (different subjects may act
    at the same time).

    Args:
        global_prompt: The monolithic prompt describing the whole video (may be empty).
        actions: Sub-actions, sorted by start time.
        duration: Video length in seconds; ``None`` means the last action's end (always a
            float after construction).
    """

    global_prompt: str
    actions: tuple[SubAction, ...]
    duration: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.global_prompt, str):
            raise TimelineError(
                f"global prompt must be a string, got {type(self.global_prompt).__name__}"
            )
        actions = tuple(self.actions)
        for index, action in enumerate(actions):
            if not isinstance(action, SubAction):
                raise TimelineError(
                    f"action {index} is a {type(action).__name__}, expected SubAction"
                )
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "global_prompt", self.global_prompt.strip())
        duration = self.duration
        if duration is None:
            if not actions:
                raise TimelineError("a timeline without actions needs an explicit duration")
            duration = max(action.end for action in actions)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
            raise TimelineError(
                f"timeline duration must be a positive number of seconds, got {duration!r}"
            )
        duration = round(float(duration), _TIME_DECIMALS)
        object.__setattr__(self, "duration", duration)
        _check_order(actions, duration)

    @property
    def subjects(self) -> tuple[str, ...]:
        """Subject labels in order of first appearance."""
        return tuple(dict.fromkeys(action.subject for action in self.actions))

    def actions_of(self, subject: str) -> tuple[SubAction, ...]:
        return tuple(action for action in self.actions if action.subject == subject)

    def window(self, start: float, end: float) -> Timeline:
        """The part of the timeline inside ``[start, end)``, shifted to start at 0.

        Actions are clipped to the window; actions that do not intersect it are dropped.
        Used to split a long timeline into auto-regressive segments.
        """
        if not 0 <= start < end:
            raise TimelineError(f"window [{start:g}, {end:g}) is empty or negative")
        clipped = []
        for action in self.actions:
            lo, hi = max(action.start, start), min(action.end, end)
            if hi - lo > 10**-_TIME_DECIMALS:
                clipped.append(
                    SubAction(lo - start, hi - start, action.description, action.subject)
                )
        return Timeline(self.global_prompt, tuple(clipped), duration=end - start)

    def as_prompt(self) -> str:
        """The timeline folded into one prompt, as a model without timeline modules reads it."""
        parts = [self.global_prompt] if self.global_prompt else []
        for action in self.actions:
            who = "" if action.subject == DEFAULT_SUBJECT else f"{action.subject}: "
            parts.append(f"{_fmt(action.start)}-{_fmt(action.end)}s: {who}{action.description}")
        return " ".join(part if part.endswith((".", ";")) else part + ";" for part in parts).rstrip(
            ";"
        )


def _check_order(actions: Sequence[SubAction], duration: float) -> None:
    previous: SubAction | None = None
    last_of_subject: dict[str, SubAction] = {}
    for index, action in enumerate(actions):
        where = f"action {index} ({_fmt(action.start)}-{_fmt(action.end)}s {action.description!r})"
        if action.end > duration:
            raise TimelineError(f"{where} ends after the timeline duration {_fmt(duration)}s")
        if previous is not None and (action.start, action.end) < (previous.start, previous.end):
            raise TimelineError(
                f"{where} starts before action {index - 1} ({_fmt(previous.start)}s); "
                "actions must be sorted"
            )
        earlier = last_of_subject.get(action.subject)
        if earlier is not None and action.start < earlier.end:
            raise TimelineError(
                f"{where} overlaps the previous action of subject {action.subject!r}, "
                f"which ends at {_fmt(earlier.end)}s"
            )
        last_of_subject[action.subject] = action
        previous = action


def _fmt(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------
# The challenge string: "0-2s: [Action A]; 2-5s: [Action B]"
# --------------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_UNIT = r"\s*(?:s|sec|secs|seconds?)?\s*"
_SEGMENT = re.compile(
    rf"^\s*{_NUMBER}{_UNIT}[-–—~]\s*{_NUMBER}{_UNIT}:\s*(.*?)\s*$", re.IGNORECASE | re.DOTALL
)
_SEGMENT_SEPARATOR = re.compile(r"[;\n]")


def parse_timeline_string(
    text: str,
    *,
    global_prompt: str = "",
    duration: float | None = None,
    subject: str = DEFAULT_SUBJECT,
) -> Timeline:
    """Parse the challenge form ``"0-2s: [Action A]; 2-5s: [Action B]"``.

    Segments are separated by ``;`` or newlines; one pair of square brackets around a
    description is optional. All actions belong to ``subject``.

    Raises:
        TimelineError: naming the segment index, its character span and its text.
    """
    if not isinstance(text, str):
        raise TimelineError(f"timeline string must be a str, got {type(text).__name__}")
    actions = []
    position = 0
    for index, raw in enumerate(_SEGMENT_SEPARATOR.split(text)):
        span = (position, position + len(raw))
        position += len(raw) + 1
        if not raw.strip():
            continue
        where = f"segment {index} {raw.strip()!r} at characters {span[0]}-{span[1]}"
        match = _SEGMENT.match(raw)
        if match is None:
            raise TimelineError(f"{where}: expected 'START-ENDs: description', e.g. '0-2s: waves'")
        start, end, description = float(match.group(1)), float(match.group(2)), match.group(3)
        if description.startswith("[") and description.endswith("]"):
            description = description[1:-1]
        try:
            actions.append(SubAction(start, end, description, subject))
        except TimelineError as error:
            raise TimelineError(f"{where}: {error}") from None
    if not actions:
        raise TimelineError(
            f"timeline string {text!r} contains no 'START-ENDs: description' segment"
        )
    return _build(global_prompt, actions, duration, source="timeline string")


def format_timeline_string(timeline: Timeline, *, brackets: bool = False) -> str:
    """Format a single-subject timeline in the challenge form.

    Raises:
        TimelineError: the timeline has several subjects (the string form names none).
    """
    if len(timeline.subjects) > 1:
        raise TimelineError(
            "the challenge string form carries one subject; "
            f"this timeline has {list(timeline.subjects)}"
        )
    pieces = []
    for action in timeline.actions:
        text = f"[{action.description}]" if brackets else action.description
        pieces.append(f"{_fmt(action.start)}-{_fmt(action.end)}s: {text}")
    return "; ".join(pieces)


# --------------------------------------------------------------------------------------
# IPVG Track 2 eval.json
# --------------------------------------------------------------------------------------


def parse_ipvg_entry(
    entry: Mapping[str, Any], *, duration: float | None = None, subject: str = DEFAULT_SUBJECT
) -> Timeline:
    """Parse one Track 2 ``eval.json`` entry (``global_prompt``, ``temporal_captions``)."""
    if not isinstance(entry, Mapping):
        raise TimelineError(f"eval.json entry must be an object, got {type(entry).__name__}")
    for key in ("global_prompt", "temporal_captions"):
        if key not in entry:
            raise TimelineError(f"eval.json entry lacks {key!r}; it has {sorted(entry)}")
    captions = entry["temporal_captions"]
    if not isinstance(captions, list):
        raise TimelineError(f"temporal_captions must be a list, got {type(captions).__name__}")
    actions = [
        _action_from_record(caption, f"temporal_captions[{index}]", default_subject=subject)
        for index, caption in enumerate(captions)
    ]
    return _build(str(entry["global_prompt"]), actions, duration, source="eval.json entry")


def format_ipvg_entry(timeline: Timeline) -> dict[str, Any]:
    """The ``global_prompt`` / ``temporal_captions`` part of a Track 2 entry."""
    return {
        "global_prompt": timeline.global_prompt,
        "temporal_captions": [
            {"start": action.start, "end": action.end, "description": action.description}
            for action in timeline.actions
        ],
    }


def parse_ipvg_eval(data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, Timeline]:
    """Parse a whole ``eval.json``: an object keyed by sample id, or a list (ids 1..N)."""
    items: Iterable[tuple[str, Any]]
    if isinstance(data, Mapping):
        items = ((str(key), value) for key, value in data.items())
    elif isinstance(data, Sequence) and not isinstance(data, str):
        items = ((str(index + 1), value) for index, value in enumerate(data))
    else:
        raise TimelineError(f"eval.json must be an object or a list, got {type(data).__name__}")
    timelines = {}
    for key, entry in items:
        try:
            timelines[key] = parse_ipvg_entry(entry)
        except TimelineError as error:
            raise TimelineError(f"eval.json sample {key!r}: {error}") from None
    return timelines


# --------------------------------------------------------------------------------------
# ReactID-Data timeline annotations: {key: {meta, global_caption, event_count, events}}
# --------------------------------------------------------------------------------------

_START_KEYS = ("start", "start_time", "begin")
_END_KEYS = ("end", "end_time", "stop")
_TEXT_KEYS = ("description", "caption", "event", "text")
_SUBJECT_KEYS = ("subject", "entity", "entity_label")
_DURATION_KEYS = ("duration", "duration_s", "video_duration")


def parse_reactid_timeline(record: Mapping[str, Any], *, key: str = "?") -> Timeline:
    """Parse one ReactID-Data timeline record (``meta``, ``global_caption``, ``event_count``,
    ``events``).

    An event carries its times as ``start``/``end`` (or ``start_time``/``end_time``, or a
    two-element ``timestamp``), its text as ``description`` (or ``caption``/``event``) and
    optionally a ``subject``. The duration comes from ``meta.duration`` (or ``num_frames /
    fps``) when present, else from the last event's end.
    """
    if not isinstance(record, Mapping):
        raise TimelineError(
            f"timeline {key!r}: record must be an object, got {type(record).__name__}"
        )
    for name in ("global_caption", "events"):
        if name not in record:
            raise TimelineError(f"timeline {key!r}: lacks {name!r}; it has {sorted(record)}")
    events = record["events"]
    if not isinstance(events, list):
        raise TimelineError(f"timeline {key!r}: events must be a list, got {type(events).__name__}")
    if "event_count" in record and record["event_count"] != len(events):
        raise TimelineError(
            f"timeline {key!r}: event_count is {record['event_count']!r} "
            f"but {len(events)} events are listed"
        )
    actions = [
        _action_from_record(event, f"timeline {key!r} events[{i}]")
        for i, event in enumerate(events)
    ]
    meta = record.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise TimelineError(f"timeline {key!r}: meta must be an object, got {type(meta).__name__}")
    return _build(
        str(record["global_caption"]),
        actions,
        _meta_duration(meta, key),
        source=f"timeline {key!r}",
    )


def parse_reactid_timelines(data: Mapping[str, Any]) -> dict[str, Timeline]:
    """Parse a ReactID-Data timeline file ``{key: record}``."""
    if not isinstance(data, Mapping):
        raise TimelineError(
            f"timeline annotations must be an object keyed by clip, got {type(data).__name__}"
        )
    return {str(key): parse_reactid_timeline(record, key=str(key)) for key, record in data.items()}


def format_reactid_timeline(
    timeline: Timeline, *, meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One ReactID-Data timeline record; ``meta`` is kept and given the duration."""
    return {
        "meta": {**(meta or {}), "duration": timeline.duration},
        "global_caption": timeline.global_prompt,
        "event_count": len(timeline.actions),
        "events": [
            {"start": a.start, "end": a.end, "description": a.description, "subject": a.subject}
            for a in timeline.actions
        ],
    }


def _meta_duration(meta: Mapping[str, Any], key: str) -> float | None:
    for name in _DURATION_KEYS:
        if name in meta:
            return _seconds(meta[name], f"timeline {key!r} meta.{name}")
    if "num_frames" in meta and "fps" in meta:
        fps = _seconds(meta["fps"], f"timeline {key!r} meta.fps")
        if fps <= 0:
            raise TimelineError(f"timeline {key!r}: meta.fps must be positive, got {meta['fps']!r}")
        return _seconds(meta["num_frames"], f"timeline {key!r} meta.num_frames") / fps
    return None


def _action_from_record(
    record: Any, where: str, default_subject: str = DEFAULT_SUBJECT
) -> SubAction:
    if not isinstance(record, Mapping):
        raise TimelineError(f"{where}: expected an object, got {type(record).__name__}")
    if "timestamp" in record:
        stamp = record["timestamp"]
        if not isinstance(stamp, Sequence) or isinstance(stamp, str) or len(stamp) != 2:
            raise TimelineError(f"{where}: timestamp must be [start, end], got {stamp!r}")
        start_raw, end_raw = stamp
    else:
        start_raw = _first(record, _START_KEYS, where)
        end_raw = _first(record, _END_KEYS, where)
    description = _first(record, _TEXT_KEYS, where)
    if not isinstance(description, str):
        raise TimelineError(f"{where}: description must be a string, got {description!r}")
    subject = next((record[name] for name in _SUBJECT_KEYS if record.get(name)), default_subject)
    start, end = _seconds(start_raw, f"{where}.start"), _seconds(end_raw, f"{where}.end")
    try:
        return SubAction(start, end, description, str(subject))
    except TimelineError as error:
        raise TimelineError(f"{where}: {error}") from None


def _first(record: Mapping[str, Any], names: Sequence[str], where: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    raise TimelineError(f"{where}: lacks any of {list(names)}; it has {sorted(record)}")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise TimelineError(f"{where}: expected seconds, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(rf"\s*{_NUMBER}{_UNIT}", value, re.IGNORECASE)
        if match:
            return float(match.group(1))
    raise TimelineError(f"{where}: expected seconds (a number or '2.5s'), got {value!r}")


def _build(
    global_prompt: str, actions: list[SubAction], duration: float | None, *, source: str
) -> Timeline:
    try:
        return Timeline(global_prompt, tuple(actions), duration=duration)
    except TimelineError as error:
        raise TimelineError(f"{source}: {error}") from None
