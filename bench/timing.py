"""Timing shared by the benchmarks (each runs as `python bench/<name>.py`, so this folder is on
sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(fastest of `repeat` wall-clock runs of `fn` in seconds, what the last run returned)."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out
