"""IPVG packaging straight into an S3 object store (moto): each archive is validated in a local
scratch file and uploaded only when valid; the manifest's digests match the uploaded objects."""

from __future__ import annotations

import hashlib
import json

import pytest

from evaluation.errors import InvalidSubmissionError
from evaluation.packaging import RunSource, package_run, package_runs
from tests.evaluation.test_eval_submission import TRACK1, run_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_store(s3_bucket):
    from core.storage_s3 import S3ObjectStore

    endpoint, bucket, credentials = s3_bucket
    return S3ObjectStore(endpoint, bucket, "team/reactid", secure=False, region="us-east-1", part_size_mb=5,
                         credentials=credentials)


def test_package_runs_into_an_s3_store(tmp_path, h264_video, s3_store):
    a = run_dir(tmp_path / "a", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    b = run_dir(tmp_path / "b", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    key = package_runs([RunSource("curriculum", a, primary=True, description="phase 4"), RunSource("base", b)],
                       1, "submissions/track1", eval_json=TRACK1, store=s3_store)
    assert key == "submissions/track1/manifest.json"
    manifest = json.loads(s3_store.get_bytes(key))
    assert [r["archive"] for r in manifest["runs"]] == ["curriculum/facial_results.zip", "base/facial_results.zip"]
    for run in manifest["runs"]:
        data = s3_store.get_bytes(f"submissions/track1/{run['archive']}")
        assert run["sha256"] == hashlib.sha256(data).hexdigest() and run["bytes"] == len(data)
        assert run["videos"] == 3
    assert s3_store.list("submissions") == sorted([
        "submissions/track1/manifest.json", "submissions/track1/curriculum/facial_results.zip",
        "submissions/track1/base/facial_results.zip"])


def test_an_invalid_run_leaves_nothing_in_the_s3_store(tmp_path, h264_video, s3_store):
    videos = run_dir(tmp_path / "run", h264_video, ["1.mp4", "3.mp4"])
    with pytest.raises(InvalidSubmissionError):
        package_run(videos, 1, "submissions/track1/run", eval_json=TRACK1, store=s3_store)
    assert s3_store.list("submissions") == []
    good = run_dir(tmp_path / "good", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    assert package_run(good, 1, "out", eval_json=TRACK1, store=s3_store) == "out/facial_results.zip"
