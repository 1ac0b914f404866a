"""Errors the evaluation package raises on purpose."""

from __future__ import annotations

from core.errors import ReactIDError


class BenchmarkFormatError(ReactIDError, ValueError):
    """A benchmark file does not have the documented shape; the message names entry and field."""


class MetricUnavailableError(ReactIDError, RuntimeError):
    """A metric backend cannot run here (missing package, weights, or network service)."""


class VideoDecodeError(ReactIDError, RuntimeError):
    """A video file could not be opened or decoded."""


class IncompleteMetricsError(ReactIDError, ValueError):
    """TotalScore was asked for while some weighted metrics are missing."""


class InvalidSubmissionError(ReactIDError, ValueError):
    """A submission failed validation; ``problems`` lists every finding."""

    def __init__(self, problems: list) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"submission is invalid ({len(self.problems)} problems):\n{lines}")
