"""Annotation quality gates: every suite passes on good tables, and a broken table fails
exactly the expectations its defect breaks, with the offending rows as samples."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.params import parse_params
from curation.entities import Taxonomy
from curation.gate_suites import QualityGateError, build_views
from curation.gate_views import box_view_frame, caption_word_stats, event_view_frame
from curation.quality_gates import SUITES, run_suite, run_suites
from curation.rle import rle_encode


def _load_gate_tables():
    spec = importlib.util.spec_from_file_location("gate_tables", Path(__file__).resolve().parents[1] / "gate_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gt = _load_gate_tables()
TAXONOMY = Taxonomy(living=frozenset({"man", "woman", "dog"}), non_living=frozenset({"ball"}),
                    background=frozenset({"sky"}), human=frozenset({"man", "woman"}))


@pytest.fixture(scope="module")
def gates(base_params_raw):
    return parse_params(base_params_raw).quality_gates


def _failed(result) -> set[str]:
    return {f.description for f in result.failures}


# ---------------------------------------------------------------- pure views (no GX)


def test_mask_overhang_and_area_fraction_are_measured():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 8:20] = True  # reaches 2 px left of its box
    df = pd.DataFrame({"clip_id": ["c"], "entity_id": ["c-e0"], "frame_width": [60], "frame_height": [40],
                       "frame_indices": [[0]], "boxes": [[[10.0, 10.0, 20.0, 20.0]]], "masks": [[rle_encode(mask)]],
                       "fractions": [[120 / 2400]]})
    view = box_view_frame(df, ("clip_id", "entity_id"), boxes="boxes", frames="frame_indices", scores=None,
                          masks="masks", fractions="fractions")
    row = view.iloc[0]
    assert (row["mask_area"], row["mask_overhang_px"], row["mask_area_fraction_error"]) == (120.0, 2.0, 0.0)
    assert row["box_well_formed"] and row["mask_decodes"] and row["mask_size_matches_frame"]


def test_events_carry_previous_start_and_same_subject_end():
    events = [{"start": 0.0, "end": 2.0, "description": "x", "subject": "a"},
              {"start": 1.0, "end": 3.0, "description": "y", "subject": "b"},
              {"start": 2.5, "end": 4.0, "description": "z", "subject": "a"}]
    view = event_view_frame(pd.DataFrame({"clip_id": ["c"], "duration_s": [4.0], "events": [events]}), ("clip_id",))
    assert view["prev_start"].tolist()[1:] == [0.0, 1.0]
    assert np.isnan(view["prev_end_same_subject"].iloc[1]) and view["prev_end_same_subject"].iloc[2] == 2.0


def test_caption_word_distribution():
    stats = caption_word_stats([10, 50, 60, 100, None], at_least_words=50)
    assert stats["captions"] == 4 and stats["share_at_least"] == 0.75 and stats["median"] == 55.0
    assert stats["histogram"]["10-19"] == 1 and stats["histogram"]["50-74"] == 2 and stats["histogram"]["150+"] == 0


def test_unusable_tables_are_refused_before_validation(gates):
    tables = gt.to_tables(gt.good_rows())
    with pytest.raises(QualityGateError, match=r"lacks columns \['events'\]"):
        build_views("timelines", tables["timelines"].drop_columns(["events"]), params=gates, taxonomy=TAXONOMY,
                    clips=tables["curated_clips"])
    with pytest.raises(QualityGateError, match="needs the curated clips table"):
        run_suite("faces", tables["faces"], params=gates, taxonomy=TAXONOMY)
    with pytest.raises(QualityGateError, match="unknown suite"):
        run_suite("attributes", tables["faces"], params=gates, taxonomy=TAXONOMY)


# ---------------------------------------------------------------- suites through GX


def test_every_suite_passes_on_good_tables_and_writes_data_docs(gates, tmp_path):
    tables = gt.to_tables(gt.good_rows())
    results = run_suites({s: tables[s] for s in SUITES}, params=gates, taxonomy=TAXONOMY,
                         clips=tables["curated_clips"], data_docs_dir=tmp_path / "docs", run_name="good")
    assert list(results) == list(SUITES)
    for suite, result in results.items():
        assert result.success, result.summary()
        assert result.n_expectations > 0 and all(result.view_rows.values()), suite
    words = results["captions"].caption_words
    assert (words["captions"], words["share_at_least"], words["min"], words["max"]) == (2, 0.5, 30, 60)
    index = results["annotations"].data_docs_path
    assert index == tmp_path / "docs" / "index.html" and index.is_file()
    assert "annotations.boxes" in index.read_text()


def _edit(table: str, entity_or_clip: str, **values):
    """An edit of the rows of `table` whose entity_id (or clip_id) is `entity_or_clip`;
    a callable value computes the new value from the row."""
    def edit(rows):
        hits = [r for r in rows[table] if entity_or_clip in (r.get("entity_id"), r["clip_id"])]
        assert hits, (table, entity_or_clip)
        for row in hits:
            row.update({k: v(row) if callable(v) else v for k, v in values.items()})
    return edit


def _edits(*edits):
    def edit(rows):
        for e in edits:
            e(rows)
    return edit


def _replace(index: int, value):
    """Row edit: the list column's item `index` replaced by `value`."""
    return lambda column: lambda row: [value if i == index else v for i, v in enumerate(row[column])]


def _where(result) -> dict[str, set[tuple]]:
    """Each failed expectation -> the (entity or clip, frame or event index) of its sample rows."""
    return {f.description: {(r.get("entity_id") or r["clip_id"], r.get("frame_index", r.get("event_index")))
                            for r in f.sample_rows} for f in result.failures}


MAN_A, DOG_A, WOMAN_B = (f"{gt.CLIP_A}-e0", f"{gt.CLIP_A}-e1", f"{gt.CLIP_B}-e0")
A, B = gt.CLIP_A, gt.CLIP_B
OUTSIDE = [240.0, 30.0, 330.0, 230.0]  # reaches 10 px past the 320 px frame
DEGENERATE = [40.0, 30.0, 40.0, 230.0]
EMPTY = rle_encode(np.zeros((gt.H, gt.W), bool))
_SMALL = np.zeros((90, 120), bool)
_SMALL[10:80, 10:50] = True
# A coherent subject of a 120x90 clip: boxes, masks and area fractions all fit its frame.
LOW_RES = {"frame_width": 120, "frame_height": 90, "boxes": [[10.0, 10.0, 50.0, 80.0]] * 3,
           "mask_rles": [rle_encode(_SMALL)] * 3, "mask_area_fractions": [2800 / 10800] * 3}


def _event(start, end, subject, what="acts"):
    return {"start": start, "end": end, "description": f"the {what}", "subject": subject}


BROKEN = {
    "subjects": (
        _edits(
            _edit("subjects", MAN_A, boxes=_replace(0, OUTSIDE)("boxes"),
                  mask_rles=_replace(0, gt.rect_mask(OUTSIDE))("mask_rles"),
                  mask_area_fractions=_replace(0, 80 * 200 / (gt.W * gt.H))("mask_area_fractions")),
            _edit("subjects", MAN_A, boxes=_replace(1, DEGENERATE)("boxes")),
            _edit("subjects", MAN_A, mask_rles=_replace(2, EMPTY)("mask_rles"),
                  mask_area_fractions=_replace(2, 0.0)("mask_area_fractions")),
            _edit("subjects", WOMAN_B, mask_rles=_replace(0, gt.rect_mask([150.0, 20.0, 270.0, 240.0]))("mask_rles")),
            _edit("subjects", DOG_A, **LOW_RES),
        ),
        {"box inside the frame: x1 <= frame width": {(MAN_A, 0)},
         "box non-degenerate: x1 > x0": {(MAN_A, 10)},
         "mask non-empty": {(MAN_A, 20)},
         "mask inside its box (at most 2 px beyond it)": {(MAN_A, 10), (WOMAN_B, 0)},
         "resolution floor: frame width >= 128": {(DOG_A, None)},
         "resolution floor: frame height >= 96": {(DOG_A, None)}},
    ),
    "timelines": (
        _edits(
            _edit("timelines", A, event_count=4, events=[_event(0.0, 1.5, MAN_A), _event(0.5, 2.0, "dog"),
                                                         _event(3.0, 2.0, MAN_A), _event(2.5, 3.5, "dog")]),
            _edit("timelines", B, events=[_event(0.0, 2.5, WOMAN_B), _event(2.0, 5.5, WOMAN_B)]),
        ),
        {"event start < end": {(A, 2)}, "events sorted by start time": {(A, 3)},
         "events of one subject do not overlap": {(B, 1)}, "event ends within the clip duration": {(B, 1)}},
    ),
    "entities": (
        _edits(_edit("entities", DOG_A, label="unicorn"), _edit("entities", WOMAN_B, category="non_living"),
               _edit("entities", MAN_A, is_human=False)),
        {"label is a taxonomy term (living or non-living, not background)": {(DOG_A, None)},
         "category matches the taxonomy": {(WOMAN_B, None)},
         "is_human matches the taxonomy's human terms": {(MAN_A, None)}},
    ),
    "faces": (
        _edits(_edit("faces", MAN_A, face_boxes=[], face_scores=[]),
               _edit("faces", WOMAN_B, face_boxes=[[300.0, 25.0, 340.0, 70.0]] * 3)),
        {"face boxes for every human with faces": {(MAN_A, None)},
         "one face box per face frame index": {(MAN_A, None)},
         "one face score per face frame index": {(MAN_A, None)},
         "face box inside the frame: x1 <= frame width": {(WOMAN_B, 0), (WOMAN_B, 10), (WOMAN_B, 20)}},
    ),
    "captions": (
        _edits(_edit("captions", B, caption="  "), _edit("captions", gt.CLIP_DROPPED, drop_reason=None)),
        {"caption non-empty": {(B, None)}, "a dropped caption names its drop reason": {(gt.CLIP_DROPPED, None)}},
    ),
    # The joined table: inverted timestamps and a box outside the frame (gt.break_annotations),
    # a face box on a dog, clip rows that disagree, a background label, a clip below the floor.
    "annotations": (
        _edits(
            gt.break_annotations,
            _edit("annotations", DOG_A, face_boxes=[[200.0, 155.0, 240.0, 190.0]], face_frame_indices=[0],
                  caption="another caption"),
            _edit("annotations", MAN_A, label="sky"),
            _edit("annotations", B, width=100),
        ),
        {"event start < end": {(A, 0)}, "events sorted by start time": {(A, 1)},
         "box inside the frame: x1 <= frame width": {(DOG_A, 0), (WOMAN_B, 0), (WOMAN_B, 10), (WOMAN_B, 20)},
         "mask inside its box (at most 2 px beyond it)": {(DOG_A, 0)},
         "only human subjects carry face boxes": {(DOG_A, None)},
         "clip-level fields agree across the clip's subject rows": {(A, None)},
         "label is a taxonomy term (living or non-living, not background)": {(MAN_A, None)},
         "is_human matches the taxonomy's human terms": {(MAN_A, None)},
         "resolution floor: width >= 128": {(B, None)},
         "mask size equals the frame size": {(WOMAN_B, 0), (WOMAN_B, 10), (WOMAN_B, 20)},
         "mask_area_fractions equals mask pixels / frame pixels": {(WOMAN_B, 0), (WOMAN_B, 10), (WOMAN_B, 20)},
         "face box inside the frame: x1 <= frame width": {(WOMAN_B, 0), (WOMAN_B, 10), (WOMAN_B, 20)}},
    ),
}


@pytest.mark.parametrize("suite", list(BROKEN))
def test_broken_table_fails_exactly_the_broken_expectations_at_the_broken_rows(suite, gates):
    edit, expected = BROKEN[suite]
    tables = gt.edited(edit)
    result = run_suite(suite, tables[suite], params=gates, taxonomy=TAXONOMY, clips=tables["curated_clips"])
    assert not result.success
    assert _where(result) == expected, result.summary()
    text = result.summary()
    assert text.startswith(f"{suite}: FAILED ({len(expected)} of {result.n_expectations} expectations)")
    for failure in result.failures:
        assert failure.unexpected_count == len(failure.sample_rows) and failure.error is None
        assert set(failure.column.split(", ")) <= set(failure.sample_rows[0])  # samples show the checked values
        assert f"  - {failure.line()}" in text
    assert json.loads(json.dumps(result.to_dict()))["failures"]


def test_inverted_event_sample_row_and_report_line(gates):
    edit, _ = BROKEN["timelines"]
    tables = gt.edited(edit)
    result = run_suite("timelines", tables["timelines"], params=gates, taxonomy=TAXONOMY, clips=tables["curated_clips"])
    inverted = next(f for f in result.failures if f.description == "event start < end")
    assert inverted.sample_rows == ({"table_row": 0, "clip_id": A, "event_index": 2, "subject": MAN_A,
                                     "end": 2, "start": 3},)
    assert ("  - [events] event start < end (expect_column_pair_values_a_to_be_greater_than_b on end, start): "
            "1 of 6 rows\n      table_row=0 clip_id=" + A + " event_index=2") in result.summary()


def test_caption_word_floor_comes_from_params(base_params_raw):
    raw = {**base_params_raw, "quality_gates": {**base_params_raw["quality_gates"], "min_caption_words": 40}}
    gates = parse_params(raw).quality_gates
    result = run_suite("captions", gt.to_tables(gt.good_rows())["captions"], params=gates, taxonomy=TAXONOMY)
    assert _where(result) == {"caption has at least 40 words": {(B, None)}}
