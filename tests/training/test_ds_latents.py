"""The latent / text-embedding cache on the tiny preset: a real H.264 clip and reference
image are encoded once, found again by content, and turned into a trainable batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.storage import LocalObjectStore
from core.timeline import SubAction, Timeline
from core.video import write_video
from training.batches import CachedBatchSource
from training.latents import (
    EmbeddingCache,
    SampleInputs,
    clip_pixels,
    load_cache_encoders,
    load_tensors,
    read_index,
    write_index,
)

FRAMES, HEIGHT, WIDTH, FPS = 12, 48, 64, 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits on a shared CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_clip(path, shift: int = 0):
    """Left half red, right half blue; frame t has brightness 40 + 15 t in the green channel."""
    frames = np.zeros((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    frames[:, :, : WIDTH // 2, 0] = 220
    frames[:, :, WIDTH // 2 :, 2] = 220
    frames[..., 1] = (40 + 15 * np.arange(FRAMES) + shift)[:, None, None]
    return write_video(path, frames, fps=FPS, crf=0, preset="ultrafast")


@pytest.fixture(scope="module")
def encoders():
    return load_cache_encoders("tiny", seed=0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("raw")
    image = folder / "man.png"
    Image.fromarray(np.full((40, 24, 3), (200, 150, 120), np.uint8)).save(image)
    timeline = Timeline(
        "a man waves",
        (SubAction(0.0, 0.75, "raises his hand", "man"), SubAction(0.75, 1.5, "waves", "man")),
        duration=1.5,
    )
    masks = np.zeros((1, 3, 8, 8), np.float32)
    masks[..., 2:6, 2:5] = 1.0
    return SampleInputs("clip-0", write_clip(folder / "clip.mp4"), "a man waves at the camera",
                        timeline, (image,), ("man",), masks)


@pytest.fixture(scope="module")
def cached(encoders, inputs, tmp_path_factory):
    store = LocalObjectStore(tmp_path_factory.mktemp("store"))
    cache = EmbeddingCache(store, encoders)
    index = cache.build_index([inputs])
    return store, cache, index


def test_clip_pixels_spread_frames_and_crop_the_centre(inputs):
    pixels = clip_pixels(inputs.clip, 32, 32, 9)
    assert pixels.shape == (3, 9, 32, 32)
    assert pixels.min() >= -1 and pixels.max() <= 1
    # 9 of 12 frames, first and last included, in order (green brightness rises per frame).
    green = (pixels[1].mean(dim=(1, 2)) + 1) * 127.5
    assert green[0] == pytest.approx(40, abs=4) and green[-1] == pytest.approx(40 + 15 * 11, abs=4)
    assert torch.all(green[1:] > green[:-1])
    # The 48x48 centre crop keeps both halves: red left, blue right.
    assert pixels[0, :, :, :12].mean() > 0.5 and pixels[2, :, :, :12].mean() < -0.5
    assert pixels[2, :, :, 20:].mean() > 0.5 and pixels[0, :, :, 20:].mean() < -0.5


def test_first_call_encodes_everything_with_the_preset_shapes(cached):
    store, cache, index = cached
    record = index.samples["clip-0"]
    # reference, 2 actions, folded timeline prompt, clip, prompt, masks, empty prompt
    assert cache.hits == 0 and cache.misses == 8
    assert load_tensors(store, record.latents)["latents"].shape == (4, 5, 16, 16)
    assert load_tensors(store, record.prompt)["embeds"].shape == (32, 32)
    assert load_tensors(store, record.references[0])["latents"].shape == (4, 16, 16)
    action = load_tensors(store, record.actions[0])
    assert action["embeds"].shape == (16, 32) and action["mask"].dtype == torch.bool
    assert record.action_spans == ((0.0, 2.5), (2.5, 5.0))  # 1.5 s over 5 latent frames
    assert record.action_subjects == (0, 0)
    assert load_tensors(store, record.subject_masks)["masks"].shape == (1, 3, 8, 8)
    null = index.null_prompt_embeds(store)
    assert null.shape == (32, 32) and not torch.equal(null, torch.zeros_like(null))


def test_second_call_hits_the_cache_and_writes_nothing(cached, encoders, inputs):
    store, _, index = cached
    before = store.list("cache")
    again = EmbeddingCache(store, encoders)
    record = again.cache_sample(inputs)
    assert again.misses == 0 and again.hits == 7
    assert record == index.samples["clip-0"]
    assert store.list("cache") == before


def test_changed_content_misses(cached, encoders, inputs, tmp_path):
    store, _, index = cached
    cache = EmbeddingCache(store, encoders)
    key = cache.clip_latents(write_clip(tmp_path / "other.mp4", shift=30))
    assert cache.misses == 1 and key != index.samples["clip-0"].latents
    changed = cache.text_embeddings(["a man waves at the camera!"], 32)[0]
    assert changed != index.samples["clip-0"].prompt
    other_seed = load_cache_encoders("tiny", seed=1)
    assert other_seed.fingerprint != encoders.fingerprint


def test_cached_samples_make_a_trainable_batch(cached):
    from models.losses import reactid_training_loss
    from models.presets import build_transformer

    store, _, index = cached
    write_index(store, "training/cache_index.json", index)
    reread = read_index(store, "training/cache_index.json")
    assert reread == index
    batch = CachedBatchSource(store, reread.samples)(["clip-0", "clip-0"])
    assert batch["latents"].shape == (2, 4, 5, 16, 16)
    assert batch["reference_mask"].tolist() == [[True], [True]]
    assert batch["timeline_embeds"].shape == (2, 2, 16, 32)
    loss = reactid_training_loss(build_transformer("tiny", seed=0), batch, flow_shift=3.0)
    assert torch.isfinite(loss.loss) and loss.mask is not None


def test_a_model_without_timeline_modules_reads_the_folded_prompt(cached):
    store, _, index = cached
    record = index.samples["clip-0"]
    batch = CachedBatchSource(store, index.samples, use_timeline=False)(["clip-0"])
    assert "timeline_embeds" not in batch
    folded = load_tensors(store, record.timeline_prompt)["embeds"]
    assert torch.equal(batch["prompt_embeds"][0], folded)


def test_bad_inputs_are_named(cached, encoders, tmp_path):
    store, cache, _ = cached
    short = tmp_path / "short.mp4"
    write_video(short, np.zeros((4, 32, 32, 3), np.uint8), fps=FPS)
    with pytest.raises(ValueError, match=f"clip {short} has 4 frames; training needs 9"):
        cache.clip_latents(short)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        cache.clip_latents(tmp_path / "missing.mp4")
    with pytest.raises(KeyError, match="'nope' is not in the embedding cache index"):
        CachedBatchSource(store, {})(["nope"])


def test_the_training_device_is_the_ranks_gpu_else_the_cpu(monkeypatch):
    from training.distributed import training_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert training_device() == "cuda:1"
    monkeypatch.delenv("LOCAL_RANK")
    assert training_device() == "cuda:0"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_encoding_on_the_gpu_stores_what_the_cpu_encodes(encoders, inputs, tmp_path):
    """The cache is keyed by content and encoder, not device: a GPU encode must agree."""
    on_gpu = load_cache_encoders("tiny", seed=0, device="cuda")
    assert on_gpu.fingerprint == encoders.fingerprint
    assert on_gpu.vae.device.type == "cuda" and on_gpu.text_encoder.device.type == "cuda"
    cpu_store, gpu_store = LocalObjectStore(tmp_path / "cpu"), LocalObjectStore(tmp_path / "gpu")
    cpu = EmbeddingCache(cpu_store, encoders).cache_sample(inputs)
    gpu = EmbeddingCache(gpu_store, on_gpu).cache_sample(inputs)
    assert gpu == cpu  # same keys: content-addressed
    for key in (cpu.latents, cpu.prompt, cpu.references[0]):
        a, b = load_tensors(cpu_store, key), load_tensors(gpu_store, key)
        for name in a:
            assert b[name].device.type == "cpu"
            # cuDNN convolutions may run in TF32 on the GPU: agreement to ~1e-3, not bit for bit
            torch.testing.assert_close(b[name].float(), a[name].float(), rtol=1e-2, atol=1e-2)
