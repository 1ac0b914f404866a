"""Perceptual clip signatures and their matching (curation/dedup.py), and the altered copies
the demo pool and the benchmark make (curation/synth/copies.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.dedup import (
    IndexedClip,
    MatchRule,
    SignatureIndex,
    align,
    clip_signature,
    find_duplicates,
    frame_hashes,
    grid_frames,
    hamming,
    sample_distances,
    sample_on_grid,
)
from curation.synth.copies import CopyRecipe, write_copy

RULE = MatchRule(max_frame_distance=10, min_coverage=0.6, min_overlap_s=1.0)
ZOOMS = (1.0, 0.95, 0.9)


def _scene(seed: int, size: int = 320) -> np.ndarray:
    """A smooth random RGB image (structure at several scales, like a photo)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    for cells in (3, 6, 12, 24):
        img += cv2.resize(rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32), (size, size),
                          interpolation=cv2.INTER_CUBIC) / 4
    return np.clip(img, 0, 255).astype(np.uint8)


def _pan_frames(seed: int, n: int, w: int = 160, h: int = 120) -> np.ndarray:
    scene = _scene(seed)
    return np.stack([scene[40 : 40 + h, 4 * k : 4 * k + w] for k in range(n)])


def _write(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    from core.video import ClipWriter

    writer = ClipWriter(path, fps, frames.shape[2], frames.shape[1], crf=18)
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.close()
    return path


def _random_signature(rng, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=(n, len(ZOOMS)), dtype=np.int64).astype(np.uint64)


# ---------------------------------------------------------------- hashes


def test_hamming_counts_differing_bits():
    a = np.array([0, 0b1011, 2**64 - 1], np.uint64)
    b = np.array([0, 0b0001, 0], np.uint64)
    assert hamming(a, b).tolist() == [0, 2, 64]


def test_frame_hash_survives_resize_and_blur_but_tells_scenes_apart():
    import cv2

    a, b = _scene(1), _scene(2)
    small = cv2.resize(cv2.resize(a, (120, 120), interpolation=cv2.INTER_AREA), (320, 320))
    blurred = cv2.GaussianBlur(a, (0, 0), 1.5)
    h = frame_hashes(np.stack([a, small, blurred, b]))
    assert h.shape == (4, 1) and h.dtype == np.uint64
    assert hamming(h[0, 0], h[1, 0]) <= 4 and hamming(h[0, 0], h[2, 0]) <= 4
    assert hamming(h[0, 0], h[3, 0]) >= 20


def test_zoomed_hashes_match_a_cropped_copy():
    import cv2

    a = _scene(3)
    crop = cv2.resize(a[13:-13, 13:-13], (320, 320), interpolation=cv2.INTER_AREA)  # 4% off every edge
    full, cropped = frame_hashes(a[None], ZOOMS), frame_hashes(crop[None], ZOOMS)
    plain = int(hamming(full[0, 0], cropped[0, 0]))
    zoomed = int(sample_distances(cropped, full)[0, 0])
    assert zoomed <= RULE.max_frame_distance and zoomed <= plain
    assert int(sample_distances(full, cropped)[0, 0]) == zoomed  # symmetric: either may be the cropped one


# ---------------------------------------------------------------- sampling and alignment


def test_sample_on_grid_takes_the_nearest_frame():
    times = np.arange(30) / 12.0  # 12 fps, 2.42 s
    grid = sample_on_grid(times, np.arange(30), 4.0)
    assert grid.tolist() == list(range(0, 30, 3))  # 0, 0.25, ... 2.25 s
    trimmed = sample_on_grid(times[12:], np.arange(12, 30), 4.0)  # the same frames trimmed by 1 s
    assert trimmed.tolist() == grid[4:].tolist()
    jitter = np.random.default_rng(0).uniform(-0.02, 0.02, 30)  # timestamps of a variable-rate file
    assert sample_on_grid(times + jitter, np.arange(30), 4.0).tolist() == grid.tolist()
    assert sample_on_grid(np.zeros(0), np.zeros(0), 4.0).shape == (0,)


@pytest.mark.parametrize("seed", range(5))
def test_streamed_grid_picks_the_same_frames_as_the_batch_one(seed):
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.02, 0.3, int(rng.integers(1, 80))))  # variable frame rate
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(len(times))]
    streamed = [int(f[0, 0, 0]) for f in grid_frames(zip(times, frames, strict=True), 4.0)]
    assert streamed == sample_on_grid(times, np.arange(len(times)), 4.0).tolist()


def test_embedding_signatures_compare_by_cosine_distance():
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(12, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rule = MatchRule(max_frame_distance=8, min_coverage=0.6, min_overlap_s=1.0, max_embedding_distance=0.05)
    assert rule.limit(emb) == 0.05 and rule.limit(np.zeros((1, 1), np.uint64)) == 8
    dist = sample_distances(emb[2:8], emb)
    assert dist.dtype == np.float32 and np.allclose(np.diagonal(dist, 2), 0.0, atol=1e-6)
    found = find_duplicates([_clip("orig", emb)], [_clip("part", emb[2:8]), _clip("other", emb[::-1].copy())],
                            rule, 4.0)
    assert found["part"].of.clip_id == "orig" and found["part"].match.offset == 2
    assert "other" not in found


def test_align_finds_the_offset_of_a_trimmed_copy():
    rng = np.random.default_rng(0)
    ref = _random_signature(rng, 20)
    match = align(ref[6:16], ref, RULE.max_frame_distance)
    assert (match.offset, match.overlap, match.matched, match.coverage, match.mean_distance) == (6, 10, 10, 1.0, 0.0)
    longer = np.concatenate([_random_signature(rng, 4), ref[:8]])  # starts 4 samples before the reference
    match = align(longer, ref, RULE.max_frame_distance)
    assert match.offset == -4 and match.matched == 8 and match.coverage == pytest.approx(8 / 12)
    assert align(ref[:0], ref, 10) is None


def test_rule_needs_coverage_of_the_later_clip_and_a_minimum_span():
    rng = np.random.default_rng(1)
    ref = _random_signature(rng, 40)
    assert RULE.accepts(align(ref[10:18], ref, 10), sample_fps=4.0)  # 2 s, fully inside
    assert not RULE.accepts(align(ref[10:13], ref, 10), sample_fps=4.0)  # 0.75 s: too short to call
    long_query = np.concatenate([ref[:8], _random_signature(rng, 32)])  # contains 2 s of ref, 8 s of its own
    assert not RULE.accepts(align(long_query, ref[:8], 10), sample_fps=4.0)
    unrelated = _random_signature(rng, 12)
    assert not RULE.accepts(align(unrelated, ref, 10), sample_fps=4.0)


# ---------------------------------------------------------------- index


def _clip(name: str, hashes: np.ndarray, sha: str | None = None, shard: str = "s") -> IndexedClip:
    return IndexedClip(name, shard, sha, 0, len(hashes), hashes)


def test_exact_copies_match_by_content_hash_and_frame_span():
    rng = np.random.default_rng(2)
    sig = _random_signature(rng, 12)
    original = IndexedClip("a-s00", "s1", "sha-a", 0, 30, sig)
    same_span = IndexedClip("b-s00", "s2", "sha-a", 0, 30, sig)
    other_span = IndexedClip("b-s01", "s2", "sha-a", 30, 60, _random_signature(rng, 12))
    found = find_duplicates([original], [same_span, other_span], RULE, 4.0)
    assert found["b-s00"].kind == "duplicate" and found["b-s00"].of is original and found["b-s00"].match is None
    assert "b-s01" not in found


def test_near_copies_prefer_the_best_match_and_may_point_at_a_dropped_copy():
    rng = np.random.default_rng(3)
    base = _random_signature(rng, 24)
    first_half = _clip("half", base[:12])
    whole = _clip("whole", base)
    query = _clip("tail", base[6:18])
    found = find_duplicates([first_half, whole], [query], RULE, 4.0)
    assert found["tail"].of is whole  # covers all 12 samples; the earlier half covers 6
    chain = find_duplicates([], [_clip("a", base[:16]), _clip("b", base[:16]), _clip("c", base[:16])], RULE, 4.0)
    assert chain["b"].of.clip_id == "a" and chain["c"].of.clip_id == "a"
    assert "a" not in chain


def test_screen_never_drops_a_clip_the_alignment_accepts():
    rng = np.random.default_rng(4)
    base = [_random_signature(rng, int(rng.integers(6, 20))) for _ in range(30)]
    clips = []
    for i, sig in enumerate(base):  # noisy copies: flip a few bits of some samples
        noisy = sig.copy()
        flips = rng.integers(0, 64, size=noisy.shape)
        noisy ^= np.where(rng.random(noisy.shape) < 0.5, np.uint64(1) << flips.astype(np.uint64), np.uint64(0))
        clips += [_clip(f"o{i}", sig), _clip(f"c{i}", noisy[int(rng.integers(0, 3)):])]
    index = SignatureIndex(RULE, 4.0)
    for c in clips[::2]:
        index.add(c)
    for query in clips[1::2]:
        accepted = {i for i, c in enumerate(index.clips) if RULE.accepts(align(query.hashes, c.hashes, 10), 4.0)}
        assert accepted <= set(index._screen(query.hashes))
        assert accepted, query.clip_id


# ---------------------------------------------------------------- real encodes


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A 4 s pan over a photo-like scene, its altered copies, and a pan over another scene."""
    folder = tmp_path_factory.mktemp("dedup")
    original = _write(folder / "original.mp4", _pan_frames(5, 40))
    other = _write(folder / "other.mp4", _pan_frames(6, 40))
    recipes = {"crf35": CopyRecipe(crf=35), "half": CopyRecipe(scale=0.5), "crop": CopyRecipe(crop=0.04),
               "trim": CopyRecipe(start_s=1.0), "all": CopyRecipe(crf=30, scale=0.75, crop=0.02, start_s=0.5)}
    copies = {k: write_copy(original, folder / f"{k}.mp4", r) for k, r in recipes.items()}
    return original, other, copies


def test_write_copy_trims_crops_and_scales(encoded):
    from curation.video_io import probe

    original, _, copies = encoded
    assert probe(copies["trim"]).frame_count == 30
    assert (probe(copies["half"]).width, probe(copies["half"]).height) == (80, 60)
    assert (probe(copies["crop"]).width, probe(copies["crop"]).height) == (148, 110)
    stepped = write_copy(original, original.parent / "stepped.mp4", CopyRecipe(frame_step=2, left_crop=0.1, gain=1.2))
    info = probe(stepped)
    assert (info.frame_count, info.fps, info.width) == (20, 5.0, 144)
    with pytest.raises(ValueError, match="no frame"):
        write_copy(original, original.parent / "empty.mp4", CopyRecipe(start_s=9.0))


def test_every_altered_copy_matches_and_another_scene_does_not(encoded):
    original, other, copies = encoded
    sig = {p: clip_signature(p, sample_fps=4.0, width=96, zooms=ZOOMS) for p in (original, other, *copies.values())}
    assert sig[original].shape == (16, 3)
    for name, path in copies.items():
        assert RULE.accepts(align(sig[path], sig[original], RULE.max_frame_distance), 4.0), name
    assert not RULE.accepts(align(sig[other], sig[original], RULE.max_frame_distance), 4.0)
    with open(original, "rb") as stream:  # a stored clip is read as a stream
        assert np.array_equal(clip_signature(stream, sample_fps=4.0, width=96, zooms=ZOOMS), sig[original])
