import numpy as np
import pytest

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import SampleContext
from evaluation.metrics.motion import (
    AMTInterpolator,
    MotionAmplitude,
    MotionSmoothnessFlowWarpProxy,
    MotionSmoothnessVBench,
    flow_warp_interpolate,
    interpolation_smoothness,
    motion_amplitude,
)
from evaluation.metrics.qalign import (
    MotionSmoothnessQAlign,
    QAlignScorer,
    artifact_frames,
    qalign_smoothness,
    sliding_windows,
)
from evaluation.video import read_frames


@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        (0, 0, 0.0),
        (1, 0, 0.5),  # mean over the x and y components: (1 + 0) / 2
        (2, 0, 1.0),
        (0, 2, 1.0),
        (-3, 0, 1.5),  # absolute value of the signed mean
        (2, -2, 0.0),  # opposite components cancel in the signed mean
    ],
)
def test_motion_amplitude_of_known_shifts(dx, dy, expected, shifting_clip):
    assert motion_amplitude(shifting_clip(8, dx, dy)) == pytest.approx(expected, abs=0.05)


def opens2v_motion_amplitude(frames: np.ndarray, conversion: int) -> float:
    """OpenS2V's get_motion_amplitude.py written out: grey with ``conversion``, Farnebäck
    (0.5, 3, 15, 3, 5, 1.2, 0) per consecutive pair, flow maps INTER_AREA-resized to width
    16, averaged over pairs, then |mean| over both components."""
    import cv2

    height, width = frames.shape[1:3]
    size = (16, int(height * (16 / width)))
    grays = [cv2.cvtColor(f, conversion) for f in frames]
    maps = [
        cv2.resize(cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0), size,
                   interpolation=cv2.INTER_AREA)
        for a, b in zip(grays[:-1], grays[1:], strict=True)
    ]
    return float(abs(np.mean(np.mean(np.stack(maps), axis=0))))


def test_motion_amplitude_uses_bgr2gray_on_rgb_like_opens2v(texture):
    """Red texture moving 2 px/frame over a still blue texture: BGR2GRAY on RGB frames gives
    red the blue weight (0.114) and blue the red one (0.299), so the grey image is mostly
    the still texture; RGB2GRAY would make it mostly the moving one."""
    import cv2

    red, blue = texture(seed=1)[..., 0], texture(seed=2)[..., 0]
    clip = np.zeros((8, *red.shape, 3), np.uint8)
    for t in range(len(clip)):
        clip[t, ..., 0] = np.roll(red, 2 * t, axis=1)
        clip[t, ..., 2] = blue
    as_opens2v = opens2v_motion_amplitude(clip, cv2.COLOR_BGR2GRAY)
    as_luma = opens2v_motion_amplitude(clip, cv2.COLOR_RGB2GRAY)
    assert as_luma - as_opens2v > 0.3  # the conversion decides the value on this clip
    assert motion_amplitude(clip) == pytest.approx(as_opens2v, abs=1e-6)


def test_motion_amplitude_metric_reports_its_backend(shifting_clip):
    value = MotionAmplitude()(shifting_clip(6, 2, 0), SampleContext())
    assert value.spec.backend == "embedded" and not value.spec.is_proxy
    assert value.value == pytest.approx(1.0, abs=0.05)


def test_motion_amplitude_needs_two_frames(shifting_clip):
    with pytest.raises(ValueError, match="at least 2 frames"):
        motion_amplitude(shifting_clip(1, 1, 0))


def test_motion_amplitude_from_an_encoded_video(h264_video):
    # 2 px/frame to the right, through H.264 compression
    assert motion_amplitude(read_frames(h264_video)) == pytest.approx(1.0, abs=0.1)


def test_flow_warp_interpolation_predicts_the_middle_of_a_shift(shifting_clip):
    clip = shifting_clip(3, 2, 0)
    predicted = flow_warp_interpolate(clip[0], clip[2])
    error = np.abs(predicted.astype(int) - clip[1].astype(int))[:, 8:-8].mean()
    assert error < 1.5


def test_flowwarp_smoothness_separates_smooth_from_jittery(shifting_clip, texture):
    metric = MotionSmoothnessFlowWarpProxy()
    smooth = shifting_clip(12, 2, 0)
    jitter = smooth.copy()
    jitter[1::2] = np.roll(jitter[1::2], 5, axis=1)  # odd frames jump 5 px off the path
    static = np.repeat(texture()[None], 5, axis=0)
    assert metric(static, SampleContext()).value == pytest.approx(1.0, abs=1e-4)
    assert metric(smooth, SampleContext()).value > 0.99
    assert metric(jitter, SampleContext()).value < 0.95
    assert metric.spec.is_proxy and metric.spec.name == "motion_smoothness_flowwarp_proxy"


def test_interpolation_smoothness_scores_odd_frames_with_both_neighbours():
    clip = np.zeros((6, 4, 4, 3), np.uint8)
    calls = []

    def interpolate(prev, nxt):
        calls.append(1)
        return np.full_like(prev, 51)  # error 51 on every pixel

    assert interpolation_smoothness(clip, interpolate) == pytest.approx((255 - 51) / 255)
    assert len(calls) == 2  # frames 1 and 3; frame 5 has no right neighbour


def test_vbench_smoothness_takes_any_interpolator(shifting_clip):
    metric = MotionSmoothnessVBench(flow_warp_interpolate)
    assert metric(shifting_clip(5, 1, 0), SampleContext()).value > 0.99
    assert metric.spec.backend == "pretrained"


def test_amt_backend_reports_missing_vbench():
    with pytest.raises(MetricUnavailableError, match="vbench"):
        AMTInterpolator("AMT-S.yaml", "amt-s.pth")


@pytest.mark.parametrize(
    ("frames", "window", "expected"),
    [
        (5, 3, [[0, 0, 0], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 3, 4]]),
        (2, 3, [[0, 0, 0], [0, 1, 1]]),
        (4, 4, [[0, 0, 0, 0], [0, 1, 2, 3], [1, 1, 2, 3], [2, 2, 2, 3]]),
    ],
)
def test_qalign_windows_follow_opens2v(frames, window, expected):
    assert sliding_windows(frames, window) == expected


def test_qalign_artifacts_mark_both_sides_of_a_jump():
    scores = [0.80, 0.81, 0.90, 0.90, 0.90, 0.86]
    assert artifact_frames(scores).tolist() == [1, 2, 4, 5]
    assert qalign_smoothness(scores) == pytest.approx(1 - 4 / 6)
    assert qalign_smoothness([0.5] * 10) == 1.0


def test_qalign_metric_with_a_window_scorer(shifting_clip):
    seen = []

    def scorer(windows):
        seen.append(len(windows))
        return np.array([0.7, 0.7, 0.75, 0.75])

    value = MotionSmoothnessQAlign(scorer)(shifting_clip(4, 1, 0), SampleContext())
    assert seen == [4]
    assert value.value == pytest.approx(0.5)  # frames 1 and 2 flank the 0.05 jump
    assert value.spec.name == "motion_smoothness" and not value.spec.is_proxy


def test_qalign_scorer_reports_missing_package():
    with pytest.raises(MetricUnavailableError, match="q_align"):
        QAlignScorer("q-future/one-align")
