"""Training run folders named by what changes the weights.

A run folder (``training/main/<phase>/<name>``, ``training/ablations/<variant>/<name>``) holds
checkpoints that a rerun resumes from. Its name must change exactly when resuming would give
different weights than training afresh: the settings the run trains with, the bytes of its
inputs (schedule, difficulty table, latent index, the checkpoint it starts from) and the code
of the model and trainer, normalised so that a comment or docstring edit keeps the name and
the phase resumes instead of starting again from step 0.

Left out on purpose: settings that do not change the weights (how often a checkpoint is
written, how many CPU threads a host uses) and the stage glue around the trainer (metadata,
registration, storage), whose edits rerun the stage but reuse its weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.code_version import code_version

# The trainer and what it imports: the DeepSpeed loop, batches, checkpoints, the sampler, the
# model and its loss (core.code_version follows the imports from here).
TRAINER_CODE_ROOTS = ("training.phase", "training.sampler", "training.batches", "training.latents")
# Training settings that leave the weights unchanged: checkpoint cadence and host threads.
WEIGHT_NEUTRAL_SETTINGS = frozenset({"checkpoint_every", "cpu_threads"})


def weight_settings(training: Any) -> dict[str, Any]:
    """The effective training settings that decide the weights (``training.demo`` applied)."""
    run = training.effective().model_dump(mode="json")
    return {k: v for k, v in sorted(run.items()) if k not in WEIGHT_NEUTRAL_SETTINGS and k not in ("demo", "use_demo")}


def run_name(training: Any, inputs: Mapping[str, str], settings: Mapping[str, Any],
             code_roots: tuple[str, ...] = TRAINER_CODE_ROOTS) -> str:
    """The name of a run's folder.

    Args:
        training: the ``training`` params section.
        inputs: digest of each input the run reads, by name.
        settings: everything else that decides the weights (phase steps, variant, plan params).
        code_roots: modules whose code (and imports) decide the weights.
    """
    payload = {
        "training": weight_settings(training),
        "inputs": dict(sorted(inputs.items())),
        "settings": settings,
        "code": code_version(code_roots).version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def stored_digest(store: Any, key: str) -> str:
    """sha256 of one stored object (an input of a run)."""
    return hashlib.sha256(store.get_bytes(key)).hexdigest()
