import numpy as np
import pytest

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics.base import SampleContext
from evaluation.metrics.timeline import (
    TimelineAlignmentFlowProxy,
    expected_motion,
    motion_features,
    timeline_alignment,
    window_agreement,
)

FPS = 16
SPEED = 2  # px per frame, at the 128-px analysis width (the texture is 128 px wide)


def moving_clip(texture, segments) -> np.ndarray:
    """The texture moved (dx, dy) px per frame for ``seconds`` per segment, continuously.

    Pair t (frames t, t + 1) lies at (t + 0.5) / FPS, inside the segment that made it.
    """
    base = texture()
    offsets = [np.zeros(2, int)]
    for dx, dy, seconds in segments:
        for _ in range(int(seconds * FPS)):
            offsets.append(offsets[-1] + (dx, dy))
    return np.stack([np.roll(base, (int(oy), int(ox)), axis=(0, 1)) for ox, oy in offsets])


def events(*descriptions, seconds=2.0):
    return tuple(TimelineEvent(k * seconds, (k + 1) * seconds, d)
                 for k, d in enumerate(descriptions))


LEFT_STILL_RIGHT = events("walks to the left", "stands still", "walks to the right")


@pytest.fixture(scope="module")
def left_still_right(texture) -> np.ndarray:
    return motion_features(moving_clip(texture, [(-SPEED, 0, 2), (0, 0, 2), (SPEED, 0, 2)]))


@pytest.fixture(scope="module")
def right_still_left(texture) -> np.ndarray:
    return motion_features(moving_clip(texture, [(SPEED, 0, 2), (0, 0, 2), (-SPEED, 0, 2)]))


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        # what curation.timelines.describe writes
        ("walks to the left", "left"),
        ("runs to the right", "right"),
        ("jumps up and down", "up and down"),
        ("walks toward the camera", "moving"),
        ("steps back from the camera", "moving"),
        ("stands still", "still"),
        # synonyms
        ("The dog is sitting perfectly still.", "still"),
        ("he does not move", "still"),
        ("walk right", "right"),
        ("running leftwards", "left"),
        ("moves upward", "up"),
        ("sits down", "down"),
        ("climbs up to the left", "up left"),
        ("turns left", "moving"),  # a rotation, not a translation
        ("looks left and right", "unknown"),
        ("raises his right hand", "unknown"),  # "right" is not a direction here
        ("a good golden retriever", "unknown"),  # "go" is not a prefix match
        ("sits on a bench", "unknown"),
    ],
)
def test_descriptions_state_the_motion(description, expected):
    assert expected_motion(description) == expected


def test_features_measure_the_shift(shifting_clip):
    features = motion_features(shifting_clip(5, 2, 0))
    assert features.shape == (4, 3)
    np.testing.assert_allclose(features.mean(axis=0), [2.0, 0.0, 2.0], atol=0.1)


def test_left_still_right_agrees_with_its_description_window_by_window(left_still_right):
    result = timeline_alignment(left_still_right, FPS, LEFT_STILL_RIGHT)
    assert result.window_expectation == ("left", "still", "right")
    # a pure shift: the mean flow along u equals the mean magnitude; the still window is
    # below min_motion and agrees with "stands still" instead of being penalised
    np.testing.assert_allclose(result.window_agreement, [1.0, 1.0, 1.0], atol=0.03)
    assert result.window_motion[1] < 0.1
    assert result.boundary_contrast is None  # every window is described
    assert result.activity == pytest.approx(2 / 3)
    assert result.score == pytest.approx(1.0, abs=0.03)


def test_motion_the_wrong_way_scores_lower(left_still_right, right_still_left, texture):
    right = timeline_alignment(left_still_right, FPS, LEFT_STILL_RIGHT)
    wrong = timeline_alignment(right_still_left, FPS, LEFT_STILL_RIGHT)
    # opposite directions agree 0, the still window still agrees: 1/3
    np.testing.assert_allclose(wrong.window_agreement, [0.0, 1.0, 0.0], atol=0.03)
    assert wrong.score == pytest.approx(1 / 3, abs=0.02)
    assert right.score > wrong.score + 0.6
    # moving all the time: the still window disagrees
    always = motion_features(moving_clip(texture, [(-SPEED, 0, 2), (-SPEED, 0, 2), (SPEED, 0, 2)]))
    restless = timeline_alignment(always, FPS, LEFT_STILL_RIGHT)
    np.testing.assert_allclose(restless.window_agreement, [1.0, 0.0, 1.0], atol=0.03)
    assert right.score > restless.score > wrong.score


def test_vertical_directions_and_up_and_down(texture):
    up = motion_features(moving_clip(texture, [(0, -SPEED, 1)]))
    down = motion_features(moving_clip(texture, [(0, SPEED, 1)]))
    sideways = motion_features(moving_clip(texture, [(SPEED, 0, 1)]))
    bob = motion_features(moving_clip(texture, [(0, -SPEED, 0.25), (0, SPEED, 0.25)] * 2))
    rises = events("moves upward", seconds=1.0)
    assert timeline_alignment(up, FPS, rises).score == pytest.approx(1.0, abs=0.03)
    assert timeline_alignment(down, FPS, rises).score == pytest.approx(0.0, abs=0.03)
    assert timeline_alignment(sideways, FPS, rises).score == pytest.approx(0.0, abs=0.05)
    jumps = events("jumps up and down", seconds=1.0)
    assert timeline_alignment(bob, FPS, jumps).score == pytest.approx(1.0, abs=0.05)
    assert timeline_alignment(sideways, FPS, jumps).score == pytest.approx(0.0, abs=0.05)


def test_window_agreement_by_hand():
    # (mean dx, mean dy, mean |flow|) per pair
    diagonal = np.array([[1.0, -1.0, np.sqrt(2)]] * 3)
    assert window_agreement(diagonal, "right") == pytest.approx(1 / np.sqrt(2))
    assert window_agreement(diagonal, "up right") == pytest.approx(1.0)
    assert window_agreement(diagonal, "left") == 0.0
    # a wobble: the mean flow is small against its magnitude
    wobble = np.array([[0.3, 0.0, 1.0], [-0.1, 0.0, 1.0]])
    assert window_agreement(wobble, "right") == pytest.approx(0.1)
    assert window_agreement(wobble, "moving") == 1.0
    slow = np.array([[0.05, 0.0, 0.05]])
    assert window_agreement(slow, "right") == 0.0  # below min_motion
    assert window_agreement(slow, "still") == 1.0
    assert window_agreement(np.zeros((0, 3)), "still") == 0.0  # no frames: nothing agrees


def test_unknown_descriptions_fall_back_to_activity_and_boundary_contrast(texture):
    reversing = motion_features(moving_clip(texture, [(SPEED, 0, 2), (-SPEED, 0, 2)]))
    aligned = timeline_alignment(reversing, FPS, events("a", "b"))
    shifted = timeline_alignment(
        reversing, FPS, (TimelineEvent(0, 1, "a"), TimelineEvent(1, 4, "b"))
    )
    static = timeline_alignment(
        motion_features(np.repeat(texture()[None], 4 * FPS, axis=0)), FPS, events("a", "b")
    )
    assert aligned.activity == 1.0 and aligned.agreement == 1.0
    # direction reverses at equal speed: |(-2,0,2) - (2,0,2)| / (2 * |(2,0,2)|) = 1/sqrt(2)
    assert aligned.boundary_contrast == pytest.approx(1 / np.sqrt(2), abs=0.03)
    assert aligned.score == pytest.approx((1 + 1 / np.sqrt(2)) / 2, abs=0.02)
    assert aligned.score > shifted.score > static.score
    assert (static.score, static.activity) == (0.0, 0.0)


def test_only_boundaries_next_to_an_unknown_window_count(texture):
    moving = motion_features(moving_clip(texture, [(SPEED, 0, 2), (0, 0, 2)]))
    described = timeline_alignment(moving, FPS, events("walks to the right", "waves at the crowd"))
    # "waves" states motion: the still second window disagrees, and no boundary counts
    assert described.window_expectation == ("right", "moving")
    assert described.boundary_contrast is None
    assert described.score == pytest.approx((1.0 + 0.0) / 2, abs=0.02)
    # "smiles" states nothing: activity rule (0 here), and the stop at the boundary counts
    unknown = timeline_alignment(moving, FPS, events("walks to the right", "smiles"))
    assert unknown.window_expectation == ("right", "unknown")
    assert unknown.boundary_contrast == pytest.approx(1.0, abs=0.02)
    assert unknown.score == pytest.approx(((1.0 + 0.0) / 2 + 1.0) / 2, abs=0.02)


def test_events_past_the_end_of_the_video_agree_with_nothing(left_still_right):
    beyond = (*LEFT_STILL_RIGHT, TimelineEvent(6, 8, "stands still"))
    result = timeline_alignment(left_still_right, FPS, beyond)
    assert result.window_motion[3] is None and result.window_agreement[3] == 0.0
    assert result.score == pytest.approx(3 / 4, abs=0.03)


def test_single_action_scores_its_agreement(left_still_right):
    result = timeline_alignment(left_still_right[: 2 * FPS], FPS, events("walks to the left"))
    assert result.boundary_contrast is None and result.score == pytest.approx(1.0, abs=0.03)
    walk = timeline_alignment(left_still_right[: 2 * FPS], FPS, events("walk"))
    assert walk.window_expectation == ("moving",) and walk.score == 1.0


def test_metric_needs_a_timeline_and_reports_its_windows(shifting_clip, texture):
    metric = TimelineAlignmentFlowProxy()
    missing = metric(shifting_clip(4, 1, 0), SampleContext())
    assert missing.value is None and "no timeline" in missing.note
    clip = moving_clip(texture, [(-SPEED, 0, 1), (0, 0, 1)])
    timeline = events("walks to the left", "stands still", seconds=1.0)
    value = metric(clip, SampleContext(events=timeline, fps=FPS))
    assert value.value > 0.95 and value.spec.is_proxy and value.spec.key is None
    assert "left=1.00" in value.note and "still=1.00" in value.note
    assert "proxy" in value.spec.name
