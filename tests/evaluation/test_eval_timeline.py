import numpy as np
import pytest

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics.base import SampleContext
from evaluation.metrics.timeline import (
    TimelineAlignmentFlowProxy,
    motion_features,
    timeline_alignment,
)

FPS = 16
TWO_ACTIONS = (TimelineEvent(0, 2, "walk right"), TimelineEvent(2, 4, "walk left"))


def right_then_left(shifting_clip, seconds_right: float = 2, seconds_left: float = 2) -> np.ndarray:
    right = shifting_clip(int(seconds_right * FPS), 2, 0)
    left = np.stack(
        [np.roll(right[-1], -2 * t, axis=1) for t in range(1, int(seconds_left * FPS) + 1)]
    )
    return np.concatenate([right, left])


@pytest.fixture(scope="module")
def reversing_features(shifting_clip) -> np.ndarray:
    return motion_features(right_then_left(shifting_clip))


def test_features_measure_the_shift(shifting_clip):
    features = motion_features(shifting_clip(5, 2, 0))
    assert features.shape == (4, 3)
    np.testing.assert_allclose(features.mean(axis=0), [2.0, 0.0, 2.0], atol=0.1)


def test_aligned_timeline_beats_misaligned_and_static(reversing_features, texture):
    aligned = timeline_alignment(reversing_features, FPS, TWO_ACTIONS)
    shifted = timeline_alignment(
        reversing_features, FPS, (TimelineEvent(0, 1, "a"), TimelineEvent(1, 4, "b"))
    )
    static = timeline_alignment(
        motion_features(np.repeat(texture()[None], 4 * FPS, axis=0)), FPS, TWO_ACTIONS
    )
    assert aligned.activity == 1.0
    # direction reverses at equal speed: |(-2,0,2) - (2,0,2)| / (2 * |(2,0,2)|) = 1/sqrt(2)
    assert aligned.boundary_contrast == pytest.approx(1 / np.sqrt(2), abs=0.03)
    assert aligned.score > shifted.score > static.score
    assert (static.score, static.activity) == (0.0, 0.0)


def test_motion_that_stops_at_the_boundary_has_full_contrast(shifting_clip):
    moving = shifting_clip(2 * FPS, 2, 0)
    still = np.repeat(moving[-1:], 2 * FPS, axis=0)
    result = timeline_alignment(motion_features(np.concatenate([moving, still])), FPS, TWO_ACTIONS)
    assert result.boundary_contrast == pytest.approx(1.0, abs=0.02)
    assert result.activity == 0.5  # the second action does not move


def test_events_past_the_end_of_the_video_count_as_inactive(reversing_features):
    events = (*TWO_ACTIONS, TimelineEvent(4, 6, "sit down"))
    result = timeline_alignment(reversing_features, FPS, events)
    assert result.window_motion[2] is None
    assert result.activity == pytest.approx(2 / 3)


def test_single_action_scores_activity_only(reversing_features):
    result = timeline_alignment(reversing_features, FPS, (TimelineEvent(0, 4, "walk"),))
    assert result.boundary_contrast is None and result.score == 1.0


def test_metric_needs_a_timeline(shifting_clip):
    metric = TimelineAlignmentFlowProxy()
    missing = metric(shifting_clip(4, 1, 0), SampleContext())
    assert missing.value is None and "no timeline" in missing.note
    value = metric(
        right_then_left(shifting_clip, 1, 1),
        SampleContext(events=(TimelineEvent(0, 1, "a"), TimelineEvent(1, 2, "b")), fps=FPS),
    )
    assert value.value > 0.8 and value.spec.is_proxy and value.spec.key is None
