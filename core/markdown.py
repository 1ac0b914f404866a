"""Markdown tables of rows, for Dagster metadata previews and the Markdown reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def markdown_table(rows: Sequence[Mapping[str, Any]], *, missing: str = "", empty: str = "_(no rows)_") -> str:
    """A Markdown table with the first row's keys as columns.

    Floats are written with three decimals, `|` inside a value is escaped so it does not
    split the cell.

    Args:
        missing: what a None (or absent) value shows.
        empty: what stands instead of a table without rows.
    """
    if not rows:
        return empty
    cols = list(rows[0])

    def cell(v: Any) -> str:
        if v is None:
            return missing
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
