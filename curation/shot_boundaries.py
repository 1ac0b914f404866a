"""What a shot detector finds in a video: hard cuts, gradual transitions, per backend.

The records every shot backend returns (curation.shot_detectors' PySceneDetect detector,
curation.shot_transnetv2's network) and the one helper they share. The network's module
imports these from here, not from curation.shot_detectors, which loads it on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Transition:
    """A gradual boundary (dissolve, fade): frames [start_frame, end_frame) blend two shots."""

    start_frame: int
    end_frame: int  # exclusive

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


@dataclass(frozen=True)
class BackendShots:
    """One backend's boundaries over one video.

    Attributes:
        cuts: hard cuts, each the first frame of the new shot.
        transitions: gradual transitions, sorted, not overlapping.
        candidates: the backend's intermediate proposals by name (e.g. PySceneDetect's own
            cuts before refinement), recorded for the report.
    """

    backend: str
    cuts: list[int]
    transitions: list[Transition]
    seconds: float
    candidates: dict[str, list[int]] = field(default_factory=dict)
    min_adjacent_similarity: float | None = None


@dataclass(frozen=True)
class ShotDetection:
    """The selected backend's boundaries and, by name, every backend that ran."""

    selected: str
    n_frames: int
    by_backend: dict[str, BackendShots]

    @property
    def cuts(self) -> list[int]:
        return self.by_backend[self.selected].cuts

    @property
    def transitions(self) -> list[Transition]:
        return self.by_backend[self.selected].transitions


def frame_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs [start, end) of consecutive True frames in `mask`."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
