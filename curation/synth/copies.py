"""Altered copies of a video, the way copies turn up in scraped pools: re-encoded at another
quality, resized, cropped at the edges, trimmed. The demo pool uses them to plant
duplicates across shards; the duplicate benchmark and tests build near-duplicate families
with them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CopyRecipe:
    """How a copy differs from its source.

    Attributes:
        crf: x264 quality of the re-encode (higher: more loss).
        scale: output size as a fraction of the (cropped) source size.
        crop: fraction removed from each edge (0.03: 3% off the left, right, top and bottom).
        start_s, end_s: the span of the source kept, in seconds (end None: to the end).
        left_crop: a further fraction removed from the left edge only (an off-centre crop).
        gain: pixel values multiplied by this (brightness and contrast), clipped to 0-255.
        frame_step: keep one frame in this many, at that much lower a frame rate.
    """

    crf: int = 20
    scale: float = 1.0
    crop: float = 0.0
    start_s: float = 0.0
    end_s: float | None = None
    left_crop: float = 0.0
    gain: float = 1.0
    frame_step: int = 1


def write_copy(src: Path, dest: Path, recipe: CopyRecipe, *, preset: str = "veryfast") -> Path:
    """Write the copy of `src` that `recipe` describes to `dest` (H.264 MP4).

    Raises:
        ValueError: the span holds no frame, or the copy would be smaller than 16x16.
    """
    import av
    import cv2

    from core.video import ClipWriter
    from curation.video_io import decode_frames

    with av.open(str(src)) as container:
        source_width = container.streams.video[0].codec_context.width
    # scale while decoding: a copy of HD footage never holds the full-size frames
    batch = decode_frames(src, width=int(round(source_width * recipe.scale)) if recipe.scale < 1 else None)
    times = batch.indices / batch.fps
    keep = (times >= recipe.start_s - 1e-6) & ((times < recipe.end_s - 1e-6) if recipe.end_s is not None else True)
    frames = batch.frames[keep][:: recipe.frame_step]
    if not len(frames):
        raise ValueError(f"{src}: no frame in [{recipe.start_s}, {recipe.end_s}) s")
    h, w = frames.shape[1:3]
    dy, dx = int(round(h * recipe.crop)), int(round(w * recipe.crop))
    frames = frames[:, dy : h - dy, dx + int(round(w * recipe.left_crop)) : w - dx]
    if recipe.gain != 1.0:
        frames = np.clip(frames.astype(np.float32) * recipe.gain, 0, 255).astype(np.uint8)
    ch, cw = frames.shape[1:3]
    grow = max(1.0, recipe.scale)
    out_w, out_h = int(round(cw * grow / 2)) * 2, int(round(ch * grow / 2)) * 2
    if min(out_w, out_h) < 16:
        raise ValueError(f"{src}: a copy of {out_w}x{out_h} is too small")
    dest.parent.mkdir(parents=True, exist_ok=True)
    writer = ClipWriter(dest, batch.fps / recipe.frame_step, out_w, out_h, crf=recipe.crf, preset=preset)
    try:
        for frame in frames:
            if frame.shape[:2] != (out_h, out_w):
                frame = cv2.resize(np.ascontiguousarray(frame), (out_w, out_h), interpolation=cv2.INTER_AREA)
            writer.write(frame)
    finally:
        writer.close()
    return dest


# What a `copies` demo shard plants: (file suffix, source in REAL_FOOTAGE, recipe or None for a
# byte-identical copy, what curation should do with it).
PLANTED_COPIES = (
    ("bikes", "bikes.mp4", None, "duplicate"),  # the same bytes as the real-footage shard's copy
    ("bikes_again", "bikes.mp4", None, "duplicate"),  # and again inside this shard: quarantined on arrival
    ("carphone_reencoded", "carphone_pristine.mp4", CopyRecipe(crf=32, crop=0.03, start_s=0.5), "near_duplicate"),
)


def build_copies_shard(pool: Path, shard: str) -> dict:
    """A demo shard of copies of the real-footage shard's videos, as a scraped pool receives
    them again: byte-identical under another name, and re-encoded, cropped and trimmed.
    Registered after a real_footage shard, its clips are removed as duplicates naming the
    clips they repeat; its ground truth says which."""
    import shutil

    from curation.synth.footage import REAL_FOOTAGE, package_file

    sources = {parts[-1]: (package, parts, identity, caption) for package, parts, identity, caption in REAL_FOOTAGE}
    manifest, videos, broken = [], [], []
    for suffix, source, recipe, expected in PLANTED_COPIES:
        package, parts, identity, caption = sources[source]
        src = package_file(package, *parts)
        name = f"{shard}_{suffix}.mp4"
        if recipe is None:
            shutil.copyfile(src, pool / name)
        else:
            write_copy(src, pool / name, recipe)
        manifest.append({"path": name, "caption": caption, "identity": identity,
                         "source": f"{package}:{'/'.join(parts)} ({'copy' if recipe is None else 'altered copy'})"})
        videos.append({"file": name, "source": f"{package}:{'/'.join(parts)}", "annotated": False,
                       "copy_of": f"{package}:{'/'.join(parts)}", "expected": expected})
    # the second byte-identical copy inside the shard is quarantined by raw_videos
    broken.append({"file": f"{shard}_bikes_again.mp4", "expected_quarantine": "duplicate"})
    return {"videos": videos, "broken": broken, "manifest": manifest, "identities": []}
