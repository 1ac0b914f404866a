"""The real-cuts demo shard: real footage joined at known frames, ground truth that
matches the pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curation.synth import build_demo_shard


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    folder, truth_path = build_demo_shard(root / "pool", root / "truth", shard="rc", kind="real_cuts", seed=5,
                                          real_cuts={"n_videos": 2, "shots_per_video": 5, "same_place_rate": 0.3})
    return folder, json.loads(truth_path.read_text())


def _frames(path):
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)


def test_shots_cuts_and_transitions_tile_every_frame(shard):
    folder, truth = shard
    assert truth["kind"] == "real_cuts" and len(truth["videos"]) == 2
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [m["path"] for m in manifest] == [v["file"] for v in truth["videos"]]
    for video, row in zip(truth["videos"], manifest, strict=True):
        spans = sorted([(s["start_frame"], s["end_frame"], "shot") for s in video["shots"]]
                       + [(t["start_frame"], t["end_frame"], t["kind"]) for t in video["transitions"]])
        assert spans[0][0] == 0 and spans[-1][1] == video["n_frames"]
        for (a0, a1, _), (b0, _, _) in zip(spans, spans[1:], strict=False):
            assert a1 == b0  # no gap, no overlap
        starts = {s["start_frame"] for s in video["shots"][1:]}
        assert set(video["cuts"]) <= starts
        assert len(video["cuts"]) + len(video["transitions"]) == len(video["shots"]) - 1
        assert len(row["segments"]) == len(video["shots"])
        assert len(_frames(folder / video["file"])) == video["n_frames"]


def test_truth_matches_the_pixels(shard):
    folder, truth = shard
    for video in truth["videos"]:
        frames = _frames(folder / video["file"])
        diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # diff[i]: frame i -> i + 1
        inside = [diff[i] for s in video["shots"] for i in range(s["start_frame"], s["end_frame"] - 1)]
        for cut in video["cuts"]:
            assert diff[cut - 1] > 3 * np.median(inside), (video["file"], cut)
        for t in video["transitions"]:
            if t["kind"] == "fade":  # darker in the middle than either neighbouring shot
                mid = frames[(t["start_frame"] + t["end_frame"]) // 2].mean()
                assert mid < 0.6 * min(frames[t["start_frame"] - 1].mean(), frames[t["end_frame"]].mean())
