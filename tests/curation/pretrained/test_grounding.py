"""Florence-2 grounding: the answer parser on hand-written outputs (checked against
Florence-2's own post-processor) and the tiny fitted model through ``Florence2Grounder``."""

import numpy as np
import pytest

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.grounding import (
    Florence2Grounder,
    GroundedBox,
    location_scores,
    parse_phrase_grounding,
)

ANSWER = (
    "</s><s>a man<loc_100><loc_200><loc_300><loc_400><loc_500><loc_0><loc_999><loc_999>"
    "the image<loc_0><loc_0><loc_999><loc_999>"
    "dog<loc_10><loc_10><loc_5><loc_50><loc_7></s><pad>"
)


def test_parse_phrase_grounding_maps_bins_to_pixel_centres():
    boxes = parse_phrase_grounding(ANSWER, (640, 480), banned_phrases=["The image"])
    assert boxes == [
        GroundedBox("a man", (64.32, 96.24, 192.32, 192.24), (0, 1, 2, 3)),
        GroundedBox("a man", (320.32, 0.24, 639.68, 479.76), (4, 5, 6, 7)),
    ]  # "dog": x1 < x0 is no box; the trailing <loc_7> is short of a group


def test_parse_phrase_grounding_agrees_with_florence_post_processor(tiny_florence):
    """Florence-2's processor truncates the same bin centres to integers."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_florence.path)
    size = (333, 250)
    reference = processor.post_process_generation(
        ANSWER, task="<CAPTION_TO_PHRASE_GROUNDING>", image_size=size
    )["<CAPTION_TO_PHRASE_GROUNDING>"]
    ours = parse_phrase_grounding(ANSWER, size, banned_phrases=["the image"])
    theirs = [(label, box) for label, box in zip(reference["labels"], reference["bboxes"],
                                                 strict=True) if box[2] > box[0]]
    assert [b.phrase for b in ours] == [label for label, _ in theirs]
    for box, (_, expected) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(box.box, expected, atol=1.0)
        assert [int(v) for v in box.box] == expected


def test_location_scores_is_the_geometric_mean_probability():
    box = GroundedBox("a man", (0, 0, 1, 1), (4, 5, 6, 7))
    logprobs = np.log([0.9, 0.9, 0.9, 0.9, 0.5, 0.8, 1.0, 0.4])
    assert location_scores(box, logprobs) == pytest.approx((0.5 * 0.8 * 1.0 * 0.4) ** 0.25)


@pytest.fixture(scope="module")
def grounder(tiny_florence):
    return Florence2Grounder(str(tiny_florence.path), max_new_tokens=16)


def test_grounder_returns_the_fitted_box_in_frame_pixels(grounder, tiny_florence):
    assert grounder.name == f"pretrained:florence-2({tiny_florence.path})"
    height, width = tiny_florence.image.shape[:2]
    found = grounder.ground(tiny_florence.image, tiny_florence.label)
    assert len(found) == 1
    box, score = found[0]
    x0, y0, x1, y1 = ((b + 0.5) * s / 1000 for b, s in
                      zip(tiny_florence.bins, (width, height, width, height), strict=True))
    assert box == pytest.approx((x0, y0, x1, y1))
    assert 0.5 < score <= 1.0


def test_grounder_with_greedy_decoding_scores_the_same_box(tiny_florence):
    greedy = Florence2Grounder(str(tiny_florence.path), num_beams=1, max_new_tokens=16)
    (box, score), = greedy.ground(tiny_florence.image, tiny_florence.label)
    assert 0.5 < score <= 1.0 and box[2] > box[0] and box[3] > box[1]


def test_grounder_output_stays_in_the_frame_for_other_images(grounder):
    frame = np.random.default_rng(9).integers(0, 256, (30, 90, 3), dtype=np.uint8)
    for box, score in grounder.ground(frame, "a dog"):
        assert 0 <= box[0] < box[2] <= 90 and 0 <= box[1] < box[3] <= 30
        assert 0 < score <= 1


def test_grounder_rejects_bad_inputs_and_other_models(grounder, tiny_clip):
    with pytest.raises(ValueError, match="non-empty label"):
        grounder.ground(np.zeros((8, 8, 3), np.uint8), "  ")
    with pytest.raises(ValueError, match="uint8"):
        grounder.ground(np.zeros((8, 8, 3), np.float32), "a dog")
    with pytest.raises(BackendLoadError, match="expected 'florence2'"):
        Florence2Grounder(str(tiny_clip))
