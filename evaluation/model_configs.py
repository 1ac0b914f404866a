"""Which registered ablation models train exactly the full ReactID model's configuration.

The ablation grid (``training.ablations``) contains runs that differ from the full model in
name only: the full-curriculum run of Table 5 trains the main model variant, and Tables 3, 4
and 6 each list the paper's own choice as one of their rows (``reactid``, ``tarope_T2``,
``label_uniform``, ``label_values_2_20``: TARoPE with T = 2 and uniform label binding with
(alpha, beta) = (2, 20) are the transformer's defaults). With the same schedule, steps and
seed they score the same, and the leaderboard says why instead of leaving identical rows
unexplained.

A model is "the same configuration as the full model (paper default)" when its registry
record is an ablation run (``ablation-<variant>``) whose schedule is the full curriculum
(any model ablation, or the ``full_curriculum`` curriculum ablation) and whose model
variant's overrides (``models.variants``) leave every overridden transformer argument at its
default, which is the ``reactid`` variant's configuration. The defaults are read from
``ReactIDTransformer3DModel.__init__``'s signature (this imports torch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PAPER_DEFAULT_NOTE = "same configuration as the full model (paper default)"
ABLATION_PREFIX = "ablation-"


def full_model_config() -> dict[str, Any]:
    """The transformer arguments any model variant overrides, at the full model's values.

    Returns:
        Argument name to its default in ``ReactIDTransformer3DModel`` (the ``reactid``
        variant, which overrides nothing).
    """
    import inspect

    from models.transformer_reactid import ReactIDTransformer3DModel
    from models.variants import MODEL_VARIANTS

    parameters = inspect.signature(ReactIDTransformer3DModel.__init__).parameters
    keys = sorted({key for overrides in MODEL_VARIANTS.values() for key in overrides})
    return {key: parameters[key].default for key in keys}


def same_as_full_model(record: Mapping[str, Any], full_config: Mapping[str, Any]) -> bool:
    """Whether a registered model is an ablation run of the full model's configuration.

    Args:
        record: the model's registry record (``name``, ``kind``, ``variant``).
        full_config: :func:`full_model_config`.

    Returns:
        True for an ``ablation-<variant>`` run on the full curriculum whose model variant
        resolves to ``full_config``.
    """
    from models.variants import variant_overrides
    from training.ablations import ABLATION_VARIANTS, CURRICULUM_VARIANTS

    if record.get("kind") != "ablation" or not record["name"].startswith(ABLATION_PREFIX):
        return False
    ablation = record["name"][len(ABLATION_PREFIX):]
    if ablation not in ABLATION_VARIANTS:
        return False
    if ablation in CURRICULUM_VARIANTS and ablation != "full_curriculum":
        return False  # the same model on another data schedule
    resolved = {**full_config, **variant_overrides(record["variant"])}
    return resolved == dict(full_config)


def full_model_configurations(
    records: Iterable[Mapping[str, Any]], full_config: Mapping[str, Any]
) -> list[str]:
    """Names of the models that :func:`same_as_full_model` holds for, sorted."""
    return sorted({r["name"] for r in records if same_as_full_model(r, full_config)})
