"""Named model variants: the paper's ablations as config overrides of the ReactID model.

``MODEL_VARIANTS[name]`` holds the ``ReactIDTransformer3DModel`` arguments that differ
from the full model (``"reactid"``: TARoPE with T = 2, uniform label binding with
(alpha, beta) = (2, 20)). ``ABLATION_TABLES`` lists the variants compared in each table.
Pure data: importing this module loads no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

MODEL_VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # Table 6
        "reactid": {},
        "base": {"use_timeline_modules": False},
        # Table 4: temporal alignment of sub-actions
        "attention_mask": {"timeline_rope": "none", "timeline_temporal_mask": True},
        "vanilla_rope": {"timeline_rope": "vanilla"},
        "tarope_T8": {"timeline_rope": "tarope", "tarope_rescale_length": 8.0},
        "tarope_T4": {"timeline_rope": "tarope", "tarope_rescale_length": 4.0},
        "tarope_T2": {"timeline_rope": "tarope", "tarope_rescale_length": 2.0},
        # Table 3: label binding strategy and label values
        "label_adaptive": {"label_binding": "adaptive"},
        "label_uniform": {"label_binding": "uniform"},
        "label_values_0_1": {"label_binding": "uniform", "label_alpha": 0.0, "label_beta": 1.0},
        "label_values_2_20": {"label_binding": "uniform", "label_alpha": 2.0, "label_beta": 20.0},
    }
)

ABLATION_TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "table3": ("label_adaptive", "label_uniform", "label_values_0_1", "label_values_2_20"),
        "table4": ("attention_mask", "vanilla_rope", "tarope_T8", "tarope_T4", "tarope_T2"),
        "table6": ("base", "reactid"),
    }
)


def variant_overrides(name: str) -> dict[str, Any]:
    """Config overrides of a named variant.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    if name not in MODEL_VARIANTS:
        raise KeyError(f"unknown model variant {name!r}; known: {sorted(MODEL_VARIANTS)}")
    return dict(MODEL_VARIANTS[name])
