"""Which identities are held out of training and kept for the benchmark sets.

One rule, read by the benchmark builder (``evaluation.demo_benchmarks``) and by anything
that must not train on a held-out identity, so both always agree. Membership of an identity
depends on its own name first: ``u = sha256("<seed>:<identity>")`` read as a number in
[0, 1); the identity is held out when ``u < fraction``. Adding identities to the pool does
not change that part. Small pools are then topped up to a minimum number of identities
with a detected face (IPVG Track 1 needs faces) and without, taking the smallest ``u``.

Pure Python: rows are plain mappings (annotation table rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class HeldOutRule(Protocol):
    seed: int
    fraction: float
    min_face_identities: int
    min_other_identities: int


def identity_draw(seed: int, identity: str) -> float:
    """The identity's number in [0, 1), fixed by the seed and its name."""
    digest = hashlib.sha256(f"{seed}:{identity}".encode()).hexdigest()
    return int(digest[:13], 16) / 16**13


def has_face(row: Mapping[str, Any]) -> bool:
    """A verified human subject with at least one face box at a representative frame."""
    if row.get("verified") is False or not row.get("is_human"):
        return False
    frames = row.get("face_frame_indices") or []
    boxes = row.get("face_boxes") or []
    representative = row.get("representative_frames") or []
    return any(f in frames and frames.index(f) < len(boxes) for f in representative)


def held_out_identities(rows: Iterable[Mapping[str, Any]], rule: HeldOutRule) -> tuple[str, ...]:
    """Identities of ``rows`` that training must not see.

    Args:
        rows: annotation rows with ``identity`` (rows without one are never held out),
            ``is_human``, ``verified`` and the face columns.
        rule: ``evaluation.held_out`` params (seed, fraction, minimums).

    Returns:
        The held-out identities, sorted by their draw (the order the benchmark sets use).
    """
    with_face: dict[str, bool] = {}
    for row in rows:
        identity = row.get("identity")
        if identity:
            with_face[identity] = with_face.get(identity, False) or has_face(row)
    draws = {identity: identity_draw(rule.seed, identity) for identity in with_face}
    ranked = sorted(draws, key=lambda i: (draws[i], i))
    chosen = [i for i in ranked if draws[i] < rule.fraction]
    for wanted_face, minimum in ((True, rule.min_face_identities), (False, rule.min_other_identities)):
        have = sum(1 for i in chosen if with_face[i] == wanted_face)
        extra = [i for i in ranked if with_face[i] == wanted_face and i not in chosen]
        chosen += extra[: max(0, minimum - have)]
    return tuple(sorted(chosen, key=lambda i: (draws[i], i)))
