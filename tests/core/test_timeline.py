"""Timeline type: validation, the three external shapes, and error messages."""

from __future__ import annotations

import json

import pytest

from core.timeline import (
    DEFAULT_SUBJECT,
    SubAction,
    Timeline,
    TimelineError,
    format_ipvg_entry,
    format_reactid_timeline,
    format_timeline_string,
    parse_ipvg_entry,
    parse_ipvg_eval,
    parse_reactid_timeline,
    parse_reactid_timelines,
    parse_timeline_string,
)

TWO_SUBJECTS = Timeline(
    "a man and a dog in a park",
    (
        SubAction(0.0, 2.0, "the man waves", "man"),
        SubAction(0.5, 3.0, "the dog runs", "dog"),
        SubAction(2.0, 5.0, "the man sits down", "man"),
    ),
    duration=5.0,
)


def test_challenge_string_parses_brackets_units_and_fractions():
    timeline = parse_timeline_string("0-2s: [Action A]; 2-5s: [Action B]")
    assert timeline.actions == (SubAction(0, 2, "Action A"), SubAction(2, 5, "Action B"))
    assert timeline.duration == 5.0 and timeline.subjects == (DEFAULT_SUBJECT,)
    loose = parse_timeline_string(
        "0 s – 1.5 sec: walks in;\n1.5-4 seconds: sits;", global_prompt="a man", duration=6
    )
    assert [(a.start, a.end, a.description) for a in loose.actions] == [
        (0, 1.5, "walks in"),
        (1.5, 4, "sits"),
    ]
    assert loose.duration == 6.0 and loose.global_prompt == "a man"


@pytest.mark.parametrize(
    "timeline",
    [
        parse_timeline_string("0-2s: waves; 2-5s: sits down"),
        parse_timeline_string("0-1.25s: jumps; 1.25-2.5s: lands", duration=3.0),
    ],
)
def test_challenge_string_round_trip(timeline):
    text = format_timeline_string(timeline)
    assert parse_timeline_string(text, duration=timeline.duration) == timeline
    bracketed = format_timeline_string(timeline, brackets=True)
    assert bracketed.startswith("0-") and "[" in bracketed
    assert parse_timeline_string(bracketed, duration=timeline.duration) == timeline


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0-2s: waves; 2-xs: sits",
            r"segment 1 '2-xs: sits' at characters 12-23: expected 'START-ENDs",
        ),
        ("0-2s: waves; 3-2s: sits", r"segment 1 '3-2s: sits'.*end 2s must be after start 3s"),
        (
            "0-2s: waves; 1-3s: sits",
            r"action 1 \(1-3s 'sits'\) overlaps the previous action of subject",
        ),
        ("2-4s: waves; 0-2s: sits", r"action 1 .* actions must be sorted"),
        ("0-2s:   ", r"segment 0 .* empty description"),
        ("waves then sits", r"segment 0 'waves then sits' at characters 0-15"),
        ("", r"contains no 'START-ENDs: description' segment"),
    ],
)
def test_bad_strings_name_the_offending_segment(text, message):
    with pytest.raises(TimelineError, match=message):
        parse_timeline_string(text)


def test_duration_bounds_are_enforced():
    with pytest.raises(TimelineError, match=r"ends after the timeline duration 4s"):
        parse_timeline_string("0-2s: a; 2-5s: b", duration=4)
    with pytest.raises(TimelineError, match="start -1s is negative"):
        SubAction(-1, 2, "a")
    with pytest.raises(TimelineError, match="needs an explicit duration"):
        Timeline("prompt only", ())
    assert Timeline("prompt only", (), duration=5).duration == 5.0


def test_different_subjects_may_overlap_and_are_listed_in_order():
    assert TWO_SUBJECTS.subjects == ("man", "dog")
    assert [a.description for a in TWO_SUBJECTS.actions_of("man")] == [
        "the man waves",
        "the man sits down",
    ]
    with pytest.raises(TimelineError, match="several subjects|carries one subject"):
        format_timeline_string(TWO_SUBJECTS)


def test_ipvg_entry_round_trip_and_errors():
    entry = {
        "img_paths": ["ref/1.png"],
        "class_label": ["man"],
        "global_prompt": "A man in a kitchen.",
        "temporal_captions": [
            {"start": 0, "end": 2.5, "description": "opens the fridge"},
            {"start": "2.5s", "end": "5s", "description": "drinks milk"},
        ],
    }
    timeline = parse_ipvg_entry(entry)
    assert timeline.actions[1] == SubAction(2.5, 5.0, "drinks milk")
    formatted = format_ipvg_entry(timeline)
    assert parse_ipvg_entry(json.loads(json.dumps({**entry, **formatted}))) == timeline
    by_id = parse_ipvg_eval([entry, entry])
    assert sorted(by_id) == ["1", "2"] and by_id["2"] == timeline
    broken = {**entry, "temporal_captions": [{"start": 0, "end": "two", "description": "x"}]}
    with pytest.raises(
        TimelineError, match=r"sample '1': temporal_captions\[0\].end: expected seconds"
    ):
        parse_ipvg_eval([broken])
    with pytest.raises(TimelineError, match="lacks 'temporal_captions'"):
        parse_ipvg_entry({"global_prompt": "x"})


def test_reactid_data_annotations_round_trip():
    record = format_reactid_timeline(TWO_SUBJECTS, meta={"fps": 24})
    assert record["event_count"] == 3 and record["meta"] == {"fps": 24, "duration": 5.0}
    data = json.loads(json.dumps({"clip-001": record}))
    assert parse_reactid_timelines(data) == {"clip-001": TWO_SUBJECTS}


def test_reactid_data_alternative_field_names_and_errors():
    record = {
        "meta": {"num_frames": 96, "fps": 24},
        "global_caption": "a cat on a sofa",
        "event_count": 2,
        "events": [
            {"timestamp": [0, 1.5], "caption": "the cat yawns"},
            {"start_time": 1.5, "end_time": 3.0, "event": "the cat stretches", "entity": "cat"},
        ],
    }
    timeline = parse_reactid_timeline(record, key="k")
    assert timeline.duration == 4.0
    assert timeline.actions[0].subject == DEFAULT_SUBJECT and timeline.actions[1].subject == "cat"
    with pytest.raises(
        TimelineError, match="timeline 'k': event_count is 3 but 2 events are listed"
    ):
        parse_reactid_timeline({**record, "event_count": 3}, key="k")
    with pytest.raises(TimelineError, match=r"events\[0\]: lacks any of \['description'"):
        parse_reactid_timeline(
            {**record, "events": [{"start": 0, "end": 1}], "event_count": 1}, key="k"
        )


def test_window_clips_and_shifts_actions():
    window = TWO_SUBJECTS.window(1.0, 3.0)
    assert window.duration == 2.0
    assert [(a.start, a.end, a.subject) for a in window.actions] == [
        (0, 1, "man"),
        (0, 2, "dog"),
        (1, 2, "man"),
    ]
    assert TWO_SUBJECTS.window(5.0, 6.0).actions == ()


def test_as_prompt_folds_the_timeline_into_text():
    text = parse_timeline_string("0-2s: waves; 2-5s: sits", global_prompt="A man.").as_prompt()
    assert text == "A man. 0-2s: waves; 2-5s: sits"
    assert "man: the man waves" in TWO_SUBJECTS.as_prompt()


def test_records_are_frozen():
    with pytest.raises(AttributeError):
        TWO_SUBJECTS.duration = 3.0  # type: ignore[misc]
