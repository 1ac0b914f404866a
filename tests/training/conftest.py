"""A small annotated pool for the curriculum tests: real H.264 clips of coloured subjects and
ANNOTATIONS tables describing them (boxes, masks, faces, timelines), plus the completion
markers the annotations stage writes. Ground truth is known: every subject is a solid
rectangle, so its mask is its box and its area fraction is exact."""

from __future__ import annotations

import json
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

W, H, T = 96, 64, 12
FRAME_STEP = 2  # the subjects stage samples every other frame

# identity -> (label, is_human, subject colour RGB)
IDENTITIES = {
    "id-a": ("man", True, (200, 40, 40)),
    "id-b": ("woman", True, (40, 60, 210)),
    "id-c": ("car", False, (230, 200, 30)),
}


@dataclass(frozen=True)
class ClipPlan:
    shard: str
    clip_id: str
    identity: str
    width_px: int  # subject box size
    height_px: int
    background: tuple[int, int, int]
    defect: str | None = None  # missing_mask | missing_boxes | unverified | nan_fraction


def plan_pool() -> list[ClipPlan]:
    rng = np.random.default_rng(11)
    plans = []
    n = 0
    for identity in IDENTITIES:
        for k in range(4):
            shard = f"gen-00{k % 2}"
            size = int(rng.integers(14, 40))
            bg = tuple(int(v) for v in rng.integers(60, 180, 3))
            height = int(size * 1.3) if identity != "id-c" else size // 2 + 6  # people are tall, cars wide
            plans.append(ClipPlan(shard, f"{shard}_{n:03d}-s00", identity, size, height, bg))
            n += 1
    for defect in ("missing_mask", "missing_boxes", "unverified", "nan_fraction"):
        plans.append(ClipPlan("gen-001", f"gen-001_{n:03d}-s00", "id-a", 20, 26, (120, 120, 120), defect))
        n += 1
    return plans


def render_clip(plan: ClipPlan) -> tuple[np.ndarray, list[list[float]]]:
    """Frames (T, H, W, 3) and the subject's box per frame (it walks to the right)."""
    colour = IDENTITIES[plan.identity][2]
    frames = np.empty((T, H, W, 3), np.uint8)
    boxes = []
    for t in range(T):
        frame = np.empty((H, W, 3), np.uint8)
        frame[:] = plan.background
        frame[:, ::8] = (np.array(plan.background) * 0.8).astype(np.uint8)  # some background texture
        x0 = 4 + t * 2
        y0 = (H - plan.height_px) // 2
        frame[y0:y0 + plan.height_px, x0:x0 + plan.width_px] = colour
        # a darker top band: head / windscreen
        band = max(2, plan.height_px // 4)
        frame[y0:y0 + band, x0:x0 + plan.width_px] = (np.array(colour) * 0.5).astype(np.uint8)
        frames[t] = frame
        boxes.append([float(x0), float(y0), float(x0 + plan.width_px), float(y0 + plan.height_px)])
    return frames, boxes


def annotation_row(plan: ClipPlan, boxes: list[list[float]], clip_key: str) -> dict:
    from curation.rle import rle_encode

    label, is_human, _ = IDENTITIES[plan.identity]
    frames = list(range(0, T, FRAME_STEP))
    sub_boxes = [boxes[f] for f in frames]
    rles, fractions = [], []
    for b in sub_boxes:
        mask = np.zeros((H, W), np.uint8)
        mask[int(b[1]):int(b[3]), int(b[0]):int(b[2])] = 1
        rles.append(rle_encode(mask))
        fractions.append(float(mask.mean()))
    row = {
        "clip_id": plan.clip_id, "shard": plan.shard, "clip_key": clip_key, "identity": plan.identity,
        "width": W, "height": H, "fps": 12.0, "duration_s": T / 12.0,
        "caption": f"a {label} moves to the right", "word_count": 6,
        "entity_id": f"{plan.clip_id}-e0", "label": label, "category": "living" if is_human else "non_living",
        "is_human": is_human, "fine_label": f"the {label}",
        "frame_indices": frames, "boxes": sub_boxes, "mask_rles": rles, "mask_area_fractions": fractions,
        "verified": plan.defect != "unverified",
        "global_caption": f"a {label} moves to the right",
        "events": [{"start": 0.0, "end": T / 12.0, "description": "walks right", "subject": f"{plan.clip_id}-e0"}],
        "backends": json.dumps({"subject": "test:rectangles", "face": "test:identity-vectors"}),
    }
    if is_human:
        rng = np.random.default_rng(zlib.crc32(plan.clip_id.encode()))
        base = np.random.default_rng(ord(plan.identity[-1])).normal(size=16)
        rep = frames[::2]
        row.update(face_frame_indices=rep, face_boxes=[sub_boxes[frames.index(f)] for f in rep],
                   representative_frames=rep,
                   face_embeddings=[(base + 0.3 * rng.normal(size=16)).tolist() for _ in rep],
                   face_resolution=12.0)
    if plan.defect == "missing_mask":
        row.update(mask_rles=None, mask_area_fractions=None)
    elif plan.defect == "missing_boxes":
        row.update(boxes=[])
    elif plan.defect == "nan_fraction":
        row["mask_area_fractions"] = [float("nan")] + fractions[1:]
    return row


def build_annotated_pool(store) -> dict[str, list[dict]]:
    """Write clips, annotation tables and completion markers; returns rows per shard."""
    from core.tables import to_table, write_json, write_table
    from core.video import write_video
    from curation.annotation_schemas import ANNOTATIONS
    from curation.gate_status import record_gate

    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for plan in plan_pool():
            frames, boxes = render_clip(plan)
            key = f"clips/{plan.shard}/{plan.clip_id}.mp4"
            local = write_video(Path(tmp) / f"{plan.clip_id}.mp4", frames, fps=12, crf=12, preset="ultrafast")
            store.put_file(key, local)
            rows.setdefault(plan.shard, []).append(annotation_row(plan, boxes, key))
    for shard, shard_rows in rows.items():
        write_table(store, f"tables/annotations/{shard}.parquet", to_table(shard_rows, ANNOTATIONS))
        write_json(store, f"metrics/annotations/{shard}.json",
                   {"stage": "annotations", "shard": shard, "fingerprint": f"test-{shard}", "metadata": {}})
        record_gate(store, shard, [])  # these hand-built tables stand for annotations that passed the gates
    return rows


def curriculum_params_raw(base: dict) -> dict:
    """The repo's params with a storage root of `data` and a batch the small pool can fill."""
    import copy

    raw = copy.deepcopy(base)
    raw["storage"]["root"] = "data"
    raw["training"]["use_demo"] = True
    raw["training"]["demo"].update(total_steps=48, global_batch=4, micro_batch=2)
    # half of this pool is inter-clip, so the paper's shares fit it
    raw["curriculum"]["demo_inter_clip_ratios"] = [0.0, 0.0, 0.11, 0.33]
    # every generated identity trains here; the held-out rule is tested with the benchmarks
    raw["evaluation"]["held_out"].update(fraction=0.0, min_face_identities=0, min_other_identities=0)
    return raw


@pytest.fixture(scope="session")
def annotated_project(tmp_path_factory, base_params_raw):
    """(project dir, params, store, rows per shard) of a generated, annotated pool."""
    import yaml

    from orchestration.params import load_params
    from core.storage import LocalObjectStore

    project = tmp_path_factory.mktemp("curriculum")
    (project / "params.yaml").write_text(yaml.safe_dump(curriculum_params_raw(base_params_raw), sort_keys=False))
    params = load_params(project / "params.yaml")
    store = LocalObjectStore(project / "data")
    rows = build_annotated_pool(store)
    return project, params, store, rows


@pytest.fixture
def curriculum_project(tmp_path, base_params_raw):
    """A project folder with the curriculum test params and an empty store."""
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(curriculum_params_raw(base_params_raw), sort_keys=False))
    return tmp_path
