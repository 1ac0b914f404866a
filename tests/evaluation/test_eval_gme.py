import numpy as np
import pytest

from evaluation.metrics.base import SampleContext
from evaluation.metrics.gme import GmeEmbedder, GmeScore, resize_to_factor


@pytest.fixture(scope="module")
def embedder(tiny_gme_dir) -> GmeEmbedder:
    # 4..16 visual tokens keep the tiny vision tower fast
    return GmeEmbedder(tiny_gme_dir, min_image_tokens=4, max_image_tokens=16)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((64, 80), (56, 84)), ((10, 10), (56, 56)), ((480, 832), (476, 840))],
)
def test_resize_to_factor(size, expected):
    assert resize_to_factor(*size) == expected


def test_text_embeddings_do_not_depend_on_batch_padding(embedder):
    alone = embedder.embed_texts(["a red cat"])
    batch = embedder.embed_texts(
        ["a red cat", "a dog runs on the grass and a cat runs on the grass"]
    )
    assert alone.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0)
    np.testing.assert_allclose(batch[0], alone[0], atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


def test_image_embeddings(embedder, shifting_clip):
    frames = shifting_clip(3, 4, 0)
    emb = embedder.embed_images(frames)
    assert emb.shape == (3, 32)
    np.testing.assert_allclose(emb[:1], embedder.embed_images(frames[:1]), atol=1e-5)


def test_gme_score_is_the_mean_text_frame_similarity(embedder, shifting_clip):
    frames = shifting_clip(5, 4, 0)
    metric = GmeScore(embedder, num_frames=3, batch_size=2)
    value = metric(frames, SampleContext(prompt="a red cat"))
    text = embedder.embed_texts(["a red cat"])[0]
    expected = (embedder.embed_images(frames[[0, 2, 4]]) @ text).mean()
    assert value.value == pytest.approx(expected, abs=1e-5)
    assert value.spec.backend == "pretrained" and value.spec.key == "gme"
    with pytest.raises(ValueError, match="needs the sample's prompt"):
        metric(frames, SampleContext())
