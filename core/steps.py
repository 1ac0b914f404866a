"""How a run's optimizer steps split into curriculum phases (paper: 4:2:1:1).

Pure arithmetic shared by the params check (a step count too small for the phases stops the
run when params load, naming its key) and the curriculum schedule (training.curriculum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def phase_bounds(total_steps: int, ratios: Sequence[float]) -> list[int]:
    """[0, b_1, ..., total_steps] with b_k = floor(T * sum_{j<=k} r_j / sum r), exact in fractions.

    4:2:1:1 of 10000 steps gives [0, 5000, 7500, 8750, 10000]. Ratios must be finite, >= 0
    and sum to > 0 (the caller checks and names them).
    """
    exact = [Fraction(r) for r in ratios]
    total = sum(exact)
    bounds, acc = [0], Fraction(0)
    for r in exact:
        acc += r
        bounds.append(math.floor(total_steps * acc / total))
    bounds[-1] = total_steps
    return bounds


def phase_lengths(total_steps: int, ratios: Sequence[float]) -> list[int]:
    """Steps of each phase (see `phase_bounds`)."""
    bounds = phase_bounds(total_steps, ratios)
    return [b - a for a, b in zip(bounds, bounds[1:])]
