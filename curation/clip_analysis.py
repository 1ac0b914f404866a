"""clip_quality's analysers of one clip, fed frame by frame, and the scene pass that feeds them.

`ClipAnalysis` holds every quality analyser of one clip (motion, text overlays, technical
quality, aesthetics) and takes the clip's sampled frames in windows, so memory does not grow
with the clip's length. Two passes feed it:

- `curation.stages.analyse_clip`: a decode of its own (a written clip, or the clip's span of
  its source video through `curation.clip_spans.SpanDecoder`);
- `SceneQualityPass`: scene_clips' one decode of the whole video. TransNetV2 settles the
  boundaries of the frames it has seen up to a frontier a few dozen frames behind the decoder
  (`TransNetV2Detector.settled`); the frames in between wait, converted at the analysers'
  widths, and each settled frame goes to the clip it belongs to, resampled and sampled
  exactly as `SpanDecoder` shows that clip (`ConstantRate`, `TickSampler`). The rows are the
  ones clip_quality's own decode of each span gives (a test compares them), and clip_quality
  reads them instead of decoding every video a second time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

# Frames the scene pass holds while their boundaries are unsettled (TransNetV2 in 200-frame
# windows settles a frame 26-175 frames after it, more inside a long run of transition-like
# frames). Past this many, the rest of the video's clips are left to clip_quality's own decode:
# memory stays bounded (~190 KB a frame at the default widths: ~90 MB).
MAX_PENDING_FRAMES = 480


def ocr_every(cfg) -> int:
    """OCR reads every this-many-th sampled frame (`ocr_fps` of `sample_fps`)."""
    return max(1, int(round(cfg.sample_fps / cfg.ocr_fps)))


def signature_fields(hashes, cfg) -> dict[str, Any]:
    """The clip_quality row's record of the embedded signature its pass computed (null when
    none was): the hashes, sample-major, and the settings they were made with."""
    if hashes is None:
        return {"signature_samples": None, "signature_hashes": None, "signature_sample_fps": None,
                "signature_width": None, "signature_zooms": None}
    return {"signature_samples": len(hashes), "signature_hashes": [int(h) for h in hashes.ravel()],
            "signature_sample_fps": cfg.sample_fps, "signature_width": cfg.width, "signature_zooms": list(cfg.zooms)}


def pass_signature(params):
    """The clip_signatures settings clip_quality's pass hashes frames with: the embedded
    backend's (the pretrained one embeds in its own stage)."""
    cfg = params.clip_signatures
    return cfg if cfg.backend == "embedded" else None


def _motion_backend(cfg) -> str:
    """The flow that measured motion, as the clip_quality table names it."""
    return f"embedded:opencv-dis-{cfg.dis_preset}" if cfg.flow_method == "dis" else f"embedded:opencv-{cfg.flow_method}"


class ClipAnalysis:
    """Every quality analyser of one clip, fed its sampled frames in windows of `window`.

    Motion and text read every sampled frame (windows chained so that no frame pair or OCR
    frame is lost), technical quality and aesthetics an even spread of at most
    `cfg.window_frames` of them.

    Args:
        cfg: the clip_quality params section.
        scanner: the text scanner (`add(batch)`, `result()`), or None without OCR.
        hasher: the embedded signature fed by the same pass (`curation.dedup.SignatureHasher`),
            recorded in the row's `signature_*` fields with `signature` (its settings).
    """

    def __init__(self, cfg, scanner=None, aesthetic_scorer=None, hasher=None, signature=None) -> None:
        from curation.quality import FrameSpread

        self.cfg, self.scanner, self.aesthetic_scorer = cfg, scanner, aesthetic_scorer
        self.hasher, self.signature = hasher, signature
        every = ocr_every(cfg)
        self.window = -(-cfg.window_frames // every) * every  # a multiple of `every`: OCR reads the frames one pass would
        self.motions: list = []
        self.spread = FrameSpread(cfg.window_frames)
        self.previous = None
        self.frames = 0
        self._chunk: list = []

    def add(self, decoded, fps: float, source_size: tuple[int, int]) -> None:
        """One sampled frame (`DecodedFrame`); a full window is analysed at once."""
        from curation.video_io import frame_batch

        self._chunk.append(decoded)
        if len(self._chunk) == self.window:
            self.add_batch(frame_batch(self._chunk, fps, source_size))
            self._chunk = []

    def add_batch(self, batch) -> None:
        """The next window of sampled frames (`FrameBatch`)."""
        from curation.quality import motion_score
        from curation.video_io import FrameBatch

        cfg, previous = self.cfg, self.previous
        first_pair = max(0, self.frames - 1)  # the chained window starts at the previous one's last frame
        self.frames += len(batch.frames)
        chained = batch if previous is None else FrameBatch(
            np.concatenate([previous.frames[-1:], batch.frames]), np.concatenate([previous.indices[-1:], batch.indices]),
            batch.fps, batch.source_size, np.concatenate([previous.times[-1:], batch.times]),
        )
        self.motions.append(motion_score(
            chained, flow_width=cfg.flow_width, method=cfg.flow_method, foreground_px=cfg.foreground_residual_px,
            min_foreground_fraction=cfg.min_foreground_fraction, pair_stride=cfg.flow_pair_stride, first_pair=first_pair,
            dis_preset=cfg.dis_preset,
        ))
        if self.scanner is not None:
            self.scanner.add(batch)
        self.spread.add(batch)
        self.previous = batch

    def result(self, fps: float, source_size: tuple[int, int]) -> dict[str, Any]:
        """The clip's clip_quality fields (after its last frame)."""
        from curation.quality import merge_motion, technical_quality
        from curation.video_io import frame_batch

        if self._chunk:
            self.add_batch(frame_batch(self._chunk, fps, source_size))
            self._chunk = []
        motion = merge_motion(self.motions)
        if self.scanner is not None:
            text = self.scanner.result()
            text_fields = {
                "text_frames_scanned": text.frames_scanned, "text_frames_flagged": text.frames_flagged,
                "has_text": text.has_text, "text_boxes": [list(b) for b in text.boxes[:64]], "ocr_texts": text.texts,
                "ocr_backend": "embedded:rapidocr(pp-ocr onnx)", "crop": list(text.crop),
                "text_free_area": text.text_free_area,
            }
        else:
            w, h = source_size
            text_fields = {
                "text_frames_scanned": 0, "text_frames_flagged": 0, "has_text": None, "text_boxes": [], "ocr_texts": [],
                "ocr_backend": "none", "crop": [0, 0, w - w % 2, h - h % 2], "text_free_area": None,
            }
        sample = self.spread.batch()
        tech = technical_quality(sample)
        scorer = self.aesthetic_scorer
        return {
            "frames_analysed": self.frames,
            "motion_foreground": motion.foreground, "motion_camera": motion.camera,
            "foreground_fraction": motion.foreground_fraction, "motion_backend": _motion_backend(self.cfg),
            **text_fields,
            "sharpness": tech.sharpness, "brightness": tech.brightness, "clipped": tech.clipped, "noise": tech.noise,
            "blockiness": tech.blockiness, "technical_backend": "classical",
            "aesthetic": scorer.score_clip(sample.frames, self.cfg.aesthetic_frames) if scorer else None,
            "aesthetic_backend": scorer.name if scorer else "not computed (no embedded aesthetic model)",
            **signature_fields(self.hasher.signature() if self.hasher else None, self.signature),
        }


# ---------------------------------------------------------------- the scene pass


def scene_pass_tag(params) -> str:
    """What a scene-pass analysis was made with: the clip_quality and clip_signatures settings
    and the code version of the analysers. clip_quality uses a scene-pass row only under the
    same tag; otherwise it decodes the span itself."""
    from core.code_version import code_version

    settings = {"clip_quality": params.clip_quality.model_dump(mode="json"),
                "clip_signatures": params.clip_signatures.model_dump(mode="json"),
                "code": code_version(["curation.clip_analysis"]).version}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def scene_pass_possible(params) -> str | None:
    """None when scene_clips' pass can analyse the clips for clip_quality, else why not."""
    if not params.scene_clips.quality_in_pass:
        return "scene_clips.quality_in_pass is false"
    if params.scene_clips.shot_backend != "transnetv2":
        return "the selected shot backend settles boundaries only at the end of a video (transnetv2 streams them)"
    if params.clip_quality.analysis_width is None:
        return "clip_quality.analysis_width is null (clips analysed at their source size)"
    if params.clip_quality.aesthetic_backend != "none":
        return "the pretrained aesthetic backend scores in clip_quality's own pass"
    return None


@dataclass
class _OpenClip:
    start: int
    resampler: Any
    sampler: Any
    analysis: ClipAnalysis


@dataclass
class _Pending:
    timed: Any
    images: dict[int, np.ndarray] = field(default_factory=dict)


class SceneQualityPass:
    """clip_quality's analyses of every clip of one video, fed from scene_clips' decode.

    `push(timed, image)` each decoded frame (its `TimedFrame` and lazy image function, as
    `VideoDecoder.lazy_frames` gives them); `advance(frontier, cuts, transitions)` whenever the
    shot detector has settled the boundaries before `frontier`; `finish(n_frames, cuts,
    transitions)` with the final ones. `rows` maps each clip's (start_frame, end_frame) to its
    clip_quality fields. A frame is converted once at each width the analysers read, and held
    until its boundary is settled: at most `max_pending` frames, after which the video's
    remaining clips are left to clip_quality (`spilled_at`).

    The clips are the segments of `curation.scenes.segments_from_boundaries` (cuts split,
    transitions widened by `margin` belong to none), kept or not: a clip's duration is known
    only at its end.
    """

    def __init__(self, params, rate: Fraction, source_size: tuple[int, int], scanner_factory: Callable[[], Any],
                 *, max_pending: int | None = None) -> None:
        cfg = params.clip_quality
        self.cfg, self.rate, self.fps = cfg, rate, float(rate)
        self.signature = pass_signature(params)
        self.source_size = (source_size[0] - source_size[0] % 2, source_size[1] - source_size[1] % 2)
        self.width = cfg.analysis_width
        self.widths = sorted({self.width} | ({self.signature.width} if self.signature is not None else set()))
        self.margin = params.scene_clips.transition_margin_frames
        self.scanner_factory = scanner_factory
        self.max_pending = MAX_PENDING_FRAMES if max_pending is None else max_pending
        self.pending: deque[_Pending] = deque()
        self.pushed = 0
        self.next = 0  # the next frame to settle
        self.open: _OpenClip | None = None
        self.rows: dict[tuple[int, int], dict[str, Any]] = {}
        self.spilled_at: int | None = None
        self.seconds = 0.0

    def push(self, timed, image: Callable[..., np.ndarray]) -> None:
        self.pushed += 1
        if self.spilled_at is not None:
            return
        from curation.frame_timing import TimedFrame

        t0 = time.perf_counter()
        # the frame's times and its images, not the decoded frame: the decoder reuses its buffers
        bare = TimedFrame(timed.index, timed.time_s, timed.duration_s, None)
        self.pending.append(_Pending(bare, {w: image(w) for w in self.widths}))
        if len(self.pending) > self.max_pending:
            self.spilled_at, self.open = self.pending[0].timed.index, None
            self.pending.clear()
        self.seconds += time.perf_counter() - t0

    def advance(self, frontier: int, cuts, transitions) -> None:
        """Settle the frames whose clip is known: before `frontier` less the transition margin
        (a transition starting at the frontier would take the frames just before it)."""
        self._settle(min(frontier - self.margin, self.pushed), cuts, transitions, None)

    def finish(self, n_frames: int, cuts, transitions) -> None:
        self._settle(n_frames, cuts, transitions, n_frames)
        t0 = time.perf_counter()
        self._close(n_frames)
        self.seconds += time.perf_counter() - t0

    def _settle(self, upto: int, cuts, transitions, n_frames: int | None) -> None:
        if self.spilled_at is not None or upto <= self.next:
            return
        t0 = time.perf_counter()
        cut_set = {c for c in cuts if self.next <= c < upto and c > 0 and (n_frames is None or c < n_frames)}
        excluded = [(max(0, t.start_frame - self.margin), t.end_frame + self.margin) for t in transitions
                    if t.end_frame + self.margin > self.next and t.start_frame - self.margin < upto]
        while self.next < upto:
            f = self.next
            frame = self.pending.popleft()
            if frame.timed.index != f:  # cannot happen: frames arrive in presentation order
                raise RuntimeError(f"scene pass out of step: frame {frame.timed.index} where {f} was due")
            if any(a <= f < b for a, b in excluded):
                self._close(f)
            else:
                if f in cut_set:
                    self._close(f)
                if self.open is None:
                    self._start(f)
                self._feed(frame)
            self.next += 1
        self.seconds += time.perf_counter() - t0

    def _start(self, f: int) -> None:
        from curation.clip_spans import ConstantRate, TickSampler
        from curation.dedup import SignatureHasher

        sig = self.signature
        hasher = (SignatureHasher(self.rate, sample_fps=sig.sample_fps, width=sig.width, zooms=sig.zooms)
                  if sig is not None else None)
        self.open = _OpenClip(f, ConstantRate(self.rate), TickSampler(self.rate, self.cfg.sample_fps, hasher),
                              ClipAnalysis(self.cfg, self.scanner_factory(), None, hasher, sig))

    def _feed(self, frame: _Pending) -> None:
        clip = self.open
        images, width = frame.images, self.width

        def image(w: int | None = None, images=images) -> np.ndarray:
            return images[width if w is None else w]

        self._ticks(clip, clip.resampler.push(frame.timed, image))

    def _ticks(self, clip: _OpenClip, ticks) -> None:
        for tick, image in ticks:
            decoded = clip.sampler.tick(tick, image)
            if decoded is not None:
                clip.analysis.add(decoded, self.fps, self.source_size)

    def _close(self, end: int) -> None:
        clip, self.open = self.open, None
        if clip is None or self.spilled_at is not None:
            return
        self._ticks(clip, clip.resampler.finish())
        self.rows[(clip.start, end)] = clip.analysis.result(self.fps, self.source_size)
