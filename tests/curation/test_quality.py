import numpy as np
import pytest

from curation.quality import blockiness, immerkaer_noise, largest_free_rectangle, motion_score
from curation.clip_filters import rejection_reasons
from curation.video_io import FrameBatch


def _texture(h, w, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0), 2)


def _batch(frames):
    frames = np.stack(frames)
    return FrameBatch(frames, np.arange(len(frames)), 10.0, (frames.shape[2], frames.shape[1]))


@pytest.mark.parametrize(("method", "dis_preset"), [("farneback", "fast"), ("dis", "ultrafast"), ("dis", "medium")])
def test_camera_pan_has_no_foreground_motion_but_a_moving_object_does(method, dis_preset):
    flow = {"method": method, "dis_preset": dis_preset}
    bg = _texture(140, 260)
    pan = [bg[10:106, 2 * k : 2 * k + 128].copy() for k in range(8)]
    m_pan = motion_score(_batch(pan), flow_width=128, **flow, foreground_px=0.6, min_foreground_fraction=0.015)
    assert m_pan.camera > 1.0  # the camera moves ~2 px/frame
    assert m_pan.foreground == 0.0
    static = bg[10:106, 0:128]
    moving = []
    for k in range(8):
        f = static.copy()
        f[30:60, 10 + 3 * k : 40 + 3 * k] = (255, 40, 40)
        moving.append(f)
    m_obj = motion_score(_batch(moving), flow_width=128, **flow, foreground_px=0.6, min_foreground_fraction=0.015)
    assert m_obj.foreground > 1.0
    assert m_obj.camera < 0.3


def _moving_object(n, speed, seed=0):
    static = _texture(96, 128, seed)
    frames = []
    for k in range(n):
        f = static.copy()
        f[30:60, 10 + speed * k : 40 + speed * k] = (255, 40, 40)
        frames.append(f)
    return frames


def test_flow_on_every_other_pair_keeps_the_motion_decisions_and_windows_pick_the_same_pairs():
    from curation.quality import merge_motion

    kw = {"flow_width": 128, "method": "farneback", "foreground_px": 0.6, "min_foreground_fraction": 0.015}
    bg = _texture(140, 260)
    clips = {"pan": [bg[10:106, 2 * k : 2 * k + 128].copy() for k in range(13)],
             "static": [bg[10:106, 0:128].copy() for _ in range(13)],
             "slow": _moving_object(13, 1), "fast": _moving_object(13, 3, seed=1)}
    min_motion = 0.25
    for name, frames in clips.items():
        every = motion_score(_batch(frames), **kw)
        half = motion_score(_batch(frames), **kw, pair_stride=2)
        assert (every.pairs, half.pairs) == (12, 6)
        assert (half.foreground < min_motion) == (every.foreground < min_motion), name
        assert half.foreground == pytest.approx(every.foreground, rel=0.25, abs=0.05), name
        # two windows chained on their shared frame measure the same pairs as one pass
        batch = _batch(frames)
        first = FrameBatch(batch.frames[:7], batch.indices[:7], batch.fps, batch.source_size)
        second = FrameBatch(batch.frames[6:], batch.indices[6:], batch.fps, batch.source_size)
        merged = merge_motion([motion_score(first, **kw, pair_stride=2, first_pair=0),
                               motion_score(second, **kw, pair_stride=2, first_pair=6)])
        assert merged.pairs == half.pairs  # the same pairs, so the same means up to rounding
        for field in ("foreground", "camera", "foreground_fraction"):
            assert getattr(merged, field) == pytest.approx(getattr(half, field), rel=1e-9, abs=1e-12)
    assert motion_score(_batch(clips["fast"]), **kw, pair_stride=2).foreground > 1.0
    assert motion_score(_batch(clips["static"]), **kw, pair_stride=2).foreground == 0.0
    with pytest.raises(ValueError, match="pair_stride"):
        motion_score(_batch(clips["fast"]), **kw, pair_stride=0)


def test_largest_free_rectangle_avoids_boxes():
    assert largest_free_rectangle(320, 240, []) == (0, 0, 320, 240)
    # a subtitle band at the bottom leaves the area above it
    x, y, w, h = largest_free_rectangle(320, 240, [(40, 200, 280, 230)])
    assert (x, y, w) == (0, 0, 320) and h == 200
    # a logo in the top-right corner
    x, y, w, h = largest_free_rectangle(320, 240, [(250, 5, 310, 25)])
    assert w * h >= 320 * 212 and not (x < 310 and x + w > 250 and y < 25 and y + h > 5)
    assert w % 2 == 0 and h % 2 == 0


def test_immerkaer_noise_tracks_sigma():
    rng = np.random.default_rng(1)
    flat = np.full((200, 200), 128.0)
    for sigma in (2.0, 8.0):
        noisy = np.clip(flat + rng.normal(0, sigma, flat.shape), 0, 255).astype(np.uint8)
        assert immerkaer_noise(noisy) == pytest.approx(sigma, rel=0.15)


def test_blockiness_flags_visible_blocks():
    smooth = np.tile(np.linspace(0, 255, 128), (128, 1)).astype(np.uint8)
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.integers(0, 255, (16, 16)), np.ones((8, 8))).astype(np.uint8)
    assert blockiness(blocks) > 3 * blockiness(smooth)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"motion_foreground": 0.0}, "low_motion"),
        ({"has_text": True, "text_free_area": 0.2}, "text_overlay_uncroppable"),
        ({"sharpness": 1.0}, "blurry"),
        ({"brightness": 0.02}, "underexposed"),
        ({"noise": 99.0}, "noisy"),
        ({"blockiness": 9.0}, "blocky"),
        ({"aesthetic": 2.0}, "low_aesthetic"),
    ],
)
def test_rejection_reasons(repo_root, change, reason):
    from orchestration.params import load_params

    cfg = load_params(repo_root / "params.yaml").curated_clips
    good = {"motion_foreground": 1.0, "has_text": False, "text_free_area": 1.0, "sharpness": 100.0,
            "brightness": 0.5, "noise": 1.0, "blockiness": 1.0, "aesthetic": None}
    assert rejection_reasons(good, cfg) == []
    assert rejection_reasons({**good, **change}, cfg) == [reason]


def _clip_with_motion_and_text(path, n=60, fps=10):
    import cv2

    from core.video import write_video

    bg = _texture(120, 160, seed=3)
    frames = []
    for k in range(n):
        f = bg.copy()
        f[40:70, 10 + 2 * k % 110 : 40 + 2 * k % 110] = (250, 40, 40)
        if 20 <= k < 40:  # a caption for two seconds
            cv2.putText(f, "HELLO 42", (8, 110), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        frames.append(f)
    write_video(path, np.stack(frames), fps=fps, crf=12, preset="veryfast")


def test_a_clip_analysed_in_windows_scores_as_in_one_pass(tmp_path, base_params_raw):
    """Motion and text stream over every sampled frame, windows chained: the same figures as
    one window; technical quality reads a bounded spread of frames."""
    from orchestration.params import parse_params
    from curation.stages import analyse_clip

    path = tmp_path / "clip.mp4"
    _clip_with_motion_and_text(path)
    cfg = parse_params(base_params_raw).clip_quality
    whole = analyse_clip(path, cfg.model_copy(update={"window_frames": 128}))
    windowed = analyse_clip(path, cfg.model_copy(update={"window_frames": 8}))
    assert whole["frames_analysed"] == windowed["frames_analysed"] == 36  # 6 s at 6 fps
    assert windowed["decode_passes"] == 1
    for key in ("motion_foreground", "motion_camera", "foreground_fraction"):
        assert windowed[key] == pytest.approx(whole[key], rel=1e-9), key
    for key in ("text_frames_scanned", "text_frames_flagged", "has_text", "crop", "ocr_texts"):
        assert windowed[key] == whole[key], key
    assert whole["text_frames_flagged"] >= 1 and whole["motion_foreground"] > 0.5
    assert windowed["sharpness"] == pytest.approx(whole["sharpness"], rel=0.2)


def test_frame_spread_keeps_a_bounded_even_sample():
    from curation.quality import FrameSpread

    spread = FrameSpread(capacity=8)
    frames = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    for start in range(0, 50, 7):
        spread.add(FrameBatch(frames[start : start + 7], np.arange(start, min(50, start + 7)), 10.0, (2, 2)))
    kept = spread.batch()
    assert len(kept.frames) <= 8 and list(kept.indices) == [0, 8, 16, 24, 32, 40, 48]
    assert list(kept.frames[:, 0, 0, 0]) == list(kept.indices)
    whole = FrameSpread(capacity=64)
    whole.add(FrameBatch(frames, np.arange(50), 10.0, (2, 2)))
    assert list(whole.batch().indices) == list(range(50))  # a stream that fits is kept whole


def _captioned(frames: int, captions: list[tuple[int, str, tuple[int, int]]]):
    """Textured 320x240 frames; from frame `start` on, `text` drawn at `at` (later captions add to earlier ones)."""
    import cv2

    bg = _texture(240, 320, seed=3)
    out = []
    for k in range(frames):
        f = bg.copy()
        for start, text, at in captions:
            if k >= start:
                (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.7, 2)
                cv2.rectangle(f, (at[0] - 6, at[1] - th - 6), (at[0] + tw + 6, at[1] + 8), (0, 0, 0), -1)
                cv2.putText(f, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        out.append(f)
    return _batch(out)


@pytest.mark.parametrize("gate_width", [None, 160])
def test_text_scanner_reads_an_overlay_once_and_reads_text_in_a_new_place(gate_width):
    from curation.quality import TextScanner

    def scan(batches):
        scanner = TextScanner(every=1, confidence=0.7, min_chars=2, max_line_height=0.2, gate_width=gate_width)
        for batch in batches:
            scanner.add(batch)
        return scanner, scanner.result()

    subtitle = (0, "HELLO WORLD 42", (40, 220))
    scanner, text = scan([_captioned(6, [subtitle])])
    assert text.has_text and text.frames_scanned == text.frames_flagged == 6
    assert scanner.boxes_read == 1  # the same place in later frames: known text, not read again
    assert scanner.gated == 0  # the look at 160 px wide sees the subtitle in every frame
    # with the gate, frames after the first see the subtitle's gate box again: no full-size detection
    assert scanner.gate_known == (5 if gate_width else 0)
    x, y, w, h = text.crop
    assert y + h <= min(b[1] for b in text.boxes) and w == 320  # the crop ends above the subtitle

    # A second caption at the top from frame 3 on (in the second window): read, and avoided by the crop.
    both = _captioned(6, [subtitle, (3, "BREAKING NEWS", (60, 30))])
    scanner, text = scan([_batch(list(both.frames[:3])), _batch(list(both.frames[3:]))])
    assert scanner.boxes_read == 2 and text.frames_flagged == 6
    # the top caption is a gate box outside the known text: its first frame is detected at full size
    assert scanner.gate_known == (4 if gate_width else 0)
    tops = sorted(b[1] for b in text.boxes)
    x, y, w, h = text.crop
    assert len(tops) == 2 and tops[0] < 60 < tops[1]
    assert all(y >= b[3] or y + h <= b[1] for b in text.boxes)  # touches neither line

    # No text: every frame scanned by the detector, nothing read as text, the whole frame kept.
    scanner, blank = scan([_captioned(4, [])])
    assert not blank.has_text and blank.frames_scanned == 4 and blank.crop == (0, 0, 320, 240)
    assert scanner.gated == (4 if gate_width else 0)  # with the gate, no frame is detected at full size


def test_text_known_at_the_gate_gives_the_crop_of_detecting_every_frame_at_full_size():
    """Skipping the full-size detection of frames whose gate boxes hold known text changes no
    figure of the scan: flagged frames, boxes, texts and crop are those of the gate-less scan."""
    from curation.quality import TextScanner

    frames = _captioned(8, [(0, "HELLO WORLD 42", (40, 220)), (5, "BREAKING NEWS", (60, 30))])
    scans = {}
    for gate_width in (None, 160):
        scanner = TextScanner(every=1, confidence=0.7, min_chars=2, max_line_height=0.2, gate_width=gate_width)
        scanner.add(_batch(list(frames.frames[:4])))
        scanner.add(_batch(list(frames.frames[4:])))
        scans[gate_width] = (scanner, scanner.result())
    (_, full), (gated, fast) = scans[None], scans[160]
    assert gated.gate_known == 6  # only frames 0 and 5 (new text) detected at full size
    assert (fast.frames_flagged, fast.boxes, fast.texts, fast.crop) == (full.frames_flagged, full.boxes, full.texts, full.crop)


def test_the_gate_sees_a_subtitle_on_a_real_photo_that_the_detectors_own_boxes_miss_at_gate_width():
    """At 160 px the kernel of a small subtitle line is a few pixels tall: the detector's box
    filters drop it on this photograph, its probability map still marks it, and the gate passes
    the frame to the full-size detection, which reads it."""
    import cv2

    from curation.quality import TextScanner, _rapidocr
    from curation.synth.footage import package_file
    from curation.synth.render import SUBTITLES, draw_subtitle

    photo = cv2.cvtColor(cv2.imread(str(package_file("skimage", "data", "chelsea.png"))), cv2.COLOR_BGR2RGB)
    frame = cv2.resize(photo, (320, 240), interpolation=cv2.INTER_AREA)
    plain = frame.copy()
    draw_subtitle(frame, SUBTITLES[1])
    quads, _ = _rapidocr(320)(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA), use_cls=False, use_rec=False)
    assert quads is None or not len(quads)  # the detector's boxes at gate width: none

    def scan(image):
        scanner = TextScanner(every=1, confidence=0.7, min_chars=2, max_line_height=0.2, gate_width=160, gate_threshold=0.1)
        scanner.add(_batch([image]))
        return scanner, scanner.result()

    scanner, text = scan(frame)
    assert text.has_text and scanner.gated == 0
    assert text.crop[1] + text.crop[3] <= min(b[1] for b in text.boxes)  # cropped above the subtitle
    scanner, text = scan(plain)
    assert not text.has_text and scanner.gated == 1  # the photo alone: its map stays below the threshold
