"""Morphological mask refinement on synthetic masks, and SAM2 box prompts on a tiny model."""

import numpy as np
import pytest

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.segmentation import Sam2Masker, refine_mask


def _disk(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_refine_mask_keeps_the_subject_and_drops_specks():
    subject = _disk((80, 100), (40, 40), 20)
    noisy = subject.copy()
    noisy[5:7, 90:92] = True  # speck
    noisy[60:66, 85:95] = True  # a second, smaller blob
    noisy[38:43, 38:43] = False  # hole
    refined = refine_mask(noisy)
    assert not refined[5:7, 90:92].any() and not refined[60:66, 85:95].any()
    assert refined[38:43, 38:43].all()
    iou = (refined & subject).sum() / (refined | subject).sum()
    assert iou > 0.97


def test_refine_mask_fills_enclosed_holes_of_any_size():
    ring = _disk((60, 60), (30, 30), 25) & ~_disk((60, 60), (30, 30), 12)
    refined = refine_mask(ring, kernel=3)
    disk = _disk((60, 60), (30, 30), 25)
    assert refined[_disk((60, 60), (30, 30), 13)].all()
    assert (refined & disk).sum() / (refined | disk).sum() > 0.98


def test_refine_mask_keeps_thin_subjects_and_border_contact():
    thin = np.zeros((40, 40), bool)
    thin[10:30, 20:22] = True  # thinner than the kernel: opening would erase it
    assert refine_mask(thin, kernel=5)[10:30, 20:22].all()
    edge = np.zeros((40, 40), bool)
    edge[:, :15] = True  # touches three borders
    np.testing.assert_array_equal(refine_mask(edge), edge)


def test_refine_mask_edge_cases():
    empty = np.zeros((10, 12), bool)
    assert not refine_mask(empty).any() and refine_mask(empty).shape == (10, 12)
    with pytest.raises(ValueError, match="bool"):
        refine_mask(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="odd"):
        refine_mask(empty, kernel=4)


@pytest.fixture(scope="module")
def masker(tiny_sam2):
    return Sam2Masker(str(tiny_sam2))


@pytest.fixture(scope="module")
def frame():
    return np.random.default_rng(2).integers(0, 256, (96, 160, 3), dtype=np.uint8)


def test_masks_one_bool_mask_per_box(masker, frame, tiny_sam2):
    assert masker.name == f"pretrained:sam2.1({tiny_sam2})"
    boxes = [(10, 10, 60, 80), (80.5, 20, 150, 90)]
    masks, iou = masker.predict(frame, boxes)
    assert len(masks) == 2 and iou.shape == (2,)
    assert all(m.dtype == bool and m.shape == (96, 160) for m in masks)
    assert not np.array_equal(masks[0], masks[1])
    assert masker.masks(frame, []) == []


def test_boxes_are_scaled_per_axis_into_the_square_input(masker, frame):
    """A frame and its own 128 x 128 model input, prompted with the same box in each
    one's pixels, give the same SAM logits; the masks are those logits resized."""
    from PIL import Image

    box = (30.0, 12.0, 120.0, 84.0)
    sx, sy = 128 / 160, 128 / 96
    square = np.asarray(Image.fromarray(frame).resize((128, 128), Image.BILINEAR))
    square_box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    logits, iou = masker.low_res_logits(frame, [box])
    square_logits, square_iou = masker.low_res_logits(square, [square_box])
    assert logits.shape == (1, 32, 32)
    scale = np.abs(logits).max()  # random weights give tiny logits: compare relative to them
    np.testing.assert_allclose(logits / scale, square_logits / scale, atol=1e-3)
    np.testing.assert_allclose(iou, square_iou, rtol=1e-4)
    other, _ = masker.low_res_logits(frame, [(box[0], box[1], box[2], box[3] - 40)])
    assert np.abs(logits - other).max() / scale > 0.05
    # each low-resolution logit covers 4 x 4 pixels of the 128 px square; the mask pixel
    # nearest its centre follows its sign
    mask = masker.masks(square, [square_box])[0]
    assert np.mean(mask[2::4, 2::4] == (logits[0] > 0)) > 0.9


def test_masker_input_errors(masker, frame, tiny_clip):
    with pytest.raises(ValueError, match="outside"):
        masker.masks(frame, [(200, 10, 220, 20)])
    with pytest.raises(ValueError, match="empty"):
        masker.masks(frame, [(50, 10, 40, 20)])
    with pytest.raises(BackendLoadError, match="expected 'sam2'"):
        Sam2Masker(str(tiny_clip))
