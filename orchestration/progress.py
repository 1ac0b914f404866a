"""Terminal progress for long CLI work: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from core.progress import reporting


@contextlib.contextmanager
def terminal_progress() -> Iterator[None]:
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("[dim]{task.fields[detail]}"),
        ) as bars:
            tasks: dict[str, int] = {}

            def reporter(task: str, done: int, total: int, detail: str) -> None:
                if task not in tasks:
                    tasks[task] = bars.add_task(task, total=total, detail="")
                bars.update(tasks[task], completed=done, total=total, detail=detail[:40])

            with reporting(reporter):
                yield
        return
    started: dict[str, float] = {}
    shown: dict[str, int] = {}

    def plain(task: str, done: int, total: int, detail: str) -> None:
        started.setdefault(task, time.perf_counter())
        quarter = (4 * done) // max(1, total)
        if quarter > shown.get(task, -1) or done == total:
            shown[task] = quarter
            elapsed = time.perf_counter() - started[task]
            print(f"  {task:<28} {done:>4}/{total:<4} {elapsed:6.1f}s {detail[:40]}", flush=True)

    with reporting(plain):
        yield
