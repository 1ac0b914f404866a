"""Training run folders are named by what changes the weights: a docstring or comment edit in
the trainer keeps the name (the phase resumes), a statement, a weight setting or an input
changes it; the stage's code version covers the trainer's modules."""

from __future__ import annotations

import pytest

from orchestration.params import load_params
from tests.code_copy import add_comment, add_statement, edit_docstring, project_copy  # noqa: F401
from training.run_names import run_name

INPUTS = {"schedule": "a" * 64, "latents": "b" * 64}
SETTINGS = {"phase": 2, "start_step": 2, "steps": 2, "variant": "reactid", "start_checkpoint": "x/checkpoints"}


@pytest.fixture(scope="module")
def training(repo_root):
    return load_params(repo_root / "params.yaml").training.effective()  # the demo overrides applied


def test_the_phase_stages_cover_the_trainer_checkpoint_config_and_sampler_code():
    from core.code_version import module_closure
    from core.stage import code_roots
    from training.run_stages import PHASES, TRAINING_RUN_STAGES

    for name in PHASES:
        closure = set(module_closure(code_roots(TRAINING_RUN_STAGES[name])))
        assert {"training.checkpoint", "training.deepspeed_config", "training.sampler", "training.phase",
                "training.trainer", "models.transformer_reactid", "models.losses", "core.stage"} <= closure, name


@pytest.mark.parametrize("module", ["training/phase.py", "training/trainer.py", "models/transformer_reactid.py",
                                    "models/losses.py", "training/checkpoint.py"])
def test_a_docstring_edit_keeps_the_run_folder_a_statement_changes_it(project_copy, training, module):
    before = run_name(training, INPUTS, SETTINGS)
    edit_docstring(project_copy, module)
    add_comment(project_copy, module)
    assert run_name(training, INPUTS, SETTINGS) == before
    add_statement(project_copy, module)
    assert run_name(training, INPUTS, SETTINGS) != before


def test_glue_around_the_trainer_keeps_the_run_folder(project_copy, training):
    before = run_name(training, INPUTS, SETTINGS)
    add_statement(project_copy, "models/registry.py")  # registration of the exported model
    add_statement(project_copy, "training/run_stages.py")  # stage metadata and storage of the run
    add_statement(project_copy, "training/plots.py")
    assert run_name(training, INPUTS, SETTINGS) == before


def test_weight_settings_and_inputs_change_the_run_folder_cadence_does_not(training):
    before = run_name(training, INPUTS, SETTINGS)
    assert run_name(training.model_copy(update={"checkpoint_every": training.checkpoint_every + 7,
                                                "cpu_threads": training.cpu_threads + 1}), INPUTS, SETTINGS) == before
    assert run_name(training.model_copy(update={"lr": training.lr * 2}), INPUTS, SETTINGS) != before
    assert run_name(training.model_copy(update={"seed": training.seed + 1}), INPUTS, SETTINGS) != before
    assert run_name(training, {**INPUTS, "latents": "c" * 64}, SETTINGS) != before
    assert run_name(training, INPUTS, {**SETTINGS, "start_checkpoint": "y/checkpoints"}) != before
