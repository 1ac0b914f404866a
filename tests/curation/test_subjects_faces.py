import numpy as np
import pytest

from curation import faces as F
from curation.subjects import colour_of, refine_mask, track_entities, verify_track


def _moving_person(n=12, size=(160, 120)):
    rng = np.random.default_rng(0)
    bg = (rng.random((size[1], size[0], 3)) * 40 + 100).astype(np.uint8)
    frames, boxes = [], []
    for k in range(n):
        f = bg.copy()
        x = 10 + 8 * k
        f[40:100, x : x + 20] = (200, 40, 40)  # a red "person"
        f[60:80, 120:140] = (40, 70, 200) if k % 2 else bg[60:80, 120:140]  # a blinking blue patch
        frames.append(f)
        boxes.append((x, 40, x + 20, 100))
    return np.stack(frames), boxes


def test_track_entities_follows_the_moving_subject():
    frames, truth = _moving_person()
    tracks = track_entities(frames, np.arange(len(frames)), [("e0", "living", "the man in a red shirt")],
                            diff_threshold=18, min_area_fraction=0.005, grabcut_iterations=1, max_jump=0.3)
    t = tracks["e0"]
    assert len(t.frame_indices) >= 10
    ious = [F.iou(b, truth[i]) for i, b in zip(t.frame_indices, t.boxes, strict=True)]
    assert np.mean(ious) > 0.7
    ok, score = verify_track(t, len(frames), 0.5)
    assert ok and score > 0.8


def test_objects_need_a_colour_cue():
    frames, _ = _moving_person()
    ents = [("e0", "living", "the man"), ("e1", "non_living", "the ball"), ("e2", "non_living", "the blue box")]
    tracks = track_entities(frames, np.arange(len(frames)), ents, diff_threshold=18, min_area_fraction=0.005,
                            grabcut_iterations=0, max_jump=0.3)
    assert tracks["e1"].frame_indices == []  # no colour cue: not claimed
    assert len(tracks["e2"].frame_indices) >= 4  # the blue patch, when visible


def test_clean_mask_keeps_largest_component():
    m = np.zeros((50, 50), bool)
    m[5:25, 5:25] = True
    m[40:43, 40:43] = True
    out = refine_mask(m, kernel=3)
    assert out[10, 10] and not out[41, 41]
    assert colour_of("the woman in an orange shirt") == (230, 120, 30)


def test_nms_outliers_and_torso_crop():
    faces = [F.Face(0, (10, 10, 50, 50), 2.0), F.Face(0, (12, 12, 52, 52), 1.0), F.Face(1, (10, 10, 50, 50), 1.5)]
    kept = F.nms(faces, 0.25)
    assert kept == [faces[0], faces[2]]
    emb = [np.zeros(128), np.zeros(128), np.ones(128)]
    big = F.Face(2, (0, 0, 200, 200), 1.0)
    assert F.remove_outliers([faces[0], faces[2], big], emb, 0.6) == [0, 1]
    x, y, w, h = F.face_torso_crop([(100, 50, 140, 100)], 320, 240)
    assert (x, y) == (40, 25) and w % 2 == 0 and y + h <= 240


def test_dlib_finds_a_real_face():
    pytest.importorskip("dlib")
    import cv2
    import skimage

    from pathlib import Path

    img = cv2.cvtColor(cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    found = F.detect_faces(img, 0, upsample=0)
    assert len(found) == 1
    box = found[0].box
    assert F.face_embedding(img, box).shape == (128,)
    mask = F.face_mask(img, box)
    assert 0.3 < mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])].mean() <= 1.0
