"""Training samples of paper Sec. 3.2: reference image(s) cropped from a subject's box, the
clip the subject appears in, its caption and timeline, and refs to the subject's masks.

- intra-clip (D_sam = 0): the references are crops of the subject from its own clip;
- inter-clip (D_sam = 1): the references are crops of the same identity and label from a
  different clip whose crops look similar (cosine of mean descriptors >= a threshold).

A subject whose mask or boxes are missing or invalid is screened out with a reason: it
yields an excluded row, never a sample scored as 0.
"""

from __future__ import annotations

from core import layout
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.subject_crops import valid_box
from training.difficulty import INVALID_MASK, MISSING_MASK, MISSING_REFERENCE

UNVERIFIED = "unverified_subject"
MISSING_CLIP = "missing_clip"


@dataclass(frozen=True)
class Screening:
    """Whether an annotated subject can be a sample's video subject (target) and whether it
    can give reference crops; None means it can."""

    target_reason: str | None
    reference_reason: str | None
    detail: str | None = None


def screen_subject(row: dict[str, Any]) -> Screening:
    """Screen one ANNOTATIONS row.

    Returns:
        A Screening; a target needs valid masks and boxes (Eq. 1 reads the masks, Eq. 2 the
        boxed regions), a reference needs valid boxes.
    """
    if row.get("verified") is False:
        return Screening(UNVERIFIED, UNVERIFIED, "the subject failed post-verification")
    frames = row.get("frame_indices") or []
    boxes = row.get("boxes") or []
    ref_reason = detail = None
    if not boxes or len(boxes) != len(frames) or not any(valid_box(b) for b in boxes):
        valid = sum(map(valid_box, boxes))
        ref_reason, detail = MISSING_REFERENCE, f"{len(boxes)} boxes ({valid} valid) for {len(frames)} frames"
    rles = row.get("mask_rles") or []
    fractions = row.get("mask_area_fractions") or []
    if not rles or not fractions:
        return Screening(MISSING_MASK, ref_reason, f"{len(rles)} mask RLEs, {len(fractions)} area fractions")
    if not len(rles) == len(fractions) == len(frames):
        return Screening(INVALID_MASK, ref_reason,
                         f"{len(rles)} mask RLEs and {len(fractions)} area fractions for {len(frames)} frames")
    bad = [f for f in fractions if f is None or not math.isfinite(f) or not 0.0 <= f <= 1.0]
    if bad:
        return Screening(INVALID_MASK, ref_reason, f"{len(bad)} mask area fractions outside [0, 1]")
    return Screening(ref_reason, ref_reason, detail)


def embed_images(embedder, images: Sequence[np.ndarray]) -> np.ndarray:
    """(N, D) L2-normalised descriptors of differently sized images, batched by shape."""
    if not images:
        raise ValueError("no images to embed")
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, im in enumerate(images):
        groups[im.shape].append(i)
    out: np.ndarray | None = None
    for idx in groups.values():
        feats = embedder.embed(np.stack([images[i] for i in idx]))
        if out is None:
            out = np.zeros((len(images), feats.shape[1]), np.float32)
        out[idx] = feats
    return out


def reference_key(shard: str, entity_id: str, frame: int) -> str:
    return layout.reference(shard, entity_id, frame)


@dataclass(frozen=True)
class SubjectKey:
    """What inter-clip pairing looks at."""

    clip_id: str
    entity_id: str
    identity: str | None
    label: str | None


def pair_inter_clip(
    subjects: Sequence[SubjectKey], descriptors: np.ndarray, can_target: np.ndarray, can_reference: np.ndarray,
    *, threshold: float, per_subject: int,
) -> list[tuple[int, int, float]]:
    """Inter-clip pairs: for each target, the `per_subject` most similar subjects of the same
    identity and label in other clips whose similarity reaches `threshold`.

    Args:
        descriptors: (S, D) L2-normalised mean reference descriptors (rows of subjects
            that cannot give references are ignored).
        can_target, can_reference: (S,) bool screens.

    Returns:
        (target index, reference index, cosine similarity), ordered by target then similarity.
    """
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for i, s in enumerate(subjects):
        if s.identity:
            groups[(s.identity, s.label)].append(i)
    pairs = []
    for members in groups.values():
        idx = np.asarray(members)
        sims = descriptors[idx] @ descriptors[idx].T
        for a, i in enumerate(idx):
            if not can_target[i] or per_subject < 1:
                continue
            cands = [(-float(sims[a, b]), subjects[j].clip_id, subjects[j].entity_id, int(j))
                     for b, j in enumerate(idx)
                     if can_reference[j] and subjects[j].clip_id != subjects[i].clip_id
                     and sims[a, b] >= threshold]
            pairs += [(int(i), j, -neg) for neg, _, _, j in sorted(cands)[:per_subject]]
    return pairs


def sample_row(target: dict[str, Any], reference: dict[str, Any] | None, *, kind: str,
               reference_frames: Sequence[int] = (), reference_keys: Sequence[str] = (),
               similarity: float | None = None, reason: str | None = None, detail: str | None = None,
               backend: str | None = None) -> dict[str, Any]:
    """One TRAINING_SAMPLES row; `reason` set makes it an excluded row."""
    ref = reference or {}
    suffix = "intra" if kind == "intra" else f"ref:{ref.get('entity_id')}"
    sample_id = f"{target['entity_id']}:{suffix}"
    return {
        "sample_id": sample_id, "shard": target["shard"], "clip_id": target["clip_id"],
        "entity_id": target["entity_id"], "clip_key": target["clip_key"], "identity": target.get("identity"),
        "label": target.get("label"), "is_human": target.get("is_human"), "caption": target.get("caption"),
        "global_caption": target.get("global_caption"), "events": target.get("events"),
        "annotation_key": target["annotation_key"], "mask_frame_indices": target.get("frame_indices"),
        "reference_kind": kind, "reference_shard": ref.get("shard"), "reference_clip_id": ref.get("clip_id"),
        "reference_entity_id": ref.get("entity_id"), "reference_annotation_key": ref.get("annotation_key"),
        "reference_frames": list(reference_frames), "reference_keys": list(reference_keys),
        "inter_clip_similarity": similarity, "d_sam": 0 if kind == "intra" else 1,
        "status": "excluded" if reason else "ok", "reason": reason, "detail": detail,
        "similarity_backend": backend,
    }
