"""Command-line entry for one training phase under any launcher.

Every rank runs the same command; the launcher sets the rank variables.

One process (CPU, gloo)::

    python -m training.launch --params params.yaml --phase demo --steps 8 \\
        --output runs/demo --data synthetic

Two ranks on one machine::

    torchrun --nproc_per_node 2 -m training.launch --params params.yaml --phase demo \\
        --steps 8 --output runs/demo --data synthetic
    deepspeed --num_gpus 2 --module training.launch --params params.yaml ...

Several machines (NCCL on GPUs): a hostfile lists each node and its slots (GPUs), and
the ``deepspeed`` launcher starts the ranks over passwordless SSH; the checkpoint and
output folders must be on a filesystem every node sees::

    # hostfile
    gpu-node-1 slots=8
    gpu-node-2 slots=8

    reactid phase-plan --phase 1 --out /shared/runs/main/phase_1.jsonl
    deepspeed --hostfile hostfile --num_nodes 2 --num_gpus 8 \\
        --master_addr gpu-node-1 --master_port 29500 \\
        --module training.launch --params params.yaml --phase curriculum_phase_1 \\
        --steps 5000 --output /shared/runs/main/curriculum_phase_1 \\
        --data cache --index cache/index.json --schedule /shared/runs/main/phase_1.jsonl

(``deploy/deepspeed/launch_phase.sh`` does both, and chains phase K to phase K-1's
checkpoint.)

(``torchrun --nnodes 2 --node_rank N --rdzv-endpoint gpu-node-1:29500 ...`` on each node
does the same without SSH.)

Data:
- ``--data cache``: the embedding cache's index (an object-store key in the store params
  ``storage`` names, local or S3; the ``latent_cache`` stage writes ``cache/index.json``)
  and a schedule file with one JSON list of ``global_batch`` sample ids per line, one line
  per step of the phase (``reactid phase-plan`` writes it from the curriculum schedule).
- ``--data synthetic``: random tensors of the preset's shapes, a fixed draw per sample id
  (``training.batches.SyntheticBatchSource``); exercises the machinery, learns nothing.

Rank 0 prints the phase metrics as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    from training.run_stages import LATENT_INDEX_KEY

    parser = argparse.ArgumentParser(prog="python -m training.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--phase", required=True, help="phase name, e.g. curriculum_phase_1")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps of the phase")
    parser.add_argument("--output", type=Path, required=True, help="phase output folder")
    parser.add_argument("--start-checkpoint", type=Path, default=None,
                        help="previous phase's checkpoint folder")
    parser.add_argument("--variant", default=None, help="model variant (default: params)")
    parser.add_argument("--data", choices=("cache", "synthetic"), required=True)
    parser.add_argument("--index", default=LATENT_INDEX_KEY,
                        help="object-store key of the cache index (default: latent_cache's)")
    parser.add_argument("--schedule", type=Path, default=None,
                        help="JSON lines: the sample ids of each step")
    parser.add_argument("--synthetic-shape", default=None, metavar="C,F,H,W",
                        help="latent shape of synthetic samples (default: the preset's clip)")
    parser.add_argument("--metrics-out", type=Path, default=None)
    # The deepspeed launcher passes --local_rank; LOCAL_RANK in the environment says the same.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    return parser


def synthetic_inputs(
    preset_name: str, global_batch: int, seed: int, shape: str | None = None
) -> tuple[Any, Any, Any]:
    """(step ids by global step, batch source, null prompt) of the synthetic source.

    Args:
        shape: ``"C,F,H,W"`` latent shape; default the preset's clip.
    """
    import torch

    from training.batches import SyntheticBatchSource

    source = SyntheticBatchSource.for_preset(preset_name, seed=seed)
    if shape is not None:
        dims = tuple(int(v) for v in shape.split(","))
        if len(dims) != 4 or min(dims) < 1:
            raise SystemExit(f"--synthetic-shape: expected four positive integers, got {shape!r}")
        source = SyntheticBatchSource(dims, source.text_dim, seed=seed)

    def step_ids(step: int) -> list[str]:
        return [f"synthetic-{step * global_batch + i}" for i in range(global_batch)]

    null = torch.zeros(source.prompt_tokens, source.text_dim)
    return step_ids, source, null


def cache_inputs(
    params: Any, index_key: str, schedule: Path, variant: str
) -> tuple[Any, Any, Any]:
    """(step ids per phase step, batch source, null prompt) from the embedding cache."""
    from core.storage import open_params_store
    from models.variants import variant_overrides
    from training.batches import CachedBatchSource
    from training.latents import read_index
    from training.phase_plan import read_step_ids

    store = open_params_store(params)
    index = read_index(store, index_key)
    steps = read_step_ids(schedule)
    use_timeline = variant_overrides(variant).get("use_timeline_modules", True)
    source = CachedBatchSource(store, index.samples, use_timeline=use_timeline)
    return steps, source, index.null_prompt_embeds(store)


def main(argv: Sequence[str] | None = None) -> int:
    from core.params import read_params
    from training.distributed import is_main_process
    from training.params import TrainingSections
    from training.phase import PhaseSpec, run_phase

    args = build_parser().parse_args(argv)
    # Training's sections and core's, with their rules; the other domains' sections are
    # theirs to check (`reactid check-params` and `reactid phase-plan` load the whole file).
    params = read_params(TrainingSections, args.params, only_model_sections=True)
    run = params.training.effective()
    if args.data == "synthetic":
        step_ids, source, null = synthetic_inputs(run.preset, run.global_batch, run.seed,
                                                  args.synthetic_shape)
    else:
        if args.schedule is None:
            raise SystemExit("--data cache needs --schedule (reactid phase-plan writes it)")
        variant = args.variant or run.variant
        step_ids, source, null = cache_inputs(params, args.index, args.schedule, variant)
    spec = PhaseSpec(name=args.phase, steps=args.steps, output_dir=args.output,
                     start_checkpoint=args.start_checkpoint, variant=args.variant)
    result = run_phase(spec, params.training, step_ids, source, null_prompt_embeds=null)
    if is_main_process():
        text = json.dumps({**result.metrics, "checkpoint": str(result.checkpoint),
                           "model_dir": str(result.model_dir)}, indent=1)
        if args.metrics_out is not None:
            args.metrics_out.write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
