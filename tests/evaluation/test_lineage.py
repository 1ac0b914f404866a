"""End to end: `reactid lineage` from an IPVG Track 1 submission video back to the raw videos,
on a project run from the real-footage shard to a validated submission (`traced_project`),
and the annotated previews of every clip of that pool."""

from __future__ import annotations

import json
import zipfile

import pytest

from core.stage import AGGREGATE
from core.tables import read_json, read_table

pytestmark = pytest.mark.slow

SHARD = "tiny-real"


def _reactid(project, *args):
    from click.testing import CliRunner

    from orchestration.cli import cli

    result = CliRunner().invoke(cli, ["--params", str(project / "params.yaml"), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _expected(store):
    """What the store says phase 2 came from: its run and phase 1's, their samples, clips and raw videos."""
    from training.draws import read_draws

    runs = {k: read_json(store, f"metrics/curriculum_phase_{k}/{AGGREGATE}.json")["metadata"] for k in (1, 2)}
    samples = set()
    for meta in runs.values():
        draws = read_draws(store, meta["run_dir"])
        samples |= set(draws.sample_ids[draws.indices.ravel()].tolist())
    rows = {r["sample_id"]: r for r in read_table(store, f"tables/training_samples/{AGGREGATE}.parquet").to_pylist()}
    clips = {rows[s]["clip_id"] for s in samples}
    scenes = {r["clip_id"]: r for r in read_table(store, f"tables/scene_clips/{SHARD}.parquet").to_pylist()}
    raw = {r["video_id"]: r for r in read_table(store, f"tables/raw_videos/{SHARD}.parquet").to_pylist()}
    videos = {scenes[c]["video_id"] for c in clips}
    return runs, samples, clips, {v: raw[v]["source_path"] for v in videos}


def test_lineage_of_a_track1_submission_video_reaches_the_raw_videos(traced_project):
    project, params, store = traced_project
    archive = store.path("submissions/track1/run1/facial_results.zip")
    with zipfile.ZipFile(archive) as zf:
        assert "submission/1.mp4" in zf.namelist()
    runs, samples, clips, raw_videos = _expected(store)
    assert samples and clips and raw_videos

    text = _reactid(project, "lineage", f"{archive}::submission/1.mp4")
    assert "IPVG Track 1 run run1" in text
    assert "model phase_2 (phase" in text
    for meta in runs.values():
        assert meta["run_dir"] in text and meta["checkpoint_dir"] in text
    assert "curriculum_phase_2" in text and "continued from: phase curriculum_phase_1" in text
    for name in (*samples, *clips, *raw_videos.values()):
        assert name in text

    doc = json.loads(_reactid(project, "lineage", "--json", f"{archive}::submission/1.mp4"))
    nodes = {n["id"]: n for n in doc["nodes"]}
    by_type = {}
    for n in doc["nodes"]:
        by_type.setdefault(n["type"], []).append(n)
    assert doc["root"] == f"{archive}::submission/1.mp4" and nodes[doc["root"]]["type"] == "submission_video"
    assert {"submission_video", "generated_video", "benchmark_sample", "reference_image", "model", "phase",
            "sample", "annotation", "clip", "raw_video"} <= set(by_type)
    assert [m["name"] for m in by_type["model"]] == ["phase_2"]
    assert {p["stage"] for p in by_type["phase"]} == {"curriculum_phase_1", "curriculum_phase_2"}
    phase2 = next(p for p in by_type["phase"] if p["stage"] == "curriculum_phase_2")
    assert phase2["params"]["training"]["demo"]["global_batch"] == 1
    assert "training.phase" in phase2["code_versions"] and phase2["sampler"]["seed"] == params.curriculum.seed
    assert phase2["checkpoint"] == runs[2]["checkpoint_dir"]
    assert phase2["samples_drawn"] == runs[2]["samples_seen"]
    assert {s["sample_id"] for s in by_type["sample"]} == samples
    assert all(s["quartile"] in (1, 2) and s["phase"] == s["quartile"] for s in by_type["sample"])
    drawn_clips = {c["clip_id"] for c in by_type["clip"]}
    assert clips <= drawn_clips  # plus the held-out clip the benchmark's reference image was cut from
    assert {r["source_path"] for r in by_type["raw_video"]} >= set(raw_videos.values())
    edges = {(e["from"], e["to"]): e["relation"] for e in doc["edges"]}
    for video in by_type["raw_video"]:
        relation = next(r for (a, b), r in edges.items() if b == video["id"])
        assert relation.startswith("cut at ") and " s (frames " in relation  # the time span in the raw video
    # the benchmark sample's reference image leads to the held-out clip it was cropped from
    reference = by_type["reference_image"][0]["id"]
    held_out = next(b for (a, b) in edges if a == reference)
    assert nodes[held_out]["type"] == "annotation" and nodes[held_out]["identity"] in read_json(
        store, "benchmarks/manifest.json")["held_out_identities"]


def test_a_video_file_a_model_a_sample_and_a_clip_are_targets_too(traced_project, tmp_path):
    from evaluation.lineage import LineageError, lineage

    project, _, store = traced_project
    with zipfile.ZipFile(store.path("submissions/track1/run1/facial_results.zip")) as zf:
        (tmp_path / "1.mp4").write_bytes(zf.read("submission/1.mp4"))
    graph = lineage(store, str(tmp_path / "1.mp4"))
    assert [n.attrs["name"] for n in graph.of_type("model")] == ["phase_2"]

    graph = lineage(store, "phase_1")
    assert graph.nodes[graph.root].type == "model" and [p.attrs["stage"] for p in graph.of_type("phase")] == [
        "curriculum_phase_1"]

    sample = graph.of_type("sample")[0].attrs["sample_id"]
    graph = lineage(store, sample)
    assert graph.nodes[graph.root].type == "sample"
    drawn_by = {n.attrs["stage"] for n in graph.of_type("phase")}
    assert drawn_by == {"curriculum_phase_1", "curriculum_phase_2"}
    assert graph.of_type("raw_video")

    rejected = next(r for r in read_table(store, f"tables/curated_clips/{SHARD}.parquet").to_pylist()
                    if not r["kept"])
    graph = lineage(store, rejected["clip_id"])
    clip = graph.nodes[graph.root]
    assert clip.type == "clip" and clip.attrs["reasons"] == rejected["reasons"] and graph.of_type("raw_video")

    with pytest.raises(LineageError, match="not a submission video"):
        lineage(store, "no-such-thing")


def test_every_clip_of_the_pool_has_an_annotated_preview_and_the_shard_a_contact_sheet(traced_project):
    import av

    from curation.previews import contact_sheet_key

    _, _, store = traced_project
    curated = read_table(store, f"tables/curated_clips/{SHARD}.parquet").to_pylist()
    previews = {r["clip_id"]: r for r in read_table(store, f"tables/clip_previews/{SHARD}.parquet").to_pylist()}
    assert set(previews) == {c["clip_id"] for c in curated}
    subjects = [r["clip_id"] for r in read_table(store, f"tables/annotations/{SHARD}.parquet").to_pylist()]
    for clip in curated:
        row = previews[clip["clip_id"]]
        with av.open(str(store.path(row["preview_key"]))) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) == row["frames"] > 0
        assert store.exists(row["thumbnail_key"])
        assert row["status"] == ("kept" if clip["kept"] else "rejected")
        assert row["reasons"] == ([] if clip["kept"] else clip["reasons"])
        assert row["subjects"] == (subjects.count(clip["clip_id"]) if clip["kept"] else 0)
    assert any(r["status"] == "rejected" for r in previews.values())
    assert any(r["faces"] > 0 for r in previews.values())  # the real talking head's face boxes
    assert store.get_bytes(contact_sheet_key(SHARD))[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_dataset_browser_lists_every_clip_with_its_preview(traced_project):
    from training.dataset_browser import PAGE_KEY

    _, _, store = traced_project
    page = store.get_bytes(PAGE_KEY).decode()
    data = json.loads(page.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0])
    curated = read_table(store, f"tables/curated_clips/{SHARD}.parquet").to_pylist()
    assert [r["clip_id"] for r in data["rows"]] == [c["clip_id"] for c in curated]
    for row in data["rows"]:
        linked = (store.path("reports") / row["preview"]).resolve()
        assert linked == store.path(f"previews/{SHARD}/{row['clip_id']}.mp4") and linked.is_file()
    assert "://" not in page  # no CDN: the page needs nothing but the store
