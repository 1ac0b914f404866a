import numpy as np
import pytest

from curation.timelines import describe, match_events, optimal_partition, segment_track, temporal_iou


def test_optimal_partition_finds_step_changes():
    x = np.concatenate([np.zeros(10), np.ones(8) * 5, np.zeros(6)])[:, None]
    assert optimal_partition(x, penalty=1.0, min_len=2) == [(0, 10), (10, 18), (18, 24)]
    assert optimal_partition(x, penalty=1e6, min_len=2) == [(0, 24)]


@pytest.mark.parametrize(
    ("mean", "text"),
    [
        ((0.1, 0, 0), "walks to the right"),
        ((-0.3, 0, 0), "runs to the left"),
        ((0.0, 0.3, 0.02), "walks toward the camera"),
        ((0.0, -0.3, 0.02), "steps back from the camera"),
        ((0.0, 0.0, 0.4), "jumps up and down"),
        ((0.01, 0.01, 0.01), "stands still"),
    ],
)
def test_describe(mean, text):
    assert describe(np.array(mean), walk=0.05, run=0.17, scale=0.08, bob=0.15) == text


def test_segment_track_walk_then_run():
    times = np.arange(0, 6, 0.25)
    x = np.where(times < 3, 0.1 * 320 * times, 0.1 * 320 * 3 + 0.3 * 320 * (times - 3)) + 40
    boxes = np.stack([x, np.full_like(x, 100), x + 30, np.full_like(x, 180)], 1)
    segs = segment_track(times, boxes, 320, 240, penalty=4.0, min_segment_s=1.0, walk=0.05, run=0.17, scale=0.08, bob=0.15)
    assert [s.description for s in segs] == ["walks to the right", "runs to the right"]
    assert segs[1].start_s == pytest.approx(3.0, abs=0.26)


def test_match_events_needs_description_and_tiou():
    truth = [(0.0, 2.0, "walks to the left"), (2.0, 4.0, "jumps up and down")]
    pred = [(0.0, 1.8, "walks to the left"), (1.8, 4.0, "runs to the left")]
    assert match_events(pred, truth, 0.5) == (1, 1, 1)
    assert temporal_iou((0, 2), (1, 3)) == pytest.approx(1 / 3)
