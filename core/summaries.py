"""What a stage's metadata says about the rows it wrote: counts by value, a preview of the
first rows, and min/median/max of a column. Shared by every package's stages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def counts_by(values: Iterable[str | None]) -> dict[str, int]:
    """How often each value occurs (None and "" left out), sorted by value."""
    out: dict[str, int] = {}
    for v in values:
        if v:
            out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def preview_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], n: int = 8) -> list[dict[str, Any]]:
    """The first `n` rows with only `columns` (an absent column reads None)."""
    return [{c: r.get(c) for c in columns} for r in rows[:n]]


def min_median_max(values: Iterable[float | None]) -> dict[str, float] | None:
    """min, median and max of the values that are not None, rounded to 4 decimals; None
    when there are none."""
    vals = np.asarray([v for v in values if v is not None], float)
    if not len(vals):
        return None
    return {k: round(float(f(vals)), 4) for k, f in (("min", np.min), ("median", np.median), ("max", np.max))}
