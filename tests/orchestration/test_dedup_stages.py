"""Duplicate removal through the real stages: exact and near copies across shards, the
persisted per-shard index, and freshness (what reruns when a shard is added or changed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import StageInputError
from orchestration.params import load_params
from core.stage import completed, marker_key, run_stage
from core.storage import LocalObjectStore
from core.tables import read_json, read_table, write_json
from curation.stages import CURATION_STAGES, STAGES
from curation.synth.copies import CopyRecipe, write_copy

PHOTOS = {"a": ("data", "astronaut.png"), "b": ("data", "coffee.png"), "c": ("data", "chelsea.png")}


def _photo_pan(name: str, dest: Path, seconds: float = 4.0, fps: int = 10) -> Path:
    """A pan over a real photo (scikit-image ships them): one shot, real texture."""
    import cv2

    from core.video import ClipWriter
    from curation.synth.pool import _package_file

    img = cv2.cvtColor(cv2.imread(str(_package_file("skimage", *PHOTOS[name]))), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (400, 240), interpolation=cv2.INTER_AREA)
    n = int(seconds * fps)
    writer = ClipWriter(dest, fps, 256, 192, crf=18)
    try:
        for k in range(n):
            x = int(round(k / (n - 1) * 144))
            writer.write(np.ascontiguousarray(img[24 : 24 + 192, x : x + 256]))
    finally:
        writer.close()
    return dest


def _curate(shard: str, params, store) -> dict[str, bool]:
    """Run the curation stages of `shard`; {stage: skipped}."""
    return {s: run_stage(STAGES[s], shard, params, store).skipped for s in CURATION_STAGES}


def _rows(store, table: str, shard: str) -> dict[str, dict]:
    return {r.get("clip_id") or r["video_id"]: r for r in read_table(store, f"tables/{table}/{shard}.parquet").to_pylist()}


@pytest.fixture
def project(make_project, tmp_path):
    def edit(raw):
        raw["clip_quality"]["ocr_backend"] = "none"  # text is not what this test is about

    params = load_params(make_project(edit))
    store = LocalObjectStore(params.resolve(params.storage.root))
    pool = params.resolve(params.raw_videos.pool_root)
    sources = tmp_path / "sources"
    sources.mkdir()
    a, b, c = (_photo_pan(k, sources / f"{k}.mp4") for k in "abc")
    (pool / "s1").mkdir(parents=True)
    shutil.copyfile(a, pool / "s1" / "alpha.mp4")
    shutil.copyfile(b, pool / "s1" / "beta.mp4")
    (pool / "s2").mkdir()
    shutil.copyfile(a, pool / "s2" / "alpha_copy.mp4")  # the same bytes under another name
    shutil.copyfile(a, pool / "s2" / "alpha_copy_twice.mp4")  # and once more in the same shard
    write_copy(a, pool / "s2" / "alpha_reencoded.mp4", CopyRecipe(crf=32, scale=0.75, crop=0.02, start_s=0.5))
    shutil.copyfile(c, pool / "s2" / "gamma.mp4")
    (pool / "s3").mkdir()
    write_copy(b, pool / "s3" / "beta_small.mp4", CopyRecipe(crf=30, scale=0.5))
    return params, store


def test_copies_in_a_later_shard_are_removed_and_name_the_clip_they_repeat(project):
    params, store = project
    _curate("s1", params, store)
    _curate("s2", params, store)

    raw = _rows(store, "raw_videos", "s2")
    assert raw["alpha_copy_twice"]["reason"] == "duplicate" and raw["alpha_copy_twice"]["duplicate_of"] == "alpha_copy"
    assert raw["alpha_copy"]["status"] == "ok" and raw["alpha_copy"]["content_sha256"] == \
        _rows(store, "raw_videos", "s1")["alpha"]["content_sha256"]

    curated = _rows(store, "curated_clips", "s2")
    assert "duplicate" in curated["alpha_copy-s00"]["reasons"] and not curated["alpha_copy-s00"]["kept"]
    assert curated["alpha_copy-s00"]["duplicate_of"] == "alpha-s00"
    assert "near_duplicate" in curated["alpha_reencoded-s00"]["reasons"]
    assert curated["alpha_reencoded-s00"]["duplicate_of"] == "alpha-s00"
    assert not {"duplicate", "near_duplicate"} & set(curated["gamma-s00"]["reasons"])
    assert curated["gamma-s00"]["duplicate_of"] is None
    dedup = _rows(store, "clip_dedup", "s2")
    assert dedup["alpha_reencoded-s00"]["duplicate_of_shard"] == "s1"
    assert dedup["alpha_reencoded-s00"]["coverage"] >= params.clip_dedup.min_coverage
    assert not any(r["duplicate"] for r in _rows(store, "clip_dedup", "s1").values())
    meta = read_json(store, marker_key("clip_dedup", "s2"))["metadata"]
    assert meta["compared_with_shards"] == ["s1"] and meta["duplicates_by_kind"] == {"duplicate": 1, "near_duplicate": 1}

    # shard 1 is up to date: a later shard changes nothing before it
    assert all(_curate("s1", params, store).values())  # every stage skipped


def test_a_new_shard_extends_the_index_without_recomputing_the_old_ones(project):
    params, store = project
    _curate("s1", params, store)
    _curate("s2", params, store)
    before = {s: read_json(store, marker_key("clip_signatures", s)) for s in ("s1", "s2")}

    ran = _curate("s3", params, store)
    assert not any(ran.values())
    for shard in ("s1", "s2"):
        assert all(_curate(shard, params, store).values()), shard  # every stage skipped
        assert read_json(store, marker_key("clip_signatures", shard)) == before[shard]  # signatures not recomputed
    assert read_json(store, marker_key("clip_dedup", "s3"))["metadata"]["compared_with_shards"] == ["s1", "s2"]
    assert _rows(store, "clip_dedup", "s3")["beta_small-s00"]["duplicate_of"] == "beta-s00"

    from curation.dedup_stages import shard_order

    assert shard_order(store) == ["s1", "s2", "s3"]
    # the order is recorded once: rerunning shard 1's signatures does not move it to the end
    run_stage(STAGES["clip_signatures"], "s1", params, store, force=True)
    assert shard_order(store) == ["s1", "s2", "s3"]


def test_an_earlier_shard_is_part_of_a_later_shards_fingerprint(project):
    params, store = project
    for shard in ("s1", "s2"):
        for stage in ("raw_videos", "scene_clips", "clip_quality", "clip_signatures"):
            run_stage(STAGES[stage], shard, params, store)
    # shard 2 joined the index after shard 1; its comparison needs shard 1's signatures
    store.delete_prefix(marker_key("clip_signatures", "s1"))
    with pytest.raises(StageInputError, match="shard 's1' before it"):
        run_stage(STAGES["clip_dedup"], "s2", params, store)
    run_stage(STAGES["clip_signatures"], "s1", params, store)
    for shard in ("s1", "s2"):
        run_stage(STAGES["clip_dedup"], shard, params, store)
    assert completed(STAGES["clip_dedup"], "s2", params, store)

    # shard 1's signatures change (another fingerprint): shard 2 is stale, shard 1 itself is not
    marker = read_json(store, marker_key("clip_signatures", "s1"))
    write_json(store, marker_key("clip_signatures", "s1"), {**marker, "fingerprint": "0" * 20})
    assert not completed(STAGES["clip_dedup"], "s2", params, store)
    assert not completed(STAGES["clip_dedup"], "s1", params, store)  # its own upstream changed too
    write_json(store, marker_key("clip_signatures", "s1"), marker)
    assert completed(STAGES["clip_dedup"], "s2", params, store)

    # a shard whose signatures never ran is not in the index
    with pytest.raises(StageInputError, match="not in the duplicate index"):
        from core.stage import StageContext
        from curation.dedup_stages import shards_before

        shards_before(StageContext("clip_dedup", "s3", params, store))


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    """A random-initialised DINOv2 saved like a real checkpoint (nothing is downloaded)."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                             image_size=28, patch_size=14)).save_pretrained(root)
    BitImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, do_center_crop=True,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(root)
    return root


def test_pretrained_signatures_are_embeddings_and_never_mix_with_hashes(project, tiny_dinov2):
    from orchestration.params import parse_params
    from curation.dedup_stages import EMBEDDED_BACKEND

    params, store = project
    raw = params.model_dump()
    raw["clip_signatures"].update(backend="pretrained", pretrained_model=str(tiny_dinov2))
    pretrained = parse_params(raw)
    pretrained._base_dir = params._base_dir
    _curate("s1", pretrained, store)
    _curate("s2", pretrained, store)
    rows = _rows(store, "clip_signatures", "s2")
    row = rows["alpha_reencoded-s00"]
    assert row["backend"].startswith("pretrained:dinov2") and row["hashes"] is None
    assert row["dim"] == 32 and len(row["embeddings"]) == row["samples"] * 32
    dedup = _rows(store, "clip_dedup", "s2")
    assert dedup["alpha_copy-s00"]["duplicate"] == "duplicate"  # the content hash decides, whatever the backend
    assert dedup["alpha_reencoded-s00"]["duplicate_of"] == "alpha-s00"

    # shard 3's signatures made with the hashes cannot be compared with shard 1's embeddings
    for stage in ("raw_videos", "scene_clips", "clip_quality", "clip_signatures"):
        run_stage(STAGES[stage], "s3", params, store)
    assert _rows(store, "clip_signatures", "s3")["beta_small-s00"]["backend"] == EMBEDDED_BACKEND
    with pytest.raises(StageInputError, match="rerun clip_signatures for 's1'"):
        run_stage(STAGES["clip_dedup"], "s3", params, store)


def test_embedded_signatures_come_from_the_quality_pass_as_their_own_pass_makes_them(project):
    """clip_quality's pass hashes each span's frames at the signature's times; clip_signatures
    reads them (no decode) and they equal a pass of its own over every span. Settings that
    clip_quality's hashes were not made with stop the stage, naming what to rerun."""
    from core.execution import ItemEnv
    from curation.dedup_stages import sign_clip
    from curation.video_io import DECODE_STATS

    params, store = project
    checked = 0
    for shard in ("s1", "s2"):  # s2: re-encoded, resized and trimmed copies among its clips
        for stage in ("raw_videos", "scene_clips", "clip_quality"):
            run_stage(STAGES[stage], shard, params, store)
        before = DECODE_STATS.total_passes()
        run_stage(STAGES["clip_signatures"], shard, params, store)
        assert DECODE_STATS.total_passes() == before  # nothing decoded
        rows = _rows(store, "clip_signatures", shard)
        sha256 = {r["video_id"]: r["content_sha256"] for r in _rows(store, "raw_videos", shard).values()}
        env = ItemEnv(params, store, shard)
        clips = [c for c in _rows(store, "scene_clips", shard).values() if c["kept"]]
        assert len(clips) == len(rows)
        for clip in clips:
            own = sign_clip(env, None, {**clip, "video_sha256": sha256[clip["video_id"]]})
            assert rows[clip["clip_id"]]["hashes"] == own["hashes"]
            assert rows[clip["clip_id"]]["samples"] == own["samples"] > 0
            checked += 1
    assert checked >= 5

    from core.stage import StageContext
    from curation.dedup_stages import clip_signatures
    from orchestration.params import parse_params

    raw = params.model_dump()
    raw["clip_signatures"]["sample_fps"] = 2.0
    other = parse_params(raw)
    other._base_dir = params._base_dir
    with pytest.raises(StageInputError, match=r"rerun clip_quality for 's1'"):
        clip_signatures(StageContext("clip_signatures", "s1", other, store))
    assert not completed(STAGES["clip_quality"], "s1", other, store)  # its fingerprint holds those settings
