"""CLIP-T: CLIP text-frame similarity, over the whole video and per timeline sub-action.

The ReactID paper reports CLIP-T for temporal alignment (Table 4, with VideoScore's TVA and
TC) without naming the CLIP checkpoint or the frames; this module fixes them:

* ``clip_t_global``: mean over up to ``num_frames`` uniformly sampled frames of
  ``cos(CLIP image embedding, CLIP text embedding of the prompt)`` (the global prompt for
  timeline entries).
* ``clip_t_subaction``: for every sub-action of the timeline, the same mean over the frames of
  its window against its own description; the score is the mean over sub-actions. A window is
  frames ``[floor(start * fps), max(first + 1, min(ceil(end * fps), T)))`` — the convention of
  the annotation pipeline's candidate scoring (:func:`curation.pretrained.timeline.alignment_scores`).
  A sub-action that starts after the video ends gives no number for the video (the reason says
  which).

Embeddings come from :class:`curation.pretrained.timeline.ClipAlignmentScorer` (transformers
``CLIPModel``), the project's one CLIP text-image loader. Values are raw cosines (the paper's
CLIP-T column: about 0.24).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from evaluation.benchmarks import TimelineEvent
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames, not_computed

NUM_FRAMES = 32


class TextFrameScorer(Protocol):
    """``score(frames, text)``: mean text-frame similarity over (sampled) frames."""

    name: str

    def score(self, frames: np.ndarray, text: str) -> float: ...


def subaction_windows(total: int, fps: float, events: Sequence[TimelineEvent]) -> list[slice] | str:
    """Frame slice of each sub-action, or the reason there is none.

    Args:
        total: frames in the video.
        fps: its frame rate.
        events: the timeline, in seconds.

    Returns:
        One slice per event, or a message naming the first event that starts after the video.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    windows = []
    for index, event in enumerate(events):
        first = int(math.floor(event.start * fps))
        if first >= total:
            return (f"sub-action {index} starts at {event.start:g}s, after the video's "
                    f"{total / fps:g}s ({total} frames at {fps:g} fps)")
        last = max(first + 1, min(int(math.ceil(event.end * fps)), total))
        windows.append(slice(first, last))
    return windows


class ClipT:
    """CLIP-T over the whole video (``mode="global"``) or per sub-action (``mode="subaction"``).

    Args:
        scorer: a :class:`ClipAlignmentScorer` (or any ``score(frames, text)``).
        mode: ``global`` or ``subaction``.
    """

    def __init__(self, scorer: TextFrameScorer, mode: str = "global") -> None:
        if mode not in ("global", "subaction"):
            raise ValueError(f"mode must be 'global' or 'subaction', got {mode!r}")
        self.scorer = scorer
        self.mode = mode
        model = getattr(scorer, "name", type(scorer).__name__)
        frames = getattr(scorer, "num_frames", "all")
        if mode == "global":
            self.spec = MetricSpec(
                "clip_t_global", None, "pretrained",
                f"CLIP-T (ReactID Table 4): mean cosine of {model} frame and prompt embeddings over "
                f"{frames} uniformly sampled frames (checkpoint and frames: this project's choice)",
                is_proxy=False,
            )
        else:
            self.spec = MetricSpec(
                "clip_t_subaction", None, "pretrained",
                f"CLIP-T per timeline sub-action: mean cosine of {model} embeddings of the frames in "
                f"each sub-action's window ({frames} sampled) with its description, mean over "
                "sub-actions (this project's windowing; IPVG publishes none)",
                is_proxy=False,
            )

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        frames = check_frames(frames)
        if self.mode == "global":
            if not context.prompt.strip():
                return not_computed(self.spec, "sample has no prompt")
            return MetricValue(self.spec, float(self.scorer.score(frames, context.prompt)), "whole video vs prompt")
        if not context.events:
            return not_computed(self.spec, "sample has no timeline")
        windows = subaction_windows(len(frames), context.fps, context.events)
        if isinstance(windows, str):
            return not_computed(self.spec, windows)
        scores = [float(self.scorer.score(frames[w], e.description)) for w, e in zip(windows, context.events, strict=True)]
        return MetricValue(
            self.spec, float(np.mean(scores)),
            "per sub-action: " + ", ".join(f"{s:.4f}" for s in scores),
        )


def load_clip(model_path: str | Path = "openai/clip-vit-large-patch14", device: str = "cpu", num_frames: int = NUM_FRAMES):
    """The project's CLIP text-image scorer (``curation.pretrained.timeline.ClipAlignmentScorer``)."""
    from curation.pretrained.timeline import ClipAlignmentScorer

    return ClipAlignmentScorer(model_path, device, num_frames)
