"""Tier 1: screening of annotation rows, reference frames and crops, inter-clip pairing."""

import numpy as np
import pytest

from core.images import decode_png, encode_png
from curation.subject_crops import choose_reference_frames, crop_subject
from training.samples import SubjectKey, pair_inter_clip, screen_subject


def _row(**kw):
    row = {"verified": True, "frame_indices": [0, 2, 4, 6], "boxes": [[10, 10, 20, 30]] * 4,
           "mask_rles": ["r"] * 4, "mask_area_fractions": [0.1, 0.4, 0.2, 0.3], "representative_frames": [6, 2]}
    row.update(kw)
    return row


@pytest.mark.parametrize("edit, target, reference", [
    ({}, None, None),
    ({"mask_rles": None, "mask_area_fractions": None}, "missing_mask", None),  # still a good reference
    ({"mask_area_fractions": []}, "missing_mask", None),
    ({"mask_area_fractions": [0.1, 0.4, float("nan"), 0.3]}, "invalid_mask", None),
    ({"mask_area_fractions": [0.1, 0.4, 1.2, 0.3]}, "invalid_mask", None),
    ({"mask_area_fractions": [0.1, 0.4]}, "invalid_mask", None),
    ({"boxes": []}, "missing_reference", "missing_reference"),
    ({"boxes": [[10, 10, 10, 30]] * 4}, "missing_reference", "missing_reference"),  # zero width everywhere
    ({"verified": False}, "unverified_subject", "unverified_subject"),
])
def test_screening(edit, target, reference):
    s = screen_subject(_row(**edit))
    assert (s.target_reason, s.reference_reason) == (target, reference)
    assert (s.detail is not None) == (target is not None)


def test_reference_frame_policies():
    row = _row()
    assert choose_reference_frames(row, "largest_mask", 2) == [2, 6]  # fractions 0.4 and 0.3
    assert choose_reference_frames(row, "representative", 1) == [6]  # the face's best frame
    assert choose_reference_frames(row, "representative", 3) == [2, 4, 6]  # topped up by mask size
    assert choose_reference_frames(row, "uniform", 2) == [0, 6]
    # a representative frame without a subject box is skipped
    assert choose_reference_frames(_row(representative_frames=[5, 2]), "representative", 1) == [2]
    # no mask: box area ranks the frames
    boxes = [[0, 0, 4, 4], [0, 0, 9, 9], [0, 0, 2, 2], [0, 0, 5, 5]]
    assert choose_reference_frames(_row(mask_area_fractions=None, boxes=boxes), "largest_mask", 1) == [2]
    assert choose_reference_frames(_row(boxes=[]), "largest_mask", 1) == []
    with pytest.raises(ValueError, match="unknown policy"):
        choose_reference_frames(row, "random", 1)


def test_crop_pads_clips_and_resizes():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[20:40, 30:40] = (255, 0, 0)  # a 10 x 20 red subject
    crop = crop_subject(frame, [30, 20, 40, 40], padding=0.5, size=40)
    # the box grows by 5 px left/right and 10 px up/down: 20 x 40 px, scaled to longest side 40
    assert crop.shape == (40, 20, 3)
    assert np.all(crop[12:28, 7:13] == (255, 0, 0)) and np.all(crop[:8, :] == 0)
    edge = crop_subject(frame, [75, 50, 80, 60], padding=1.0, size=32)  # clipped at the frame's corner
    assert edge.shape[0] == 32 or edge.shape[1] == 32
    assert crop_subject(frame, [10, 10, 10.5, 10.5], padding=0.0, size=32) is None  # under 2 x 2 px
    assert crop_subject(frame, None, padding=0.1, size=32) is None


def test_png_round_trip_is_lossless():
    image = np.random.default_rng(0).integers(0, 255, (17, 23, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(image)), image)


def test_inter_clip_pairs_same_identity_other_clip_similar_enough():
    subjects = [
        SubjectKey("c1", "c1-e0", "ann", "woman"),
        SubjectKey("c2", "c2-e0", "ann", "woman"),  # like c1
        SubjectKey("c3", "c3-e0", "ann", "woman"),  # same person, looks different
        SubjectKey("c1", "c1-e1", "ann", "woman"),  # same clip as c1-e0: never an inter-clip pair with it
        SubjectKey("c4", "c4-e0", "bob", "man"),
        SubjectKey("c5", "c5-e0", None, "man"),  # no identity: no pairs
    ]
    x = np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    ok = np.ones(6, bool)
    pairs = pair_inter_clip(subjects, x, ok, ok, threshold=0.9, per_subject=1)
    assert {(subjects[i].entity_id, subjects[j].entity_id) for i, j, _ in pairs} == {
        ("c1-e0", "c2-e0"), ("c2-e0", "c1-e0"), ("c1-e1", "c2-e0")}
    assert all(sim == pytest.approx(0.96) for _, _, sim in pairs)
    # a subject that cannot give references is never one; one that cannot be a target gets none
    can_ref = ok.copy()
    can_ref[1] = False
    can_target = ok.copy()
    can_target[3] = False
    limited = pair_inter_clip(subjects, x, can_target, can_ref, threshold=0.9, per_subject=1)
    assert [(subjects[i].entity_id, subjects[j].entity_id) for i, j, _ in limited] == [("c2-e0", "c1-e0")]
    assert pair_inter_clip(subjects, x, ok, ok, threshold=0.9, per_subject=0) == []
    two = pair_inter_clip(subjects, x, ok, ok, threshold=-1.0, per_subject=2)
    assert [subjects[j].entity_id for i, j, _ in two if i == 0] == ["c2-e0", "c3-e0"]  # most similar first



def test_features_of_crops_of_any_size_keep_their_order():
    from curation.features import build_frame_embedder
    from training.samples import embed_images

    encoder = build_frame_embedder("embedded", "unused")
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in [(40, 30, 3), (30, 40, 3), (40, 30, 3)]]
    feats = embed_images(encoder, crops)
    assert feats.shape == (3, 256) and np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    for i, crop in enumerate(crops):  # batched by shape, returned in the order given
        assert np.allclose(feats[i], embed_images(encoder, [crop])[0], atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        embed_images(encoder, [])
