"""Evaluation assets: demo benchmark sets, model registry, videos, scores, leaderboard, submission
(generated: assets/stage_assets.py).

demo_benchmarks ─────────────┬─► benchmark_videos[benchmark|model] ─► benchmark_scores[benchmark|model] ─► leaderboard
untrained_model (registers) ─┘                 └──────────────────────► ipvg_submission

``benchmark_videos`` and ``benchmark_scores`` are partitioned by (benchmark, model); the
model dimension is the dynamic partition set "models", which grows when a model is
registered (:func:`register_model`), so a new phase or ablation variant materializes only
its own pairs. Every stage writing under ``models/`` (:data:`MODEL_PRODUCERS`: the untrained
baselines, each curriculum phase, each ablation variant's run) is upstream of ``benchmark_videos``
and ``leaderboard``, which read ``models``.
"""

from pathlib import Path

import dagster as dg

from assets.partitions import MODELS, benchmark_model_partitions, benchmark_partitions
from assets.stage_assets import EVALUATION_GROUP, PROJECT_STAGES, STAGE_ASSETS, model_producers

__all__ = ["EVALUATION_ASSETS", "EVALUATION_GROUP", "EVALUATION_INPUT_ASSETS", "EVALUATION_PAIR_ASSETS",
           "EVALUATION_REPORT_ASSETS", "MODEL_PRODUCERS", "benchmark_model_partitions", "benchmark_partitions",
           "register_model"]

MODEL_PRODUCERS = model_producers(PROJECT_STAGES)


def register_model(instance: dg.DagsterInstance | None, store, name: str, export_dir: str | Path, *, kind: str,
                   description: str, **record):
    """Store an exported model under ``models/<name>/`` and make it a "models" partition.

    Args:
        instance: the Dagster instance (``context.instance``); None outside Dagster (the CLI).
        store: the object store.
        name: model name, e.g. ``phase_4`` or ``ablation-tarope_T2``.
        export_dir: ``save_pretrained`` output (pipeline or transformer).
        kind: ``phase``, ``ablation``, ``external``, or ``untrained`` (names ``untrained…``).
        description: one line for reports.
        **record: ``preset``, ``variant``, ``encoder_seed``, ``phase``, ``training_log``
            (see ``models.registry.store_model``).

    Returns:
        The stored ``ModelRecord``.
    """
    from models.registry import store_model

    stored = store_model(store, name, export_dir, kind=kind, description=description, **record)
    if instance is not None and not instance.has_dynamic_partition(MODELS, name):
        instance.add_dynamic_partitions(MODELS, [name])
    return stored


EVALUATION_INPUT_ASSETS = [STAGE_ASSETS["demo_benchmarks"], STAGE_ASSETS["untrained_model"]]
EVALUATION_PAIR_ASSETS = [STAGE_ASSETS["benchmark_videos"], STAGE_ASSETS["benchmark_scores"]]
EVALUATION_REPORT_ASSETS = [STAGE_ASSETS["leaderboard"], STAGE_ASSETS["ipvg_submission"]]
EVALUATION_ASSETS = EVALUATION_INPUT_ASSETS + EVALUATION_PAIR_ASSETS + EVALUATION_REPORT_ASSETS
