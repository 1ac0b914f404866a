import numpy as np
import pytest

from curation.quality import blockiness, immerkaer_noise, largest_free_rectangle, motion_score
from curation.stages import rejection_reasons
from curation.video_io import FrameBatch


def _texture(h, w, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0), 2)


def _batch(frames):
    frames = np.stack(frames)
    return FrameBatch(frames, np.arange(len(frames)), 10.0, (frames.shape[2], frames.shape[1]))


def test_camera_pan_has_no_foreground_motion_but_a_moving_object_does():
    bg = _texture(140, 260)
    pan = [bg[10:106, 2 * k : 2 * k + 128].copy() for k in range(8)]
    m_pan = motion_score(_batch(pan), flow_width=128, method="farneback", foreground_px=0.6, min_foreground_fraction=0.015)
    assert m_pan.camera > 1.0  # the camera moves ~2 px/frame
    assert m_pan.foreground == 0.0
    static = bg[10:106, 0:128]
    moving = []
    for k in range(8):
        f = static.copy()
        f[30:60, 10 + 3 * k : 40 + 3 * k] = (255, 40, 40)
        moving.append(f)
    m_obj = motion_score(_batch(moving), flow_width=128, method="farneback", foreground_px=0.6, min_foreground_fraction=0.015)
    assert m_obj.foreground > 1.0
    assert m_obj.camera < 0.3


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
    from core.params import load_params

    cfg = load_params(repo_root / "params.yaml").curated_clips
    good = {"motion_foreground": 1.0, "has_text": False, "text_free_area": 1.0, "sharpness": 100.0,
            "brightness": 0.5, "noise": 1.0, "blockiness": 1.0, "aesthetic": None}
    assert rejection_reasons(good, cfg) == []
    assert rejection_reasons({**good, **change}, cfg) == [reason]
