import copy
import re

import pytest
import yaml

from core.errors import ParamsError
from core.params import check_shard_name, load_params, parse_params


def test_repo_params_are_valid(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert params.scene_clips.min_duration_s > 0
    assert params.resolve(params.storage.root).is_absolute()


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("scene_clips", "similarity_threshold", 1.5, "scene_clips.similarity_threshold: expected a value less than or equal to 1"),
        ("scene_clips", "similarity_backend", "dino", "scene_clips.similarity_backend: expected one of 'embedded' or 'pretrained'"),
        ("curated_clips", "min_motion", -0.1, "curated_clips.min_motion: expected a value greater than or equal to 0"),
        ("clip_quality", "ocr_confidence", 7, "clip_quality.ocr_confidence"),
        ("clip_quality", "flow_method", "raft", "clip_quality.flow_method"),
        ("raw_videos", "min_fps", 200.0, "raw_videos: min_fps (200.0) must not exceed max_fps"),
        ("storage", "backend", "gcs", "storage.backend"),
        ("clip_signatures", "zooms", [0.9, 1.0], "clip_signatures.zooms: expected 1.0 (the whole frame) first"),
        ("clip_signatures", "backend", "clip", "clip_signatures.backend: expected one of 'embedded' or 'pretrained'"),
        ("clip_dedup", "max_frame_distance", 40, "clip_dedup.max_frame_distance: expected a value less than or equal to 32"),
        ("clip_dedup", "min_coverage", 0.0, "clip_dedup.min_coverage: expected a value greater than 0"),
    ],
)
def test_bad_value_names_the_key(base_params_raw, section, key, value, expected):
    raw = copy.deepcopy(base_params_raw)
    raw[section][key] = value
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert expected in str(err.value)


def test_missing_and_unknown_keys_are_reported_together(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    del raw["curated_clips"]["min_sharpness"]
    raw["clip_quality"]["ocr_confidnce"] = 0.7
    del raw["scene_clips"]
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    text = str(err.value)
    assert "curated_clips.min_sharpness: missing" in text
    assert "clip_quality.ocr_confidnce: unknown key" in text
    assert "scene_clips: missing" in text


def test_cross_field_rules(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["clip_quality"]["flow_width"] = raw["clip_quality"]["analysis_width"] * 2
    with pytest.raises(ParamsError, match="flow_width"):
        parse_params(raw)


def test_load_params_errors(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("storage: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(bad)


def test_relative_paths_resolve_against_params_folder(tmp_path, base_params_raw):
    path = tmp_path / "sub" / "params.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(base_params_raw))
    params = load_params(path)
    assert params.resolve("data") == path.parent.resolve() / "data"


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-lead", "a" * 65, "sp ace"])
def test_bad_shard_names(name):
    with pytest.raises(ParamsError):
        check_shard_name(name)


def test_bad_demo_shard_name_in_params(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["demo_pool"]["shards"] = {"../escape": {"kind": "procedural", "seed": 0}}
    with pytest.raises(ParamsError, match="escape"):
        parse_params(raw)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"models": ["phase_4", "phase4"]}, "evaluation.models ['phase4']: no stage produces them"),
        # an ablation experiment that narrows the variants must narrow the evaluated models too
        ({"models": ["ablation-tarope_T8"], "variants": ["tarope_T4"]}, "evaluation.models ['ablation-tarope_T8']"),
    ],
)
def test_evaluated_models_need_a_producer(base_params_raw, overrides, expected):
    raw = copy.deepcopy(base_params_raw)
    raw["evaluation"]["models"] = overrides["models"]
    raw["evaluation"]["submission"]["runs"] = [{"name": "run1", "model": overrides["models"][0], "primary": True}]
    if "variants" in overrides:
        raw["ablations"]["variants"] = overrides["variants"]
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert expected in str(err.value)


def test_external_and_narrowed_ablation_models_are_accepted(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["ablations"]["variants"] = ["tarope_T4"]
    raw["evaluation"]["external_models"] = ["my-finetune"]
    raw["evaluation"]["models"] = ["phase_4", "ablation-tarope_T4", "my-finetune"]
    raw["evaluation"]["submission"]["runs"] = [{"name": "run1", "model": "my-finetune", "primary": True}]
    assert parse_params(raw).evaluation.models[-1] == "my-finetune"


def test_metric_names_in_params_are_exactly_the_registered_metrics():
    import typing

    from core.params import METRIC_NAMES
    from evaluation.metrics import METRIC_BUILDERS

    assert set(typing.get_args(METRIC_NAMES)) == set(METRIC_BUILDERS)


@pytest.mark.parametrize("key, path", [
    ("ablations.demo_total_steps", ("ablations", "demo_total_steps")),
    ("ablations.total_steps", ("ablations", "total_steps")),
    ("training.demo.total_steps", ("training", "demo", "total_steps")),
])
def test_a_run_too_short_for_the_phases_stops_at_load_naming_its_key(base_params_raw, key, path):
    raw = copy.deepcopy(base_params_raw)
    section = raw
    for part in path[:-1]:
        section = section[part]
    section[path[-1]] = 4  # 4:2:1:1 of 4 steps leaves phase 3 empty
    if key.startswith("training"):
        raw["training"]["demo"]["warmup_steps"] = 1
    with pytest.raises(ParamsError, match=rf"{re.escape(key)} \(4\).*\[2, 1, 0, 1\]"):
        parse_params(raw)
