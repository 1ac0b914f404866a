"""Shot detection over a video streamed in windows, and shots timed from the timestamps.

The scene stage decodes a video window by window (`VideoDecoder.windows`) so that memory
does not grow with the video's length. `WindowedCuts` feeds a whole-array cut detector
(`curation.scenes.detect_cuts`) chunk by chunk: each chunk is a core of `window` frames
with `context` frames of the neighbouring chunks on either side, and only the cuts inside
the core are kept. With a context longer than every look-around of the detector (its
minimum scene length, the flash look-ahead, the merge tolerance), a cut is decided on the
same frames as in a whole-video pass; a video that fits in one chunk is processed exactly
as a whole. About window + 2 x context frames are held, plus the window being pushed and
one chunk while it is run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from curation.scenes import CutDetection, SceneSegment


@dataclass(frozen=True)
class StreamedCuts:
    """Cut frame indices of a whole video (a cut at f: a new shot starts at frame f)."""

    pyscenedetect: list[int]
    similarity: list[int]
    final: list[int]
    min_adjacent_similarity: float | None  # lowest cosine of two consecutive frames


class WindowedCuts:
    """Run `detect(frames, features) -> CutDetection` over a stream of windows.

    Args:
        detect: the cut detector for consecutive frames (N, H, W, 3) and their
            L2-normalised features (N, D).
        window: frames whose cuts are decided per chunk.
        context: frames of the neighbouring chunks each chunk also sees.
    """

    def __init__(self, detect: Callable[[np.ndarray, np.ndarray], CutDetection], window: int, context: int) -> None:
        if window < 1 or context < 0:
            raise ValueError(f"window ({window}) must be >= 1 and context ({context}) >= 0")
        self.detect = detect
        self.window = window
        self.context = context
        # the pushed windows still needed, as they came (no copy until a chunk is run)
        self._held: list[tuple[int, np.ndarray, np.ndarray]] = []  # (first frame index, frames, features)
        self._end = 0  # index after the last pushed frame
        self._decided = 0  # cuts before this frame are final
        self._cuts: dict[str, list[int]] = {"pyscenedetect": [], "similarity": [], "final": []}
        self._min_similarity: float | None = None

    @property
    def held_frames(self) -> int:
        return sum(len(frames) for _, frames, _ in self._held)

    def push(self, frames: np.ndarray, features: np.ndarray) -> None:
        """The next consecutive frames of the video and their features."""
        if len(frames) != len(features):
            raise ValueError(f"{len(frames)} frames but {len(features)} feature rows")
        if len(frames):
            self._held.append((self._end, frames, features))
            self._end += len(frames)
        while self._end - self._decided >= self.window + self.context:
            self._run(self._decided + self.window)

    def finish(self) -> StreamedCuts:
        """Decide the rest of the video; returns every cut."""
        if self._end > self._decided:
            self._run(self._end)
        return StreamedCuts(**{k: sorted(v) for k, v in self._cuts.items()}, min_adjacent_similarity=self._min_similarity)

    def _slice(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        parts = [(start, f, x) for start, f, x in self._held if start < hi and start + len(f) > lo]
        frames = [f[max(0, lo - start) : hi - start] for start, f, _ in parts]
        features = [x[max(0, lo - start) : hi - start] for start, _, x in parts]
        if len(parts) == 1:
            return frames[0], features[0]
        return np.concatenate(frames), np.concatenate(features)

    def _run(self, core_end: int) -> None:
        lo = max(self._held[0][0], self._decided - self.context)
        hi = min(self._end, core_end + self.context)
        frames, features = self._slice(lo, hi)
        found = self.detect(frames, features)
        for name in self._cuts:
            self._cuts[name] += [lo + c for c in getattr(found, name) if self._decided <= lo + c < core_end]
        if len(found.adjacent_similarity):
            low = float(np.min(found.adjacent_similarity))
            self._min_similarity = low if self._min_similarity is None else min(self._min_similarity, low)
        self._decided = core_end
        keep_from = self._decided - self.context
        self._held = [(start, f, x) for start, f, x in self._held if start + len(f) > keep_from]


def timed_segments(cuts: list[int], times: np.ndarray, end_s: float, min_duration_s: float) -> list[SceneSegment]:
    """Split a video of len(times) frames at `cuts`; durations from the timestamps.

    A segment [a, b) spans times[a] to times[b] (to `end_s`, the end of the last frame, for
    the last segment); it is kept when it lasts at least `min_duration_s`.
    """
    n = len(times)
    if not n:
        return []
    edges = [0, *sorted(c for c in cuts if 0 < c < n), n]
    out = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        dur = (float(times[b]) if b < n else end_s) - float(times[a])
        kept = dur + 1e-9 >= min_duration_s
        out.append(SceneSegment(k, a, b, round(dur, 4), kept, None if kept else "below_min_duration"))
    return out
