"""The leaderboard's PNG plots (matplotlib with the Agg backend, imported when a plot is drawn).

Every metric axis label names the backend as the table headers do: ``name [embedded]``,
``name [pretrained, proxy]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.images import figure_png, pyplot

# benchmark -> model -> metric -> value in %
Values = Mapping[str, Mapping[str, Mapping[str, float]]]


def _figure(n: int, width: float = 4.6, height: float = 3.2):
    fig, axes = pyplot().subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def _png(fig) -> bytes:
    return figure_png(fig, dpi=90, bbox_inches="tight")


def _grouped_bars(ax, metrics: Sequence[str], series: Mapping[str, Mapping[str, float]], unit: str) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    colours = plt.get_cmap("tab20")
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(series))
    for k, (label, values) in enumerate(series.items()):
        heights = [values.get(m, np.nan) for m in metrics]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, label=label, color=colours(k % 20))
    ax.set_xticks(x)
    ax.set_xticklabels([tick_label(m) for m in metrics], fontsize=7)
    ax.set_ylabel(unit)
    ax.axhline(0, color="black", linewidth=0.6)


def tick_label(label: str) -> str:
    """A metric label ``name [backend, proxy]`` wrapped for an axis: the name broken at its
    first two underscores, the backend tag on a line of its own."""
    name, bracket, tag = label.partition(" [")
    return name.replace("_", "\n", 2) + (f"\n[{tag}" if bracket else "")


def _panels(values: Values, labels: Mapping[str, str], unit: str) -> bytes:
    """One panel per benchmark, one bar group per metric, one bar per model; one shared legend."""
    benchmarks = [b for b in values if values[b]]
    fig, axes = _figure(max(1, len(benchmarks)))
    for ax, benchmark in zip(axes, benchmarks, strict=False):
        metrics = list(dict.fromkeys(m for per_model in values[benchmark].values() for m in per_model))
        _grouped_bars(ax, [labels.get(m, m) for m in metrics],
                      {model: {labels.get(m, m): v for m, v in per_model.items()}
                       for model, per_model in values[benchmark].items()}, unit)
        ax.set_title(benchmark)
    handles, names = max((ax.get_legend_handles_labels() for ax in axes), key=lambda hl: len(hl[1]))
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(6, max(1, len(names))),
               fontsize=7, frameon=False)
    return _png(fig)


def metric_bars(values: Values, labels: Mapping[str, str]) -> bytes:
    """Per-metric bars, one panel per benchmark, one bar per model (values in %).

    Args:
        values: benchmark -> model -> metric -> value in %, computed metrics only.
        labels: metric name -> axis label naming its backend as the table headers do,
            ``name [backend]`` or ``name [backend, proxy]``.
    """
    return _panels(values, labels, "%")


def ablation_deltas(deltas: Values, reference: str, labels: Mapping[str, str]) -> bytes:
    """Difference to the reference model, in percentage points, one panel per benchmark
    (``labels`` as for :func:`metric_bars`)."""
    return _panels(deltas, labels, f"pp vs {reference}")


def loss_curves(logs: Mapping[str, Sequence[Mapping[str, float]]], groups: Mapping[str, str]) -> bytes:
    """Training loss against the global step: one panel per kind of model, one line per model.

    Args:
        logs: model -> step records with ``step`` and ``loss``.
        groups: model -> panel title (e.g. "curriculum phase", "ablation variant").
    """
    import matplotlib.pyplot as plt

    titles = list(dict.fromkeys(groups[m] for m in logs))
    fig, axes = _figure(len(titles), width=5.6, height=3.4)
    colours = plt.get_cmap("tab20")
    for ax, title in zip(axes, titles, strict=True):
        members = [m for m in logs if groups[m] == title]
        for k, model in enumerate(members):
            records = logs[model]
            ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=model, linewidth=1.2,
                    color=colours(k % 20))
        ax.set_title(title)
        ax.set_xlabel("global step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.subplots_adjust(wspace=0.7)  # room for each panel's legend
    return _png(fig)
