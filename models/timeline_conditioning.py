"""Timelines to the tensors the transformer reads.

A timeline in seconds is mapped onto the latent frames of the clip it conditions:
``latent = seconds * num_latent_frames / timeline.duration``, so the whole timeline
spans the clip even when the VAE's causal first frame makes the latent count not an
exact multiple of the seconds. Each sub-action is bound to the reference image of its
subject through an ordered list of subject labels (reference order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.timeline import Timeline, TimelineError
from models.text_encoder import encode_texts


def latent_action_spans(timeline: Timeline, num_latent_frames: int) -> list[tuple[float, float]]:
    """Start/end of every action in latent-frame units, in timeline order."""
    if num_latent_frames < 1:
        raise ValueError(f"num_latent_frames must be positive, got {num_latent_frames}")
    scale = num_latent_frames / timeline.duration
    return [(action.start * scale, action.end * scale) for action in timeline.actions]


def action_subject_indices(timeline: Timeline, subjects: Sequence[str] | None) -> list[int]:
    """Reference index of each action's subject; -1 for every action when ``subjects`` is None.

    Raises:
        TimelineError: an action's subject is not among ``subjects``.
    """
    if subjects is None:
        return [-1] * len(timeline.actions)
    lookup = {name: index for index, name in enumerate(subjects)}
    indices = []
    for action in timeline.actions:
        if action.subject not in lookup:
            raise TimelineError(
                f"action {action.description!r} belongs to subject {action.subject!r}, "
                f"which has no reference image (references: {list(subjects)})"
            )
        indices.append(lookup[action.subject])
    return indices


@dataclass(frozen=True)
class TimelineBatch:
    """Timelines of a batch, padded to ``M`` action slots.

    Attributes:
        descriptions: ``B`` lists of ``M`` strings ("" in padding slots).
        valid: ``(B, M)`` bool, real action slots.
        action_spans: ``(B, M, 2)`` float, latent frames (0 in padding).
        action_subjects: ``(B, M)`` long, reference index or -1.
    """

    descriptions: list[list[str]]
    valid: torch.Tensor
    action_spans: torch.Tensor
    action_subjects: torch.Tensor


def timeline_batch(
    timelines: Sequence[Timeline],
    num_latent_frames: int,
    subjects: Sequence[Sequence[str] | None] | None = None,
    num_slots: int | None = None,
) -> TimelineBatch:
    """Pad the timelines of a batch to a common number of action slots.

    Args:
        timelines: one per sample.
        num_latent_frames: latent frames of the clips (before patching).
        subjects: per sample, subject labels in reference order (None: unbound actions).
        num_slots: pad to this many slots (default: the longest timeline).
    """
    if subjects is not None and len(subjects) != len(timelines):
        raise ValueError(f"{len(timelines)} timelines but {len(subjects)} subject lists")
    longest = max((len(t.actions) for t in timelines), default=0)
    slots = longest if num_slots is None else num_slots
    if slots < longest:
        raise ValueError(
            f"num_slots={num_slots} is fewer than the longest timeline's {longest} actions"
        )
    batch = len(timelines)
    spans = torch.zeros(batch, slots, 2)
    owners = torch.full((batch, slots), -1, dtype=torch.long)
    valid = torch.zeros(batch, slots, dtype=torch.bool)
    descriptions = []
    for row, timeline in enumerate(timelines):
        count = len(timeline.actions)
        names = None if subjects is None else subjects[row]
        if count:
            spans[row, :count] = torch.tensor(latent_action_spans(timeline, num_latent_frames))
            owners[row, :count] = torch.tensor(action_subject_indices(timeline, names))
            valid[row, :count] = True
        descriptions.append([a.description for a in timeline.actions] + [""] * (slots - count))
    return TimelineBatch(descriptions, valid, spans, owners)


def encode_timeline_batch(
    batch: TimelineBatch,
    tokenizer: Any,
    text_encoder: Any,
    max_length: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Encode the sub-action descriptions; returns the transformer's timeline kwargs.

    Returns:
        ``timeline_hidden_states`` ``(B, M, L_a, C)``, ``timeline_token_mask``
        ``(B, M, L_a)`` (all False in padding slots), ``action_spans``, ``action_subjects``.
    """
    if batch.valid.shape[1] == 0:
        raise ValueError(
            "the timelines have no sub-actions; call the model without timeline inputs"
        )
    flat = [text for row in batch.descriptions for text in row]
    hidden, mask = encode_texts(
        tokenizer, text_encoder, flat, max_length, device=device, dtype=dtype
    )
    rows, slots = batch.valid.shape
    valid = batch.valid.to(mask.device)
    mask = mask.view(rows, slots, max_length) & valid.unsqueeze(-1)
    hidden = hidden.view(rows, slots, max_length, -1) * mask.unsqueeze(-1).to(hidden.dtype)
    return {
        "timeline_hidden_states": hidden,
        "timeline_token_mask": mask,
        "action_spans": batch.action_spans.to(mask.device),
        "action_subjects": batch.action_subjects.to(mask.device),
    }
