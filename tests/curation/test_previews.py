"""Annotated previews: the mask, box and face box land where the annotation says, the timeline
bar names the current sub-action, rejected clips carry their reasons, the preview is H.264."""

from __future__ import annotations

import numpy as np
import pytest

from curation.previews import (
    BANNER_HEIGHT,
    BAR_HEIGHT,
    PALETTE,
    ClipOverlay,
    SubjectTrack,
    clip_overlays,
    contact_sheet,
    current_event,
    draw_frame,
    render_preview,
)
from curation.rle import rle_encode

H, W = 64, 96
EVENTS = ({"start": 0.0, "end": 1.0, "description": "walks left"}, {"start": 1.0, "end": 2.0, "description": "jumps"})


def _subject(mask_box=(20, 10, 50, 40), face=(25, 12, 35, 22), label: str = "") -> SubjectTrack:
    mask = np.zeros((H, W), np.uint8)
    x0, y0, x1, y1 = mask_box
    mask[y0:y1, x0:x1] = 1
    return SubjectTrack(label, (0, 4), (tuple(map(float, mask_box)),) * 2, (rle_encode(mask),) * 2,
                        face_frames=(0,), face_boxes=(tuple(map(float, face)),))


@pytest.mark.parametrize("t, expected", [(0.0, "walks left"), (0.99, "walks left"), (1.0, "jumps"),
                                         (2.0, "jumps"), (2.5, None)])
def test_current_event_is_the_one_holding_the_second(t, expected):
    event = current_event(EVENTS, t)
    assert (event["description"] if event else None) == expected


def test_mask_box_and_face_are_drawn_where_annotated_at_the_preview_scale():
    frame = np.zeros((H // 2, W // 2, 3), np.uint8)  # a preview at half the clip's size
    overlay = ClipOverlay("c", 2.0, subjects=(_subject(),), events=EVENTS)  # no label text over the pixels checked
    image, faces = draw_frame(frame, 0, 10.0, 0.5, overlay, mask_alpha=0.5)
    assert image.shape == (H // 2 + BANNER_HEIGHT + BAR_HEIGHT, W // 2, 3) and faces == 1
    body = image[BANNER_HEIGHT:BANNER_HEIGHT + H // 2]
    inside, outside = body[16, 22], body[28, 5]  # mask interior (clip px 44, 32) / background
    assert np.allclose(inside, 0.5 * np.array(PALETTE[0]), atol=2) and not outside.any()
    assert tuple(body[5, 10]) == tuple(PALETTE[0])  # the box's top-left corner (clip px 20, 10)
    assert tuple(body[6, 15]) == (255, 255, 255)  # the face box's top edge (clip px 30, 12)
    # a frame far from any annotated one gets no overlay (nothing stale is drawn)
    far, faces = draw_frame(frame, 40, 10.0, 0.5, overlay, mask_alpha=0.5)
    assert not far[BANNER_HEIGHT:BANNER_HEIGHT + H // 2].any() and faces == 0


def test_timeline_bar_marks_the_current_sub_action():
    frame = np.zeros((H, W, 3), np.uint8)
    overlay = ClipOverlay("c", 2.0, subjects=(), events=EVENTS)
    early, _ = draw_frame(frame, 5, 10.0, 1.0, overlay, 0.4)  # 0.5 s: the first sub-action is bright
    late, _ = draw_frame(frame, 15, 10.0, 1.0, overlay, 0.4)
    bar_early, bar_late = early[-BAR_HEIGHT:], late[-BAR_HEIGHT:]
    first, second = bar_early[4, 10].astype(int), bar_early[4, 70].astype(int)
    assert first.sum() > second.sum()
    assert bar_late[4, 10].sum() < bar_late[4, 70].sum()
    assert not np.array_equal(early[-BAR_HEIGHT:], late[-BAR_HEIGHT:])


def test_a_rejected_clip_shows_its_reasons_on_a_red_banner():
    curated = [{"clip_id": "a", "kept": False, "reasons": ["low_motion", "blurry"], "duration_s": 3.0,
                "caption": "x"}, {"clip_id": "b", "kept": True, "reasons": [], "duration_s": 3.0, "caption": "y"}]
    annotation = {"clip_id": "b", "label": "man", "fine_label": "the man", "frame_indices": [0],
                  "boxes": [[1, 1, 5, 5]], "mask_rles": [None], "face_frame_indices": None, "face_boxes": None}
    overlays = clip_overlays(curated, [annotation], [{"clip_id": "b", "events": list(EVENTS)}])
    assert overlays["a"].rejected_reasons == ("low_motion", "blurry") and not overlays["a"].subjects
    assert overlays["b"].rejected_reasons == () and overlays["b"].subjects[0].label == "the man"
    image, _ = draw_frame(np.zeros((H, W, 3), np.uint8), 0, 10.0, 1.0, overlays["a"], 0.4)
    assert (image[1] == (200, 30, 30)).all()  # above the text


def test_render_preview_writes_h264_with_the_overlays(tmp_path):
    import av

    from core.video import write_video

    frames = np.full((30, H, W, 3), 90, np.uint8)
    clip = write_video(tmp_path / "clip.mp4", frames, fps=10, crf=10, preset="ultrafast")
    overlay = ClipOverlay("c", 3.0, subjects=(_subject(),), events=EVENTS)
    out = render_preview(clip, overlay, tmp_path / "preview.mp4", fps=10.0, source_width=W, width=W, max_seconds=2.0,
                         max_fps=5.0, crf=18, preset="ultrafast", mask_alpha=0.4)
    assert out["frames"] == 10 and out["fps"] == 5.0  # 2 s at 5 fps
    with av.open(str(tmp_path / "preview.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 10 and decoded[0].shape == (H + BANNER_HEIGHT + BAR_HEIGHT, W, 3)
    assert out["faces"] >= 1


def test_contact_sheet_is_a_png_grid():
    import cv2

    png = contact_sheet([(f"clip {i}", np.full((40, 60, 3), 40 * i, np.uint8)) for i in range(5)], 2, 120)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == 240 and image.shape[0] == 3 * (80 + 16)
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([], 2, 120)


def test_contact_sheet_titles_are_shortened_to_their_cell():
    import cv2

    from curation.previews import _fit_text

    title = "demo-real_carphone_pristine-s00 (kept)"
    fitted = _fit_text(title, 160, 0.38)
    assert cv2.getTextSize(fitted, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)[0][0] <= 160
    assert ".." in fitted and fitted.endswith("(kept)") and fitted.startswith("demo-")
    assert _fit_text("s00", 160, 0.38) == "s00"


def test_a_rejected_clip_never_written_is_previewed_from_its_source_span(tmp_path):
    from fractions import Fraction

    from core.video import write_video
    from curation.clip_spans import ClipSpan
    from curation.video_io import VideoDecoder

    frames = np.stack([np.full((H, W, 3), 10 * k, np.uint8) for k in range(25)])
    source = write_video(tmp_path / "source.mp4", frames, fps=10, crf=10, preset="ultrafast")
    start = next(d for d in VideoDecoder(source) if d.index == 10)
    span = ClipSpan(10, 25, start.time_s, start.pts, Fraction(10))
    overlay = ClipOverlay("c", 1.5, rejected_reasons=("low_motion",))
    out = render_preview(source, overlay, tmp_path / "preview.mp4", fps=10.0, source_width=W, width=W, max_seconds=1.0,
                         max_fps=10.0, crf=18, preset="ultrafast", mask_alpha=0.4, span=span)
    assert out["frames"] == 10  # the first second of the span, not of the source
    assert abs(int(out["thumbnail"][BANNER_HEIGHT + 20, 5, 0]) - 150) <= 6  # frame 15 in the middle
