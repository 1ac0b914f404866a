"""The leaderboard's PNG plots (matplotlib with the Agg backend, imported when a plot is drawn)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

# benchmark -> model -> metric -> value in %
Values = Mapping[str, Mapping[str, Mapping[str, float]]]


def _figure(n: int, width: float = 4.6, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _grouped_bars(ax, metrics: Sequence[str], series: Mapping[str, Mapping[str, float]], unit: str) -> None:
    import numpy as np

    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(series))
    for k, (label, values) in enumerate(series.items()):
        heights = [values.get(m, np.nan) for m in metrics]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([m.replace("_", "\n", 2) for m in metrics], fontsize=7)
    ax.set_ylabel(unit)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(fontsize=7)


def metric_bars(values: Values, labels: Mapping[str, str]) -> bytes:
    """Per-metric bars, one panel per benchmark, one bar per model (values in %).

    Args:
        values: benchmark -> model -> metric -> value in %, computed metrics only.
        labels: metric name -> axis label naming its backend.
    """
    benchmarks = [b for b in values if values[b]]
    fig, axes = _figure(max(1, len(benchmarks)))
    for ax, benchmark in zip(axes, benchmarks, strict=False):
        metrics = sorted({m for per_model in values[benchmark].values() for m in per_model})
        _grouped_bars(ax, [labels.get(m, m) for m in metrics],
                      {model: {labels.get(m, m): v for m, v in per_model.items()}
                       for model, per_model in values[benchmark].items()}, "%")
        ax.set_title(benchmark)
    return _png(fig)


def ablation_deltas(deltas: Values, reference: str, labels: Mapping[str, str]) -> bytes:
    """Difference to the reference model, in percentage points, one panel per benchmark."""
    benchmarks = [b for b in deltas if deltas[b]]
    fig, axes = _figure(max(1, len(benchmarks)))
    for ax, benchmark in zip(axes, benchmarks, strict=False):
        metrics = sorted({m for per_model in deltas[benchmark].values() for m in per_model})
        _grouped_bars(ax, [labels.get(m, m) for m in metrics],
                      {model: {labels.get(m, m): v for m, v in per_model.items()}
                       for model, per_model in deltas[benchmark].items()}, f"pp vs {reference}")
        ax.set_title(benchmark)
    return _png(fig)


def loss_curves(logs: Mapping[str, Sequence[Mapping[str, float]]]) -> bytes:
    """Training loss against the global step, one line per model with a registered log."""
    fig, (ax,) = _figure(1, width=7.0, height=3.4)
    for model, records in logs.items():
        ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=model, linewidth=1.2)
    ax.set_xlabel("global step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)
    return _png(fig)
