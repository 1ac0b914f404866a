"""Two gloo ranks under torchrun train curriculum phase 1 from a real latent cache, launched by
deploy/deepspeed/launch_phase.sh: `reactid phase-plan` writes the phase's sample ids from the
materialised curriculum schedule, and `training.launch --data cache` trains on them.

The multi-node `deepspeed` launcher (SSH to the hostfile's nodes) is the one thing replaced:
a stand-in records its arguments and starts the same module on 2 local ranks with torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.stage import AGGREGATE, run_stage
from tests.training.conftest import build_annotated_pool, curriculum_params_raw
from training.distributed import free_port

pytestmark = pytest.mark.slow

RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")

DEEPSPEED_STAND_IN = """#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$@" > "$LAUNCHER_ARGS"
while [[ $# -gt 0 && $1 != --module ]]; do shift; done
shift 2
exec "$PYTHON" -m torch.distributed.run --nproc_per_node 2 --master_addr 127.0.0.1 \\
  --master_port "$PORT" -m training.launch "$@"
"""


@pytest.fixture(scope="module")
def launched(tmp_path_factory, base_params_raw, repo_root):
    """A project with its curriculum and latent cache materialised; phase 1 launched on 2 ranks."""
    import yaml

    from orchestration.params import load_params
    from core.storage import LocalObjectStore
    from training.run_stages import TRAINING_RUN_STAGES
    from training.stages import TRAINING_STAGES

    project = tmp_path_factory.mktemp("launch")
    raw = curriculum_params_raw(base_params_raw)
    raw["curriculum"]["phase_ratios"] = [1, 1, 1, 1]
    # ZeRO-2 so that each rank writes its own optimizer shard
    raw["training"]["demo"].update(total_steps=8, warmup_steps=1, checkpoint_every=2, zero_stage=2)
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(project / "params.yaml")
    store = LocalObjectStore(project / "data")
    build_annotated_pool(store)
    run_stage(TRAINING_STAGES["training_samples"], AGGREGATE, params, store, shards=("gen-000", "gen-001"))
    for name in ("difficulty_scores", "difficulty_quartiles", "curriculum_schedule"):
        run_stage(TRAINING_STAGES[name], AGGREGATE, params, store)
    run_stage(TRAINING_RUN_STAGES["latent_cache"], AGGREGATE, params, store)

    launcher_bin = project / "bin"
    launcher_bin.mkdir()
    (launcher_bin / "deepspeed").write_text(DEEPSPEED_STAND_IN)
    (launcher_bin / "deepspeed").chmod(0o755)
    (project / "hostfile").write_text("# two nodes of 8 GPUs\nnode-a slots=8\nnode-b slots=8\n")
    runs = project / "runs"
    # The pytest process may hold a world-of-one's variables from in-process tests.
    env = {k: v for k, v in os.environ.items() if k not in RENDEZVOUS_VARIABLES}
    env.update(OMP_NUM_THREADS="1", PARAMS=str(project / "params.yaml"), HOSTFILE=str(project / "hostfile"),
               LAUNCHER_ARGS=str(project / "launcher_args"), PYTHON=sys.executable, PORT=str(free_port()),
               PATH=os.pathsep.join([str(launcher_bin), str(Path(sys.executable).parent), env["PATH"]]))
    done = subprocess.run(["bash", "deploy/deepspeed/launch_phase.sh", "1", str(runs)], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    launcher_args = (project / "launcher_args").read_text().splitlines()
    return params, store, runs, launcher_args


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_phase_plan_writes_the_samplers_batches_for_the_launch(launched):
    from training.phase_plan import read_step_ids
    from training.sampler import open_sampler
    from training.stages import SCHEDULE_KEY

    _, store, runs, args = launched
    plan = read_step_ids(runs / "phase_1.jsonl")
    sampler = open_sampler(store, SCHEDULE_KEY)
    assert plan == [sampler.global_sample_ids(step) for step in range(2)]
    assert all(len(ids) == 4 for ids in plan)
    assert _option(args, "--module") == "training.launch" and _option(args, "--data") == "cache"
    assert _option(args, "--index") == "cache/index.json" and store.exists("cache/index.json")
    assert _option(args, "--schedule") == str(runs / "phase_1.jsonl")
    assert _option(args, "--steps") == "2" and _option(args, "--phase") == "curriculum_phase_1"
    assert (_option(args, "--num_nodes"), _option(args, "--master_addr")) == ("2", "node-a")
    assert "--start-checkpoint" not in args


def test_two_gloo_ranks_train_on_the_cached_samples_and_agree(launched):
    _, _, runs, _ = launched
    output = runs / "curriculum_phase_1"
    ranks = [json.loads((output / "ranks" / f"rank_{r:05d}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    # Losses are all-reduced, so equal losses prove little; equal parameters after the
    # updates show the ranks' gradients were averaged into the same model.
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == 2
    assert ranks[0]["parameter_digest"] is not None
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]

    metrics = json.loads((output / "metrics.json").read_text())
    assert (metrics["global_step"], metrics["samples"]) == (2, 8)
    # The cached samples carry subject masks: the mask loss is trained, which synthetic data skips.
    logged = [json.loads(line) for line in (output / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2] and all(r["mask"] is not None for r in logged)
    tag = output / "checkpoints" / "step_00000002"
    names = {p.name for p in tag.iterdir()}
    assert {"rng_rank00000.json", "rng_rank00001.json", "manifest.json"} <= names
    # ZeRO-2 partitions the optimizer state: one shard per rank.
    assert sum(name.startswith("zero_pp_rank_") for name in names) == 2
    assert (output / "model" / "diffusion_pytorch_model.safetensors").is_file()


def test_the_next_phase_plan_starts_from_the_launched_checkpoint(launched):
    from core.errors import StageInputError
    from training.phase_plan import phase_plan

    _, store, runs, _ = launched
    previous = runs / "curriculum_phase_1"
    plan = phase_plan(store, 2, previous_output=previous)
    assert (plan.name, plan.start_step, plan.end_step) == ("curriculum_phase_2", 2, 4)
    assert plan.start_checkpoint == previous / "checkpoints"
    # Nothing launched or recorded for phase 2: phase 3's start is unknown, not guessed.
    assert phase_plan(store, 3).start_checkpoint is None
    with pytest.raises(StageInputError, match="ended at step 2 .* starts at step 4"):
        phase_plan(store, 3, previous_output=previous)
