"""The quality-gate rules as plain data: GX expectation class, arguments, meaning.

quality_gates.py turns each Rule into a great-expectations expectation; keeping them as
data lets the views, the CLI and the tests use them without importing GX. The rule sets
name the derived columns that gate_views.py computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_REPRESENTATIVE_FRAMES = 5
MASK_FRACTION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Rule:
    """One expectation, as data: the GX expectation class name, its arguments and what a
    failure means in words (shown in Data Docs, Dagster metadata and the CLI)."""

    expectation: str
    kwargs: Mapping[str, Any]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        kw = self.kwargs
        if "column" in kw:
            return (kw["column"],)
        if "column_A" in kw:
            return (kw["column_A"], kw["column_B"])
        return tuple(kw.get("column_list", ()))


@dataclass(frozen=True)
class CheckView:
    """A flat frame (`_row` = position) checked by `rules`; `id_columns` locate a row."""

    name: str
    frame: pd.DataFrame
    rules: tuple[Rule, ...]
    id_columns: tuple[str, ...]


# ---------------------------------------------------------------- rule constructors


# GX column-map expectations (ranges, sets) skip null values, so every column a range or
# set rule reads is also checked not-null where a null would be a defect.


def not_null(col: str, what: str) -> Rule:
    return Rule("ExpectColumnValuesToNotBeNull", {"column": col}, what)


def at_least(col: str, lo: float, what: str, *, strict: bool = False) -> Rule:
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "strict_min": strict}, what)


def at_most(col: str, hi: float, what: str) -> Rule:
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "max_value": hi}, what)


def between(col: str, lo: float, hi: float, what: str) -> Rule:
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi}, what)


def holds(col: str, what: str) -> Rule:
    """A derived boolean column is True on every row."""
    return Rule("ExpectColumnValuesToBeInSet", {"column": col, "value_set": [True]}, what)


def in_set(col: str, values: Sequence[Any], what: str) -> Rule:
    return Rule("ExpectColumnValuesToBeInSet", {"column": col, "value_set": list(values)}, what)


def a_over_b(a: str, b: str, what: str, *, or_equal: bool, skip_missing: bool = False) -> Rule:
    """Column `a` > `b` (>= with `or_equal`); with `skip_missing` rows lacking either are not checked."""
    ignore = "either_value_is_missing" if skip_missing else "both_values_are_missing"
    return Rule("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": a, "column_B": b, "or_equal": or_equal, "ignore_row_if": ignore}, what)


def equal(a: str, b: str, what: str, *, skip_missing: bool = False) -> Rule:
    ignore = "either_value_is_missing" if skip_missing else "both_values_are_missing"
    return Rule("ExpectColumnPairValuesToBeEqual", {"column_A": a, "column_B": b, "ignore_row_if": ignore}, what)


def unique(cols: Sequence[str], what: str) -> Rule:
    if len(cols) == 1:
        return Rule("ExpectColumnValuesToBeUnique", {"column": cols[0]}, what)
    return Rule("ExpectCompoundColumnsToBeUnique", {"column_list": list(cols)}, what)


# ---------------------------------------------------------------- rule sets


def box_rules(what: str, *, scored: bool = True, timed: bool = False, score_max: float | None = 1.0) -> list[Rule]:
    """Boxes inside the frame and non-degenerate, frames increasing; `scored` adds the
    score range ([0, score_max], or >= 0 when score_max is None: detector margins such as
    dlib's HOG scores are not probabilities), `timed` the frame-within-the-clip rule."""
    rules = [
        holds("box_well_formed", f"{what} is 4 finite numbers [x0, y0, x1, y1]"),
        at_least("x0", 0, f"{what} inside the frame: x0 >= 0"),
        at_least("y0", 0, f"{what} inside the frame: y0 >= 0"),
        a_over_b("frame_width", "x1", f"{what} inside the frame: x1 <= frame width",
                 or_equal=True, skip_missing=True),
        a_over_b("frame_height", "y1", f"{what} inside the frame: y1 <= frame height",
                 or_equal=True, skip_missing=True),
        a_over_b("x1", "x0", f"{what} non-degenerate: x1 > x0", or_equal=False, skip_missing=True),
        a_over_b("y1", "y0", f"{what} non-degenerate: y1 > y0", or_equal=False, skip_missing=True),
        at_least("frame_index", 0, f"{what} frame index >= 0"),
        a_over_b("frame_index", "prev_frame_index", f"{what} frame indices strictly increase per subject",
                 or_equal=False, skip_missing=True),
    ]
    if scored and score_max is not None:
        rules.append(between("score", 0, score_max, f"{what} score in [0, {score_max:g}]"))
    elif scored:
        rules.append(at_least("score", 0, f"{what} score >= 0"))
    if timed:
        rules.append(a_over_b("duration_s", "frame_time_s", f"{what} frame lies within the clip duration",
                              or_equal=True, skip_missing=True))
    return rules


def mask_rules(tolerance_px: float) -> list[Rule]:
    return [
        holds("mask_decodes", "mask is a valid COCO RLE"),
        holds("mask_size_matches_frame", "mask size equals the frame size"),
        at_least("mask_area", 1, "mask non-empty"),
        at_most("mask_overhang_px", tolerance_px, f"mask inside its box (at most {tolerance_px:g} px beyond it)"),
        at_most("mask_area_fraction_error", MASK_FRACTION_TOLERANCE,
                "mask_area_fractions equals mask pixels / frame pixels"),
    ]


def event_rules(*, subjects_known: bool) -> list[Rule]:
    rules = [
        holds("times_finite", "event start and end are finite numbers"),
        at_least("start", 0, "event starts at or after 0 s"),
        a_over_b("end", "start", "event start < end", or_equal=False, skip_missing=True),
        a_over_b("duration_s", "end", "event ends within the clip duration", or_equal=True, skip_missing=True),
        a_over_b("start", "prev_start", "events sorted by start time", or_equal=True, skip_missing=True),
        a_over_b("start", "prev_end_same_subject", "events of one subject do not overlap", or_equal=True,
                 skip_missing=True),
        at_least("description_chars", 1, "event description non-empty"),
        at_least("subject_chars", 1, "event names its subject"),
    ]
    if subjects_known:
        rules.append(holds("subject_in_clip", "event subject is one of the clip's subjects (entity id or label)"))
    return rules


def taxonomy_rules() -> list[Rule]:
    return [
        not_null("label", "entity has a label"),
        not_null("taxonomy_category", "label is a taxonomy term (living or non-living, not background)"),
        not_null("category", "entity has a category"),
        in_set("category", ("living", "non_living"), "category is living or non_living"),
        equal("category", "taxonomy_category", "category matches the taxonomy", skip_missing=True),
        equal("is_human", "taxonomy_is_human", "is_human matches the taxonomy's human terms"),
    ]


def face_rules() -> list[Rule]:
    return [
        equal("n_face_boxes", "n_face_frames", "one face box per face frame index"),
        holds("face_boxes_if_faces", "face boxes for every human with faces"),
        at_most("n_representative", MAX_REPRESENTATIVE_FRAMES,
                f"at most {MAX_REPRESENTATIVE_FRAMES} representative face frames"),
        equal("n_embeddings", "n_representative", "one identity embedding per representative frame"),
        holds("representatives_are_face_frames", "representative frames are face frames"),
        holds("embeddings_finite_same_dim", "identity embeddings are finite and of one dimension"),
        at_least("face_resolution", 0, "face resolution > 0 px", strict=True),
    ]


def caption_rules(min_caption_words: int) -> list[Rule]:
    """Kept captions are non-empty and counted; `min_caption_words` > 0 adds a floor."""
    rules = [at_least("caption_chars", 1, "caption non-empty"), not_null("word_count", "caption has a word count")]
    if min_caption_words:
        rules.append(at_least("word_count", min_caption_words, f"caption has at least {min_caption_words} words"))
    return rules
