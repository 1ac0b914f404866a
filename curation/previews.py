"""Annotated previews: what the annotation stages saw, drawn on the clip.

Per clip, a short H.264 video at `clip_previews.width` with every verified subject's mask
(COCO RLE) and box, its face boxes, and a timeline bar under the frame naming the sub-action
at that moment; a clip that curation rejected shows its reasons instead. Per shard, a
contact sheet (one thumbnail per clip) in PNG. Researchers check annotations by looking:
a box that drifts, a mask that leaks or a sub-action that starts late shows at a glance.

Annotation geometry is in pixels of the curated clip (`curated_clips.clip_key`, the
cropped clip when curation cropped text away), which is the video decoded here, so boxes
only need the preview's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core import layout
from core.images import encode_png
from core.progress import report
from core.stage import StageContext
from core.storage import temp_dir
from core.tables import read_table, to_table, write_table

PREFIX = layout.PREVIEWS
SHEET_NAME = "contact_sheet.png"
BAR_HEIGHT = 22  # px under the frame: the timeline bar
BANNER_HEIGHT = 20  # px over the frame: rejection reasons or "no verified subject"

CLIP_PREVIEWS = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()),
    ("status", pa.string()),  # kept | rejected
    ("reasons", pa.list_(pa.string())),  # curation's rejection reasons (empty when kept)
    ("subjects", pa.int32()),  # verified subjects drawn
    ("faces", pa.int32()),  # face boxes drawn, over all frames
    ("events", pa.int32()),  # sub-actions on the timeline bar
    ("frames", pa.int32()), ("fps", pa.float64()),
    ("preview_key", pa.string()),  # H.264 MP4
    ("thumbnail_key", pa.string()),  # PNG of the preview's middle frame
])

# Distinct, colour-blind-friendly subject colours (Okabe-Ito), RGB.
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167))
FACE_COLOUR = (255, 255, 255)
REJECT_COLOUR = (200, 30, 30)


def preview_key(shard: str, clip_id: str) -> str:
    return layout.join(layout.previews(shard), f"{clip_id}.mp4")


def thumbnail_key(shard: str, clip_id: str) -> str:
    return layout.join(layout.previews(shard), f"{clip_id}.png")


def contact_sheet_key(shard: str) -> str:
    return layout.join(layout.previews(shard), SHEET_NAME)


@dataclass(frozen=True)
class SubjectTrack:
    """One verified subject of a clip, in clip pixels."""

    label: str
    frame_indices: tuple[int, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    mask_rles: tuple[str | None, ...]
    face_frames: tuple[int, ...] = ()
    face_boxes: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class ClipOverlay:
    """Everything drawn on one clip's preview."""

    clip_id: str
    duration_s: float
    rejected_reasons: tuple[str, ...] = ()
    subjects: tuple[SubjectTrack, ...] = ()
    events: tuple[dict[str, Any], ...] = ()  # {start, end, description}
    caption: str | None = None
    _mask_cache: dict = field(default_factory=dict, compare=False, repr=False)


def _nearest(indices: tuple[int, ...], frame: int, max_gap: float) -> int | None:
    """Position in `indices` of the annotated frame nearest to `frame`, within `max_gap` frames."""
    if not indices:
        return None
    arr = np.asarray(indices)
    pos = int(np.argmin(np.abs(arr - frame)))
    return pos if abs(int(arr[pos]) - frame) <= max_gap else None


def current_event(events: tuple[dict[str, Any], ...], t: float) -> dict[str, Any] | None:
    """The sub-action whose [start, end) holds second `t` (the last one holds its end too)."""
    for i, e in enumerate(events):
        if e["start"] <= t < e["end"] or (i == len(events) - 1 and t == e["end"]):
            return e
    return None


def _text(image: np.ndarray, text: str, org: tuple[int, int], colour, scale: float = 0.4) -> None:
    import cv2

    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _mask(overlay: ClipOverlay, rle: str, size: tuple[int, int]) -> np.ndarray:
    """A subject mask decoded from RLE and resized to the preview (cached per clip)."""
    import cv2

    from curation.rle import rle_decode

    key = (rle, size)
    if key not in overlay._mask_cache:
        mask = rle_decode(rle).astype(np.uint8)
        overlay._mask_cache[key] = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return overlay._mask_cache[key]


def draw_frame(frame: np.ndarray, index: int, fps: float, scale: float, overlay: ClipOverlay,
               mask_alpha: float) -> tuple[np.ndarray, int]:
    """One preview frame: the clip frame with overlays, a banner on top and the timeline bar below.

    Args:
        frame: (H, W, 3) uint8 RGB at preview size.
        index: the frame's index in the clip.
        scale: preview pixels per clip pixel.

    Returns:
        ((H + BANNER_HEIGHT + BAR_HEIGHT, W, 3) uint8 RGB, face boxes drawn).
    """
    import cv2

    h, w = frame.shape[:2]
    image = frame.copy()
    faces = 0
    max_gap = max(1.0, fps)  # subjects are sampled every few frames, faces at 2 FPS
    for k, subject in enumerate(overlay.subjects):
        colour = PALETTE[k % len(PALETTE)]
        pos = _nearest(subject.frame_indices, index, max_gap)
        if pos is not None:
            rle = subject.mask_rles[pos] if pos < len(subject.mask_rles) else None
            if rle:
                mask = _mask(overlay, rle, (w, h))
                image[mask] = ((1 - mask_alpha) * image[mask] + mask_alpha * np.array(colour)).astype(np.uint8)
            x0, y0, x1, y1 = (int(round(v * scale)) for v in subject.boxes[pos])
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, 1)
            _text(image, subject.label, (x0 + 2, max(10, y0 - 3)), colour)
        face = _nearest(subject.face_frames, index, max_gap)
        if face is not None:
            x0, y0, x1, y1 = (int(round(v * scale)) for v in subject.face_boxes[face])
            cv2.rectangle(image, (x0, y0), (x1, y1), FACE_COLOUR, 1)
            faces += 1
    banner = np.zeros((BANNER_HEIGHT, w, 3), np.uint8)
    if overlay.rejected_reasons:
        banner[:] = REJECT_COLOUR
        _text(banner, "rejected: " + ", ".join(overlay.rejected_reasons), (4, 14), (255, 255, 255))
    else:
        banner[:] = (40, 40, 40)
        note = f"{len(overlay.subjects)} subject(s)" if overlay.subjects else "no verified subject"
        _text(banner, f"{overlay.clip_id}  {note}", (4, 14), (255, 255, 255))
    return np.concatenate([banner, image, timeline_bar(overlay, index / fps, w)]), faces


def timeline_bar(overlay: ClipOverlay, t: float, width: int) -> np.ndarray:
    """(BAR_HEIGHT, width, 3): each sub-action as a span of the clip's duration, the current
    one bright and named, and a cursor at second `t`."""
    bar = np.full((BAR_HEIGHT, width, 3), 30, np.uint8)
    duration = max(overlay.duration_s, 1e-6)
    now = current_event(overlay.events, t)
    for k, e in enumerate(overlay.events):
        x0 = int(width * max(0.0, e["start"]) / duration)
        x1 = max(x0 + 1, int(width * min(duration, e["end"]) / duration))
        colour = np.array(PALETTE[k % len(PALETTE)])
        bar[2:8, x0:x1] = colour if e is now else colour // 3
    cursor = min(width - 1, int(width * t / duration))
    bar[:, max(0, cursor - 1):cursor + 1] = 255
    label = now["description"] if now else ("no sub-action" if overlay.events else "no timeline")
    _text(bar, f"{t:4.1f}s {label}", (4, BAR_HEIGHT - 4), (255, 255, 255), 0.35)
    return bar


def render_preview(src: Any, overlay: ClipOverlay, dest: Path, *, fps: float, source_width: int, width: int,
                   max_seconds: float, max_fps: float, crf: int, preset: str, mask_alpha: float,
                   span: Any = None) -> dict[str, Any]:
    """Decode the clip once and write its annotated preview to `dest` (H.264 MP4).

    Args:
        src: the curated clip (a path or a seekable stream), or with `span` its source video.
        fps, source_width: the clip's frame rate and width in px (its curated_clips row).
        span: the clip's `curation.clip_spans.ClipSpan`, for a clip that was never written (a
            rejected one): its frames are read from the source as its clip would show them.

    Returns:
        {frames, fps, faces, thumbnail (RGB array of the middle frame)}.
    """
    import itertools

    from core.video import ClipWriter
    from curation.clip_spans import SpanDecoder
    from curation.video_io import iter_frames

    step = max(1.0, fps / max_fps)
    end = int(round(max_seconds * fps))
    writer = None
    frames = faces = 0
    drawn: list[np.ndarray] = []
    try:
        sample_fps = fps / step if step > 1 else None  # about `max_fps` frames per second of video
        if span is None:
            shown = iter_frames(src, width=width, end_frame=end, sample_fps=sample_fps)
        else:
            shown = itertools.takewhile(lambda f: f[0] < end, ((d.index, d.image) for d in SpanDecoder(
                src, span, width=width, sample_fps=sample_fps)))
        for index, frame in shown:
            image, n = draw_frame(frame, index, fps, frame.shape[1] / source_width, overlay, mask_alpha)
            if writer is None:
                writer = ClipWriter(dest, fps / step, image.shape[1], image.shape[0], crf=crf, preset=preset)
            writer.write(image)
            drawn.append(image)
            frames, faces = frames + 1, faces + n
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"clip {overlay.clip_id} decoded to zero frames")
    return {"frames": frames, "fps": round(fps / step, 4), "faces": faces, "thumbnail": drawn[len(drawn) // 2]}


def contact_sheet(thumbnails: list[tuple[str, np.ndarray]], columns: int, thumb_width: int) -> bytes:
    """A PNG grid of (title, RGB image) thumbnails, `columns` per row, titles under each."""
    import cv2

    if not thumbnails:
        raise ValueError("a contact sheet needs at least one thumbnail")
    cells = []
    for title, image in thumbnails:
        h = max(2, int(round(image.shape[0] * thumb_width / image.shape[1])))
        cells.append((title, cv2.resize(image, (thumb_width, h), interpolation=cv2.INTER_AREA)))
    cell_h = max(c.shape[0] for _, c in cells) + 16
    rows = -(-len(cells) // columns)
    sheet = np.full((rows * cell_h, min(columns, len(cells)) * thumb_width, 3), 245, np.uint8)
    for i, (title, cell) in enumerate(cells):
        y, x = (i // columns) * cell_h, (i % columns) * thumb_width
        sheet[y:y + cell.shape[0], x:x + thumb_width] = cell
        cv2.putText(sheet, _fit_text(title, thumb_width - 6, 0.38), (x + 3, y + cell_h - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38, (20, 20, 20), 1, cv2.LINE_AA)
    return encode_png(sheet)


def _fit_text(text: str, width: int, scale: float) -> str:
    """`text`, shortened in the middle with ".." until it fits `width` px (titles of
    neighbouring cells never run into each other; the clip id's end stays readable)."""
    import cv2

    fits = lambda t: cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width  # noqa: E731
    if fits(text):
        return text
    head, tail = text[: len(text) // 2], text[len(text) // 2:]
    while head and not fits(f"{head}..{tail}"):
        head, tail = (head[:-1], tail) if len(head) >= len(tail) else (head, tail[1:])
    return f"{head}..{tail}"


def clip_overlays(curated: list[dict], annotations: list[dict], timelines: list[dict]) -> dict[str, ClipOverlay]:
    """One overlay per curated clip (kept or rejected) from the shard's tables."""
    subjects: dict[str, list[SubjectTrack]] = {}
    for row in annotations:
        subjects.setdefault(row["clip_id"], []).append(SubjectTrack(
            label=row["fine_label"] or row["label"],
            frame_indices=tuple(row["frame_indices"] or ()),
            boxes=tuple(tuple(b) for b in row["boxes"] or ()),
            mask_rles=tuple(row["mask_rles"] or ()),
            face_frames=tuple(row["face_frame_indices"] or ()),
            face_boxes=tuple(tuple(b) for b in row["face_boxes"] or ()),
        ))
    events = {r["clip_id"]: tuple(r["events"] or ()) for r in timelines}
    return {
        c["clip_id"]: ClipOverlay(
            clip_id=c["clip_id"], duration_s=float(c["duration_s"]),
            rejected_reasons=tuple(c["reasons"] or ()) if not c["kept"] else (),
            subjects=tuple(subjects.get(c["clip_id"], ())) if c["kept"] else (),
            events=events.get(c["clip_id"], ()) if c["kept"] else (),
            caption=c["caption"],
        )
        for c in curated
    }


def clip_previews(ctx: StageContext) -> dict[str, Any]:
    """Annotated preview per curated clip (rejected ones with their reasons) and a contact sheet."""
    from curation.clip_spans import ClipSpan
    from curation.video_io import open_location

    cfg = ctx.params.clip_previews
    curated = read_table(ctx.store, ctx.table_key("curated_clips"), needed_by="clip_previews").to_pylist()
    annotations = read_table(ctx.store, ctx.table_key("annotations"), needed_by="clip_previews").to_pylist()
    timelines = read_table(ctx.store, ctx.table_key("timelines"), needed_by="clip_previews").to_pylist()
    scenes = {r["clip_id"]: r for r in read_table(ctx.store, ctx.table_key("scene_clips"), needed_by="clip_previews").to_pylist()}
    overlays = clip_overlays(curated, annotations, timelines)
    prefix = layout.previews(ctx.shard)
    rows, thumbs = [], []
    with temp_dir() as tmp, ctx.store.staged_prefix(prefix) as staging:
        for i, clip in enumerate(curated):
            report(f"clip_previews[{ctx.shard}]", i, len(curated), clip["clip_id"])
            overlay = overlays[clip["clip_id"]]
            local = Path(tmp) / f"{clip['clip_id']}.mp4"
            # a rejected clip was never written: its span is rendered from the source video
            span = None if clip["clip_key"] else ClipSpan.of(scenes[clip["clip_id"]])
            where = open_location(ctx.store, scenes[clip["clip_id"]]["source_path"]) if span else \
                ctx.store.open_stream(clip["clip_key"])
            with where as src:
                out = render_preview(src, overlay, local, fps=clip["fps"], source_width=clip["width"], width=cfg.width,
                                     max_seconds=cfg.max_seconds, max_fps=cfg.max_fps, crf=cfg.crf, preset=cfg.preset,
                                     mask_alpha=cfg.mask_alpha, span=span)
            ctx.store.put_file(f"{staging}/{clip['clip_id']}.mp4", local)
            ctx.store.put_bytes(f"{staging}/{clip['clip_id']}.png", encode_png(out["thumbnail"]))
            status = "kept" if clip["kept"] else "rejected"
            thumbs.append((f"{clip['clip_id']} ({status})", out["thumbnail"]))
            rows.append({
                "clip_id": clip["clip_id"], "shard": ctx.shard, "status": status,
                "reasons": list(overlay.rejected_reasons), "subjects": len(overlay.subjects), "faces": out["faces"],
                "events": len(overlay.events), "frames": out["frames"], "fps": out["fps"],
                "preview_key": preview_key(ctx.shard, clip["clip_id"]),
                "thumbnail_key": thumbnail_key(ctx.shard, clip["clip_id"]),
            })
        if thumbs:
            ctx.store.put_bytes(f"{staging}/{SHEET_NAME}", contact_sheet(thumbs, cfg.sheet_columns, cfg.thumb_width))
    report(f"clip_previews[{ctx.shard}]", len(curated), len(curated), "done")
    write_table(ctx.store, ctx.table_key(), to_table(rows, CLIP_PREVIEWS))
    return {
        "table": ctx.table_key(),
        "previews_key": prefix,
        **({"contact_sheet_key": contact_sheet_key(ctx.shard)} if thumbs else {}),
        "previews": len(rows),
        "rejected_previews": sum(r["status"] == "rejected" for r in rows),
        "subjects_drawn": sum(r["subjects"] for r in rows),
        "face_boxes_drawn": sum(r["faces"] for r in rows),
        "preview": [{"clip_id": r["clip_id"], "status": r["status"], "reasons": ", ".join(r["reasons"]),
                     "subjects": r["subjects"], "events": r["events"]} for r in rows[:20]],
    }



def shards_with_previews(store: Any) -> list[str]:
    """Shards whose contact sheet is in the store."""
    return sorted(k.split("/")[1] for k in store.list(PREFIX) if k.count("/") == 2 and k.endswith(f"/{SHEET_NAME}"))
