"""ReactID model: Wan2.1 transformer with a reference branch, subject-aware cross-attention
and temporally-adaptive RoPE; its training loss, pipeline, presets, variants and planners.

Importing this package loads neither torch nor diffusers (the Dagster code location
imports it); the names below are resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ReactIDTransformer3DModel": "models.transformer_reactid",
    "ReactIDTransformerOutput": "models.transformer_reactid",
    "ReactIDPipeline": "models.pipeline_reactid",
    "ReactIDPipelineOutput": "models.pipeline_reactid",
    "reactid_training_loss": "models.losses",
    "sigmoid_focal_loss": "models.losses",
    "TrainingLoss": "models.losses",
    "PRESETS": "models.presets",
    "ModelPreset": "models.presets",
    "get_preset": "models.presets",
    "build_transformer": "models.presets",
    "build_pipeline": "models.presets",
    "MODEL_VARIANTS": "models.variants",
    "ABLATION_TABLES": "models.variants",
    "variant_overrides": "models.variants",
    "SequencingWordPlanner": "models.planner",
    "InstructionModelPlanner": "models.planner",
    "TimelinePlanner": "models.planner",
    "write_h264_mp4": "models.video_export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
