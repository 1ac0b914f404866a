"""SigLIP post-verification loaded from a tiny checkpoint with a SentencePiece tokenizer."""

import numpy as np
import pytest

from curation.pretrained.errors import BackendLoadError
from curation.pretrained.verification import PROMPT, SiglipVerifier


@pytest.fixture(scope="module")
def verifier(tiny_siglip):
    return SiglipVerifier(str(tiny_siglip), batch_size=2)


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, shape, dtype=np.uint8)
            for shape in [(40, 20, 3), (32, 32, 3), (17, 60, 3), (64, 48, 3), (5, 5, 3)]]


def test_scores_are_sigmoid_probabilities_per_crop(verifier, crops, tiny_siglip):
    assert verifier.name == f"pretrained:siglip({tiny_siglip})"
    scores = verifier.score(crops, "man")
    assert scores.shape == (5,) and scores.dtype == np.float64
    assert np.all((scores > 0) & (scores < 1))
    assert len(np.unique(np.round(scores, 8))) == 5


def test_scores_match_siglip_logits_per_image(verifier, crops):
    """Same numbers as the model's own forward on max-length padded ids (no attention mask,
    as SigLIP's text tower was trained)."""
    import torch
    from PIL import Image

    inputs = verifier.processor(
        text=[PROMPT.format(label="man")], images=[Image.fromarray(c) for c in crops],
        padding="max_length", return_tensors="pt",
    )
    with torch.no_grad():
        logits = verifier.model(input_ids=inputs["input_ids"],
                                pixel_values=inputs["pixel_values"]).logits_per_image[:, 0]
    np.testing.assert_allclose(verifier.score(crops, "man"), torch.sigmoid(logits).numpy(),
                               atol=1e-6)


def test_scores_do_not_depend_on_batching(verifier, crops):
    together = verifier.score(crops, "red car")
    alone = np.concatenate([verifier.score([c], "red car") for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert not np.allclose(together, verifier.score(crops, "dog"))


def test_verifier_input_errors(verifier, tiny_clip):
    assert verifier.score([], "man").shape == (0,)
    with pytest.raises(ValueError, match="crop 1"):
        verifier.score([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)], "man")
    with pytest.raises(ValueError, match="non-empty label"):
        verifier.score([np.zeros((4, 4, 3), np.uint8)], "")
    with pytest.raises(BackendLoadError, match="expected 'siglip'"):
        SiglipVerifier(str(tiny_clip))
