"""The evaluation assets through Dagster on a small annotated pool: demo sets, an untrained
baseline and a registered "phase" export generating H.264 videos per (benchmark, model),
scores naming their backends, the leaderboard, and validated IPVG zips for both tracks."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PHASE = "phase_1"
PHASE_BENCHMARKS = ("opens2v", "ipvg_track1", "ipvg_track2")  # the phase's pairs this test materializes


def training_pool_module():
    """tests/training/conftest.py: the small annotated pool of coloured subjects."""
    name = "training_pool_for_eval"
    if name not in sys.modules:  # dataclasses look their module up while the class is built
        path = Path(__file__).resolve().parents[1] / "training" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def eval_params_raw(base: dict) -> dict:
    raw = copy.deepcopy(base)
    raw["storage"]["root"] = "data"
    ev = raw["evaluation"]
    ev["held_out"] = {"seed": 0, "fraction": 0.0, "min_face_identities": 1, "min_other_identities": 1}
    ev["demo_sets"]["entries_per_set"] = 2
    ev["demo_sets"]["reference_crop_size"] = 64
    ev["untrained_models"] = {"untrained-tiny": {"preset": "tiny", "variant": "reactid", "seed": 0}}
    ev["models"] = ["untrained-tiny", PHASE]
    ev["generation"].update(num_frames=9, num_inference_steps=1, guidance_scale=1.0)
    ev["submission"] = {"runs": [{"name": "run1", "model": "untrained-tiny", "primary": True},
                                 {"name": "run2", "model": PHASE, "primary": False}], "proposal_layout": True}
    return raw


@pytest.fixture(scope="module")
def project(tmp_path_factory, base_params_raw):
    """(project dir, params, store, instance, resources) with the annotated pool and demo sets."""
    import dagster as dg
    import pyarrow.parquet as pq
    import yaml

    from assets.evaluation import EVALUATION_INPUT_ASSETS
    from assets.resources import ReactIDResource
    from orchestration.params import load_params
    from core.storage import LocalObjectStore
    from core.tables import write_table

    folder = tmp_path_factory.mktemp("eval-project")
    (folder / "params.yaml").write_text(yaml.safe_dump(eval_params_raw(base_params_raw), sort_keys=False))
    params = load_params(folder / "params.yaml")
    store = LocalObjectStore(folder / "data")
    rows = training_pool_module().build_annotated_pool(store)
    for shard in rows:  # one caption per clip, so Track 1 has distinct prompts
        key = f"tables/annotations/{shard}.parquet"
        table = pq.read_table(store.path(key))
        captions = [f"{c} in scene {clip[-6:-4]}" for c, clip in zip(table["caption"].to_pylist(),
                                                                        table["clip_id"].to_pylist(), strict=True)]
        write_table(store, key, table.set_column(table.schema.get_field_index("caption"), "caption", [captions]))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", sorted(rows))
    resources = {"reactid": ReactIDResource(project_dir=str(folder))}
    result = dg.materialize(EVALUATION_INPUT_ASSETS, instance=instance, resources=resources)
    assert result.success
    return folder, params, store, instance, resources


def materialize_pairs(project, model: str, benchmarks):
    import dagster as dg

    from assets.evaluation import EVALUATION_PAIR_ASSETS

    _, _, _, instance, resources = project
    results = {}
    for benchmark in benchmarks:
        key = dg.MultiPartitionKey({"benchmark": benchmark, "model": model})
        results[benchmark] = dg.materialize(EVALUATION_PAIR_ASSETS, partition_key=key, instance=instance,
                                            resources=resources)
        assert results[benchmark].success
    return results


def register_phase_export(project, tmp_path_factory):
    """A transformer export as training.checkpoint.export_model writes it, plus its step log."""
    import torch

    from assets.evaluation import register_model
    from models.presets import build_transformer

    _, _, store, instance, _ = project
    folder = tmp_path_factory.mktemp("phase-export")
    model = build_transformer("tiny", "reactid", seed=0)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # weights that differ from the untrained baseline, as training leaves them
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(str(folder / "model"))
    (folder / "model" / "training.json").write_text(json.dumps(
        {"phase": "curriculum_phase_1", "variant": "reactid", "preset": "tiny", "global_step": 8}))
    (folder / "steps.jsonl").write_text("".join(
        json.dumps({"phase": "curriculum_phase_1", "step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 9)))
    return register_model(instance, store, PHASE, folder / "model", kind="phase",
                          description="test export of curriculum phase 1", training_log=folder / "steps.jsonl")


def video_files(store, model: str) -> dict[str, tuple[int, str]]:
    root = store.path("videos")
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.glob(f"*/{model}/*.mp4"))}


@pytest.fixture(scope="module")
def evaluated(project, tmp_path_factory):
    """Untrained pairs, then a phase registered and only its pairs materialized."""
    import dagster as dg

    from assets.evaluation import benchmark_model_partitions

    from evaluation.demo_benchmarks import BENCHMARKS

    _, _, store, instance, _ = project
    materialize_pairs(project, "untrained-tiny", BENCHMARKS)
    before = video_files(store, "untrained-tiny")
    record = register_phase_export(project, tmp_path_factory)
    keys = benchmark_model_partitions.get_partition_keys(dynamic_partitions_store=instance)
    done = instance.get_materialized_partitions(dg.AssetKey("benchmark_videos"))
    missing = sorted(set(keys) - set(done))
    phase_results = materialize_pairs(project, PHASE, PHASE_BENCHMARKS)
    return {"before": before, "missing": missing, "record": record, "phase_results": phase_results}


def test_adding_a_model_generates_only_its_videos(project, evaluated):
    import dagster as dg

    from evaluation.demo_benchmarks import BENCHMARKS

    _, _, store, instance, resources = project
    assert evaluated["missing"] == sorted(dg.MultiPartitionKey({"benchmark": b, "model": PHASE}) for b in BENCHMARKS)
    assert video_files(store, "untrained-tiny") == evaluated["before"]  # untouched: same bytes, same mtime
    assert evaluated["record"].layout == "transformer" and evaluated["record"].global_step == 8
    # re-running a materialized pair is a recorded no-op
    from assets.evaluation import EVALUATION_PAIR_ASSETS

    again = dg.materialize(EVALUATION_PAIR_ASSETS, instance=instance, resources=resources,
                           partition_key=dg.MultiPartitionKey({"benchmark": "opens2v", "model": PHASE}))
    skipped = {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata["up_to_date_skip"]
               for e in again.get_asset_materialization_events()}
    assert {k: v.value for k, v in skipped.items()} == {"benchmark_videos": True, "benchmark_scores": True}


def test_videos_are_h264_one_per_entry_and_cover_their_timeline(project, evaluated):
    from evaluation.demo_benchmarks import BENCHMARKS, TIMELINE_BENCHMARKS
    from evaluation.generation import benchmark_requests, video_key, videos_prefix
    from evaluation.video import probe_video

    _, params, store, _, _ = project
    for model, benchmarks in (("untrained-tiny", BENCHMARKS), (PHASE, PHASE_BENCHMARKS)):
        for benchmark in benchmarks:
            requests = benchmark_requests(store, benchmark)
            videos = [k for k in store.list(videos_prefix(benchmark, model)) if k.endswith(".mp4")]
            assert sorted(videos) == sorted(video_key(videos_prefix(benchmark, model), r.sample_id) for r in requests)
            for request in requests:
                probe = probe_video(store.path(video_key(videos_prefix(benchmark, model), request.sample_id)))
                assert (probe.codec, probe.width, probe.height) == ("h264", 32, 32)
                if benchmark in TIMELINE_BENCHMARKS:
                    assert probe.duration_s >= request.timeline.duration
                else:
                    assert probe.frames == params.evaluation.generation.num_frames
    # the trained export does not generate the untrained baseline's videos
    one = "videos/opens2v/{}/" + benchmark_requests(store, "opens2v")[0].sample_id + ".mp4"
    assert store.get_bytes(one.format(PHASE)) != store.get_bytes(one.format("untrained-tiny"))


def test_scores_name_their_backends_and_have_no_totalscore_without_every_metric(project, evaluated):
    import pyarrow.parquet as pq

    from evaluation.benchmark_scores import NOT_FACE_SAMPLE

    _, _, store, _, _ = project
    for benchmark in ("opens2v", "ipvg_track2"):
        card = json.loads(store.get_bytes(f"scores/{benchmark}/{PHASE}.json"))
        names = {m["name"]: m for m in card["metrics"]}
        assert card["total_score"] is None
        assert {"aesthetics", "gme", "nexus", "natural"} <= set(card["total_score_missing"])
        assert "not TotalScore" in card["partial"]["label"]
        assert all(m["backend"] in ("embedded", "pretrained") and m["definition"] for m in card["metrics"])
        assert names["motion_amplitude"]["value"] is not None and names["motion_amplitude"]["scale"] == "normalised"
        assert names["motion_smoothness_flowwarp_proxy"]["is_proxy"]
        assert names["gme"]["value"] is None and "GME" in names["gme"]["reason"]
        assert ("timeline_alignment_flow_proxy" in names) == (benchmark == "ipvg_track2")
        rows = pq.read_table(store.path(f"tables/benchmark_scores/{benchmark}/{PHASE}.parquet")).to_pylist()
        assert len(rows) == card["videos"] * len(names)
    rows = pq.read_table(store.path(f"tables/benchmark_scores/opens2v/{PHASE}.parquet")).to_pylist()
    car = [r for r in rows if r["sample_id"].startswith("singleobj") and r["metric_key"] == "facesim"]
    assert car and all(r["value"] is None and r["note"] == NOT_FACE_SAMPLE for r in car)


@pytest.fixture(scope="module")
def reports(project, evaluated):
    import dagster as dg

    from assets.evaluation import EVALUATION_REPORT_ASSETS

    _, _, _, instance, resources = project
    result = dg.materialize(EVALUATION_REPORT_ASSETS, instance=instance, resources=resources)
    assert result.success
    return {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def _table(markdown: str, benchmark: str) -> list[list[str]]:
    block = markdown.split(f"## {benchmark} (", 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()]


def test_leaderboard_lists_every_model_in_percent_with_the_best_in_bold(project, reports):
    _, params, store, _, _ = project
    meta = reports["leaderboard"]
    assert meta["report"].path == str(params.resolve("data") / "reports/leaderboard.md")
    markdown = store.get_bytes("reports/leaderboard.md").decode()
    html = store.get_bytes("reports/leaderboard.html").decode()
    for benchmark in ("opens2v", "reactid_seq", "ipvg_track1", "ipvg_track2"):
        head, _, *rows = _table(markdown, benchmark)
        assert head[:3] == ["model", "kind", "steps"] and head[-1] == "TotalScore (%)"
        assert all(re.fullmatch(r"\w+ \[(embedded|pretrained)(, proxy)?\] \(%\)", h) for h in head[3:-1])
        expected = {"untrained-tiny": "untrained (random weights)"}
        if benchmark in PHASE_BENCHMARKS:
            expected[PHASE] = "curriculum phase"
        assert {r[0]: r[1] for r in rows} == expected
        for column in range(3, len(head) - 1):
            cells = [r[column] for r in rows]
            values = [float(c.strip("*")) for c in cells]
            assert all(0.0 <= v <= 100.0 for v in values)
            best = max(round(v, 2) for v in values)
            tie = len({round(v, 2) for v in values}) == 1  # one model, or every model equal: nothing bold
            bold = [round(v, 2) == best and not tie for v in values]
            assert [c.startswith("**") for c in cells] == bold, (benchmark, head[column])
        assert all(r[-1] == "n/a" for r in rows)  # TotalScore needs every weighted metric
    assert "A sum over fewer metrics is not TotalScore" in markdown
    assert "![Training loss](leaderboard/loss_curves.png)" in markdown  # the phase's registered log
    assert html.count("data:image/png;base64,") >= 2 and "<b>" in html
    assert store.exists("reports/leaderboard/metrics.png") and store.exists("reports/leaderboard/loss_curves.png")


def test_submission_zips_are_valid_for_both_tracks_and_both_layouts(project, reports):
    from evaluation.demo_benchmarks import benchmark_key
    from evaluation.submission import validate

    _, _, store, _, _ = project
    archives = reports["ipvg_submission"]["preview"]  # a markdown table of the archives
    assert "facial_results.zip" in archives.value and "sequential_action_results.zip" in archives.value
    for folder, track, layout, archive in (("track1", 1, "published", "facial_results.zip"),
                                           ("track2", 2, "published", "sequential_action_results.zip"),
                                           ("track1_proposal", 1, "proposal", "facial_results.zip")):
        eval_json = store.path(benchmark_key(f"ipvg_track{track}"))
        manifest = json.loads(store.get_bytes(f"submissions/{folder}/manifest.json"))
        assert (manifest["primary"], [r["name"] for r in manifest["runs"]]) == ("run1", ["run1", "run2"])
        for run in ("run1", "run2"):
            assert validate(store.path(f"submissions/{folder}/{run}/{archive}"), track, layout, eval_json) == []


def test_packaging_refuses_an_invalid_video_and_keeps_the_published_zips(project, reports, tmp_path):
    from core.stage import AGGREGATE, run_stage
    from core.storage import LocalObjectStore
    from evaluation.errors import InvalidSubmissionError
    from evaluation.stages import EVAL_STAGES, submission_runs

    folder, params, store, _, _ = project
    copy_root = tmp_path / "data"
    shutil.copytree(store.root, copy_root)
    broken = LocalObjectStore(copy_root)
    broken.put_bytes(f"videos/ipvg_track2/{PHASE}/1.mp4", b"not a video")
    published = {k: broken.get_bytes(k) for k in broken.list("submissions")}
    with pytest.raises(InvalidSubmissionError, match=r"run2:submission/1\.mp4"):
        run_stage(EVAL_STAGES["ipvg_submission"], AGGREGATE, params, broken, force=True,
                  shards=submission_runs(params))
    assert {k: broken.get_bytes(k) for k in broken.list("submissions")} == published

