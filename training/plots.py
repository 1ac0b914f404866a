"""Plots of training runs (PNG bytes for asset metadata and reports)."""

from __future__ import annotations

from collections.abc import Sequence

from core.images import figure_png, pyplot


def loss_curve_png(steps: Sequence[int], losses: Sequence[float], title: str) -> bytes:
    """The training loss per optimizer step, with a running mean over a quarter of the steps."""
    import numpy as np

    fig, ax = pyplot().subplots(figsize=(6, 3), dpi=100)
    ax.plot(steps, losses, color="#8aa9c8", lw=1, label="loss")
    if len(losses) >= 4:
        window = max(2, len(losses) // 4)
        smooth = np.convolve(np.asarray(losses, float), np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="#c0392b", lw=1.5, label=f"mean of {window} steps")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig)
