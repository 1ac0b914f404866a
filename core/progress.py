"""Progress reporting for long work, decoupled from who displays it.

Stages call `report(...)`; the CLI installs a terminal progress display, Dagster assets
install a reporter that logs to the run. Without a reporter nothing is shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Reporter = Callable[[str, int, int, str], None]
"""(task, done, total, detail) -> None."""

_reporters: list[Reporter] = []


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Install `reporter` for the duration of the block (nestable)."""
    _reporters.append(reporter)
    try:
        yield
    finally:
        _reporters.remove(reporter)


def report(task: str, done: int, total: int, detail: str = "") -> None:
    for reporter in list(_reporters):
        reporter(task, done, total, detail)
