"""Shot detection streamed in windows gives the cuts of a whole-video pass; shots timed from timestamps."""

import numpy as np
import pytest

from curation.features import ColourTextureEmbedder
from curation.scene_windows import WindowedCuts, timed_segments
from curation.scenes import detect_cuts

CUTS = [20, 31, 32 + 9, 64, 97, 150, 151 + 12, 230]  # on and around window edges (32, 64, 96, ...)
COLOURS = [(200, 30, 30), (30, 30, 200), (30, 180, 40), (220, 200, 40), (120, 40, 160), (20, 20, 20), (240, 240, 240),
           (90, 160, 200), (160, 90, 30)]


def _video(n=260, seed=0):
    rng = np.random.default_rng(seed)
    edges = [0, *CUTS, n]
    frames = np.zeros((n, 36, 48, 3), np.uint8)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        frames[a:b] = COLOURS[k]
    for i in range(n):  # a moving square and a little noise: adjacent frames differ inside a shot
        x = abs(i % 60 - 30)  # back and forth, one pixel a frame
        frames[i, 10:20, x : x + 10] = 128
        frames[i] = np.clip(frames[i].astype(int) + rng.integers(-3, 4, frames[i].shape), 0, 255)
    return frames


def _detect(frames, features):
    return detect_cuts(frames, features, 20.0, detector="adaptive", adaptive_threshold=3.0, content_threshold=27,
                       min_scene_len=6, similarity_threshold=0.75, tolerance=2)


@pytest.mark.parametrize(("window", "pushed"), [(32, 32), (32, 7), (48, 100), (1000, 50)])
def test_windows_find_the_cuts_of_a_whole_pass(window, pushed):
    frames = _video()
    features = ColourTextureEmbedder(size=32).embed(frames)
    whole = _detect(frames, features)
    assert whole.final == CUTS  # the reference itself is right
    streamed = WindowedCuts(_detect, window=window, context=16)
    held = []
    for start in range(0, len(frames), pushed):
        streamed.push(frames[start : start + pushed], features[start : start + pushed])
        held.append(streamed.held_frames)
    cuts = streamed.finish()
    assert (cuts.final, cuts.pyscenedetect, cuts.similarity) == (whole.final, whole.pyscenedetect, whole.similarity)
    assert cuts.min_adjacent_similarity == pytest.approx(float(whole.adjacent_similarity.min()))
    assert max(held) <= window + 2 * 16 + 2 * pushed  # bounded, whatever the video's length


def test_windows_need_consistent_inputs():
    with pytest.raises(ValueError, match="feature rows"):
        WindowedCuts(_detect, 8, 4).push(np.zeros((3, 4, 4, 3), np.uint8), np.zeros((2, 8)))
    assert WindowedCuts(_detect, 8, 4).finish().final == []


def test_timed_segments_use_timestamps():
    times = np.array([0.0, 0.04, 0.08, 0.12, 0.2, 0.28, 0.36])  # 25 fps, then 12.5 fps
    segments = timed_segments([3], times, end_s=0.44, min_duration_s=0.2)
    assert [(s.start_frame, s.end_frame, s.duration_s, s.kept) for s in segments] == [
        (0, 3, 0.12, False), (3, 7, 0.32, True)]
    assert segments[0].drop_reason == "below_min_duration"
    assert timed_segments([], times[:0], end_s=0.0, min_duration_s=0.2) == []  # nothing decoded: no shot
