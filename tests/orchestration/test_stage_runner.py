"""The idempotent stage runner: skip when up to date, redo on change, no marker on crash."""

import pytest

from core.errors import ParamsError, StageInputError
from orchestration.params import load_params
from core.stage import StageSpec, marker_key, run_stage
from core.storage import LocalObjectStore
from curation.stages import STAGES


def test_runner_skips_redoes_and_never_marks_a_crash(make_project):
    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    calls = []

    def ok(ctx):
        calls.append(ctx.shard)
        return {"n": len(calls)}

    spec = StageSpec("probe_stage", ok, ("curated_clips",), ())
    first = run_stage(spec, "s1", params, store)
    second = run_stage(spec, "s1", params, store)
    assert (first.skipped, second.skipped) == (False, True)
    assert second.metadata["n"] == 1 and len(calls) == 1
    assert run_stage(spec, "s1", params, store, force=True).metadata["n"] == 2

    params2 = load_params(make_project(lambda raw: raw["curated_clips"].update(min_motion=0.9)))
    assert run_stage(spec, "s1", params2, store).skipped is False  # its params changed

    def crash(ctx):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_stage(StageSpec("crashing", crash, (), ()), "s1", params, store)
    assert not store.exists(marker_key("crashing", "s1"))


def test_downstream_stage_without_upstream_is_a_clear_error(make_project):
    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    with pytest.raises(StageInputError, match="needs 'raw_videos'"):
        run_stage(STAGES["scene_clips"], "tiny-000", params, store)


def test_demo_pool_refuses_non_demo_shard(make_project):
    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    with pytest.raises(ParamsError, match="not a demo shard"):
        run_stage(STAGES["demo_pool"], "someone-elses", params, store)


def test_raw_videos_from_csv_manifest_with_missing_file(make_project, tmp_path):
    import shutil

    params = load_params(make_project())
    store = LocalObjectStore(params.resolve(params.storage.root))
    pool = params.resolve(params.raw_videos.pool_root)
    pool.mkdir(parents=True)
    src = tmp_path / "elsewhere"
    src.mkdir()
    from fractions import Fraction

    import numpy as np

    from curation.video_io import ClipWriter

    w = ClipWriter(src / "a.mp4", Fraction(10), 160, 128, crf=20, preset="veryfast")
    for k in range(30):
        w.write(np.full((128, 160, 3), k * 5, np.uint8))
    w.close()
    shutil.copyfile(src / "a.mp4", src / "b.mov")
    (pool / "man-1.csv").write_text(
        "path,caption,identity\n"
        f"{src / 'a.mp4'},a man walks,p1\n"
        "../elsewhere/gone.mp4,missing,p2\n"
        f"{src / 'b.mov'},same clip as mov,p1\n"
    )
    result = run_stage(STAGES["raw_videos"], "man-1", params, store)
    assert result.metadata["videos_ok"] == 1
    assert result.metadata["quarantine_by_reason"] == {"duplicate": 1, "missing_file": 1}  # b.mov: a.mp4's bytes
    again = run_stage(STAGES["raw_videos"], "man-1", params, store)
    assert again.skipped
    (pool / "man-1.csv").write_text((pool / "man-1.csv").read_text() + f"{src / 'a.mp4'},dup,p3\n")
    assert run_stage(STAGES["raw_videos"], "man-1", params, store).skipped is False  # manifest changed
