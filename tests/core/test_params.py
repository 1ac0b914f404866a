import copy
import re

import pytest
import yaml

from core.errors import ParamsError
from core.params import check_shard_name
from orchestration.params import load_params, parse_params


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
        ("clip_quality", "dis_preset", "slow", "clip_quality.dis_preset: expected one of 'ultrafast', 'fast' or 'medium'"),
        ("clip_quality", "ocr_gate_threshold", 1.5, "clip_quality.ocr_gate_threshold: expected a value less than 1"),
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


def test_metric_names_come_from_the_metric_registry(base_params_raw, monkeypatch):
    from evaluation.metrics import METRIC_BUILDERS

    raw = copy.deepcopy(base_params_raw)
    raw["evaluation"]["metrics"]["names"] = [*METRIC_BUILDERS]
    assert parse_params(raw).evaluation.metrics.names == [*METRIC_BUILDERS]
    raw["evaluation"]["metrics"]["names"] = ["motion_amplitude", "my_metric"]
    with pytest.raises(ParamsError, match=r"evaluation\.metrics\.names: unknown metrics \['my_metric'\]"):
        parse_params(raw)
    # a metric registered with the registry is a valid name, with nothing else to edit
    monkeypatch.setitem(METRIC_BUILDERS, "my_metric", lambda **options: None)
    assert parse_params(raw).evaluation.metrics.names == ["motion_amplitude", "my_metric"]


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


@pytest.mark.parametrize("ratios", [[4, -2, 1, 1], [0, 0, 0, 0], [1, float("nan"), 1, 1]])
def test_bad_phase_ratios_stop_at_load(base_params_raw, ratios):
    raw = copy.deepcopy(base_params_raw)
    raw["curriculum"]["phase_ratios"] = ratios
    with pytest.raises(ParamsError, match=r"curriculum\.phase_ratios: expected"):
        parse_params(raw)


@pytest.mark.parametrize("key, value", [("lambda_sub", -0.5), ("lambda_app", float("nan")), ("lambda_sam", float("inf"))])
def test_bad_lambdas_stop_at_load_naming_the_key(base_params_raw, key, value):
    raw = copy.deepcopy(base_params_raw)
    raw["difficulty"][key] = value
    with pytest.raises(ParamsError, match=rf"difficulty\.{key}: expected a finite weight >= 0"):
        parse_params(raw)


def test_lambdas_that_are_all_zero_stop_at_load(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["difficulty"].update(lambda_sub=0, lambda_app=0, lambda_sam=0)
    with pytest.raises(ParamsError, match="all 0"):
        parse_params(raw)


def test_an_ablation_left_with_no_lambda_stops_at_load(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["difficulty"].update(lambda_sub=1.0, lambda_app=0, lambda_sam=0)
    raw["ablations"]["variants"] = ["full_curriculum"]
    raw["evaluation"]["models"] = [m for m in raw["evaluation"]["models"] if not m.startswith("ablation-")]
    assert parse_params(raw).difficulty.lambda_sub == 1.0
    raw["ablations"]["variants"] = ["full_curriculum", "no_d_sub"]
    with pytest.raises(ParamsError, match="ablations.variants 'no_d_sub' sets its lambda to 0"):
        parse_params(raw)


def test_unknown_ablation_variant_names_the_known_ones(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["ablations"]["variants"] = ["full_curriculum", "no_d_everything"]
    with pytest.raises(ParamsError, match=r"ablations\.variants: unknown variants \['no_d_everything'\]"):
        parse_params(raw)


def test_every_section_of_params_yaml_has_one_owner(base_params_raw):
    from curation.params import CurationSections
    from evaluation.params import EvaluationSections
    from orchestration.params import ProjectParams
    from training.params import TrainingSections
    from versioning.params import VersioningSections

    core = {"storage", "execution"}
    domains = [set(m.model_fields) - core for m in (CurationSections, TrainingSections, VersioningSections)]
    domains.append(set(EvaluationSections.model_fields) - set(TrainingSections.model_fields))
    domains.append(set(ProjectParams.model_fields) - set().union(core, *domains))
    assert sum(len(d) for d in domains) == len(set().union(*domains))  # no section in two domains
    assert set(base_params_raw) <= set(ProjectParams.model_fields) == set().union(core, *domains)


def test_a_domain_reads_its_own_sections(tmp_path, base_params_raw):
    from core.params import read_params
    from training.params import TrainingSections

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(base_params_raw))
    params = read_params(TrainingSections, path, only_model_sections=True)
    assert params.curriculum.phase_ratios == base_params_raw["curriculum"]["phase_ratios"]
    assert params.resolve("data") == tmp_path.resolve() / "data"
    with pytest.raises(ParamsError, match="scene_clips: unknown key"):
        read_params(TrainingSections, path)
    bad = copy.deepcopy(base_params_raw)
    bad["difficulty"]["lambda_app"] = -1
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ParamsError, match="difficulty.lambda_app"):
        read_params(TrainingSections, path, only_model_sections=True)


def test_phase_models_follow_the_phase_ratios(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["evaluation"]["models"] = [*raw["evaluation"]["models"], "phase_5"]
    with pytest.raises(ParamsError, match=r"evaluation.models \['phase_5'\]: no stage produces them.*phase_1..phase_4"):
        parse_params(raw)
    five = {"phase_ratios": [4, 2, 1, 1, 1], "inter_clip_ratios": [0, 0, 0.11, 0.33, 0.33],
            "demo_inter_clip_ratios": [0, 0, 0.25, 0.5, 0.5]}
    raw["curriculum"].update(five)
    raw["retraining"]["score_models"] = ["phase_5"]
    params = parse_params(raw)
    assert params.phase_models[-1] == "phase_5" and params.retraining.score_models == ["phase_5"]
    raw = copy.deepcopy(base_params_raw)
    raw["retraining"]["score_models"] = ["phase_5"]
    with pytest.raises(ParamsError, match=r"retraining.score_models \['phase_5'\]: the curriculum has 4 phases"):
        parse_params(raw)
