"""Evaluation stages' pure parts: the hold-out rule, the demo benchmark sets, the model registry,
video geometry and the leaderboard rendering (no Dagster, no generation)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.holdout import held_out_identities, identity_draw

TESTS = Path(__file__).resolve().parents[1]


def training_pool_module():
    """tests/training/conftest.py: the small annotated pool of coloured subjects."""
    name = "training_pool_for_eval"
    if name not in sys.modules:  # dataclasses look their module up while the class is built
        spec = importlib.util.spec_from_file_location(name, TESTS / "training" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def rule(fraction=0.0, faces=1, others=1, seed=0):
    return SimpleNamespace(seed=seed, fraction=fraction, min_face_identities=faces, min_other_identities=others)


def face_row(identity):
    return {"identity": identity, "is_human": True, "verified": True, "representative_frames": [4],
            "face_frame_indices": [0, 4], "face_boxes": [[0, 0, 4, 4], [1, 1, 5, 5]]}


def plain_row(identity):
    return {"identity": identity, "is_human": False, "verified": True}


# ------------------------------------------------------------------ hold-out rule


def test_held_out_identity_depends_on_its_own_name_so_a_growing_pool_keeps_it():
    small = [plain_row(f"id-{k}") for k in range(20)]
    grown = small + [plain_row(f"new-{k}") for k in range(40)]
    held_small = held_out_identities(small, rule(fraction=0.3, faces=0, others=0))
    held_grown = held_out_identities(grown, rule(fraction=0.3, faces=0, others=0))
    assert held_small and set(held_small) <= set(held_grown)
    assert all(identity_draw(0, i) < 0.3 for i in held_grown)
    assert set(held_grown) == {r["identity"] for r in grown if identity_draw(0, r["identity"]) < 0.3}


def test_minimums_top_up_faces_and_others_by_draw_and_ignore_rows_without_identity():
    rows = [face_row(f"face-{k}") for k in range(5)] + [plain_row(f"obj-{k}") for k in range(5)]
    rows += [{**face_row(None)}, plain_row("")]
    held = held_out_identities(rows, rule(fraction=0.0, faces=2, others=1))
    faces = sorted((f"face-{k}" for k in range(5)), key=lambda i: identity_draw(0, i))
    objects = sorted((f"obj-{k}" for k in range(5)), key=lambda i: identity_draw(0, i))
    assert set(held) == {faces[0], faces[1], objects[0]}
    assert list(held) == sorted(held, key=lambda i: identity_draw(0, i))
    # an unverified face row does not make its identity a face identity
    unverified = [{**face_row("face-x"), "verified": False}]
    assert held_out_identities(unverified, rule(faces=1, others=0)) == ()


def test_the_seed_changes_the_draw():
    rows = [plain_row(f"id-{k}") for k in range(30)]
    assert held_out_identities(rows, rule(0.3, 0, 0, seed=0)) != held_out_identities(rows, rule(0.3, 0, 0, seed=1))


# ------------------------------------------------------------------ demo sets


@pytest.fixture(scope="module")
def pool_store(tmp_path_factory):
    from core.storage import LocalObjectStore

    store = LocalObjectStore(tmp_path_factory.mktemp("eval-pool") / "data")
    rows = training_pool_module().build_annotated_pool(store)
    return store, [r for shard in sorted(rows) for r in rows[shard]]


def test_demo_sets_have_their_published_shapes_and_only_held_out_identities(pool_store):
    from evaluation.benchmarks import read_facial_benchmark, read_opens2v, read_timeline_benchmark
    from evaluation.demo_benchmarks import MANIFEST_KEY, benchmark_key, build_demo_benchmarks

    store, rows = pool_store
    manifest = build_demo_benchmarks(rows, store, rule(faces=1, others=1), 3, 64, 0.1, 0.4)
    held = manifest["held_out_identities"]
    face_ids = {r["identity"] for r in rows if r["is_human"]}
    assert len(held) == 2 and len(set(held) & face_ids) == 1 and "id-c" in held
    assert json.loads(store.get_bytes(MANIFEST_KEY)) == manifest

    opens2v = read_opens2v(store.path(benchmark_key("opens2v")))
    seq = read_timeline_benchmark(store.path(benchmark_key("reactid_seq")))
    track1 = read_facial_benchmark(store.path(benchmark_key("ipvg_track1")))
    track2 = read_timeline_benchmark(store.path(benchmark_key("ipvg_track2")))
    assert opens2v.domain == "open" and len(opens2v.samples) == 3
    assert [s.sample_id for s in track2.samples] == ["1", "2", "3"]  # a list: ids are 1..N
    assert all(re.fullmatch(r"seq_(human|object)_\d{3}", s.sample_id) for s in seq.samples)
    for name, samples in manifest["sets"].items():
        assert set(samples["identities"].values()) <= set(held), name
        folder = Path(samples["file"]).parent
        bench = {"opens2v": opens2v, "reactid_seq": seq, "ipvg_track1": track1, "ipvg_track2": track2}[name]
        for sample in bench.samples:
            for rel in sample.img_paths:
                assert store.exists(f"{folder}/{rel}"), (name, rel)
    # Track 1: the held-out face identity, with its face crops and numbered prompts
    (face_id,) = set(held) & face_ids
    assert {s.identity for s in track1.samples} == {"id001"}
    assert [s.prompt_index for s in track1.samples] == list(range(1, len(track1.samples) + 1))
    assert all("/crop_" in f"/{p}" for s in track1.samples for p in s.img_paths)
    # OpenS2V finds the face reference of a face sample; the car is an object sample
    faces = [s for s in opens2v.samples if s.category == "singleface"]
    assert faces and all(s.face_reference is not None and s.scores_face for s in faces)
    assert all(not s.scores_face for s in opens2v.samples if s.class_labels == ("car",))
    # timelines are the subject's annotated events
    by_entity = {r["entity_id"]: r for r in rows}
    for sample in seq.samples:
        entity = Path(sample.img_paths[0]).stem.rsplit("_f", 1)[0]
        events = by_entity[entity]["events"]
        assert [(e.start, e.end, e.description) for e in sample.events] == [
            (e["start"], e["end"], e["description"]) for e in events]


def test_demo_sets_refuse_a_pool_without_a_held_out_face(pool_store):
    from core.errors import StageInputError
    from evaluation.demo_benchmarks import build_demo_benchmarks

    store, rows = pool_store
    no_faces = [{**r, "representative_frames": []} for r in rows]
    with pytest.raises(StageInputError, match="ipvg_track1"):
        build_demo_benchmarks(no_faces, store, rule(faces=1, others=1), 2, 64, 0.1, 0.4)


# ------------------------------------------------------------------ registry


@pytest.fixture(scope="module")
def transformer_export(tmp_path_factory):
    from models.presets import build_transformer

    folder = tmp_path_factory.mktemp("export") / "model"
    build_transformer("tiny", "tarope_T4", seed=3).save_pretrained(str(folder))
    (folder / "training.json").write_text(json.dumps(
        {"phase": "curriculum_phase_3", "variant": "tarope_T4", "preset": "tiny", "global_step": 30}))
    return folder


def test_registry_reads_a_transformer_export_and_enforces_the_untrained_naming(tmp_path, transformer_export):
    from core.storage import LocalObjectStore
    from models.registry import ModelRegistryError, read_record, registered_models, store_model

    store = LocalObjectStore(tmp_path / "data")
    log = tmp_path / "steps.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 4)))
    record = store_model(store, "ablation-tarope_T4", transformer_export, kind="ablation",
                         description="Table 4 run", training_log=log)
    assert (record.layout, record.variant, record.phase, record.global_step) == ("transformer", "tarope_T4", 3, 30)
    assert record.trained and read_record(store, "ablation-tarope_T4") == record
    assert registered_models(store) == ["ablation-tarope_T4"]
    with pytest.raises(ModelRegistryError, match="untrained"):
        store_model(store, "untrained-phase", transformer_export, kind="phase", description="x")
    with pytest.raises(ModelRegistryError, match="untrained"):
        store_model(store, "baseline", transformer_export, kind="untrained", description="x")
    with pytest.raises(ModelRegistryError, match="model name"):
        store_model(store, "phase|4", transformer_export, kind="phase", description="x")
    with pytest.raises(ModelRegistryError, match="neither"):
        store_model(store, "phase_9", tmp_path, kind="phase", description="x")
    with pytest.raises(ModelRegistryError, match="not registered"):
        read_record(store, "phase_4")


@pytest.mark.parametrize(("duration", "expected"), [
    (None, (17, 1)),        # a prompt entry: the configured frames
    (1.0, (9, 1)),          # 8 frames at 8 fps, rounded up to 1 + 2k
    (5.83, (47, 1)),         # 46.64 frames: 47 = 1 + 2 x 23 lasts 5.875 s
    (20.0, (81, 2)),        # past max_segment_frames: segments of 10.125 s, 10 s apart
])
def test_video_geometry_holds_the_timeline(duration, expected):
    from evaluation.generation import video_geometry
    from models.pipeline_inputs import segment_windows

    frames, segments = video_geometry(duration, 8.0, 2, 17, 81, 1)
    assert (frames, segments) == expected
    if duration is not None:
        end = segment_windows(segments, frames, 8.0, 2, 1)[-1][1]
        assert end >= duration and (frames - 1) % 2 == 0


# ------------------------------------------------------------------ leaderboard


def card(model, benchmark, values, kind="phase", variant="reactid", total=None, missing=("gme",)):
    metrics = [
        {"name": name, "key": key, "backend": backend, "definition": f"def of {name}", "is_proxy": proxy,
         "value": value, "scale": "mean raw" if proxy else "normalised", "videos_computed": 2,
         "reason": None if value is not None else "needs weights"}
        for name, key, backend, proxy, value in values
    ]
    return {"benchmark": benchmark, "model": model, "domain": "open", "version": "v1.1", "videos": 2,
            "metrics": metrics, "total_score": total, "total_score_missing": [] if total is not None else list(missing),
            "partial": {"covered_weight": 0.5},
            "model_record": {"name": model, "kind": kind, "variant": variant, "phase": 1, "global_step": 8}}


def test_leaderboard_shows_percent_bold_best_and_totalscore_only_when_complete():
    from evaluation.leaderboard import build_leaderboard

    def row(amplitude, face, gme):
        return [("motion_amplitude", "motion_amplitude", "embedded", False, amplitude),
                ("facesim_dlib_proxy", "facesim", "embedded", True, face),
                ("gme", "gme", "pretrained", False, gme)]

    cards = [
        card("phase_1", "opens2v", row(0.25, 0.5, None)),
        card("phase_2", "opens2v", row(0.40, 0.5, None)),
        card("phase_1", "ipvg_track1", row(0.30, 0.1, 0.2), total=0.61),
        card("phase_2", "ipvg_track1", row(0.10, 0.1, 0.9), total=0.42),
        card("ablation-base", "opens2v", row(0.20, 0.7, None), kind="ablation", variant="base"),
        card("ablation-reactid", "opens2v", row(0.35, 0.6, None), kind="ablation"),
        card("ablation-full_data", "opens2v", row(0.30, 0.6, None), kind="ablation"),  # data ablation, same variant
    ]
    logs = {"phase_1": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}], "phase_2": []}
    board = build_leaderboard(cards, logs, "reactid", {"identities": ["id-a"], "checked": True, "in_training": {}})
    md = board.markdown
    assert "| motion_amplitude [embedded] (%) | facesim_dlib_proxy [embedded, proxy] (%) |" in md
    assert "| phase_2 | curriculum phase | 8 | **40.00** | 50.00 |" in md  # best bold, in %
    assert "| phase_1 | curriculum phase | 8 | 25.00 | 50.00 |" in md
    assert "| ablation-base | ablation variant | 8 | 20.00 | **70.00** | n/a |" in md
    # TotalScore is shown where complete (track1) and n/a with the reason where not (opens2v)
    assert "| phase_1 | curriculum phase | 8 | **30.00** | 10.00 | 20.00 | **61.00** |" in md
    assert "| phase_2 | curriculum phase | 8 | 10.00 | 10.00 | **90.00** | 42.00 |" in md  # a tie is not bold
    assert "not TotalScore" in md and "`gme` (pretrained): not computed — needs weights." in md
    # deltas against the reactid variant of the same group, named with their backends
    assert "| ablation-base vs ablation-reactid | -15.00 | +10.00 |" in md
    assert "| ablation-full_data vs ablation-reactid | -5.00 | +0.00 |" in md
    assert "motion_amplitude [embedded] (pp)" in md
    assert set(board.plots) == {"metrics", "ablation_deltas", "loss_curves"}
    assert all(png.startswith(b"\x89PNG") for png in board.plots.values())
    assert md.count("](leaderboard/") == 3
    assert board.html.count("data:image/png;base64,") == 3 and "<b>40.00</b>" in board.html
    assert board.metrics["ipvg_track1"]["phase_1"]["TotalScore"] == pytest.approx(61.0)
    assert board.metrics["opens2v"]["phase_1"]["TotalScore"] is None
    assert "None of them appears in the training samples." in md


def test_leaderboard_reports_identities_that_were_not_held_out():
    from evaluation.leaderboard import build_leaderboard

    cards = [card("phase_1", "opens2v", [("motion_amplitude", "motion_amplitude", "embedded", False, 0.3)])]
    board = build_leaderboard(copy.deepcopy(cards), {}, "reactid",
                              {"identities": ["id-a"], "checked": True, "in_training": {"id-a": 3}})
    assert "NOT HELD OUT: the training samples contain id-a (3 samples)" in board.markdown
    assert "**" not in board.markdown.split("## Held-out")[0].split("|---|")[1]  # one model: nothing bold


def test_leaderboard_marks_ablations_of_the_full_models_configuration():
    from evaluation.leaderboard import build_leaderboard

    def row(amplitude):
        return [("motion_amplitude", "motion_amplitude", "embedded", False, amplitude)]

    cards = [
        card("ablation-reactid", "opens2v", row(0.35), kind="ablation"),
        card("ablation-tarope_T2", "opens2v", row(0.35), kind="ablation", variant="tarope_T2"),
        card("ablation-base", "opens2v", row(0.20), kind="ablation", variant="base"),
    ]
    same = ["ablation-reactid", "ablation-tarope_T2"]
    md = build_leaderboard(cards, {}, "reactid", {"identities": [], "checked": False},
                           full_model_configurations=same).markdown
    note = "same configuration as the full model (paper default)"
    assert f"| ablation-tarope_T2 | ablation variant; {note} | 8 | **35.00** |" in md
    assert f"| ablation-reactid | ablation variant; {note} | 8 | **35.00** |" in md
    assert "| ablation-base | ablation variant | 8 | 20.00 |" in md
    assert f"ablation-reactid, ablation-tarope_T2: {note}" in md
    assert f"| ablation-tarope_T2 vs ablation-reactid (both: {note}) | +0.00 |" in md
    assert "| ablation-base vs ablation-reactid | -15.00 |" in md
    unmarked = build_leaderboard(cards, {}, "reactid", {"identities": [], "checked": False}).markdown
    assert note not in unmarked


def test_leaderboard_plot_labels_name_the_backend_like_the_headers(monkeypatch):
    from evaluation import leaderboard_plots
    from evaluation.leaderboard import build_leaderboard

    seen = {}

    def capture(values, labels):
        seen.update(labels)
        return b"\x89PNG"

    monkeypatch.setattr(leaderboard_plots, "metric_bars", capture)
    values = [("motion_amplitude", "motion_amplitude", "embedded", False, 0.3),
              ("facesim_dlib_proxy", "facesim", "embedded", True, 0.5),
              ("natural_qwen_proxy", "natural", "pretrained", True, 3.5)]
    md = build_leaderboard([card("phase_1", "opens2v", values)], {}, "reactid",
                           {"identities": [], "checked": False}).markdown
    assert seen == {"motion_amplitude": "motion_amplitude [embedded]",
                    "facesim_dlib_proxy": "facesim_dlib_proxy [embedded, proxy]",
                    "natural_qwen_proxy": "natural_qwen_proxy [pretrained, proxy]"}
    for label in seen.values():  # the table header starts with the same text
        assert f"| {label} (" in md
    assert leaderboard_plots.tick_label("facesim_dlib_proxy [embedded, proxy]") == \
        "facesim\ndlib\nproxy\n[embedded, proxy]"
