"""Two gloo ranks under torchrun run `training.launch` end to end and agree with each other."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from training.distributed import free_port

RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


@pytest.mark.slow
def test_two_gloo_ranks_under_torchrun_agree(tmp_path, base_params_raw, repo_root):
    raw = copy.deepcopy(base_params_raw)
    raw["training"].update(use_demo=False, global_batch=4, micro_batch=1, zero_stage=2,
                           precision="fp32", lr=1e-3, warmup_steps=1, checkpoint_every=2)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    output = tmp_path / "run"
    # The pytest process may hold a world-of-one's variables from in-process tests.
    env = {k: v for k, v in os.environ.items() if k not in RENDEZVOUS_VARIABLES}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "training.launch", "--params", str(params), "--phase", "two_ranks",
        "--steps", "2", "--output", str(output), "--data", "synthetic",
        "--synthetic-shape", "4,2,4,4", "--metrics-out", str(tmp_path / "metrics.json"),
    ]
    done = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    ranks = [json.loads((output / "ranks" / f"rank_{r:05d}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == 2
    assert ranks[0]["parameter_digest"] is not None
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["global_step"], metrics["samples"]) == (2, 8)
    tag = output / "checkpoints" / "step_00000002"
    names = {p.name for p in tag.iterdir()}
    assert {"rng_rank00000.json", "rng_rank00001.json", "manifest.json"} <= names
    # ZeRO-2 partitions the optimizer state: one shard per rank.
    assert sum(name.startswith("zero_pp_rank_") for name in names) == 2
    assert (output / "model" / "diffusion_pytorch_model.safetensors").is_file()
