"""The evaluation stages' fingerprints and the full-model configuration rule of the leaderboard.

That benchmark_scores covers every metric module: tests/core/test_code_version.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evaluation.model_configs import full_model_config, full_model_configurations, same_as_full_model
from evaluation.stages import EVAL_STAGES

# ReactIDTransformer3DModel's defaults for every argument a model variant overrides
FULL = {"label_alpha": 2.0, "label_beta": 20.0, "label_binding": "uniform", "tarope_rescale_length": 2.0,
        "timeline_rope": "tarope", "timeline_temporal_mask": False, "use_timeline_modules": True}


def test_fingerprinting_benchmark_scores_loads_no_model_framework():
    code = ("import sys\nfrom core.stage import stage_code_version\nfrom evaluation.stages import EVAL_STAGES\n"
            "stage_code_version(EVAL_STAGES['benchmark_scores'])\n"
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
