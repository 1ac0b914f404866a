"""Tier 1: the difficulty equations (paper Eq. 1-2, D_overall) against hand-computed examples."""

import math

import numpy as np
import pytest

from training.difficulty import (
    DifficultyInputError,
    DifficultyWeights,
    appearance_difficulty,
    mask_area_fraction,
    overall_difficulty,
    subject_size_difficulty,
    subject_size_difficulty_ragged,
    subject_size_difficulty_rle,
)

PAPER = DifficultyWeights(0.5, 1.0, 1.0)


def _masks():
    """Two 4 x 5 frames with 6 and 2 subject pixels: Eq. 1 gives 1 - 8 / (2 * 20) = 0.8."""
    a = np.zeros((4, 5), bool)
    a[1:3, 1:4] = True  # 6 pixels
    b = np.zeros((4, 5), bool)
    b[0, 3:5] = True  # 2 pixels
    return a, b


def test_eq1_subject_size_by_hand():
    a, b = _masks()
    assert mask_area_fraction(a) == pytest.approx(0.3)
    assert mask_area_fraction(b) == pytest.approx(0.1)
    assert subject_size_difficulty([0.3, 0.1]) == pytest.approx(0.8)
    assert subject_size_difficulty([1.0]) == 0.0  # the subject fills the frame
    assert subject_size_difficulty([0.0, 0.0]) == 1.0  # too small to see


def test_eq1_from_the_masks_rles():
    from curation.rle import rle_encode

    a, b = _masks()
    assert subject_size_difficulty_rle([rle_encode(a), rle_encode(b)]) == pytest.approx(0.8)


def test_eq1_ragged_column_matches_per_sample():
    values = np.array([0.3, 0.1, 0.5, 0.2, np.nan, 0.4, 1.5], np.float32)
    offsets = np.array([0, 2, 3, 3, 5, 7])  # rows: [0.3, 0.1] [0.5] [] [0.2, nan] [0.4, 1.5]
    d = subject_size_difficulty_ragged(values, offsets)
    assert d[0] == pytest.approx(0.8) and d[1] == pytest.approx(0.5)
    assert np.isnan(d[2]) and np.isnan(d[3]) and np.isnan(d[4])  # empty, NaN, > 1: excluded, never 0
    clean = subject_size_difficulty_ragged(np.array([0.25, 0.75, 0.5]), np.array([0, 2, 3, 3]))
    assert clean[:2] == pytest.approx([0.5, 0.5]) and np.isnan(clean[2])  # a trailing empty row


@pytest.mark.parametrize("fractions, reason", [([], "missing_mask"), ([0.2, 1.5], "invalid_mask"),
                                               ([0.2, float("nan")], "invalid_mask"), ([-0.1], "invalid_mask")])
def test_eq1_refuses_what_it_cannot_score(fractions, reason):
    with pytest.raises(DifficultyInputError) as exc:
        subject_size_difficulty(fractions)
    assert exc.value.reason == reason


def test_eq1_refuses_unreadable_rles():
    with pytest.raises(DifficultyInputError, match="not a readable COCO RLE") as exc:
        subject_size_difficulty_rle(['{"counts": "abc"}'])
    assert exc.value.reason == "invalid_mask"
    with pytest.raises(DifficultyInputError) as exc:
        subject_size_difficulty_rle([])
    assert exc.value.reason == "missing_mask"


def test_eq2_appearance_by_hand():
    ref = np.array([[1.0, 0.0]])
    regions = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]) * 3.0  # cosines 1, 0, 1/sqrt(2)
    expected = 1.0 - (1.0 + 0.0 + 1.0 / math.sqrt(2.0)) / 3.0
    assert appearance_difficulty(ref, regions) == pytest.approx(expected)
    # two references: Eq. 2 averaged over them (cosines 1 and 0)
    assert appearance_difficulty(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[5.0, 0.0]])) == pytest.approx(0.5)
    # an exact copy of the reference in every frame is the easiest case
    assert appearance_difficulty(ref, np.array([[2.0, 0.0]] * 4)) == pytest.approx(0.0)
    # the opposite look is the hardest
    assert appearance_difficulty(ref, np.array([[-1.0, 0.0]])) == pytest.approx(2.0)


@pytest.mark.parametrize("ref, regions, reason", [
    (np.zeros((0, 2)), np.ones((1, 2)), "missing_reference"),
    (np.ones((1, 2)), np.zeros((0, 2)), "missing_subject_regions"),
    (np.zeros((1, 2)), np.ones((1, 2)), "missing_reference"),
    (np.ones((1, 2)), np.array([[1.0, np.nan]]), "missing_subject_regions"),
])
def test_eq2_refuses_missing_features(ref, regions, reason):
    with pytest.raises(DifficultyInputError) as exc:
        appearance_difficulty(ref, regions)
    assert exc.value.reason == reason


def test_overall_is_the_weighted_sum():
    d = overall_difficulty(np.array([0.8, 0.2]), np.array([0.431, 0.0]), np.array([0, 1], np.int8), PAPER)
    assert d == pytest.approx([0.5 * 0.8 + 0.431, 0.5 * 0.2 + 0.0 + 1.0])
    only_sam = overall_difficulty(np.array([0.8]), np.array([0.4]), np.array([1]), DifficultyWeights(0, 0, 1))
    assert only_sam == pytest.approx([1.0])


def test_overall_refuses_unscored_rows():
    with pytest.raises(ValueError, match="d_app has 1 non-finite"):
        overall_difficulty(np.array([0.5]), np.array([np.nan]), np.array([0]), PAPER)
    with pytest.raises(ValueError, match="d_sam must be 0"):
        overall_difficulty(np.array([0.5]), np.array([0.5]), np.array([2]), PAPER)
