"""The leaderboard: every scored model per benchmark, formatted like the paper's tables.

One table per benchmark: a row per model (untrained baselines, curriculum phases,
ablation variants), a column per metric in % with the best value in bold, each header
naming the metric's backend and whether it is a proxy; TotalScore only where every
weighted OpenS2V score was computed. Ablation runs that train the full model's own
configuration (``evaluation.model_configs``) are marked "same configuration as the full
model (paper default)". Below each table: what every column measures, and which scores
have no value and why. Then ablation deltas against the reference variant,
training-loss curves from the registered training logs, and whether the benchmark
identities were really held out of the training samples.

The same content is rendered as Markdown (plots as PNG files beside it) and as one
self-contained HTML page (plots embedded as base64 PNGs).
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evaluation.model_configs import PAPER_DEFAULT_NOTE

KIND_ORDER = {"untrained": 0, "phase": 1, "ablation": 2, "external": 3}
KIND_LABEL = {
    "untrained": "untrained (random weights)",
    "phase": "curriculum phase",
    "ablation": "ablation variant",
    "external": "external",
}


@dataclass
class Section:
    """A titled block: paragraphs, and tables as (header, rows, bold cells)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]], set[tuple[int, int]]]] = field(default_factory=list)
    image: str | None = None  # plot name


@dataclass(frozen=True)
class Leaderboard:
    markdown: str
    html: str
    plots: dict[str, bytes]  # name -> PNG
    metrics: dict[str, Any]  # benchmark -> model -> metric -> value in %, plus TotalScore
    plot_rows: list[dict[str, Any]]  # one per (benchmark, model): metric columns in %
    loss_rows: list[dict[str, Any]]  # (model, step, loss)


def model_order(record: Mapping[str, Any]) -> tuple:
    """Untrained baselines, phases in order, then ablations and other models by name."""
    return (KIND_ORDER.get(record["kind"], 9), record.get("phase") or 0, record["name"])


def header(metric: Mapping[str, Any]) -> str:
    return f"{_tag(metric)} ({'%' if _in_percent(metric) else metric['unit']})"


def _tag(metric: Mapping[str, Any]) -> str:
    tag = metric["backend"] + (", proxy" if metric["is_proxy"] else "")
    return f"{metric['name']} [{tag}]"


def _in_percent(metric: Mapping[str, Any]) -> bool:
    """Fractions are shown in %; a raw value on a named scale (``unit`` such as ``VideoScore 1-4``
    or ``rating 1-5``) is shown as is."""
    return metric.get("scale") == "normalised" or metric.get("unit", "fraction") == "fraction"


def build_leaderboard(
    cards: Sequence[Mapping[str, Any]],
    logs: Mapping[str, Sequence[Mapping[str, Any]]],
    reference_variant: str,
    held_out: Mapping[str, Any],
    plot_link_prefix: str = "leaderboard",
    full_model_configurations: Collection[str] = (),
) -> Leaderboard:
    """Render the leaderboard from the score cards of every scored (benchmark, model).

    Args:
        cards: ``benchmark_scores.score_card_json`` outputs (each carries its model record).
        logs: model name -> training-log records (``step``, ``loss``), for the loss curves.
        reference_variant: ablation deltas are measured against the model of this variant.
        held_out: ``{"identities": [...], "in_training": {identity: samples}, "checked": bool}``.
        plot_link_prefix: folder of the PNGs, relative to the Markdown file.
        full_model_configurations: models that train the full model's configuration
            (``evaluation.model_configs``); their rows say so, which explains equal numbers.

    Returns:
        The :class:`Leaderboard`.
    """
    from evaluation import leaderboard_plots as plots

    if not cards:
        raise ValueError("no scored model: materialize benchmark_scores for at least one model first")
    by_bench: dict[str, list[Mapping[str, Any]]] = {}
    for card in cards:
        by_bench.setdefault(card["benchmark"], []).append(card)
    values: dict[str, dict[str, dict[str, float]]] = {}
    labels: dict[str, str] = {}  # plot labels
    tags: dict[str, str] = {}  # table headers naming the backend
    sections: list[Section] = []
    metrics_out: dict[str, Any] = {}
    plot_rows: list[dict[str, Any]] = []
    for benchmark, bench_cards in by_bench.items():
        bench_cards = sorted(bench_cards, key=lambda c: model_order(c["model_record"]))
        section, per_model = _benchmark_section(benchmark, bench_cards, full_model_configurations)
        sections.append(section)
        values[benchmark] = {m: {k: v for k, v in row.items() if k != "TotalScore" and v is not None}
                             for m, row in per_model.items()}
        metrics_out[benchmark] = per_model
        for card in bench_cards:
            for metric in card["metrics"]:
                labels[metric["name"]] = _tag(metric)  # the table header's name and backend
                tags[metric["name"]] = _tag(metric)
            plot_rows.append({"run": f"{benchmark}/{card['model']}", **per_model[card["model"]]})
    pngs = {"metrics": plots.metric_bars(values, labels)}
    sections.append(Section("Per-metric comparison", [
        "Bars are the table values (%); metrics without a value are left out."], image="metrics"))
    deltas, reference_of = _ablation_deltas(cards, values, reference_variant)
    delta_section = Section(f"Ablation deltas (percentage points vs {reference_variant})")
    if deltas:
        pngs["ablation_deltas"] = plots.ablation_deltas(deltas, reference_variant, labels)
        delta_section.image = "ablation_deltas"
        for benchmark, per_model in deltas.items():
            names = list(dict.fromkeys(m for d in per_model.values() for m in d))
            rows = [[_compared(model, reference_of[model], full_model_configurations)]
                    + [_signed(per_model[model].get(n)) for n in names] for model in per_model]
            delta_section.tables.append(([benchmark] + [f"{tags[n]} (pp)" for n in names], rows, set()))
        if all(v == 0 for per_model in deltas.values() for d in per_model.values() for v in d.values()):
            delta_section.paragraphs.append("Every delta is exactly 0: the compared models scored identically.")
    else:
        delta_section.paragraphs.append(
            f"No ablation group has both a {reference_variant!r} model and another variant scored.")
    sections.append(delta_section)
    loss_section = Section("Training loss")
    records = {c["model"]: c["model_record"] for c in cards}
    curves = {m: [r for r in logs[m] if r.get("loss") is not None]
              for m in sorted(logs, key=lambda m: model_order(records[m])) if logs[m]}
    if curves:
        kinds = {m: KIND_LABEL.get(r["kind"], r["kind"]) for m, r in records.items()}
        pngs["loss_curves"] = plots.loss_curves(curves, kinds)
        loss_section.image = "loss_curves"
        loss_section.paragraphs.append("From each model's registered training log (steps.jsonl).")
    else:
        loss_section.paragraphs.append("No scored model has a registered training log (untrained models have none).")
    sections.append(loss_section)
    sections.append(_held_out_section(held_out))
    loss_rows = [{"model": m, "step": r["step"], "loss": r["loss"]} for m, rs in curves.items() for r in rs]
    title = "ReactID leaderboard"
    intro = [
        f"{len({c['model'] for c in cards})} models on {len(by_bench)} benchmarks. Every value names its "
        "backend: embedded backends run on a CPU with nothing downloaded; a proxy approximates an OpenS2V "
        "score with another method and never enters TotalScore.",
    ]
    return Leaderboard(
        markdown=_markdown(title, intro, sections, plot_link_prefix),
        html=_html(title, intro, sections, pngs),
        plots=pngs,
        metrics=metrics_out,
        plot_rows=plot_rows,
        loss_rows=loss_rows,
    )


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text of rows (for DVC plots); ``columns`` default to every key seen, in order."""
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- sections


def _benchmark_section(benchmark: str, cards: list[Mapping[str, Any]], full_model: Collection[str] = ()
                       ) -> tuple[Section, dict[str, dict]]:
    first = cards[0]
    metrics = list(dict.fromkeys(m["name"] for c in cards for m in c["metrics"]))
    spec = {m["name"]: m for c in cards for m in c["metrics"]}
    shown = [n for n in metrics if any(_value(c, n) is not None for c in cards)]
    missing = [n for n in metrics if n not in shown]
    per_model: dict[str, dict[str, float | None]] = {}
    for card in cards:
        row = {n: _pct(_value(card, n)) if _in_percent(spec[n]) else _value(card, n) for n in shown}
        row["TotalScore"] = _pct(card["total_score"])
        per_model[card["model"]] = row
    columns = shown + ["TotalScore"]
    bold: set[tuple[int, int]] = set()
    for j, column in enumerate(columns):
        scored = [(i, round(per_model[c["model"]][column], 2)) for i, c in enumerate(cards)
                  if per_model[c["model"]][column] is not None]
        if len({v for _, v in scored}) >= 2:  # bold marks a best value, not a tie of every model
            best = max(v for _, v in scored)
            bold |= {(i, j + 3) for i, v in scored if v == best}
    rows = []
    for card in cards:
        record = card["model_record"]
        steps = "0" if record["kind"] == "untrained" else str(record.get("global_step") or "?")
        cells = [_fmt(per_model[card["model"]][c]) for c in columns]
        kind = KIND_LABEL.get(record["kind"], record["kind"])
        if card["model"] in full_model:
            kind = f"{kind}; {PAPER_DEFAULT_NOTE}"
        rows.append([card["model"], kind, steps] + cells)
    head = ["model", "kind", "steps"] + [header(spec[n]) for n in shown] + ["TotalScore (%)"]
    section = Section(f"{benchmark} ({first['videos']} videos per model; OpenS2V {first['version']} "
                      f"{first['domain']}-domain weights)")
    section.tables.append((head, rows, bold))
    for n in shown:
        m = spec[n]
        scale = ("OpenS2V-normalised mean" if m["scale"] == "normalised" else
                 "mean raw value (a fraction)" if _in_percent(m) else f"mean raw value ({m['unit']})")
        section.paragraphs.append(f"`{n}` — {m['backend']} backend{', proxy' if m['is_proxy'] else ''}; "
                                  f"{m['definition']}; {scale}.")
    for n in missing:
        reasons = sorted({m["reason"] for c in cards for m in c["metrics"] if m["name"] == n and m["reason"]})
        section.paragraphs.append(f"`{n}` ({spec[n]['backend']}): not computed — {'; '.join(reasons) or 'no value'}.")
    same = [c["model"] for c in cards if c["model"] in full_model]
    if same:
        section.paragraphs.append(
            f"{', '.join(same)}: {PAPER_DEFAULT_NOTE} — each trains the full curriculum with a model variant "
            "whose transformer arguments equal the full model's (variant 'reactid'), so equal numbers among "
            "them are expected, not a fault.")
    incomplete = [c for c in cards if c["total_score"] is None]
    if incomplete:
        lacking = sorted({k for c in incomplete for k in c["total_score_missing"]})
        covered = max(c["partial"]["covered_weight"] for c in incomplete)
        section.paragraphs.append(
            f"TotalScore is n/a for {len(incomplete)} of {len(cards)} models: it needs every weighted score and "
            f"{', '.join(lacking)} had no value computed with OpenS2V's definition (the present ones carry at most "
            f"{covered:.0%} of its weight). A sum over fewer metrics is not TotalScore and is not shown.")
    return section, per_model


def _ablation_deltas(
    cards: Sequence[Mapping[str, Any]], values: Mapping[str, Mapping[str, Mapping[str, float]]], reference: str
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, str]]:
    """Per benchmark, each ablation/untrained variant minus its group's reference model."""
    records = {c["model"]: c["model_record"] for c in cards}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records.values():
        if record["kind"] in ("ablation", "untrained", "external"):
            groups.setdefault(record["kind"], []).append(record)
    phases = [r for r in records.values() if r["kind"] == "phase" and r["variant"] == reference]
    reference_of: dict[str, str] = {}
    for kind, members in groups.items():
        refs = [r for r in members if r["variant"] == reference]
        if not refs and kind == "ablation":
            refs = phases
        if not refs:
            continue
        # the run named for the reference variant (ablation-reactid), else the longest-trained one
        ref = max(refs, key=lambda r: (r["name"].endswith(reference), r.get("phase") or 0,
                                       r.get("global_step") or 0, r["name"]))
        for r in members:
            if r["name"] != ref["name"]:  # data and curriculum ablations share the reference's variant
                reference_of[r["name"]] = ref["name"]
    deltas: dict[str, dict[str, dict[str, float]]] = {}
    for benchmark, per_model in values.items():
        for model, ref in reference_of.items():
            if model in per_model and ref in per_model:
                common = [m for m in per_model[model] if m in per_model[ref]]  # table order
                if common:
                    deltas.setdefault(benchmark, {})[model] = {m: per_model[model][m] - per_model[ref][m]
                                                               for m in common}
    return deltas, reference_of


def _compared(model: str, reference: str, full_model: Collection[str]) -> str:
    if model in full_model and reference in full_model:
        return f"{model} vs {reference} (both: {PAPER_DEFAULT_NOTE})"
    return f"{model} vs {reference}"


def _held_out_section(held_out: Mapping[str, Any]) -> Section:
    section = Section("Held-out identities")
    identities = list(held_out.get("identities", []))
    section.paragraphs.append(f"Benchmark references come from identities {identities} (evaluation.held_out).")
    if not held_out.get("checked"):
        section.paragraphs.append("The training-samples table is absent, so the hold-out was not checked.")
    elif held_out.get("in_training"):
        leaks = ", ".join(f"{i} ({n} samples)" for i, n in sorted(held_out["in_training"].items()))
        section.paragraphs.append(f"NOT HELD OUT: the training samples contain {leaks}. Scores of models trained "
                                  "on them measure seen identities.")
    else:
        section.paragraphs.append("None of them appears in the training samples.")
    return section


# --------------------------------------------------------------------------- rendering


def _value(card: Mapping[str, Any], name: str) -> float | None:
    return next((m["value"] for m in card["metrics"] if m["name"] == name), None)


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * float(value)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _markdown(title: str, intro: list[str], sections: list[Section], prefix: str) -> str:
    lines = [f"# {title}", "", *intro, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for head, rows, bold in s.tables:
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            for i, row in enumerate(rows):
                cells = [f"**{c}**" if (i, j) in bold else c for j, c in enumerate(row)]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
        if s.image:
            lines += [f"![{s.title}]({prefix}/{s.image}.png)", ""]
        lines += [f"- {p}" for p in s.paragraphs] + ([""] if s.paragraphs else [])
    return "\n".join(lines)


def _html(title: str, intro: list[str], sections: list[Section], pngs: Mapping[str, bytes]) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}th{background:#eee}"
        "td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>{e(title)}</h1>", *(f"<p>{e(p)}</p>" for p in intro),
    ]
    for s in sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        for head, rows, bold in s.tables:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            for i, row in enumerate(rows):
                cells = [f"<td><b>{e(c)}</b></td>" if (i, j) in bold else f"<td>{e(c)}</td>"
                         for j, c in enumerate(row)]
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
        if s.image:
            data = base64.b64encode(pngs[s.image]).decode()
            out.append(f"<img alt='{e(s.title)}' src='data:image/png;base64,{data}'>")
        if s.paragraphs:
            out.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in s.paragraphs) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)
