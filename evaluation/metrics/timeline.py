"""Timeline alignment from optical flow and the sub-action descriptions (embedded; a proxy).

IPVG Track 2 scores "action-timeline alignment" without publishing how. This measure is
this project's own and is named ``timeline_alignment_flow_proxy``: it checks each
sub-action's window of the generated video against the motion its description states, with
optical flow only. It never sees what moves, only how the frame's content moves.

1. **Flow features.** Frames are converted to grey and resized to width 128 (height keeps
   the aspect ratio). Farnebäck flow (OpenS2V's parameters) between each consecutive pair
   gives ``f = (mean dx, mean dy, mean |flow|)`` in pixels per frame at that width (image
   axes: +x right, +y down), stamped at the pair's midpoint time ``(t + 0.5) / fps``.
2. **Windows.** Sub-action ``k`` takes the pairs whose time lies in ``[start_k, end_k)``.
   Its window motion ``m_k`` is their mean ``|flow|``; a window with no pair (the video is
   too short) has no motion and agrees with nothing (agreement 0, whatever it describes).
3. **What the description says** (:func:`expected_motion`, on the lower-cased words). The
   vocabulary is the one the platform writes — the embedded timeline backend's
   motion-derived descriptions (``curation.timelines.describe``: "walks to the left", "runs
   to the right", "jumps up and down", "walks toward the camera", "steps back from the
   camera", "stands still") — plus plain synonyms. Verbs are matched by base form after
   stripping -s/-es/-ed/-ing (and a few irregular forms: ran, went, sat, stood, …).

   ===============  =========================================================
   expectation      description contains (first row that matches wins)
   ===============  =========================================================
   ``still``        "still" after stand/sit/stay/remain/keep/hold/lie (an
                    intensifier such as "perfectly" may sit between),
                    "motionless", "stationary", "immobile", "not move",
                    "doesn't move", "without moving"
   a direction      "to/towards the left|right", "leftward(s)", "rightward(s)",
                    a translation verb + "left|right" ("walks left");
                    "upward(s)", "downward(s)", a translation or posture verb
                    + "up|down" ("climbs up", "sits down"); not when the text
                    says "up and down"; both senses on one axis ("left and
                    right") state no direction on it
   ``up and down``  "up and down"
   ``moving``       a translation verb (walk, run, jog, sprint, jump, hop,
                    leap, step, move, go, climb, crawl, swim, fly, drive,
                    ride, roll, slide, rise, fall, …), another motion verb
                    (turn, spin, dance, wave, shake, nod) or "toward / away
                    from / back from the camera"
   ``unknown``      anything else ("raises his right hand", "smiles",
                    "sits on a bench")
   ===============  =========================================================

   A direction's unit vector ``u`` in image axes: left (-1, 0), right (1, 0), up (0, -1),
   down (0, 1); a vertical and a horizontal direction together ("climbs up to the left")
   give their normalised sum.
   The full verb lists are :data:`TRANSLATION_VERBS`, :data:`OTHER_MOTION_VERBS`,
   :data:`POSTURE_VERBS` and :data:`STILL_VERBS`.
4. **Agreement per window** ``a_k`` in [0, 1], with ``active = m_k >= min_motion``
   (default 0.1 px/frame at width 128):

   * ``still``: 1 when not active, else 0;
   * direction: ``active * clip(<mean flow, u> / m_k, 0, 1)`` — 1 when the content moves
     the stated way, 0 when it moves the opposite or a perpendicular way (the ratio of the
     mean flow along ``u`` to the mean flow magnitude does not depend on how much of the
     frame moves);
   * ``up and down``: ``active * (mean over pairs of |mean dy|) / m_k`` — the share of the
     motion that is vertical, whatever its sign (a bob reverses within the window);
   * ``moving`` and ``unknown``: ``active`` (1 or 0), the activity rule.
5. **Boundary contrast**, only where a description does not say how the motion should look
   (a boundary with an ``unknown`` window on either side): ``|d_k+1 - d_k| / (|d_k| +
   |d_k+1|)`` of the windows' mean feature vectors ``d`` (0 when both are zero or a window
   has no pair). It lies in [0, 1]: 0 when the motion does not change at the boundary,
   about 0.7 when the direction reverses at equal speed, 1 when motion starts or stops.
   Between two described windows the agreements already say what should change.
6. **Score** = mean agreement, averaged with the mean boundary contrast when at least one
   boundary counts: ``(mean a_k + mean contrast) / 2``. With every description unknown it is
   ``(activity + mean contrast) / 2``, activity being the share of moving windows; with a
   one-action timeline it is that window's agreement.

Limits: the flow is the whole frame's, so a camera that pans with a walking subject shows
the background moving the other way; depth motion ("toward the camera") is checked only
for being motion; words outside the table fall back to the activity rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics.base import (
    MetricSpec,
    MetricValue,
    SampleContext,
    check_frames,
    not_computed,
)
from evaluation.metrics.motion import farneback_flow

ANALYSIS_WIDTH = 128
MIN_MOTION = 0.1

STILL, UP_AND_DOWN, MOVING, UNKNOWN = "still", "up and down", "moving", "unknown"

# Verbs by base form; inflections are reduced by _lemma.
TRANSLATION_VERBS = frozenset({
    "walk", "run", "jog", "sprint", "stroll", "wander", "march", "stride", "rush", "dash", "jump",
    "hop", "leap", "skip", "step", "move", "go", "climb", "crawl", "swim", "fly", "drive",
    "ride", "roll", "slide", "rise", "fall",
})
OTHER_MOTION_VERBS = frozenset({"turn", "spin", "twirl", "dance", "wave", "shake", "nod"})
POSTURE_VERBS = frozenset({"sit", "stand", "lie", "kneel", "crouch", "bend"})
STILL_VERBS = frozenset({"stand", "sit", "stay", "remain", "keep", "hold", "lie"})
_IRREGULAR = {
    "ran": "run", "went": "go", "gone": "go", "flew": "fly", "flies": "fly", "rode": "ride",
    "fell": "fall", "rose": "rise", "drove": "drive", "swam": "swim", "slid": "slide",
    "leapt": "leap", "spun": "spin", "sat": "sit", "stood": "stand", "lying": "lie",
    "lay": "lie", "kept": "keep", "held": "hold", "knelt": "kneel", "bent": "bend",
}
_KNOWN_VERBS = TRANSLATION_VERBS | OTHER_MOTION_VERBS | POSTURE_VERBS | STILL_VERBS
_MOTION_VERBS = TRANSLATION_VERBS | OTHER_MOTION_VERBS
_VERTICAL_VERBS = TRANSLATION_VERBS | POSTURE_VERBS
_INTENSIFIERS = frozenset({"completely", "perfectly", "very", "quite", "totally"})
_NEGATIONS = frozenset({"not", "doesn't", "don't", "didn't", "without", "never"})
_WORD = re.compile(r"[a-z']+")
_UP_AND_DOWN = re.compile(r"\bup\s+and\s+down\b|\bdown\s+and\s+up\b")
_TO_THE_SIDE = re.compile(r"\bto(?:wards?)?\s+the\s+(left|right)\b|\b(left|right)wards?\b")
_VERTICAL_WORD = re.compile(r"\b(up|down)wards?\b")
_DEPTH = re.compile(r"\b(?:toward|towards|away\s+from|back\s+from)\s+the\s+camera\b")
_SIGN = {"left": -1.0, "right": 1.0, "up": -1.0, "down": 1.0}


@dataclass(frozen=True)
class TimelineAlignment:
    """Parts of the timeline alignment score of one video.

    Attributes:
        score: the measure (module docstring, step 6), in [0, 1].
        agreement: mean per-window agreement.
        activity: share of windows whose mean ``|flow|`` reaches ``min_motion``.
        boundary_contrast: mean contrast over the boundaries that count, None when none does.
        window_motion: mean ``|flow|`` per sub-action (None: no frames in its window).
        window_expectation: what each description says (:func:`expected_motion`).
        window_agreement: agreement per sub-action.
    """

    score: float
    agreement: float
    activity: float
    boundary_contrast: float | None
    window_motion: tuple[float | None, ...]
    window_expectation: tuple[str, ...]
    window_agreement: tuple[float, ...]


def expected_motion(description: str) -> str:
    """What a sub-action description says about the motion (module docstring, step 3).

    Args:
        description: the sub-action's text.

    Returns:
        ``still``, ``up and down``, ``moving``, ``unknown``, or a direction: ``left``,
        ``right``, ``up``, ``down``, or a vertical and a horizontal one (``up left``).
    """
    text = description.lower()
    words = _WORD.findall(text)
    lemmas = [_lemma(w) for w in words]
    if _says_still(words, lemmas):
        return STILL
    up_and_down = bool(_UP_AND_DOWN.search(text))
    vertical = set()
    if not up_and_down:
        vertical = {w for m in _VERTICAL_WORD.finditer(text) for w in m.groups()}
    horizontal = {w for m in _TO_THE_SIDE.finditer(text) for w in m.groups() if w}
    for lemma, following in zip(lemmas, words[1:], strict=False):
        if following in ("left", "right") and lemma in TRANSLATION_VERBS:
            horizontal.add(following)
        elif following in ("up", "down") and not up_and_down and lemma in _VERTICAL_VERBS:
            vertical.add(following)
    # both senses on one axis ("looks left and right") state no direction on it
    directions = [axis.pop() for axis in (vertical, horizontal) if len(axis) == 1]
    if directions:
        return " ".join(directions)
    if up_and_down:
        return UP_AND_DOWN
    if any(lemma in _MOTION_VERBS for lemma in lemmas) or _DEPTH.search(text):
        return MOVING
    return UNKNOWN


def _lemma(word: str) -> str | None:
    """Base form of a verb this module knows, else None ("walks" -> "walk", "ran" -> "run")."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix in ("ing", "ed", "es", "s", ""):
        if not word.endswith(suffix):
            continue
        stem = word[: len(word) - len(suffix)]
        doubled = stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else None
        for candidate in (stem, stem + "e", doubled):
            if candidate in _KNOWN_VERBS:
                return candidate
    return None


def _says_still(words: Sequence[str], lemmas: Sequence[str | None]) -> bool:
    """"stands still", "sits perfectly still", "motionless", "does not move", "without moving"."""
    if {"motionless", "stationary", "immobile"} & set(words):
        return True
    for i, word in enumerate(words):
        if word == "still":
            before = [j for j in (i - 1, i - 2) if j >= 0]
            if before and lemmas[before[0]] in STILL_VERBS:
                return True
            if len(before) == 2 and words[i - 1] in _INTENSIFIERS and lemmas[i - 2] in STILL_VERBS:
                return True
        if lemmas[i] == "move" and i > 0 and words[i - 1] in _NEGATIONS:
            return True
    return False


def direction_vector(expectation: str) -> np.ndarray | None:
    """Unit (dx, dy) of a direction expectation in image axes; None for the other kinds."""
    words = expectation.split()
    if not words or any(w not in _SIGN for w in words):
        return None
    u = np.zeros(2)
    for word in words:
        u[0 if word in ("left", "right") else 1] = _SIGN[word]
    return u / np.linalg.norm(u)


def motion_features(frames: np.ndarray, width: int = ANALYSIS_WIDTH) -> np.ndarray:
    """Per-pair flow features at a fixed analysis width.

    Args:
        frames: uint8 (T, H, W, 3) RGB, T >= 2.
        width: analysis width in pixels.

    Returns:
        float64 (T - 1, 3): mean dx, mean dy, mean magnitude for each consecutive pair.
    """
    import cv2

    frames = check_frames(frames, minimum=2)
    height = max(1, round(frames.shape[1] * width / frames.shape[2]))
    grays = [
        cv2.resize(
            cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA
        )
        for f in frames
    ]
    features = []
    for a, b in zip(grays[:-1], grays[1:], strict=True):
        flow = farneback_flow(a, b)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        features.append((flow[..., 0].mean(), flow[..., 1].mean(), magnitude.mean()))
    return np.asarray(features, dtype=np.float64)


def window_agreement(window: np.ndarray, expectation: str, min_motion: float = MIN_MOTION) -> float:
    """Agreement of one window's flow with its description (module docstring, step 4).

    Args:
        window: (P, 3) features of the pairs inside the window; P may be 0.
        expectation: output of :func:`expected_motion`.
        min_motion: mean flow magnitude that counts as motion.

    Returns:
        The agreement in [0, 1].
    """
    if len(window) == 0:
        return 0.0
    motion = float(window[:, 2].mean())
    active = motion >= min_motion
    if expectation == STILL:
        return 0.0 if active else 1.0
    if not active:
        return 0.0
    u = direction_vector(expectation)
    if u is not None:
        along = float(window[:, :2].mean(axis=0) @ u)
        return float(np.clip(along / motion, 0.0, 1.0))
    if expectation == UP_AND_DOWN:
        return float(np.clip(np.abs(window[:, 1]).mean() / motion, 0.0, 1.0))
    return 1.0


def timeline_alignment(
    features: np.ndarray,
    fps: float,
    events: Sequence[TimelineEvent],
    min_motion: float = MIN_MOTION,
) -> TimelineAlignment:
    """Score how the motion follows a timeline (see module docstring).

    Args:
        features: (P, 3) output of :func:`motion_features`.
        fps: frame rate of the video.
        events: the sub-actions, in seconds, with their descriptions.
        min_motion: mean flow magnitude a window needs to count as moving.

    Returns:
        A :class:`TimelineAlignment`.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not events:
        raise ValueError("timeline has no events")
    features = np.asarray(features, dtype=np.float64).reshape(-1, 3)
    times = (np.arange(len(features)) + 0.5) / fps
    windows = [features[(times >= e.start) & (times < e.end)] for e in events]
    expectations = tuple(expected_motion(e.description) for e in events)
    agreements = tuple(
        window_agreement(w, x, min_motion) for w, x in zip(windows, expectations, strict=True)
    )
    motion = tuple(float(w[:, 2].mean()) if len(w) else None for w in windows)
    activity = sum(m is not None and m >= min_motion for m in motion) / len(events)
    agreement = float(np.mean(agreements))
    descriptors = [w.mean(axis=0) if len(w) else None for w in windows]
    contrasts = [
        _contrast(descriptors[k], descriptors[k + 1])
        for k in range(len(events) - 1)
        if UNKNOWN in (expectations[k], expectations[k + 1])
    ]
    contrast = float(np.mean(contrasts)) if contrasts else None
    score = agreement if contrast is None else (agreement + contrast) / 2
    return TimelineAlignment(
        score, agreement, activity, contrast, motion, expectations, agreements
    )


def _contrast(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(b - a) / scale) if scale > 0 else 0.0


class TimelineAlignmentFlowProxy:
    """Embedded timeline-alignment measure from optical flow (see module docstring)."""

    spec = MetricSpec(
        name="timeline_alignment_flow_proxy",
        key=None,
        backend="embedded",
        definition="per-sub-action agreement of the optical flow with the motion the "
        "description states (still, moving, left/right/up/down), activity where it states "
        "none, motion change at undescribed boundaries (this project's measure; IPVG "
        "publishes none)",
        is_proxy=True,
    )

    def __init__(self, min_motion: float = MIN_MOTION, width: int = ANALYSIS_WIDTH) -> None:
        self.min_motion = min_motion
        self.width = width

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        if not context.events:
            return not_computed(self.spec, "sample has no timeline")
        result = timeline_alignment(
            motion_features(frames, self.width), context.fps, context.events, self.min_motion
        )
        contrast = "n/a" if result.boundary_contrast is None else f"{result.boundary_contrast:.3f}"
        windows = ", ".join(
            f"{x}={a:.2f}"
            for x, a in zip(result.window_expectation, result.window_agreement, strict=True)
        )
        return MetricValue(
            self.spec,
            result.score,
            f"agreement={result.agreement:.3f} boundary_contrast={contrast} windows: {windows}",
        )
