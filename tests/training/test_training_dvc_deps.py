"""The training stages fingerprint the code that decides what a phase trains (dvc.yaml lists the
same files: tests/orchestration/test_dvc_deps.py)."""


def test_phases_fingerprint_the_checkpoint_config_and_sampler_code():
    from training.run_stages import PHASES, TRAINING_RUN_STAGES

    for name in PHASES:
        assert {"training.checkpoint", "training.deepspeed_config", "training.sampler", "training.phase",
                "training.trainer"} <= set(TRAINING_RUN_STAGES[name].code_modules), name
