"""The demo's benchmark sets, built from the annotated pool's held-out identities.

Four small sets, each in its published shape (read back by :mod:`evaluation.benchmarks`):

=================  ==============================================  =========================
name               file (under ``benchmarks/<name>/``)               entry
=================  ==============================================  =========================
``opens2v``        ``Open-Domain_Eval.json`` (OpenS2V-Eval)          subject crop + caption
``reactid_seq``    ``ReactID-Eval-SEQ.json`` (sequential actions)    subject crop + timeline
``ipvg_track1``    ``eval.json`` (IPVG 2026 Track 1, a list)         face crops + a prompt
``ipvg_track2``    ``eval.json`` (IPVG 2026 Track 2, a list)         subject crop + timeline
=================  ==============================================  =========================

Reference images are crops of subjects whose identity is held out of training
(:func:`core.holdout.held_out_identities`), cut from the curated clips: the subject's box at
its representative frame, and for Track 1 and OpenS2V face samples the face box. They are
written next to each file (``images/…``, paths relative to the file), under folder names
that follow OpenS2V's conventions (``crop_woman/`` marks a face crop of a woman), so
OpenS2V's face-reference rule finds them. Prompts are the captions; timelines are the
subject's annotated events; Track 1 identities take their own captions first, then the
captions of other clips with the same label, as the challenge pairs an identity with
prompts that were not written about it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core import layout
from core.errors import StageInputError
from core.holdout import has_face, held_out_identities, identity_draw
from core.storage import ObjectStore

BENCHMARKS = ("opens2v", "reactid_seq", "ipvg_track1", "ipvg_track2")
PREFIX = layout.BENCHMARKS
FILES = {
    "opens2v": "Open-Domain_Eval.json",
    "reactid_seq": "ReactID-Eval-SEQ.json",
    "ipvg_track1": "eval.json",
    "ipvg_track2": "eval.json",
}
TIMELINE_BENCHMARKS = frozenset({"reactid_seq", "ipvg_track2"})
IPVG_TRACKS = {"ipvg_track1": 1, "ipvg_track2": 2}
MANIFEST_KEY = layout.BENCHMARK_MANIFEST


def benchmark_key(name: str) -> str:
    """Object key of a benchmark's file."""
    if name not in FILES:
        raise KeyError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")
    return layout.benchmark_file(name, FILES[name])


@dataclass(frozen=True)
class Candidate:
    """An annotated subject of a held-out identity that can give reference crops."""

    row: Mapping[str, Any]
    draw: float
    subject_frame: int
    face_frame: int | None  # a representative frame with a face box, for face crops

    @property
    def identity(self) -> str:
        return self.row["identity"]

    @property
    def label(self) -> str:
        return self.row.get("label") or "subject"


@dataclass(frozen=True)
class SetPlan:
    """A set's entries (in file order), the subject each entry is about, and its images."""

    entries: dict[str, dict] | list[dict]
    owners: list[Candidate]
    images: list[tuple[Candidate, str]]  # (candidate, "subject" | "face")

    @property
    def sample_ids(self) -> list[str]:
        if isinstance(self.entries, dict):
            return list(self.entries)
        return [str(i) for i in range(1, len(self.entries) + 1)]


def candidates(rows: Sequence[Mapping[str, Any]], held_out: Sequence[str], seed: int) -> list[Candidate]:
    """Verified subjects of held-out identities with a boxed frame; identities take turns (in
    draw order), so a small set covers every held-out identity before repeating one."""
    from curation.subject_crops import choose_reference_frames

    held = set(held_out)
    out = []
    for row in rows:
        if row.get("identity") not in held or row.get("verified") is False:
            continue
        frames = choose_reference_frames(dict(row), "representative", 1)
        if not frames:
            continue
        face_frame = _face_frame(row) if has_face(row) else None
        out.append(Candidate(row, identity_draw(seed, row["identity"]), frames[0], face_frame))
    out.sort(key=lambda c: (c.draw, c.row["clip_id"], c.row["entity_id"]))
    turn: dict[str, int] = defaultdict(int)
    order = []
    for c in out:
        order.append((turn[c.identity], c.draw, c.row["clip_id"], c.row["entity_id"], c))
        turn[c.identity] += 1
    return [item[-1] for item in sorted(order, key=lambda item: item[:-1])]


def subject_events(row: Mapping[str, Any], clip_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The clip's events performed by this subject, as ``{start, end, description}``.

    A clip with one annotated subject owns all its events; otherwise an event belongs to
    the subject its ``subject`` field names (fine label, entity id or label).
    """
    events = list(row.get("events") or [])
    if len(clip_rows) > 1:
        names = {row.get("fine_label"), row.get("entity_id"), row.get("label")} - {None}
        events = [e for e in events if e.get("subject") in names]
    return [
        {"start": float(e["start"]), "end": float(e["end"]), "description": e["description"]}
        for e in sorted(events, key=lambda e: (e["start"], e["end"]))
    ]


def build_demo_benchmarks(
    rows: Sequence[Mapping[str, Any]],
    store: ObjectStore,
    held_out_rule: Any,
    entries_per_set: int,
    crop_size: int,
    subject_padding: float,
    face_padding: float,
) -> dict[str, Any]:
    """Write the four demo sets and their reference images under ``benchmarks/``.

    Args:
        rows: annotation rows of every shard that passed the quality gates.
        store: the object store; the whole prefix is replaced in one step.
        held_out_rule: ``evaluation.held_out`` params.
        entries_per_set: at most this many entries per set.
        crop_size: longest side of a reference crop, px.
        subject_padding, face_padding: share of the box added on each side.

    Returns:
        The manifest (also written to ``benchmarks/manifest.json``).

    Raises:
        StageInputError: no held-out subject can fill a set (naming the set and why).
    """
    held = held_out_identities(rows, held_out_rule)
    pool = candidates(rows, held, held_out_rule.seed)
    by_clip: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_clip[row["clip_id"]].append(row)
    sets = {
        "opens2v": _opens2v_entries(pool, entries_per_set),
        "reactid_seq": _timeline_entries(pool, by_clip, entries_per_set, keyed=True),
        "ipvg_track1": _track1_entries(pool, rows, entries_per_set),
        "ipvg_track2": _timeline_entries(pool, by_clip, entries_per_set, keyed=False),
    }
    for name, plan in sets.items():
        if not plan.entries:
            raise StageInputError(
                f"demo benchmark {name!r} has no entry: held-out identities {list(held)} give no "
                f"{'subject with a face' if name == 'ipvg_track1' else 'usable subject'}"
                f"{' and timeline' if name in TIMELINE_BENCHMARKS else ''}; change evaluation.held_out"
            )
    crops = _crop_images(store, [image for plan in sets.values() for image in plan.images], crop_size,
                         subject_padding, face_padding)
    manifest: dict[str, Any] = {"held_out_identities": list(held), "sets": {}}
    with store.staged_prefix(PREFIX) as staging:
        for name, plan in sets.items():
            images = sorted({(_image_path(c, kind), c.row["entity_id"], kind) for c, kind in plan.images})
            for rel, entity_id, kind in images:
                store.put_bytes(f"{staging}/{name}/{rel}", crops[(entity_id, kind)])
            body = json.dumps(plan.entries, indent=2, ensure_ascii=False) + "\n"
            store.put_bytes(f"{staging}/{name}/{FILES[name]}", body.encode())
            manifest["sets"][name] = {
                "file": benchmark_key(name),
                "entries": len(plan.entries),
                "images": len(images),
                "identities": {sid: c.identity for sid, c in zip(plan.sample_ids, plan.owners, strict=True)},
            }
        store.put_bytes(f"{staging}/manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


# --------------------------------------------------------------------------- sets


def _opens2v_entries(pool: list[Candidate], n: int) -> SetPlan:
    entries: dict[str, dict] = {}
    owners: list[Candidate] = []
    images: list[tuple[Candidate, str]] = []
    counts: dict[str, int] = defaultdict(int)
    for c in pool[:n]:
        if c.face_frame is not None and c.label in ("man", "woman"):
            category, kind = "singleface", "face"
        else:
            category, kind = ("singlehuman" if c.row.get("is_human") else "singleobj"), "subject"
        counts[category] += 1
        entries[f"{category}_{counts[category]}"] = {
            "img_paths": [_image_path(c, kind)],
            "prompt": c.row["caption"],
            "class_label": [c.label],
        }
        owners.append(c)
        images.append((c, kind))
    return SetPlan(entries, owners, images)


def _timeline_entries(pool: list[Candidate], by_clip: Mapping[str, list], n: int, *, keyed: bool) -> SetPlan:
    keyed_entries: dict[str, dict] = {}
    owners: list[Candidate] = []
    counts: dict[str, int] = defaultdict(int)
    for c in pool:
        if len(owners) == n:
            break
        events = subject_events(c.row, by_clip[c.row["clip_id"]])
        if not events:
            continue
        family = "human" if c.row.get("is_human") else "object"
        counts[family] += 1
        keyed_entries[f"seq_{family}_{counts[family]:03d}"] = {
            "img_paths": [_image_path(c, "subject")],
            "class_label": [c.label],
            "global_prompt": c.row.get("global_caption") or c.row["caption"],
            "temporal_captions": events,
        }
        owners.append(c)
    entries = keyed_entries if keyed else list(keyed_entries.values())
    return SetPlan(entries, owners, [(c, "subject") for c in owners])


def _track1_entries(pool: list[Candidate], rows: Sequence[Mapping[str, Any]], n: int) -> SetPlan:
    """Up to n (identity, prompt) pairs, identities taking turns in draw order."""
    faces: dict[str, list[Candidate]] = defaultdict(list)
    for c in pool:
        if c.face_frame is not None:
            faces[c.identity].append(c)
    identities = list(faces)
    prompts = {i: _prompts_for(faces[i], rows) for i in identities}
    entries: list[dict] = []
    owners: list[Candidate] = []
    taken = dict.fromkeys(identities, 0)
    while len(entries) < n and any(taken[i] < len(prompts[i]) for i in identities):
        for number, identity in enumerate(identities, start=1):
            if len(entries) == n or taken[identity] >= len(prompts[identity]):
                continue
            taken[identity] += 1
            entries.append({
                "img_paths": [_image_path(c, "face") for c in faces[identity]],
                "prompt": prompts[identity][taken[identity] - 1],
                "class_label": [faces[identity][0].label],
                "identity": f"id{number:03d}",
                "prompt_index": taken[identity],
            })
            owners.append(faces[identity][0])
    images = [(c, "face") for i in identities if taken[i] for c in faces[i]]
    return SetPlan(entries, owners, images)


def _prompts_for(own: list[Candidate], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    label = own[0].label
    texts = [c.row["caption"] for c in own]
    texts += [r["caption"] for r in sorted(rows, key=lambda r: (r["clip_id"], r["entity_id"]))
              if r.get("label") == label and r.get("caption")]
    return list(dict.fromkeys(t for t in texts if t))


# --------------------------------------------------------------------------- images


def _face_frame(row: Mapping[str, Any]) -> int | None:
    frames = row.get("face_frame_indices") or []
    boxes = row.get("face_boxes") or []
    for f in row.get("representative_frames") or []:
        if f in frames and frames.index(f) < len(boxes):
            return int(f)
    return None


def _image_path(c: Candidate, kind: str) -> str:
    frame = c.face_frame if kind == "face" else c.subject_frame
    if kind == "face":
        folder = f"crop_{c.label}" if c.label in ("man", "woman") else "crop_face"
    else:
        folder = c.label.replace("/", "_")
    return f"images/{folder}/{c.identity}/{c.row['entity_id']}_f{frame:05d}.png"


def _crop_images(
    store: ObjectStore, used: list[tuple[Candidate, str]], size: int, subject_padding: float, face_padding: float
) -> dict[tuple[str, str], bytes]:
    """PNG crops keyed by (entity id, 'subject' | 'face'), decoding each clip once."""
    from core.images import encode_png
    from curation.subject_crops import box_at, crop_subject, read_frames

    wanted: dict[str, dict[tuple[str, str], tuple[Candidate, str]]] = defaultdict(dict)
    for c, kind in used:
        wanted[c.row["clip_key"]][(c.row["entity_id"], kind)] = (c, kind)
    out: dict[tuple[str, str], bytes] = {}
    for clip_key, items in sorted(wanted.items()):
        if not store.exists(clip_key):
            raise StageInputError(f"clip {clip_key!r} of a held-out subject is not in the object store")
        frames_needed = {c.face_frame if kind == "face" else c.subject_frame for c, kind in items.values()}
        with store.local_path(clip_key) as path:
            decoded = read_frames(path, frames_needed)
        for key, (c, kind) in items.items():
            if kind == "face":
                frames = list(c.row["face_frame_indices"])
                box = c.row["face_boxes"][frames.index(c.face_frame)]
                frame, padding = c.face_frame, face_padding
            else:
                box, frame, padding = box_at(dict(c.row), c.subject_frame), c.subject_frame, subject_padding
            crop = crop_subject(decoded[frame], box, padding=padding, size=size) if frame in decoded else None
            if crop is None:
                raise StageInputError(f"{c.row['entity_id']}: no {kind} crop at frame {frame} of {clip_key}")
            out[key] = encode_png(crop)
    return out
