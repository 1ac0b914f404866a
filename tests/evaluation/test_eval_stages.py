"""The evaluation stages' fingerprints and the full-model configuration rule of the leaderboard."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.model_configs import full_model_config, full_model_configurations, same_as_full_model
from evaluation.stages import EVAL_STAGES

# ReactIDTransformer3DModel's defaults for every argument a model variant overrides
FULL = {"label_alpha": 2.0, "label_beta": 20.0, "label_binding": "uniform", "tarope_rescale_length": 2.0,
        "timeline_rope": "tarope", "timeline_temporal_mask": False, "use_timeline_modules": True}


def test_benchmark_scores_fingerprint_lists_every_module_that_decides_a_score():
    import evaluation.metrics

    modules = set(EVAL_STAGES["benchmark_scores"].code_modules)
    package = Path(evaluation.metrics.__file__).parent
    metric_modules = {"evaluation.metrics"} | {
        f"evaluation.metrics.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    assert metric_modules - modules == set()
    assert {"evaluation.video", "evaluation.generation", "evaluation.benchmarks", "evaluation.scoring",
            "evaluation.scorecard", "evaluation.scores"} <= modules


@pytest.mark.parametrize("module", ["evaluation.metrics.gme", "evaluation.metrics.unavailable",
                                    "evaluation.metrics", "evaluation.video"])
def test_editing_a_metric_module_changes_the_benchmark_scores_fingerprint(monkeypatch, module):
    from core import stage

    modules = EVAL_STAGES["benchmark_scores"].code_modules
    before = stage._code_hash(modules)
    source = inspect.getsource

    def edited(obj):
        return source(obj) + ("\n# edited\n" if getattr(obj, "__name__", "") == module else "")

    monkeypatch.setattr(stage.inspect, "getsource", edited)
    assert stage._code_hash(modules) != before


def test_fingerprinting_benchmark_scores_loads_no_model_framework():
    code = ("import sys\nfrom core.stage import _code_hash\nfrom evaluation.stages import EVAL_STAGES\n"
            "_code_hash(EVAL_STAGES['benchmark_scores'].code_modules)\n"
            "print(','.join(m for m in ('torch', 'transformers', 'cv2', 'dlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_full_model_config_is_the_transformers_defaults():
    assert full_model_config() == FULL


def ablation(variant: str, model_variant: str | None = None) -> dict:
    return {"name": f"ablation-{variant}", "kind": "ablation", "variant": model_variant or variant}


def test_ablation_runs_of_the_full_models_configuration():
    records = [
        # Tables 3, 4, 6 rows that are the paper's own choice, and Table 5's full curriculum
        ablation("reactid"), ablation("tarope_T2"), ablation("label_uniform"), ablation("label_values_2_20"),
        ablation("full_curriculum", "reactid"),
        # different model arguments
        ablation("tarope_T4"), ablation("vanilla_rope"), ablation("attention_mask"), ablation("base"),
        ablation("label_adaptive"), ablation("label_values_0_1"),
        # the full model on another data schedule
        ablation("no_d_sub", "reactid"), ablation("full_data", "reactid"), ablation("random_expansion", "reactid"),
        {"name": "phase_4", "kind": "phase", "variant": "reactid"},
        {"name": "untrained-tiny", "kind": "untrained", "variant": "reactid"},
    ]
    assert full_model_configurations(records, FULL) == [
        "ablation-full_curriculum", "ablation-label_uniform", "ablation-label_values_2_20", "ablation-reactid",
        "ablation-tarope_T2"]
    # the curriculum ablations train training.variant: another main variant is not the full model
    assert not same_as_full_model(ablation("full_curriculum", "tarope_T8"), FULL)
