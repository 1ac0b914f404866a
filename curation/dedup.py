"""Near-duplicate clips: perceptual frame signatures and their alignment.

A clip's signature is a sequence of 64-bit DCT hashes (pHash) of its frames at fixed times,
`sample_fps` per second from the clip's first frame. The hash keeps the signs of the lowest
8x8 spatial frequencies of a 32x32 grey thumbnail relative to their median, so coarse layout
and shading decide it, and codec noise and scale do not. A crop is a zoom the hash does not
absorb (a 4% crop at each edge moves ~12 of 64 bits, as much as a second of motion in a
static shot), so each sample is hashed at a few zooms of its centre (`zooms`, 1.0 first)
and two samples are as far apart as the closest pairing of one's full frame with a zoom of
the other. That keeps the frame threshold tight enough to tell apart neighbouring clips of
one continuous shot while a cropped copy still matches.

Two clips are compared by sliding one sequence along the other (every offset, in samples)
and keeping the offset where most aligned samples are within `max_frame_distance` bits: a
copy trimmed at either end still lines up with its source at the offset of the trim. The
later clip is a near duplicate when, at that offset, the matching samples cover
`min_coverage` of it and span at least `min_overlap_s`. Coverage is measured on the later
clip, the one that would be dropped: a long clip that merely contains an earlier short one
keeps its unique content and is not dropped.

Sampling at fixed times rather than every frame makes copies at another frame rate, and
trims by any amount, align to within half a sample period.

With the pretrained backend a sample is a frame's DINOv2 embedding instead of its hashes
(`clip_signatures.backend`), compared by cosine distance; alignment and coverage are the
same. Its threshold (`clip_dedup.max_embedding_distance`) is not measured here: no DINOv2
weights are available offline, only the embedded hashes are benchmarked (bench/dedup.py).
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from curation.clip_spans import ClipSpan
    from curation.features import FrameEmbedder
    from curation.video_io import VideoSource

HASH_BITS = 64
_THUMB = 32  # grey thumbnail side the DCT runs on
_LOW = 8  # lowest frequencies kept per axis: 8x8 = 64 coefficients, one bit each
_SCREEN_CHUNK = 1 << 15  # index samples compared with a query at once (bounds the distance matrix)


def frame_hashes(frames: np.ndarray, zooms: Sequence[float] = (1.0,)) -> np.ndarray:
    """64-bit DCT hashes of RGB frames, one per zoom of the frame's centre.

    Args:
        frames: uint8 (N, H, W, 3) RGB.
        zooms: fractions of the frame's width and height kept around its centre.

    Returns:
        uint64 (N, Z): bit k is set when low-frequency coefficient k exceeds the median
        (bit 0 compares the DC term with the median of all 64, bits 1-63 the AC terms with
        theirs, so a brightness change that keeps the layout flips at most bit 0).
    """
    import cv2

    out = np.zeros((len(frames), len(zooms)), np.uint64)
    weights = np.uint64(1) << np.arange(HASH_BITS, dtype=np.uint64)
    for i, frame in enumerate(frames):
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        for j, zoom in enumerate(zooms):
            dy, dx = int(round(h * (1 - zoom) / 2)), int(round(w * (1 - zoom) / 2))
            thumb = cv2.resize(grey[dy : h - dy, dx : w - dx], (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
            low = cv2.dct(thumb.astype(np.float32))[:_LOW, :_LOW].ravel()
            bits = np.concatenate([[low[0] > np.median(low)], low[1:] > np.median(low[1:])])
            out[i, j] = np.bitwise_or.reduce(np.where(bits, weights, np.uint64(0)))
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise distance of uint64 hashes, broadcast like `a ^ b`."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int32)


def sample_distances(query: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Distance of every query sample to every reference sample.

    Args:
        query: (n, Z) and ref: (m, Z) uint64 hash signatures (zoom 1.0 in column 0), or
            (n, D) and (m, D) float32 L2-normalised embeddings (the pretrained backend).

    Returns:
        (n, m): for hashes, int32, the fewest differing bits between one's full frame and
        any zoom of the other's (the copy may be the cropped one or the source may be);
        for embeddings, float32 cosine distance (1 - cosine similarity).
    """
    if query.dtype != np.uint64:
        return (1.0 - query @ ref.T).astype(np.float32)
    dist = hamming(query[:, None, 0], ref[None, :, 0])
    for z in range(1, query.shape[1]):
        np.minimum(dist, hamming(query[:, None, 0], ref[None, :, z]), out=dist)
        np.minimum(dist, hamming(query[:, None, z], ref[None, :, 0]), out=dist)
    return dist


def sample_on_grid(times: np.ndarray, values: np.ndarray, sample_fps: float) -> np.ndarray:
    """The values of the frames nearest to the times 0, 1/sample_fps, 2/sample_fps, ...

    Args:
        times: float (N,) seconds of each frame from the clip's start, increasing.
        values: (N, ...) one row per frame.

    Returns:
        (K, ...) with K = floor(last time * sample_fps) + 1 (empty when N == 0).
    """
    if not len(times):
        return values[:0]
    grid = times[0] + np.arange(int(np.floor((times[-1] - times[0]) * sample_fps + 1e-9)) + 1) / sample_fps
    right = np.minimum(np.searchsorted(times, grid), len(times) - 1)  # first frame at or after
    left = np.maximum(right - 1, 0)
    return values[np.where(np.abs(times[right] - grid) < np.abs(times[left] - grid), right, left)]


class GridPicker:
    """The frame nearest to each of the times t0, t0 + 1/sample_fps, ... (t0: the first
    frame's time; ties go to the earlier frame), as `sample_on_grid` picks them, pushed one
    frame at a time: only the previous frame is held."""

    def __init__(self, sample_fps: float) -> None:
        self.sample_fps = sample_fps
        self.start: float | None = None
        self.previous: tuple[float, Any] | None = None
        self.k = 0

    def push(self, t: float, frame: Any) -> list[Any]:
        """The frames picked for the grid times up to `t` (this one or the previous)."""
        if self.start is None:
            self.start = t
        picked = []
        while self.start + self.k / self.sample_fps <= t + 1e-9:
            target = self.start + self.k / self.sample_fps
            nearer_now = self.previous is None or abs(t - target) < abs(self.previous[0] - target)
            picked.append(frame if nearer_now else self.previous[1])
            self.k += 1
        self.previous = (t, frame)
        return picked


def grid_frames(frames: Iterable[tuple[float, np.ndarray]], sample_fps: float) -> Iterator[np.ndarray]:
    """`GridPicker`'s picks over a stream of frames.

    Args:
        frames: (seconds, frame) in presentation order, as `curation.video_io.iter_frames` yields.
    """
    picker = GridPicker(sample_fps)
    for t, frame in frames:
        yield from picker.push(t, frame)


class SignatureHasher:
    """The embedded signature of a clip, fed tick by tick with (tick, image function): by
    `clip_signature`'s own pass, or by `curation.clip_spans.SpanDecoder`'s `on_tick` while
    another analyser's pass reads the span. The frames at the grid times are converted
    `width` pixels wide only when picked and hashed at each zoom; fed by any pass over the
    clip, it gives what a pass of its own gives."""

    def __init__(self, rate: float, *, sample_fps: float, width: int, zooms: Sequence[float]) -> None:
        self.rate, self.width, self.zooms = float(rate), width, tuple(zooms)
        self.picker = GridPicker(sample_fps)
        # One growing buffer, not an array per sample: thousands of small long-lived blocks
        # among the pass's freed frame windows fragmented the heap (+67 MB peak on a 10-minute
        # clip in bench/memory.py)
        self.hashes = array.array("Q")

    def __call__(self, tick: int, image) -> None:
        for picked in self.picker.push(tick / self.rate, image):
            self.hashes.extend(frame_hashes(picked(self.width)[None], self.zooms)[0].tolist())

    def signature(self) -> np.ndarray:
        """uint64 (K, Z)."""
        return np.frombuffer(self.hashes, np.uint64).reshape(-1, len(self.zooms)).copy()


def clip_signature(src: VideoSource, *, sample_fps: float, width: int, zooms: Sequence[float],
                   embedder: FrameEmbedder | None = None, span: ClipSpan | None = None) -> np.ndarray:
    """The signature of one clip over one decode pass, at `sample_fps` samples per second.

    Frames are decoded `width` pixels wide and only the sampled ones are kept. With `span`,
    `src` is the clip's source video and the clip is read there, frame for frame as its
    written clip shows it (`curation.clip_spans.SpanDecoder`), converting only the samples.

    Returns:
        uint64 (K, Z): DCT hashes at each zoom; with `embedder` (the pretrained backend),
        float32 (K, D): its L2-normalised frame embeddings instead.
    """
    from curation.video_io import iter_frames

    if span is not None:
        from curation.clip_spans import SpanDecoder

        rate = float(span.rate)
        ticks = SpanDecoder(src, span, width=width).ticks()
    else:  # frames decoded at `width` already: each image function gives its frame
        rate = _frame_rate(src)
        ticks = ((idx, lambda _width=None, frame=frame: frame) for idx, frame in iter_frames(src, width=width))
    if embedder is None:
        hashed = SignatureHasher(rate, sample_fps=sample_fps, width=width, zooms=zooms)
        for tick, image in ticks:
            hashed(tick, image)
        return hashed.signature()
    chosen = [image() for image in grid_frames(((k / rate, image) for k, image in ticks), sample_fps)]
    return embedder.embed(np.stack(chosen) if chosen else np.zeros((0, 2, 2, 3), np.uint8)).astype(np.float32)


def _frame_rate(src: VideoSource) -> float:
    """The rate `curation.video_io.iter_frames` numbers frames by (index / rate = seconds)."""
    import av

    if hasattr(src, "read"):
        src.seek(0)
    with av.open(src if hasattr(src, "read") else str(src)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate)


@dataclass(frozen=True)
class SequenceMatch:
    """The best alignment of a query signature on a reference signature.

    Attributes:
        offset: reference sample aligned with query sample 0 (negative: the query starts
            before the reference).
        overlap: samples aligned at that offset.
        matched: aligned samples within the frame distance.
        mean_distance: mean distance over the aligned samples (bits of 64, or cosine).
        coverage: matched / query samples.
    """

    offset: int
    overlap: int
    matched: int
    mean_distance: float
    coverage: float


def align(query: np.ndarray, ref: np.ndarray, max_frame_distance: float) -> SequenceMatch | None:
    """Slide `query` along `ref`; the offset with the most samples within `max_frame_distance`
    (ties: the lower mean distance, then the smaller offset). None when either is empty."""
    n, m = len(query), len(ref)
    if not n or not m:
        return None
    dist = sample_distances(query, ref)  # (n, m)
    close = dist <= max_frame_distance
    best: tuple[int, float, int] | None = None
    result = None
    for offset in range(-(n - 1), m):
        hits = np.diagonal(close, offset)
        matched = int(hits.sum())
        if best is not None and matched < best[0]:
            continue
        d = np.diagonal(dist, offset)
        key = (matched, -float(d.mean()), -abs(offset))
        if best is None or key > best:
            best = key
            result = SequenceMatch(offset, len(d), matched, round(float(d.mean()), 3), matched / n)
    return result


@dataclass(frozen=True)
class MatchRule:
    """When a later clip duplicates an earlier one (params `clip_dedup`)."""

    max_frame_distance: int
    min_coverage: float
    min_overlap_s: float
    max_embedding_distance: float = 0.0  # cosine distance; used for embedding signatures

    def limit(self, signature: np.ndarray) -> float:
        """The per-sample distance within which samples of this kind of signature match."""
        return self.max_frame_distance if signature.dtype == np.uint64 else self.max_embedding_distance

    def accepts(self, match: SequenceMatch | None, sample_fps: float) -> bool:
        return (match is not None and match.coverage >= self.min_coverage
                and match.matched >= self.min_overlap_s * sample_fps)


@dataclass(frozen=True)
class IndexedClip:
    """One clip of the duplicate index: who it is and its signature (`hashes`: uint64
    (K, Z) hashes or float32 (K, D) embeddings; one kind per index)."""

    clip_id: str
    shard: str
    video_sha256: str | None
    start_frame: int
    end_frame: int
    hashes: np.ndarray


@dataclass(frozen=True)
class Duplicate:
    """A clip found to repeat an earlier one."""

    clip_id: str
    kind: str  # "duplicate" (the same frames of a byte-identical video) | "near_duplicate"
    of: IndexedClip
    match: SequenceMatch | None


class SignatureIndex:
    """The clips seen so far, in the order they were added (earlier keeps, later drops).

    A query is screened against every indexed sample at once (a clip can be a duplicate
    only if enough of the query's samples are close to some of its samples), and only the
    clips that pass are aligned. The screen is exact, a linear scan over the index's
    samples: bench/dedup.py measured 2.4-4.8 million index samples per second for one 4 s
    query (one core, shared machine), 0.07-0.13 s per clip against 20,000 indexed clips,
    ~70x faster than aligning with every clip. Far beyond that (millions of clips) a binary
    ANN index (e.g. FAISS IndexBinaryHNSW over the samples) belongs in place of `_screen`.
    """

    def __init__(self, rule: MatchRule, sample_fps: float) -> None:
        self.rule = rule
        self.sample_fps = sample_fps
        self.clips: list[IndexedClip] = []
        self._hashes: list[np.ndarray] = []
        self._owner: list[np.ndarray] = []
        self._exact: dict[tuple[str, int, int], IndexedClip] = {}
        self._flat: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, clip: IndexedClip) -> None:
        self.clips.append(clip)
        self._hashes.append(clip.hashes)
        self._owner.append(np.full(len(clip.hashes), len(self.clips) - 1, np.int64))
        if clip.video_sha256:
            self._exact.setdefault((clip.video_sha256, clip.start_frame, clip.end_frame), clip)
        self._flat = None

    def _screen(self, query: np.ndarray) -> list[int]:
        """Indices of the clips in which enough query samples have a close sample: an upper
        bound of what any one alignment can match, so no duplicate is screened out."""
        if not self.clips or not len(query):
            return []
        if self._flat is None:
            self._flat = (np.concatenate(self._hashes), np.concatenate(self._owner))
        flat, owner = self._flat
        rule = self.rule
        needed = int(np.ceil(max(rule.min_coverage * len(query), rule.min_overlap_s * self.sample_fps) - 1e-9))
        hit = np.zeros((len(query), len(self.clips)), bool)  # query sample has a close sample in clip
        for start in range(0, len(flat), _SCREEN_CHUNK):
            close = sample_distances(query, flat[start : start + _SCREEN_CHUNK]) <= rule.limit(query)
            rows, cols = np.nonzero(close)
            hit[rows, owner[start + cols]] = True
        return [int(i) for i in np.flatnonzero(hit.sum(axis=0) >= max(1, needed))]

    def find(self, clip: IndexedClip) -> Duplicate | None:
        """The indexed clip that `clip` repeats, or None: the first with the same frames of a
        byte-identical video, else the near duplicate that covers most of it (ties: lower
        mean distance, then the earlier clip)."""
        if clip.video_sha256:
            same = self._exact.get((clip.video_sha256, clip.start_frame, clip.end_frame))
            if same is not None:
                return Duplicate(clip.clip_id, "duplicate", same, None)
        best: tuple[tuple[float, float], Duplicate] | None = None
        for i in self._screen(clip.hashes):
            match = align(clip.hashes, self.clips[i].hashes, self.rule.limit(clip.hashes))
            if self.rule.accepts(match, self.sample_fps):
                key = (match.coverage, -match.mean_distance)
                if best is None or key > best[0]:
                    best = (key, Duplicate(clip.clip_id, "near_duplicate", self.clips[i], match))
        return best[1] if best else None


def find_duplicates(prior: Iterable[IndexedClip], new: Sequence[IndexedClip], rule: MatchRule,
                    sample_fps: float) -> dict[str, Duplicate]:
    """Which of `new` (in order) repeat a clip of `prior` or an earlier clip of `new`.

    Every earlier clip is a possible original, dropped or not (the decisions of earlier
    shards are not read, so that a shard depends only on their signatures): `of` may itself
    be a copy; follow `of` through the earlier decisions to the clip that was kept.

    Returns:
        {clip_id: Duplicate} for the clips of `new` that are duplicates.
    """
    index = SignatureIndex(rule, sample_fps)
    for clip in prior:
        index.add(clip)
    found: dict[str, Duplicate] = {}
    for clip in new:
        dup = index.find(clip)
        if dup is not None:
            found[clip.clip_id] = dup
        index.add(clip)
    return found
