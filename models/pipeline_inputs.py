"""Pipeline inputs: timeline/prompt resolution, subject order and long-video segments."""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.timeline import Timeline, parse_timeline_string

# A prompt without a timeline becomes a timeline without actions; its duration only
# matters for segment windows, which it does not have.
_PROMPT_ONLY_DURATION = 1.0


def resolve_timeline(timeline: Timeline | str | None, prompt: str | None) -> Timeline:
    """A ``Timeline`` from a timeline object, the challenge string, or a prompt alone.

    Raises:
        ValueError: neither is given, or the prompt contradicts the timeline's.
    """
    if isinstance(timeline, str):
        return parse_timeline_string(timeline, global_prompt=prompt or "")
    if timeline is None:
        if prompt is None:
            raise ValueError("give a timeline, a prompt, or both")
        return Timeline(prompt, (), duration=_PROMPT_ONLY_DURATION)
    if prompt is not None and prompt != timeline.global_prompt:
        raise ValueError("prompt differs from the timeline's global prompt; set one of them")
    return timeline


def resolve_subjects(
    timeline: Timeline, num_references: int, subjects: Sequence[str] | None
) -> list[str] | None:
    """Subject label of each reference image, in reference order.

    Defaults to the timeline's subjects in order of first appearance; a single reference
    with a prompt-only timeline gets the default subject label. None when there are no references.
    """
    if num_references == 0:
        if subjects:
            raise ValueError(f"subjects {list(subjects)} given without reference images")
        return None
    names = list(subjects) if subjects is not None else list(timeline.subjects)
    if not names and num_references == 1:
        return ["reference_0"]
    if len(names) != num_references:
        raise ValueError(
            f"{num_references} reference images but subjects {names}; "
            "pass one subject label per reference"
        )
    return names


def segment_windows(
    num_segments: int, num_frames: int, fps: float, temporal_factor: int, overlap: int
) -> list[tuple[float, float]]:
    """Time window ``[start, end)`` in seconds of each auto-regressive segment.

    Each segment lasts ``num_frames / fps``; consecutive segments share ``overlap`` latent
    frames, so a segment starts ``(latent_frames - overlap) * temporal_factor / fps``
    after the previous one.
    """
    num_latent = (num_frames - 1) // temporal_factor + 1
    if num_segments < 1 or not 0 <= overlap < num_latent:
        raise ValueError(
            f"need num_segments >= 1 and 0 <= segment_overlap < {num_latent} latent frames; "
            f"got {num_segments}, {overlap}"
        )
    length, step = num_frames / fps, (num_latent - overlap) * temporal_factor / fps
    return [(index * step, index * step + length) for index in range(num_segments)]


def segments_for_duration(
    duration: float, num_frames: int, fps: float, temporal_factor: int, overlap: int
) -> int:
    """Segments needed to cover ``duration`` seconds with overlapping segments."""
    num_latent = (num_frames - 1) // temporal_factor + 1
    step = (num_latent - overlap) * temporal_factor / fps
    return max(1, 1 + math.ceil(max(0.0, duration - num_frames / fps) / step))
