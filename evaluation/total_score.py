"""OpenS2V-Eval normalisation and TotalScore.

Follows ``eval/merge_result.py`` of OpenS2V-Nexus (v1.1) and ``eval/v1.0_backup/merge_result.py``
(v1.0). Each raw metric is clamped per video, averaged over videos, then rescaled:

=====================  ==============================  ========================  ========
key                    raw value                       normalised                range
=====================  ==============================  ========================  ========
``aesthetics``         LAION score, 1-10 scale         (clamp(x, 4, 7) - 4) / 3  [0, 1]
``motion_smoothness``  fraction                        min(|x|, 1)               [0, 1]
``motion_amplitude``   Farnebäck mean flow (px/frame)  min(|x|, 1)               [0, 1]
``facesim``            cosine, floored at 0 per frame  min(x, 1)                 [-1, 1]
``gme``                mean cosine                     min(x, 1)                 [-1, 1]
``nexus``              mean cosine / frames detected   min(x, 0.05) / 0.05       [-20, 1]
``natural``            MLLM rating 1-5                 (clamp(x, 1, 5) - 1) / 4  [0, 1]
=====================  ==============================  ========================  ========

The merge script skips videos whose NexusScore is exactly 0 (no subject detected) when it
averages; :func:`aggregate_videos` does the same.

``facesim``, ``gme`` and ``nexus`` are capped from above only, as the merge script does: a
negative raw value passes through and lowers the mean and TotalScore, it is not raised to 0.
GmeScore is a mean text-frame cosine and goes below 0 on videos unrelated to their prompt
(noise); NexusScore's reference-to-crop cosine can too. FaceSim cannot: its metric floors
every frame's cosine at 0 and drops the zeros (:mod:`evaluation.metrics.facesim`), so the
merge script's ``min(x, 1)`` only ever sees values in [0, 1] from it. The "range" column is
what a normalised value can be given raw cosines in [-1, 1]; a raw cosine below -1 is an
error, not a value. Normalised values are therefore not all fractions in [0, 1], and neither
is a TotalScore built from a negative GmeScore or NexusScore.

TotalScore weights (all values fractions; Single-Domain uses the Open-Domain weights because
the script branches only on ``Human-Domain``):

* v1.1 open/single: 0.16 aes + 0.06 MS + 0.02 MA + 0.20 face + 0.12 gme + 0.20 nexus + 0.24 natural
* v1.1 human:       0.18 aes + 0.09 MS + 0.03 MA + 0.25 face + 0.15 gme + 0.30 natural
* v1.0 open/single: 0.12 aes + 0.12 motion + 0.20 face + 0.12 gme + 0.20 nexus + 0.24 natural
* v1.0 human:       0.15 aes + 0.15 motion + 0.25 face + 0.15 gme + 0.30 natural

v1.0's single ``Motion`` term is the Farnebäck ``motion_fb`` value (the v1.0 merge script reads
it from ``motionscore.json``), i.e. what v1.1 calls motion amplitude; it is therefore taken
from the ``motion_amplitude`` key, and ``motion_smoothness`` is not used by v1.0.

A total is only called TotalScore when every weighted metric is present: :func:`total_score`
raises :class:`IncompleteMetricsError` otherwise. :func:`partial_score` returns a
:class:`PartialScore`, a different type that carries the weight it covers and what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evaluation.errors import IncompleteMetricsError

METRIC_KEYS = (
    "aesthetics",
    "motion_smoothness",
    "motion_amplitude",
    "facesim",
    "gme",
    "nexus",
    "natural",
)

# Lowest raw value each cosine-based metric can take; the normalised range follows from it.
COSINE_FLOOR = -1.0
NORMALIZED_RANGE: dict[str, tuple[float, float]] = {
    "aesthetics": (0.0, 1.0),
    "motion_smoothness": (0.0, 1.0),
    "motion_amplitude": (0.0, 1.0),
    "facesim": (COSINE_FLOOR, 1.0),
    "gme": (COSINE_FLOOR, 1.0),
    "nexus": (COSINE_FLOOR / 0.05, 1.0),
    "natural": (0.0, 1.0),
}

WEIGHTS: dict[tuple[str, str], dict[str, float]] = {
    ("v1.1", "open"): {
        "aesthetics": 0.16,
        "motion_smoothness": 0.06,
        "motion_amplitude": 0.02,
        "facesim": 0.20,
        "gme": 0.12,
        "nexus": 0.20,
        "natural": 0.24,
    },
    ("v1.1", "human"): {
        "aesthetics": 0.18,
        "motion_smoothness": 0.09,
        "motion_amplitude": 0.03,
        "facesim": 0.25,
        "gme": 0.15,
        "natural": 0.30,
    },
    ("v1.0", "open"): {
        "aesthetics": 0.12,
        "motion_amplitude": 0.12,
        "facesim": 0.20,
        "gme": 0.12,
        "nexus": 0.20,
        "natural": 0.24,
    },
    ("v1.0", "human"): {
        "aesthetics": 0.15,
        "motion_amplitude": 0.15,
        "facesim": 0.25,
        "gme": 0.15,
        "natural": 0.30,
    },
}
WEIGHTS[("v1.1", "single")] = WEIGHTS[("v1.1", "open")]
WEIGHTS[("v1.0", "single")] = WEIGHTS[("v1.0", "open")]


def weights_for(domain: str = "open", version: str = "v1.1") -> dict[str, float]:
    """TotalScore weights for a domain and benchmark version.

    Args:
        domain: ``open``, ``single`` or ``human``.
        version: ``v1.0`` or ``v1.1``.

    Returns:
        Metric key to weight; the weights sum to 1.
    """
    try:
        return dict(WEIGHTS[(version, domain)])
    except KeyError:
        raise ValueError(
            f"no OpenS2V weights for version={version!r} domain={domain!r}; versions are "
            f"'v1.0'/'v1.1', domains 'open'/'single'/'human'"
        ) from None


def normalize_value(key: str, raw: float) -> float:
    """Clamp and rescale one raw metric value as the merge script does.

    Args:
        key: one of :data:`METRIC_KEYS`.
        raw: the raw value (see the module table for its scale).

    Returns:
        The normalised value, within :data:`NORMALIZED_RANGE` of the key: [0, 1] except for
        ``facesim``, ``gme`` and ``nexus``, whose negative raw values pass through.

    Raises:
        ValueError: a non-finite value, or a cosine-based value below -1.
        KeyError: an unknown key.
    """
    x = _finite(key, raw)
    if key == "aesthetics":
        return (min(max(x, 4.0), 7.0) - 4.0) / 3.0
    if key in ("motion_smoothness", "motion_amplitude"):
        return min(abs(x), 1.0)
    if key in ("facesim", "gme", "nexus"):
        if x < COSINE_FLOOR:
            raise ValueError(f"raw {key} is {x}, below {COSINE_FLOOR}: not a cosine-based score")
        return min(x, 0.05) / 0.05 if key == "nexus" else min(x, 1.0)
    if key == "natural":
        return (min(max(x, 1.0), 5.0) - 1.0) / 4.0
    raise KeyError(f"unknown metric key {key!r}; expected one of {METRIC_KEYS}")


def normalize_metrics(raw: Mapping[str, float]) -> dict[str, float]:
    """Normalise a set of raw metric values (already averaged over videos).

    Args:
        raw: metric key to raw value; keys from :data:`METRIC_KEYS`.

    Returns:
        Metric key to normalised value (see :data:`NORMALIZED_RANGE`).
    """
    return {key: normalize_value(key, value) for key, value in raw.items()}


def aggregate_videos(per_video: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average per-video raw metrics into normalised benchmark values.

    Clamping is per video before the mean, and the rescaling is affine, so the result is
    the mean of each video's normalised value; videos lacking a key do not count for it,
    and a NexusScore of exactly 0 is skipped, as in the merge script.

    Args:
        per_video: one mapping of raw values per generated video.

    Returns:
        Metric key to normalised value, for every key seen in at least one video.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for video in per_video:
        for key, value in video.items():
            if key == "nexus" and value == 0:
                continue
            sums[key] = sums.get(key, 0.0) + normalize_value(key, value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def total_score(
    normalized: Mapping[str, float], domain: str = "open", version: str = "v1.1"
) -> float:
    """OpenS2V TotalScore from normalised metrics.

    Args:
        normalized: metric key to normalised value (see :func:`normalize_metrics`).
        domain: ``open``, ``single`` or ``human``.
        version: ``v1.0`` or ``v1.1``.

    Returns:
        The weighted sum: at most 1, below 0 only when a negative GmeScore or NexusScore
        outweighs the rest.

    Raises:
        IncompleteMetricsError: when a weighted metric is missing (use :func:`partial_score`).
    """
    weights = weights_for(domain, version)
    _check_normalized(normalized)
    missing = [k for k in weights if k not in normalized]
    if missing:
        raise IncompleteMetricsError(
            f"TotalScore ({version}, {domain}) needs {sorted(weights)}; missing {missing}. "
            f"A sum over fewer metrics is not TotalScore: use partial_score()"
        )
    return sum(w * normalized[k] for k, w in weights.items())


@dataclass(frozen=True)
class PartialScore:
    """A weighted sum over the metrics that are present; never a TotalScore.

    ``value`` is the sum of weight x metric over present metrics (not rescaled), so it is a
    lower bound of what TotalScore would be unless a missing GmeScore or NexusScore is
    negative; ``covered_weight`` is the share of the TotalScore weight those metrics carry.
    """

    value: float
    covered_weight: float
    present: tuple[str, ...]
    missing: tuple[str, ...]
    domain: str
    version: str


def partial_score(
    normalized: Mapping[str, float], domain: str = "open", version: str = "v1.1"
) -> PartialScore:
    """Weighted sum over the present metrics, labelled with what it lacks.

    Args:
        normalized: metric key to normalised value (see :func:`normalize_metrics`).
        domain: ``open``, ``single`` or ``human``.
        version: ``v1.0`` or ``v1.1``.

    Returns:
        A :class:`PartialScore`.
    """
    weights = weights_for(domain, version)
    _check_normalized(normalized)
    present = tuple(k for k in weights if k in normalized)
    return PartialScore(
        value=sum(weights[k] * normalized[k] for k in present),
        covered_weight=sum(weights[k] for k in present),
        present=present,
        missing=tuple(k for k in weights if k not in normalized),
        domain=domain,
        version=version,
    )


def _finite(key: str, value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{key} is not a finite number: {value!r}")
    return x


def _check_normalized(normalized: Mapping[str, float]) -> None:
    for key, value in normalized.items():
        if key not in METRIC_KEYS:
            raise KeyError(f"unknown metric key {key!r}; expected one of {METRIC_KEYS}")
        x = _finite(key, value)
        low, high = NORMALIZED_RANGE[key]
        if not low <= x <= high:
            raise ValueError(f"normalised {key} must lie in [{low:g}, {high:g}], got {x}")
