"""IPVG submissions from the benchmark videos of chosen models.

For each track, every run (a registered model's videos of ``ipvg_track1`` / ``ipvg_track2``)
is laid out as the 2026 challenge asks (``submission/1.mp4 … N.mp4``) and packaged with
:func:`evaluation.packaging.package_runs`, which validates each archive against the track's
``eval.json`` and refuses to write an invalid one. Track 1 can also be packaged in the
proposal's ``submission/idNNN/promptK.mp4`` layout. In the object store::

    submissions/track1/manifest.json            run names, primary, sha256 per archive
    submissions/track1/<run>/facial_results.zip
    submissions/track2/<run>/sequential_action_results.zip
    submissions/track1_proposal/…               (proposal layout, when asked for)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.layout import SUBMISSIONS, submission_folder
from core.errors import StageInputError
from core.storage import ObjectStore, temp_dir
from evaluation.demo_benchmarks import IPVG_TRACKS, benchmark_key
from evaluation.generation import video_key, videos_prefix

PREFIX = SUBMISSIONS


@dataclass(frozen=True)
class SubmissionRun:
    name: str
    model: str
    primary: bool
    description: str


def package_submission(
    store: ObjectStore, runs: Sequence[SubmissionRun], *, proposal_layout: bool
) -> dict[str, Any]:
    """Validate and zip every run for both tracks; publish ``submissions/`` in one step.

    Args:
        store: the object store holding ``benchmarks/`` and ``videos/``.
        runs: one to three runs, one primary.
        proposal_layout: also package Track 1 as ``idNNN/promptK.mp4``.

    Returns:
        ``{"archives": [...], "manifests": [...]}`` with object keys and digests.

    Raises:
        StageInputError: a run's model has no video for a sample.
        InvalidSubmissionError: an archive failed validation (nothing is published).
    """
    from evaluation.packaging import RunSource, package_runs
    from evaluation.submission import ARCHIVE_NAMES, expected_names

    layouts: list[tuple[str, str, int]] = [(f"track{t}", "published", t) for t in sorted(IPVG_TRACKS.values())]
    if proposal_layout:
        layouts.append(("track1_proposal", "proposal", 1))
    benchmark_of = {track: name for name, track in IPVG_TRACKS.items()}
    archives: list[dict[str, Any]] = []
    manifests: list[str] = []
    # Each archive is validated and written straight into a staging prefix (store.writer:
    # a local scratch file, uploaded on success); an invalid one aborts the whole
    # publication and leaves ``submissions/`` as it was.
    with temp_dir("reactid-submission-") as scratch_dir, store.staged_prefix(PREFIX) as staging:
        scratch = Path(scratch_dir)
        for folder, layout, track in layouts:
            benchmark = benchmark_of[track]
            eval_json = scratch / f"{benchmark}.json"
            eval_json.write_bytes(store.get_bytes(benchmark_key(benchmark)))
            published = expected_names(track, "published", eval_json)
            names = published if layout == "published" else expected_names(track, "proposal", eval_json)
            sources = []
            for run in runs:
                video_dir = scratch / "runs" / folder / run.name
                _lay_out(store, videos_prefix(benchmark, run.model), published, names, video_dir)
                sources.append(RunSource(run.name, video_dir, run.primary, run.description))
            manifest_key = package_runs(sources, track, f"{staging}/{folder}", layout=layout, eval_json=eval_json,
                                        store=store)
            manifest = json.loads(store.get_bytes(manifest_key))
            manifests.append(f"{submission_folder(folder)}/manifest.json")
            for packaged in manifest["runs"]:
                archives.append({
                    "track": track, "layout": layout, "run": packaged["name"],
                    "model": next(r.model for r in runs if r.name == packaged["name"]),
                    "primary": packaged["primary"], "videos": packaged["videos"], "sha256": packaged["sha256"],
                    "key": f"{submission_folder(folder)}/{packaged['archive']}", "archive_name": ARCHIVE_NAMES[track],
                })
    return {"archives": archives, "manifests": manifests}


def run_descriptions(runs: Sequence[Any], records: Mapping[str, Any]) -> list[SubmissionRun]:
    """Submission runs from ``evaluation.submission.runs`` params and the models' records."""
    out = []
    for run in runs:
        record = records[run.model]
        trained = "untrained random weights" if not record.trained else f"{record.kind}, step {record.global_step}"
        out.append(SubmissionRun(run.name, run.model, run.primary,
                                 f"model {run.model} ({trained}; {record.variant}): {record.description}"))
    return out


def _lay_out(store: ObjectStore, prefix: str, published: Sequence[str], names: Sequence[str], dest: Path) -> None:
    """Copy the model's ``<sample id>.mp4`` videos to ``dest`` under the layout's names."""
    for source_name, target_name in zip(published, names, strict=True):
        sample_id = Path(source_name).stem
        key = video_key(prefix, sample_id)
        if not store.exists(key):
            raise StageInputError(f"{key} is missing: materialize benchmark_videos for this model first")
        target = dest / target_name.removeprefix("submission/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.local_path(key) as src:
            shutil.copyfile(src, target)
