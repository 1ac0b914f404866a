"""Each annotation table as check views with their rules: the suites of the quality gates.

A suite is named after its table (captions, entities, subjects, faces, timelines, and the
joined annotations table); `build_views` turns the table into the flat views of
gate_views.py and attaches the rules of gate_rules.py, with floors and tolerances from the
`quality_gates` params section.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import ReactIDError
from curation import annotation_schemas as schemas
from curation.entities import Taxonomy
from curation.gate_rules import (
    CheckView,
    Rule,
    at_least,
    between,
    box_rules,
    caption_rules,
    equal,
    event_rules,
    face_rules,
    holds,
    mask_rules,
    not_null,
    taxonomy_rules,
    unique,
)
from curation.gate_views import (
    add_counts,
    add_face_columns,
    add_taxonomy_columns,
    box_view_frame,
    clip_rows_agree,
    crop_inside,
    event_view_frame,
    first_row_per_clip,
    text_chars,
)
from curation.params import QualityGatesParams

SUITES = ("captions", "entities", "subjects", "faces", "timelines", "annotations")
SCHEMAS = {"captions": schemas.CAPTIONS, "entities": schemas.ENTITIES, "subjects": schemas.SUBJECTS, "faces": schemas.FACES,
           "timelines": schemas.TIMELINES, "annotations": schemas.ANNOTATIONS}
# Suites that check against the curated clip (frame size, duration) they annotate.
NEEDS_CLIPS = {"faces": "frame size for face boxes", "timelines": "clip duration for event ends"}
CLIP_COLUMNS = ("clip_id", "width", "height", "duration_s")


class QualityGateError(ReactIDError):
    """A table cannot be checked at all (wrong columns, missing context); not a failed check."""


def _with_clip_context(df: pd.DataFrame, clips: pd.DataFrame | None, suite: str) -> pd.DataFrame:
    if clips is None:
        raise QualityGateError(f"suite {suite!r} needs the curated clips table ({NEEDS_CLIPS[suite]}): "
                               f"pass one with columns {list(CLIP_COLUMNS)}")
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise QualityGateError(f"clips table lacks columns {missing} (expected a curated_clips table)")
    ctx = clips[list(CLIP_COLUMNS)].drop_duplicates("clip_id")
    ctx = ctx.rename(columns={"width": "frame_width", "height": "frame_height"})
    return df.merge(ctx, on="clip_id", how="left", validate="many_to_one")


def _view(name: str, df: pd.DataFrame, rules: Iterable[Rule], ids: Sequence[str]) -> CheckView:
    df = df.reset_index(drop=True)
    if "table_row" not in df.columns:
        df.insert(0, "table_row", np.arange(len(df), dtype=np.int64))
    if "_row" not in df.columns:
        df.insert(0, "_row", np.arange(len(df), dtype=np.int64))
    return CheckView(name, df, tuple(rules), ("table_row", *ids))


# ---------------------------------------------------------------- one table -> views


def _captions(df: pd.DataFrame, p: QualityGatesParams) -> list[CheckView]:
    df["dropped_has_reason"] = [bool(k) or text_chars(r) > 0
                                for k, r in zip(df["kept"], df["drop_reason"], strict=True)]
    df["caption_chars"] = [text_chars(v) for v in df["caption"]]
    df["table_row"] = np.arange(len(df), dtype=np.int64)
    rows = [not_null("clip_id", "caption row has a clip id"), unique(["clip_id"], "one caption row per clip"),
            not_null("kept", "caption is marked kept or dropped"),
            holds("dropped_has_reason", "a dropped caption names its drop reason")]
    kept = df[df["kept"].fillna(False).astype(bool)]
    return [_view("captions", df, rows, ("clip_id",)),
            _view("kept", kept, caption_rules(p.min_caption_words), ("clip_id",))]


def _entities(df: pd.DataFrame, taxonomy: Taxonomy) -> list[CheckView]:
    add_taxonomy_columns(df, taxonomy)
    rules = [not_null("clip_id", "entity has a clip id"), not_null("entity_id", "entity has an id"),
             unique(["clip_id", "entity_id"], "entity ids unique within a clip"),
             not_null("is_human", "entity is marked human or not"), *taxonomy_rules()]
    return [_view("entities", df, rules, ("clip_id", "entity_id", "label"))]


def _subjects(df: pd.DataFrame, p: QualityGatesParams, taxonomy: Taxonomy) -> list[CheckView]:
    add_taxonomy_columns(df, taxonomy)
    add_counts(df, {"n_frames": "frame_indices", "n_boxes": "boxes", "n_scores": "scores", "n_masks": "mask_rles",
                    "n_mask_area_fractions": "mask_area_fractions"})
    df["verified_frames"] = df["n_frames"].where(df["verified"].fillna(False).astype(bool))
    ids = ("clip_id", "entity_id", "label")
    rows = [
        not_null("clip_id", "subject has a clip id"), not_null("entity_id", "subject has an entity id"),
        unique(["clip_id", "entity_id"], "one row per subject of a clip"),
        not_null("label", "subject has a label"),
        not_null("taxonomy_category", "label is a taxonomy term (living or non-living, not background)"),
        not_null("frame_width", "subject has its frame width"),
        not_null("frame_height", "subject has its frame height"),
        at_least("frame_width", p.min_width, f"resolution floor: frame width >= {p.min_width}"),
        at_least("frame_height", p.min_height, f"resolution floor: frame height >= {p.min_height}"),
        # An unverified subject may have no detection at all: it records that the entity
        # was looked for and not found; a verified one must have been seen.
        at_least("verified_frames", 1, "verified subject detected in at least one frame"),
        equal("n_boxes", "n_frames", "one box per frame index"),
        equal("n_scores", "n_frames", "one score per frame index"),
        equal("n_masks", "n_frames", "one mask per frame index"),
        equal("n_mask_area_fractions", "n_frames", "one mask area fraction per frame index"),
        between("verification_score", 0, 1, "verification score in [0, 1]"),
    ]
    boxes = box_view_frame(df, ids[:2], boxes="boxes", frames="frame_indices", scores="scores", masks="mask_rles",
                           fractions="mask_area_fractions")
    return [_view("subjects", df, rows, ids),
            _view("boxes", boxes, [*box_rules("box"), *mask_rules(p.mask_box_tolerance_px)],
                  ("clip_id", "entity_id", "frame_index"))]


def _faces(df: pd.DataFrame, clips: pd.DataFrame | None) -> list[CheckView]:
    df = _with_clip_context(df, clips, "faces")
    add_face_columns(df, "embeddings")
    add_counts(df, {"n_face_scores": "face_scores"})
    df["torso_crop_inside_frame"] = [crop_inside(c, w, h) for c, w, h in
                                     zip(df["face_torso_crop"], df["frame_width"], df["frame_height"], strict=True)]
    ids = ("clip_id", "entity_id")
    rows = [
        not_null("clip_id", "face row has a clip id"), not_null("entity_id", "face row has an entity id"),
        unique(["clip_id", "entity_id"], "one face row per subject of a clip"),
        not_null("frame_width", "the face row's clip is a curated clip (frame size known)"),
        equal("n_face_scores", "n_face_frames", "one face score per face frame index"),
        *face_rules(),
        holds("torso_crop_inside_frame", "face/torso crop [x, y, w, h] non-empty and inside the frame"),
    ]
    boxes = box_view_frame(df, ids, boxes="face_boxes", frames="face_frame_indices", scores="face_scores")
    return [_view("faces", df, rows, ids), _view("face_boxes", boxes, box_rules("face box", score_max=None),
                                                 ("clip_id", "entity_id", "frame_index"))]


def _timelines(df: pd.DataFrame, p: QualityGatesParams, clips: pd.DataFrame | None) -> list[CheckView]:
    df = _with_clip_context(df, clips, "timelines")
    add_counts(df, {"n_events": "events"})
    df["global_caption_chars"] = [text_chars(v) for v in df["global_caption"]]
    df["duration_s"] = pd.to_numeric(df["duration_s"], errors="coerce").astype("float64")
    rows = [
        not_null("clip_id", "timeline has a clip id"), unique(["clip_id"], "one timeline per clip"),
        not_null("duration_s", "the timeline's clip is a curated clip (duration known)"),
        at_least("duration_s", p.min_duration_s, f"duration floor: clip >= {p.min_duration_s:g} s"),
        at_least("global_caption_chars", 1, "global caption non-empty"),
        equal("event_count", "n_events", "event_count equals the number of events"),
    ]
    events = event_view_frame(df, ("clip_id",))
    return [_view("timelines", df, rows, ("clip_id",)),
            _view("events", events, event_rules(subjects_known=False), ("clip_id", "event_index", "subject"))]


def _annotations(df: pd.DataFrame, p: QualityGatesParams, taxonomy: Taxonomy) -> list[CheckView]:
    df["table_row"] = np.arange(len(df), dtype=np.int64)
    df["frame_width"], df["frame_height"] = df["width"], df["height"]
    agree = clip_rows_agree(df)
    subjects_by_clip: dict[str, set[str]] = {}
    for rec in df[["clip_id", "entity_id", "label", "fine_label"]].to_dict("records"):
        subjects_by_clip.setdefault(rec["clip_id"], set()).update(
            v for v in (rec["entity_id"], rec["label"], rec["fine_label"]) if isinstance(v, str))

    clips = first_row_per_clip(df)
    clips["clip_rows_agree"] = [bool(agree.get(c, True)) for c in clips["clip_id"]]
    clips["caption_chars"] = [text_chars(v) for v in clips["caption"]]
    clip_rules = [
        not_null("clip_id", "annotation row has a clip id"), not_null("clip_key", "clip has its video key"),
        *(not_null(c, f"clip has its {c}") for c in ("width", "height", "duration_s", "fps")),
        at_least("width", p.min_width, f"resolution floor: width >= {p.min_width}"),
        at_least("height", p.min_height, f"resolution floor: height >= {p.min_height}"),
        at_least("duration_s", p.min_duration_s, f"duration floor: clip >= {p.min_duration_s:g} s"),
        at_least("fps", 0, "fps > 0", strict=True),
        *caption_rules(p.min_caption_words),
        holds("clip_rows_agree", "clip-level fields agree across the clip's subject rows"),
        not_null("backends", "clip records the backends that produced it"),
        Rule("ExpectColumnValuesToBeJsonParseable", {"column": "backends"}, "backends is JSON"),
    ]

    add_taxonomy_columns(df, taxonomy)
    add_face_columns(df, "face_embeddings")
    add_counts(df, {"n_frames": "frame_indices", "n_boxes": "boxes", "n_masks": "mask_rles",
                    "n_mask_area_fractions": "mask_area_fractions"})
    df["faces_only_on_humans"] = [bool(h) or n == 0
                                  for h, n in zip(df["is_human"], df["n_face_boxes"], strict=True)]
    subject_rules = [
        not_null("entity_id", "annotation row names its subject entity"),
        unique(["clip_id", "entity_id"], "one row per subject of a clip"),
        *taxonomy_rules(),
        at_least("n_frames", 1, "subject detected in at least one frame"),
        equal("n_boxes", "n_frames", "one box per frame index"),
        equal("n_masks", "n_frames", "one mask per frame index"),
        equal("n_mask_area_fractions", "n_frames", "one mask area fraction per frame index"),
        *face_rules(),
        holds("faces_only_on_humans", "only human subjects carry face boxes"),
    ]
    ids = ("clip_id", "entity_id")
    boxes = box_view_frame(df, ids, boxes="boxes", frames="frame_indices", scores=None, masks="mask_rles",
                           fractions="mask_area_fractions")
    face_boxes = box_view_frame(df, ids, boxes="face_boxes", frames="face_frame_indices", scores=None)
    events = event_view_frame(clips, ("clip_id",), subjects_by_clip)
    return [
        _view("clips", clips, clip_rules, ("clip_id",)),
        _view("subjects", df, subject_rules, ("clip_id", "entity_id", "label")),
        _view("boxes", boxes, [*box_rules("box", scored=False, timed=True), *mask_rules(p.mask_box_tolerance_px)],
              ("clip_id", "entity_id", "frame_index")),
        _view("face_boxes", face_boxes, box_rules("face box", scored=False, timed=True),
              ("clip_id", "entity_id", "frame_index")),
        _view("events", events, event_rules(subjects_known=True), ("clip_id", "event_index", "subject")),
    ]


def as_frame(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    return table.to_pandas() if isinstance(table, pa.Table) else table.copy()


def build_views(suite: str, table: pa.Table | pd.DataFrame, *, params: QualityGatesParams, taxonomy: Taxonomy,
                clips: pa.Table | pd.DataFrame | None = None) -> list[CheckView]:
    """The check views of one annotation table.

    Args:
        suite: one of SUITES, naming the table's schema.
        table: the table (its schema's columns; extra columns are ignored).
        params: floors and tolerances.
        taxonomy: the living / non-living / human terms labels must come from.
        clips: the curated clips table (clip_id, width, height, duration_s); needed by the
            suites in NEEDS_CLIPS.

    Raises:
        QualityGateError: unknown suite, missing columns, or missing clip context.
    """
    if suite not in SCHEMAS:
        raise QualityGateError(f"unknown suite {suite!r}; expected one of {list(SUITES)}")
    df = as_frame(table)
    missing = [c for c in SCHEMAS[suite].names if c not in df.columns]
    if missing:
        raise QualityGateError(f"table lacks columns {missing} of the {suite!r} table schema")
    df = df[list(SCHEMAS[suite].names)].reset_index(drop=True)
    clip_frame = as_frame(clips) if clips is not None else None
    if suite == "captions":
        return _captions(df, params)
    if suite == "entities":
        return _entities(df, taxonomy)
    if suite == "subjects":
        return _subjects(df, params, taxonomy)
    if suite == "faces":
        return _faces(df, clip_frame)
    if suite == "timelines":
        return _timelines(df, params, clip_frame)
    return _annotations(df, params, taxonomy)
