"""Benchmark entries as generation requests, and one video per entry from a pipeline.

Every reader's sample becomes a :class:`GenerationRequest`: reference images (object keys,
resolved against the benchmark file's folder), and a prompt (subject sets, Track 1) or a
timeline (ReactID-Eval-SEQ, Track 2). A timeline entry is generated long enough to hold its
timeline, in auto-regressive segments when it needs more than ``max_segment_frames``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from core import layout
from core.storage import ObjectStore, temp_dir
from core.timeline import DEFAULT_SUBJECT, Timeline
from evaluation.benchmarks import (
    opens2v_domain,
    read_facial_benchmark,
    read_opens2v,
    read_timeline_benchmark,
)
from evaluation.demo_benchmarks import TIMELINE_BENCHMARKS, benchmark_key
from evaluation.errors import BenchmarkFormatError

GENERATION_LOG = "generation.json"


@dataclass(frozen=True)
class GenerationRequest:
    """One benchmark entry to generate.

    Attributes:
        sample_id: the entry's id; the video is ``<sample_id>.mp4``.
        reference_keys: object keys of the reference images, the face reference first.
        prompt: the prompt (global prompt for timeline entries).
        timeline: the sub-actions, for timeline benchmarks.
        subjects: subject label of each reference, in order.
        scores_face: whether the benchmark scores FaceSim for this entry.
    """

    sample_id: str
    reference_keys: tuple[str, ...]
    prompt: str
    timeline: Timeline | None
    subjects: tuple[str, ...]
    scores_face: bool = True


def benchmark_domain(benchmark: str) -> str:
    """The OpenS2V weights a benchmark's scores use.

    The OpenS2V set's domain is the one its reader infers from the file's name
    (:func:`evaluation.benchmarks.opens2v_domain`: ``Open-``, ``Human-`` or
    ``Single-Domain_Eval.json``), so a Human- or Single-Domain file is totalled with its own
    weights; the face track (IPVG Track 1) uses the human-domain weights, the timeline sets
    the open-domain ones.
    """
    if benchmark == "opens2v":
        return opens2v_domain(benchmark_key(benchmark))
    return "human" if benchmark == "ipvg_track1" else "open"


def benchmark_requests(store: ObjectStore, benchmark: str) -> list[GenerationRequest]:
    """Read a benchmark file from the store into requests, in file order.

    Raises:
        BenchmarkFormatError: the file is malformed or names an image outside its folder.
    """
    key = benchmark_key(benchmark)
    folder = PurePosixPath(key).parent
    with store.local_path(key) as path:
        if benchmark == "opens2v":
            requests = []
            # the domain from the key: a store's local copy may carry another file name
            for s in read_opens2v(path, opens2v_domain(key)).samples:
                order = sorted(range(len(s.img_paths)), key=lambda i: s.img_paths[i] != s.face_reference)
                requests.append(GenerationRequest(
                    s.sample_id,
                    _keys(folder, [s.img_paths[i] for i in order], key),
                    s.prompt,
                    None,
                    tuple(s.class_labels[i] for i in order),
                    s.scores_face,
                ))
            return requests
        if benchmark in TIMELINE_BENCHMARKS:
            requests = []
            for s in read_timeline_benchmark(path).samples:
                timeline = Timeline(s.global_prompt, s.events)
                requests.append(GenerationRequest(
                    s.sample_id,
                    _keys(folder, s.img_paths, key),
                    s.global_prompt,
                    timeline,
                    _timeline_subjects(timeline, s.class_labels),
                ))
            return requests
        requests = []
        for s in read_facial_benchmark(path).samples:
            labels = s.class_labels if len(s.class_labels) == len(s.img_paths) else \
                (s.class_labels[:1] or (DEFAULT_SUBJECT,)) * len(s.img_paths)
            requests.append(GenerationRequest(s.sample_id, _keys(folder, s.img_paths, key), s.prompt, None,
                                              tuple(labels)))
        return requests


def video_geometry(
    duration_s: float | None, fps: float, temporal_factor: int, num_frames: int, max_segment_frames: int,
    overlap: int,
) -> tuple[int, int]:
    """(frames per segment, segments) for an entry.

    A prompt entry (``duration_s`` None) gets ``num_frames`` in one segment. A timeline entry
    gets the fewest valid frames (``1 + k * temporal_factor``) that last ``duration_s``; past
    ``max_segment_frames`` it is cut into overlapping segments of that length.
    """
    if duration_s is None:
        return num_frames, 1
    from models.pipeline_inputs import segments_for_duration

    needed = max(1, math.ceil(duration_s * fps - 1e-6))
    frames = 1 + temporal_factor * math.ceil((needed - 1) / temporal_factor)
    if frames <= max_segment_frames:
        return frames, 1
    segment = 1 + temporal_factor * ((max_segment_frames - 1) // temporal_factor)
    return segment, segments_for_duration(duration_s, segment, fps, temporal_factor, overlap)


def entry_seed(seed: int, sample_id: str) -> int:
    """The noise seed of one entry: stable when entries are added or reordered."""
    return (seed * 1_000_003 + zlib.crc32(sample_id.encode())) % 2**31


def generate_videos(
    pipeline: Any, requests: Sequence[GenerationRequest], store: ObjectStore, prefix: str, generation: Any
) -> list[dict[str, Any]]:
    """Generate ``<prefix>/<sample_id>.mp4`` for every request; the prefix is replaced in one step.

    Args:
        pipeline: a ``ReactIDPipeline``.
        requests: the benchmark's entries.
        store: the object store.
        prefix: e.g. ``videos/opens2v/phase_4``.
        generation: ``evaluation.generation`` params.

    Returns:
        One record per video (sample id, frames, segments, seed, seconds), also written to
        ``<prefix>/generation.json``.
    """
    with _cpu_threads(generation.cpu_threads if generation.device == "cpu" else 0):
        return _generate(pipeline, requests, store, prefix, generation)


@contextlib.contextmanager
def _cpu_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (0: unchanged), restoring the setting after."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _generate(pipeline: Any, requests: Sequence[GenerationRequest], store: ObjectStore, prefix: str,
              generation: Any) -> list[dict[str, Any]]:
    import torch

    from core.progress import report
    from core.images import decode_png

    fps = float(pipeline.config.fps)
    temporal = int(pipeline.vae_scale_factor_temporal)
    records = []
    with store.staged_prefix(prefix) as staging, temp_dir("reactid-videos-") as scratch:
        for n, request in enumerate(requests):
            report("benchmark_videos", n, len(requests), request.sample_id)
            _check_file_name(request.sample_id)
            references = [decode_png(store.get_bytes(k)) for k in request.reference_keys]
            frames, segments = video_geometry(
                None if request.timeline is None else request.timeline.duration, fps, temporal,
                generation.num_frames, generation.max_segment_frames, generation.segment_overlap,
            )
            seed = entry_seed(generation.seed, request.sample_id)
            local = Path(scratch) / f"{request.sample_id}.mp4"
            started = time.perf_counter()
            pipeline(
                references,
                timeline=request.timeline,
                prompt=None if request.timeline is not None else request.prompt,
                subjects=list(request.subjects),
                negative_prompt=generation.negative_prompt,
                height=generation.height,
                width=generation.width,
                num_frames=frames,
                num_inference_steps=generation.num_inference_steps,
                guidance_scale=generation.guidance_scale,
                num_segments=segments,
                segment_overlap=generation.segment_overlap,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_path=str(local),
            )
            store.put_file(f"{staging}/{request.sample_id}.mp4", local)
            records.append({
                "sample_id": request.sample_id,
                "frames_per_segment": frames,
                "segments": segments,
                "seed": seed,
                "seconds": round(time.perf_counter() - started, 3),
            })
        report("benchmark_videos", len(requests), len(requests), "done")
        store.put_bytes(f"{staging}/{GENERATION_LOG}", (json.dumps(records, indent=2) + "\n").encode())
    return records


def videos_prefix(benchmark: str, model: str) -> str:
    """Where a model's videos of a benchmark live: ``videos/<benchmark>/<model>``."""
    return layout.benchmark_videos(benchmark, model)


def video_key(prefix: str, sample_id: str) -> str:
    return f"{prefix}/{sample_id}.mp4"


# --------------------------------------------------------------------------- helpers


def _keys(folder: PurePosixPath, img_paths: Sequence[str], source: str) -> tuple[str, ...]:
    keys = []
    for rel in img_paths:
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel:
            raise BenchmarkFormatError(f"{source}: image path {rel!r} must stay inside the benchmark folder")
        keys.append(str(folder / rel))
    return tuple(keys)


def _timeline_subjects(timeline: Timeline, labels: Sequence[str]) -> tuple[str, ...]:
    """Subject names in reference order. Timeline captions of these sets name no subject, so
    every action belongs to the first reference; further references keep their labels."""
    names = list(timeline.subjects)
    extra = [f"{label}_{k}" for k, label in enumerate(labels[len(names):], start=len(names))]
    return tuple(names[: len(labels)] + extra)


def _check_file_name(sample_id: str) -> None:
    if "/" in sample_id or "\\" in sample_id or sample_id in ("", ".", ".."):
        raise BenchmarkFormatError(f"sample id {sample_id!r} cannot name a video file")
