"""Every stage the runner runs, in data-flow order: the one list of the domains' declarations
(StageSpec in curation/stages.py, training/stages.py, training/run_stages.py and
evaluation/stages.py). The Dagster assets (assets/stage_assets.py), the `reactid run` entry and
dvc.yaml (orchestration/dvc_yaml.py) are generated from it.

Imports no Dagster: the CLI and dvc.yaml's generator read it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.stage import StageSpec

# The params key listing the partitions of each partitioning: the keys dvc.yaml loops over, the
# untrained models the Dagster asset registers, the shards and models the CLI's aggregates read.
PARTITION_LISTS = {"shard": "demo_pool.shards", "variant": "ablations.variants",
                   "model": "evaluation.untrained_models", "benchmark_model": "evaluation.models"}


def all_stages(n_phases: int) -> dict[str, StageSpec]:
    """Every runner stage by name, with curriculum phases 1..n_phases."""
    from curation.stages import STAGES
    from evaluation.stages import EVAL_STAGES
    from training.run_stages import training_run_stages
    from training.stages import TRAINING_STAGES

    return {**STAGES, **TRAINING_STAGES, **training_run_stages(n_phases), **EVAL_STAGES}


def project_stages(params: Any) -> dict[str, StageSpec]:
    """The stages of a params file: one curriculum phase per entry of `curriculum.phase_ratios`."""
    return all_stages(len(params.curriculum.phase_ratios))


def params_value(params: Any, dotted: str) -> Any:
    """The value of a dotted params key (`evaluation.untrained_models`)."""
    value = params
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def reads_output(template: str, output: str) -> bool:
    """Whether an input template names an output of another stage: the same path, a folder holding
    it (`models` holds `models/{model}`), or a path inside it (`cache/index.json` inside `cache`)."""
    return _within(output, template) or _within(template, output)


def producers(spec: StageSpec, stages: Mapping[str, StageSpec]) -> list[str]:
    """The stages `spec` reads from: its upstream stages, then every stage writing one of its inputs."""
    names = list(spec.upstream)
    for template in spec.inputs:
        names += [name for name, other in stages.items()
                  if any(reads_output(template, out.path) for out in other.written)]
    return [name for name in dict.fromkeys(names) if name != spec.name]


def read_partitioning(spec: StageSpec, stages: Mapping[str, StageSpec]) -> str | None:
    """The partitioning whose runs an aggregate reads across (its upstream stages'); None for a
    stage that reads one run of each upstream stage.

    Raises:
        ValueError: the upstream stages of an aggregate are split in different ways.
    """
    if not spec.aggregate:
        return None
    kinds = {stages[name].partitions for name in spec.upstream}
    if len(kinds) != 1:
        raise ValueError(f"aggregate stage {spec.name!r} reads upstream stages split in different ways: "
                         f"{sorted(kinds)} (of {list(spec.upstream)})")
    return kinds.pop()


def _promote_evaluation(params: Any, store: Any, fingerprint: str, reads: tuple[str, ...],
                        run_id: str) -> dict[str, str]:
    """With `lakefs.enabled`: merge the run's lakeFS branch into main and tag it (README: lakeFS)."""
    if not params.lakefs.enabled:
        return {}
    from versioning.hooks import promote_evaluation

    promotion = promote_evaluation(params, store, run_id=run_id, evaluation_fingerprint=fingerprint,
                                   models=[run.split("/", 1)[1] for run in reads])
    return {k: promotion[k] for k in ("tag", "commit_id", "data_commit", "branch")}


# What both engines do once a stage has run, by stage: (params, store, fingerprint, the runs it
# read, run id) -> what it recorded, for the run's metadata.
AFTER_RUN: dict[str, Callable[[Any, Any, str, tuple[str, ...], str], dict[str, str]]] = {
    "leaderboard": _promote_evaluation,
}


def after_run(spec: StageSpec, params: Any, store: Any, fingerprint: str, reads: tuple[str, ...],
              run_id: str) -> dict[str, str]:
    """Run the stage's AFTER_RUN hook, if it has one; returns what it recorded."""
    hook = AFTER_RUN.get(spec.name)
    return hook(params, store, fingerprint, reads, run_id) if hook else {}
