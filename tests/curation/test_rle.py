import json

import numpy as np
import pytest

from curation.rle import counts_to_string, rle_area, rle_bbox, rle_decode, rle_encode, string_to_counts


def test_hand_computed_runs():
    # column-major: column 0 = [0, 1], column 1 = [1, 1] -> runs 1 zero, 3 ones
    mask = np.array([[0, 1], [1, 1]], bool)
    obj = json.loads(rle_encode(mask))
    assert obj["size"] == [2, 2]
    assert string_to_counts(obj["counts"]) == [1, 3]
    # a mask starting with foreground starts with a zero-length background run
    assert string_to_counts(json.loads(rle_encode(np.ones((2, 2), bool)))["counts"]) == [0, 4]


def test_pycocotools_string_format():
    # From the fourth run on, pycocotools stores each run as its difference from the run
    # two before it: [5, 3, 2, 1] -> '5' '3' '2' then 1 - 3 = -2 -> chr(48 + (-2 & 31)) = 'N'
    assert counts_to_string([5, 3, 2, 1]) == "532N"
    assert string_to_counts("532N") == [5, 3, 2, 1]
    assert string_to_counts(counts_to_string([100, 2000, 7, 65536, 3])) == [100, 2000, 7, 65536, 3]


@pytest.mark.parametrize("seed", range(5))
def test_roundtrip_area_bbox(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((37, 53)) > 0.7
    rle = rle_encode(mask)
    assert np.array_equal(rle_decode(rle), mask)
    assert rle_area(rle) == mask.sum()
    ys, xs = np.nonzero(mask)
    assert rle_bbox(rle) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_empty_and_bad():
    rle = rle_encode(np.zeros((4, 5), bool))
    assert rle_area(rle) == 0 and rle_bbox(rle) is None
    with pytest.raises(ValueError, match="not a COCO RLE"):
        rle_decode("garbage")
    with pytest.raises(ValueError, match="runs sum"):
        rle_decode(json.dumps({"size": [2, 2], "counts": [1, 1]}))
