"""Training processes killed mid-phase and re-run to completion give the uninterrupted run's
step log and losses exactly, and its weights.

Each run is a fresh Python process that trains phase 1 (2 steps, from scratch) and phase 2
(4 steps, from phase 1's checkpoint) on the tiny model with synthetic batches, with a
checkpoint every 2 steps. A kill is ``os._exit`` from the step callback: no cleanup, no
``finally``, as when the process is killed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

KILLED = 17  # exit status of a killed run (any other status is a failure of the run itself)
RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")

SCRIPT = f"""
import json, os, sys
from pathlib import Path

import torch

from orchestration.params import parse_params
from training.batches import SyntheticBatchSource
from training.phase import PhaseSpec, run_phase

torch.set_num_threads(1)
root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
training = parse_params(json.loads(Path(sys.argv[3]).read_text())).training
source = SyntheticBatchSource((4, 2, 4, 4), 32, prompt_tokens=6, action_tokens=3)
null = torch.zeros(6, 32)


def step_ids(step):
    return [f"s{{step}}-{{i}}" for i in range(2)]


def kill(record):
    if record.step == kill_at:
        os._exit({KILLED})


first = run_phase(PhaseSpec("phase_1", 2, root / "phase_1"), training, step_ids, source,
                  null_prompt_embeds=null, on_step=kill)
# phase 2 takes its ids as an iterable over its own steps (global steps 2-5)
run_phase(PhaseSpec("phase_2", 4, root / "phase_2", start_checkpoint=first.checkpoint_dir), training,
          [step_ids(step) for step in range(2, 6)], source, null_prompt_embeds=null, on_step=kill)
"""


@pytest.fixture(scope="module")
def runner(tmp_path_factory, base_params_raw, repo_root):
    """``run(root, kill_at)``: one training process; returns its exit status."""
    folder = tmp_path_factory.mktemp("kill")
    raw = copy.deepcopy(base_params_raw)
    raw["training"].update(use_demo=False, global_batch=2, micro_batch=1, precision="fp32", zero_stage=0,
                           lr=1e-3, warmup_steps=1, total_steps=100, checkpoint_every=2, cfg_dropout=0.5)
    (folder / "params.json").write_text(json.dumps(raw))
    (folder / "train.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in RENDEZVOUS_VARIABLES}
    env["OMP_NUM_THREADS"] = "1"

    def run(root, kill_at: int = 0) -> int:
        done = subprocess.run([sys.executable, str(folder / "train.py"), str(root), str(kill_at),
                               str(folder / "params.json")], cwd=repo_root, env=env, capture_output=True,
                              text=True, timeout=300)
        if done.returncode not in (0, KILLED):
            pytest.fail(f"training process failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.returncode

    return run


def _logged(folder):
    path = folder / "steps.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _latest(folder):
    path = folder / "checkpoints" / "latest"
    return path.read_text() if path.is_file() else None


def _digest(folder):
    return json.loads((folder / "ranks" / "rank_00000.json").read_text())["parameter_digest"]


def test_killed_runs_resume_to_the_uninterrupted_log_losses_and_weights(runner, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert runner(reference) == 0
    one, two = killed / "phase_1", killed / "phase_2"

    # Step 1 of phase 1, before its first checkpoint: the rerun starts from scratch.
    assert runner(killed, kill_at=1) == KILLED
    assert [r["step"] for r in _logged(one)] == [1] and _latest(one) is None
    # Step 3, the first of phase 2, before its first checkpoint: the rerun starts from phase 1's.
    assert runner(killed, kill_at=3) == KILLED
    assert [r["step"] for r in _logged(two)] == [3] and _latest(two) is None
    # Step 5, after phase 2's checkpoint at step 4: the rerun resumes from it.
    assert runner(killed, kill_at=5) == KILLED
    assert [r["step"] for r in _logged(two)] == [3, 4, 5] and _latest(two) == "step_00000004"
    assert runner(killed) == 0

    for name, steps in (("phase_1", [1, 2]), ("phase_2", [3, 4, 5, 6])):
        resumed, straight = _logged(killed / name), _logged(reference / name)
        assert [r["step"] for r in resumed] == steps == [r["step"] for r in straight]
        timing = ("seconds", "data_seconds")
        assert ([{k: v for k, v in r.items() if k not in timing} for r in resumed]
                == [{k: v for k, v in r.items() if k not in timing} for r in straight])
        assert _digest(killed / name) == _digest(reference / name)
