"""Flat views of the nested annotation tables, derived with pandas and numpy.

great-expectations validates flat columns; the annotation tables hold lists (boxes per
frame, masks, events). These functions explode them into one row per box (mask decoded,
frame size joined) or per event (previous event and same-subject end joined) and add
derived columns, so that every rule in gate_rules.py is a single-column or column-pair
expectation. Pure: no GX, no Dagster.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curation.entities import Taxonomy
from curation.rle import rle_decode

# Times compare at the precision core.timeline keeps, so 2.0000000001 s equals 2 s.
TIME_DECIMALS = 6
NAN = float("nan")


def as_list(value: Any) -> list:
    """A list cell as a Python list (Arrow gives numpy arrays, None for null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def _num(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return NAN
    return x if math.isfinite(x) else NAN


def _time(value: Any) -> float:
    x = _num(value)
    return x if math.isnan(x) else round(x, TIME_DECIMALS)


def text_chars(value: Any) -> int:
    """Characters of a text after stripping whitespace; 0 for null."""
    return len(value.strip()) if isinstance(value, str) else 0


def _frame(records: list[dict[str, Any]], columns: Iterable[str], numeric: Iterable[str] = ()) -> pd.DataFrame:
    """Records as a frame with fixed columns (so an empty view still has them), numeric
    columns as float64 (NaN for missing), and `_row` as the position GX reports back."""
    cols = list(columns)
    df = pd.DataFrame.from_records(records, columns=cols) if records else pd.DataFrame({c: [] for c in cols})
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df.insert(0, "_row", np.arange(len(df), dtype=np.int64))
    return df


# ---------------------------------------------------------------- boxes and masks

BOX_COLUMNS = ("box_index", "frame_index", "prev_frame_index", "frame_time_s", "score", "box_well_formed",
               "x0", "y0", "x1", "y1", "frame_width", "frame_height", "duration_s")
MASK_COLUMNS = ("mask_decodes", "mask_size_matches_frame", "mask_area", "mask_overhang_px", "mask_area_fraction_error")
_BOX_NUMERIC = ("frame_index", "prev_frame_index", "frame_time_s", "score", "x0", "y0", "x1", "y1",
                "frame_width", "frame_height", "duration_s")
_MASK_NUMERIC = ("mask_area", "mask_overhang_px", "mask_area_fraction_error")


def _mask_fields(rle: Any, box: tuple[float, float, float, float], width: float, height: float,
                 fraction: Any) -> dict[str, Any]:
    if rle is None:  # counted by the per-subject "one mask per frame" rule
        return {"mask_decodes": True, "mask_size_matches_frame": True, "mask_area": NAN,
                "mask_overhang_px": NAN, "mask_area_fraction_error": NAN}
    try:
        mask = rle_decode(rle)
    except ValueError:
        return {"mask_decodes": False, "mask_size_matches_frame": False, "mask_area": NAN,
                "mask_overhang_px": NAN, "mask_area_fraction_error": NAN}
    h, w = mask.shape
    area = int(mask.sum())
    overhang = NAN
    if area and not any(math.isnan(v) for v in box):
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        mx0, mx1, my0, my1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1  # exclusive ends, like box edges
        x0, y0, x1, y1 = box
        overhang = float(max(0.0, x0 - mx0, y0 - my0, mx1 - x1, my1 - y1))
    frame_px = width * height
    frac = _num(fraction)
    error = abs(area / frame_px - frac) if frame_px > 0 and not math.isnan(frac) else NAN
    return {"mask_decodes": True, "mask_size_matches_frame": (h, w) == (height, width), "mask_area": float(area),
            "mask_overhang_px": overhang, "mask_area_fraction_error": error}


def box_view_frame(df: pd.DataFrame, ids: Sequence[str], *, boxes: str, frames: str, scores: str | None,
                   masks: str | None = None, fractions: str | None = None) -> pd.DataFrame:
    """One row per box of every row of `df` (which carries frame_width/frame_height, and
    duration_s/fps when known), with its mask decoded when `masks` is given."""
    records = []
    for row, rec in enumerate(df.to_dict("records")):
        box_list, frame_list = as_list(rec[boxes]), as_list(rec[frames])
        score_list = as_list(rec[scores]) if scores else []
        mask_list = as_list(rec[masks]) if masks else []
        fraction_list = as_list(rec[fractions]) if fractions else []
        width, height = _num(rec.get("frame_width")), _num(rec.get("frame_height"))
        fps, duration = _num(rec.get("fps")), _num(rec.get("duration_s"))
        prev_frame = NAN
        for k, raw in enumerate(box_list):
            coords = [_num(c) for c in as_list(raw)]
            well_formed = len(coords) == 4 and not any(math.isnan(c) for c in coords)
            x0, y0, x1, y1 = coords if len(coords) == 4 else (NAN,) * 4
            frame = _num(frame_list[k]) if k < len(frame_list) else NAN
            item = {
                "table_row": rec.get("table_row", row), **{c: rec[c] for c in ids}, "box_index": k,
                "frame_index": frame,
                "prev_frame_index": prev_frame, "frame_time_s": _time(frame / fps) if fps > 0 else NAN,
                "score": _num(score_list[k]) if k < len(score_list) else NAN, "box_well_formed": well_formed,
                "x0": x0, "y0": y0, "x1": x1, "y1": y1, "frame_width": width, "frame_height": height,
                "duration_s": _time(duration),
            }
            if masks:
                item.update(_mask_fields(mask_list[k] if k < len(mask_list) else None, (x0, y0, x1, y1), width,
                                         height, fraction_list[k] if k < len(fraction_list) else None))
            records.append(item)
            prev_frame = frame
    columns = ["table_row", *ids, *BOX_COLUMNS, *(MASK_COLUMNS if masks else ())]
    frame = _frame(records, columns, (*_BOX_NUMERIC, *(_MASK_NUMERIC if masks else ())))
    for c in ("box_well_formed", *(("mask_decodes", "mask_size_matches_frame") if masks else ())):
        frame[c] = frame[c].astype(bool)
    return frame


# ---------------------------------------------------------------- events

EVENT_COLUMNS = ("event_index", "start", "end", "duration_s", "prev_start", "prev_end_same_subject", "times_finite",
                 "subject", "subject_chars", "description_chars", "subject_in_clip")
_EVENT_NUMERIC = ("start", "end", "duration_s", "prev_start", "prev_end_same_subject")


def event_view_frame(df: pd.DataFrame, ids: Sequence[str],
                     subjects_by_clip: Mapping[str, set[str]] | None = None) -> pd.DataFrame:
    """One row per event, with the previous event's start (list order) and the latest end
    among earlier events of the same subject."""
    records = []
    for row, rec in enumerate(df.to_dict("records")):
        duration = _time(rec.get("duration_s"))
        prev_start, last_end = NAN, {}
        for k, event in enumerate(as_list(rec["events"])):
            event = event or {}
            start, end, subject = _time(event.get("start")), _time(event.get("end")), event.get("subject")
            known = subjects_by_clip.get(rec["clip_id"], set()) if subjects_by_clip is not None else None
            records.append({
                "table_row": rec.get("table_row", row), **{c: rec[c] for c in ids}, "event_index": k,
                "start": start, "end": end,
                "duration_s": duration, "prev_start": prev_start, "prev_end_same_subject": last_end.get(subject, NAN),
                "times_finite": not (math.isnan(start) or math.isnan(end)), "subject": subject,
                "subject_chars": text_chars(subject), "description_chars": text_chars(event.get("description")),
                "subject_in_clip": True if known is None else subject in known,
            })
            if not math.isnan(start):
                prev_start = start
            if not math.isnan(end):
                last_end[subject] = max(end, last_end.get(subject, end))
    frame = _frame(records, ["table_row", *ids, *EVENT_COLUMNS], _EVENT_NUMERIC)
    for c in ("times_finite", "subject_in_clip"):
        frame[c] = frame[c].astype(bool)
    return frame


# ---------------------------------------------------------------- per-row derivations


def add_taxonomy_columns(df: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    labels = df["label"].tolist()
    df["taxonomy_category"] = pd.Series([taxonomy.category(v) if isinstance(v, str) else None for v in labels],
                                        index=df.index, dtype=object)
    df["taxonomy_is_human"] = [isinstance(v, str) and v in taxonomy.human for v in labels]
    return df


def add_face_columns(df: pd.DataFrame, embeddings: str) -> pd.DataFrame:
    face_frames = [as_list(v) for v in df["face_frame_indices"]]
    reps = [as_list(v) for v in df["representative_frames"]]
    embs = [[as_list(e) for e in as_list(v)] for v in df[embeddings]]
    df["n_face_frames"] = [len(v) for v in face_frames]
    df["n_face_boxes"] = [len(as_list(v)) for v in df["face_boxes"]]
    df["n_representative"] = [len(v) for v in reps]
    df["n_embeddings"] = [len(v) for v in embs]
    has_faces = [bool(f or r or e) for f, r, e in zip(face_frames, reps, embs, strict=True)]
    df["face_boxes_if_faces"] = [not h or n > 0 for h, n in zip(has_faces, df["n_face_boxes"], strict=True)]
    df["representatives_are_face_frames"] = [set(r) <= set(f) for r, f in zip(reps, face_frames, strict=True)]
    df["embeddings_finite_same_dim"] = [
        len({len(e) for e in es}) <= 1 and all(len(e) and np.isfinite(np.asarray(e, float)).all() for e in es)
        for es in embs
    ]
    return df


def add_counts(df: pd.DataFrame, pairs: Mapping[str, str]) -> pd.DataFrame:
    for out, col in pairs.items():
        df[out] = [len(as_list(v)) for v in df[col]]
    return df


def first_row_per_clip(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates("clip_id", keep="first").reset_index(drop=True)


def crop_inside(crop: Any, width: float, height: float) -> bool:
    values = [_num(v) for v in as_list(crop)]
    if not values:
        return True
    if len(values) != 4 or any(math.isnan(v) for v in values) or math.isnan(_num(width)):
        return False
    x, y, w, h = values
    return x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height


# The clip-level columns of the joined annotations table, repeated on each subject row.
_CLIP_FIELDS = ("clip_key", "identity", "width", "height", "fps", "duration_s", "caption", "word_count",
                "global_caption", "events", "backends")


def clip_rows_agree(df: pd.DataFrame) -> dict[str, bool]:
    """Per clip: do its subject rows carry the same clip-level fields?"""
    keyed = pd.DataFrame({"clip_id": df["clip_id"]})
    keyed["fields"] = [json.dumps([_jsonable(r[c]) for c in _CLIP_FIELDS], default=str)
                       for r in df[list(_CLIP_FIELDS)].to_dict("records")]
    return (keyed.groupby("clip_id", dropna=False)["fields"].nunique() <= 1).to_dict()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def caption_word_stats(word_counts: Iterable[Any], at_least_words: int) -> dict[str, Any]:
    """Distribution of caption lengths in words (the paper: ~94% have >= 50 words)."""
    counts = np.asarray([_num(v) for v in word_counts], float)
    counts = counts[~np.isnan(counts)]
    if not len(counts):
        return {"captions": 0, "at_least_words": at_least_words, "share_at_least": None}
    edges = [0, 10, 20, 30, 40, 50, 75, 100, 150]
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:], strict=False)] + [f"{edges[-1]}+"]
    bins = np.digitize(counts, edges[1:])
    return {
        "captions": int(len(counts)),
        "min": int(counts.min()), "p10": float(np.percentile(counts, 10)), "median": float(np.median(counts)),
        "mean": round(float(counts.mean()), 2), "max": int(counts.max()),
        "at_least_words": at_least_words,
        "share_at_least": round(float((counts >= at_least_words).mean()), 4),
        "histogram": {label: int((bins == i).sum()) for i, label in enumerate(labels)},
    }
