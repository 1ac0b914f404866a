"""Dagster concurrency pools of the platform's assets.

Assets in the "gpu" pool (the curriculum phases, ablation_runs, benchmark_videos) hold a GPU
for their whole step. The pool's limit is instance configuration, not code: `reactid
dagster-home` writes it into $DAGSTER_HOME/dagster.yaml from params
`orchestration.concurrency.gpu_slots` (see orchestration/instance_config.py).
"""

GPU_POOL = "gpu"
