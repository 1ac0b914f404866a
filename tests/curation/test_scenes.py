import numpy as np
import pytest

from curation.scenes import (
    content_returns,
    merge_cuts,
    precision_recall_f1,
    segments_from_boundaries,
)


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_prf_has_no_made_up_values():
    assert precision_recall_f1(0, 0, 0)["precision"] is None
    assert precision_recall_f1(3, 1, 0) == pytest.approx(
        {"precision": 0.75, "recall": 1.0, "f1": 6 / 7, "tp": 3, "fp": 1, "fn": 0}
    )


def test_merge_cuts_dedupes_within_tolerance():
    assert merge_cuts([10, 40], [11, 25, 42, 43], tolerance=2) == [10, 25, 40, 43]


def test_segments_keep_min_duration():
    segs = segments_from_boundaries([30, 40], [], n_frames=100, fps=10, min_duration_s=3.0)
    assert [(s.start_frame, s.end_frame, s.kept) for s in segs] == [(0, 30, True), (30, 40, False), (40, 100, True)]
    assert segs[1].drop_reason == "below_min_duration"


def test_flash_content_returns():
    a = [1, 0, 0]
    flash = _unit([a] * 5 + [[0, 0, 1]] + [a] * 5)
    assert content_returns(flash, 5, 0.8, 3) and content_returns(flash, 6, 0.8, 3)
    change = _unit([a] * 5 + [[0, 1, 0]] * 5)
    assert not content_returns(change, 5, 0.8, 3)


def test_segment_durations_come_from_the_timestamps():
    times = np.array([0.0, 0.04, 0.08, 0.12, 0.2, 0.28, 0.36])  # 25 fps, then 12.5 fps
    segments = segments_from_boundaries([3], [], 7, 25.0, 0.2, times=times, end_s=0.44)
    assert [(s.start_frame, s.end_frame, s.duration_s, s.kept) for s in segments] == [
        (0, 3, 0.12, False), (3, 7, 0.32, True)]
    assert segments[0].drop_reason == "below_min_duration"
    assert segments_from_boundaries([], [], 0, 25.0, 0.2, times=times[:0], end_s=0.0) == []  # nothing decoded
    with pytest.raises(ValueError, match="one timestamp per frame"):
        segments_from_boundaries([], [], 5, 25.0, 0.2, times=times, end_s=0.44)
