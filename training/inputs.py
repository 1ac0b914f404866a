"""training_samples rows to the raw inputs the embedding cache encodes (``SampleInputs``).

A row names its target clip, the caption, the clip's timeline events and the reference
crops; the subject's masks live in the target's annotation row (one COCO RLE per frame of
``frame_indices``). Per sample:

- the timeline keeps the events of the target subject (an event names its subject by the
  entity's fine label or its id), all relabelled with one subject label, because the
  sample has reference images of that subject only;
- the masks are taken at the same ``num_frames`` frames the clip is encoded from (the
  nearest annotated frame), cropped and resized exactly like the clip
  (``training.latents.clip_frame_picks`` / ``centre_crop_box``), one copy per reference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.timeline import SubAction, Timeline
from training.latents import SampleInputs, centre_crop_box, clip_frame_picks


class SampleInputError(ValueError):
    """A training sample cannot be turned into encoder inputs; names the sample and why."""


@dataclass(frozen=True)
class ClipGeometry:
    """What the cache encodes a clip to (the preset's height, width and frame count)."""

    height: int
    width: int
    num_frames: int


def subject_label(annotation: Mapping[str, Any]) -> str:
    """The label a sample's reference images and its sub-actions share."""
    return annotation.get("fine_label") or annotation.get("label") or annotation["entity_id"]


def sample_timeline(row: Mapping[str, Any], annotation: Mapping[str, Any]) -> Timeline | None:
    """The target subject's sub-actions over the clip, or None when it has none.

    Raises:
        SampleInputError: the clip has no positive duration.
    """
    duration = annotation.get("duration_s")
    if not duration or duration <= 0:
        raise SampleInputError(f"sample {row['sample_id']!r}: clip duration {duration!r} is not positive")
    names = {annotation["entity_id"], annotation.get("fine_label")} - {None}
    label = subject_label(annotation)
    actions = [SubAction(min(e["start"], duration), min(e["end"], duration), e["description"], label)
               for e in row.get("events") or [] if e["subject"] in names and min(e["end"], duration) > e["start"]]
    if not actions:
        return None
    actions.sort(key=lambda a: (a.start, a.end))
    return Timeline(row.get("global_caption") or row["caption"], tuple(actions), duration=duration)


def subject_mask_video(annotation: Mapping[str, Any], geometry: ClipGeometry) -> np.ndarray | None:
    """The subject's masks at the clip's encoded frames, cropped and resized like the clip.

    Returns:
        ``(num_frames, height, width)`` float32 in ``{0, 1}``, or None without masks.
    """
    import cv2

    from curation.rle import rle_decode

    rles, frames = annotation.get("mask_rles"), annotation.get("frame_indices")
    if not rles or not frames or len(rles) != len(frames):
        return None
    total = max(int(round(annotation["fps"] * annotation["duration_s"])), geometry.num_frames)
    annotated = np.asarray(frames)
    out = np.zeros((geometry.num_frames, geometry.height, geometry.width), np.float32)
    decoded: dict[int, np.ndarray] = {}
    for slot, frame in enumerate(clip_frame_picks(total, geometry.num_frames)):
        nearest = int(np.abs(annotated - frame).argmin())
        if nearest not in decoded:
            mask = rle_decode(rles[nearest]).astype(np.float32)
            top, left, ch, cw = centre_crop_box(*mask.shape, geometry.height, geometry.width)
            crop = mask[top:top + ch, left:left + cw]
            decoded[nearest] = cv2.resize(crop, (geometry.width, geometry.height), interpolation=cv2.INTER_AREA)
        out[slot] = decoded[nearest] >= 0.5
    return out


def sample_inputs(
    row: Mapping[str, Any], annotation: Mapping[str, Any], clip: Path, references: Sequence[Path],
    geometry: ClipGeometry,
) -> SampleInputs:
    """One training_samples row (status ok) as ``SampleInputs``.

    Args:
        row: the training_samples row.
        annotation: the target's annotation row (``row["annotation_key"]``, ``row["entity_id"]``).
        clip, references: local files of ``row["clip_key"]`` and ``row["reference_keys"]``.
        geometry: the preset's clip geometry (for the masks).

    Raises:
        SampleInputError: the row has no reference crop.
    """
    if not references:
        raise SampleInputError(f"sample {row['sample_id']!r} has no reference crop")
    masks = subject_mask_video(annotation, geometry)
    return SampleInputs(
        sample_id=row["sample_id"],
        clip=clip,
        prompt=row["caption"],
        timeline=sample_timeline(row, annotation),
        references=tuple(references),
        subjects=(subject_label(annotation),) * len(references),
        subject_masks=None if masks is None else np.repeat(masks[None], len(references), axis=0),
    )


@contextlib.contextmanager
def open_sample_inputs(
    store: Any, rows: Sequence[Mapping[str, Any]], annotations: Mapping[tuple[str, str], Mapping[str, Any]],
    geometry: ClipGeometry,
) -> Iterator[list[SampleInputs]]:
    """``SampleInputs`` of many rows, their clip and reference files held open as local paths.

    Args:
        annotations: ``(annotation_key, entity_id)`` -> annotation row.

    Raises:
        SampleInputError: a row's annotation row is missing.
    """
    with contextlib.ExitStack() as stack:
        out = []
        for row in rows:
            annotation = annotations.get((row["annotation_key"], row["entity_id"]))
            if annotation is None:
                raise SampleInputError(f"sample {row['sample_id']!r}: no annotation row {row['entity_id']!r} "
                                       f"in {row['annotation_key']}")
            clip = stack.enter_context(store.local_path(row["clip_key"]))
            refs = [stack.enter_context(store.local_path(k)) for k in row["reference_keys"] or []]
            out.append(sample_inputs(row, annotation, clip, refs, geometry))
        yield out
