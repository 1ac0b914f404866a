"""Timing shared by the benchmarks (each runs as `python bench/<name>.py`, so this folder is on
sys.path)."""

from __future__ import annotations

import threading
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


class PeriodicSampler:
    """Calls `sample()` every `interval` seconds on a daemon thread while a `with` block runs
    (memory of worker processes, GPU utilisation). Subclasses define `sample`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise TypeError(f"{type(self).__name__} must define sample()")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
