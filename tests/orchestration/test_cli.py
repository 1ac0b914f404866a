"""The `reactid` CLI as a user runs it: bad settings stop before any work."""

import subprocess
import sys

import pytest

@pytest.fixture
def reactid(repo_root):
    def run(*args, cwd=repo_root):
        return subprocess.run([sys.executable, "-c", "from orchestration.cli import main; main()", *args],
                              cwd=cwd, capture_output=True, text=True, timeout=300)

    return run

def test_check_params_ok_and_bad_key(reactid, make_project):
    good = make_project()
    assert reactid("--params", str(good), "check-params").returncode == 0
    bad = make_project(lambda raw: raw["scene_clips"].update(similarity_threshold=3, detector="magic"))
    out = reactid("--params", str(bad), "check-params")
    assert out.returncode == 2
    assert "scene_clips.similarity_threshold" in out.stderr and "scene_clips.detector" in out.stderr

def test_stage_with_bad_params_does_no_work(reactid, make_project):
    bad = make_project(lambda raw: raw["raw_videos"].update(min_width=-5))
    out = reactid("--params", str(bad), "stage", "demo_pool", "--shard", "tiny-000")
    assert out.returncode == 2 and "raw_videos.min_width" in out.stderr
    assert not (bad.parent / "data").exists()  # nothing was generated

def test_unknown_stage_and_bad_shard(reactid, make_project):
    params = make_project()
    out = reactid("--params", str(params), "stage", "nope", "--shard", "tiny-000")
    assert out.returncode != 0 and "unknown stage" in (out.stderr + out.stdout)
    out = reactid("--params", str(params), "stage", "raw_videos", "--shard", "../etc")
    assert out.returncode == 2 and "shard name" in out.stderr

def test_synth_writes_shard_and_separate_ground_truth(reactid, tmp_path):
    out = reactid("synth", "--shard", "s-1", "--out", str(tmp_path / "pool"), "--n-videos", "4", "--size", "160x128",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pool/s-1/manifest.jsonl").is_file()
    assert (tmp_path / "ground_truth/s-1.json").is_file()
    assert not list((tmp_path / "pool/s-1").glob("*.json"))  # ground truth is not in the pool
