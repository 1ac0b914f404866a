"""A static dataset browser: one HTML page over every gated shard's clips.

`reports/dataset_browser.html` opens from disk with no server and no network: the rows are
JSON in a script tag, filtering is a few lines of vanilla JavaScript, previews and thumbnails
are relative links into `previews/` of the same store. Each clip shows its annotated preview,
caption, entities, sub-actions, the difficulty of its samples (D_overall, the quartile, and
the curriculum phase from which the sampler may draw it: phase k draws D_overall <= tau_k), and
curation's rejection reasons. Filters: shard, rejection reason, label, phase.

Above the table, the curriculum's easy-to-hard examples per quartile sit side by side, as the
paper's difficulty figure shows them: per quartile, samples spread evenly from its easiest
to its hardest.
"""

from __future__ import annotations

import hashlib
import html
import json
from typing import Any

import numpy as np

from core import layout
from core.errors import StageInputError
from core.stage import AGGREGATE, StageContext, marker_key
from core.tables import read_json, read_table

PAGE_KEY = layout.DATASET_BROWSER
_AGGREGATE_INPUTS = ("training_samples", "difficulty_scores", "difficulty_quartiles")


def _relative(key: str | None) -> str | None:
    """A store key as a link from the page's folder (reports/)."""
    return None if key is None else f"../{key}"


def phase_of(d: float | None, taus: list[float]) -> int | None:
    """The first phase whose tau admits D_overall `d` (None when unscored or above every tau)."""
    if d is None:
        return None
    return next((k for k, tau in enumerate(taus, start=1) if d <= tau + 1e-12), None)


def browser_rows(curated: list[dict], annotations: list[dict], previews: dict[str, dict], samples: list[dict],
                 scores: dict[str, float], taus: list[float]) -> list[dict[str, Any]]:
    """One row per curated clip (kept or rejected) of one shard, in curated_clips order."""
    subjects: dict[str, list[dict]] = {}
    for a in annotations:
        subjects.setdefault(a["clip_id"], []).append(a)
    by_clip: dict[str, list[dict]] = {}
    for s in samples:
        if s["status"] == "ok":
            d = scores.get(s["sample_id"])
            by_clip.setdefault(s["clip_id"], []).append(
                {"sample_id": s["sample_id"], "kind": s["reference_kind"], "d_overall": d,
                 "phase": phase_of(d, taus)})
    rows = []
    for c in curated:
        subs = subjects.get(c["clip_id"], [])
        clip_samples = sorted(by_clip.get(c["clip_id"], []), key=lambda s: (s["d_overall"] is None, s["d_overall"]))
        scored = [s for s in clip_samples if s["d_overall"] is not None]
        preview = previews.get(c["clip_id"], {})
        events = (subs[0].get("events") or []) if subs else []
        rows.append({
            "clip_id": c["clip_id"], "shard": c["shard"], "status": "kept" if c["kept"] else "rejected",
            "reasons": list(c["reasons"] or []), "caption": c["caption"], "identity": c["identity"],
            "duration_s": round(float(c["duration_s"]), 2),
            "labels": sorted({a["label"] for a in subs}),
            "entities": [a["fine_label"] or a["label"] for a in subs],
            "sub_actions": [f"{e['start']:.1f}-{e['end']:.1f}s {e['description']}" for e in events],
            "samples": clip_samples,
            "d_overall": scored[0]["d_overall"] if scored else None,  # the clip's easiest sample
            "quartile": scored[0]["phase"] if scored else None,
            "phases": sorted({s["phase"] for s in scored if s["phase"] is not None}),
            "preview": _relative(preview.get("preview_key")), "thumbnail": _relative(preview.get("thumbnail_key")),
        })
    return rows


def quartile_examples(rows: list[dict[str, Any]], n_quartiles: int, per_quartile: int) -> list[list[dict[str, Any]]]:
    """Per quartile (phase band), up to `per_quartile` samples spread evenly from easiest to hardest."""
    bands: list[list[dict[str, Any]]] = [[] for _ in range(n_quartiles)]
    for row in rows:
        for s in row["samples"]:
            if s["phase"] is not None:
                bands[s["phase"] - 1].append({**s, "clip_id": row["clip_id"], "thumbnail": row["thumbnail"],
                                              "preview": row["preview"], "caption": row["caption"]})
    out = []
    for band in bands:
        band.sort(key=lambda s: s["d_overall"])
        if len(band) > per_quartile:
            picks = np.unique(np.linspace(0, len(band) - 1, per_quartile).round().astype(int))
            band = [band[i] for i in picks]
        out.append(band)
    return out


def render_page(rows: list[dict[str, Any]], examples: list[list[dict[str, Any]]], taus: list[float],
                title: str) -> str:
    """The page: embedded JSON data, filters, the quartile figure and the clip table."""
    data = {"rows": rows, "examples": examples, "taus": taus}
    payload = json.dumps(data, default=str).replace("</", "<\\/")
    return _TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)


def dataset_browser(ctx: StageContext) -> dict[str, Any]:
    """The static browser page over `ctx.shards` (their clips, previews and curriculum difficulty)."""
    samples = read_table(ctx.store, layout.table("training_samples", AGGREGATE), needed_by="dataset_browser")
    scores_table = read_table(ctx.store, layout.table("difficulty_scores", AGGREGATE), needed_by="dataset_browser")
    quartiles = read_table(ctx.store, layout.table("difficulty_quartiles", AGGREGATE), needed_by="dataset_browser")
    scores = {r["sample_id"]: r["d_overall"] for r in scores_table.to_pylist() if r["status"] == "ok"}
    taus = [q["tau"] for q in sorted(quartiles.to_pylist(), key=lambda q: q["phase"])]
    sample_rows = samples.to_pylist()
    rows: list[dict[str, Any]] = []
    for shard in ctx.shards:
        curated = read_table(ctx.store, layout.table("curated_clips", shard),
                             needed_by="dataset_browser").to_pylist()
        annotations = read_table(ctx.store, layout.table("annotations", shard), needed_by="dataset_browser")
        previews_key = layout.table("clip_previews", shard)
        previews = {r["clip_id"]: r for r in read_table(ctx.store, previews_key).to_pylist()} \
            if ctx.store.exists(marker_key("clip_previews", shard)) else {}
        rows += browser_rows(curated, annotations.to_pylist(), previews,
                             [s for s in sample_rows if s["shard"] == shard], scores, taus)
    examples = quartile_examples(rows, len(taus), ctx.params.dataset_browser.examples_per_quartile)
    page = render_page(rows, examples, taus, f"Dataset browser: {', '.join(ctx.shards)}")
    ctx.store.put_bytes(PAGE_KEY, page.encode())
    missing = [r["clip_id"] for r in rows if r["preview"] is None]
    return {
        "page_key": PAGE_KEY,
        "clips": len(rows),
        "rejected": sum(r["status"] == "rejected" for r in rows),
        "scored_clips": sum(r["d_overall"] is not None for r in rows),
        "clips_without_preview": missing,
        "examples_per_quartile": [len(band) for band in examples],
        "preview": [{k: r[k] for k in ("clip_id", "shard", "status", "quartile")} | {"labels": ", ".join(r["labels"])}
                    for r in rows[:20]],
    }


def browser_inputs_hash(ctx: StageContext) -> str:
    """Fingerprint of what the page reads beyond its per-shard upstream: the curriculum tables
    (aggregate outputs) and each shard's previews. A shard annotated before previews existed is
    listed without them (`clips_without_preview`) rather than failing the page, so the page is
    redone when they appear.

    Raises:
        StageInputError: a curriculum table has not been built.
    """
    digest = hashlib.sha256()
    for stage in _AGGREGATE_INPUTS:
        key = marker_key(stage, AGGREGATE)
        if not ctx.store.exists(key):
            raise StageInputError(f"stage 'dataset_browser' needs {stage!r}, which has not run")
        digest.update(f"{stage}:{read_json(ctx.store, key)['fingerprint']}".encode())
    for shard in ctx.shards:
        key = marker_key("clip_previews", shard)
        found = read_json(ctx.store, key)["fingerprint"] if ctx.store.exists(key) else "absent"
        digest.update(f"clip_previews/{shard}:{found}".encode())
    return digest.hexdigest()[:20]


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; }
.filters { display: flex; gap: 16px; align-items: end; flex-wrap: wrap; margin: 8px 0; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; position: sticky; top: 0; }
td video, td img { width: 240px; display: block; }
.rejected td { background: #fff3f3; }
.reason { color: #b00; font-weight: 600; }
.tag { display: inline-block; background: #eef; border-radius: 3px; padding: 0 4px; margin: 1px; }
.quartiles { display: grid; grid-template-columns: 80px 1fr; gap: 8px; }
.band { display: flex; gap: 8px; overflow-x: auto; }
.example { width: 180px; font-size: 12px; }
.example img { width: 180px; display: block; }
.small { color: #666; font-size: 12px; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p class="small">Static page: previews are relative links into previews/ of the same store. Phase k of the
curriculum draws samples with D_overall &le; &tau;<sub>k</sub>; a clip's quartile is that of its easiest sample.</p>
<h2>Easy to hard, per quartile</h2>
<div id="quartiles" class="quartiles"></div>
<h2>Clips</h2>
<div class="filters">
  <label>shard <select id="f-shard"></select></label>
  <label>rejection reason <select id="f-reason"></select></label>
  <label>label <select id="f-label"></select></label>
  <label>phase <select id="f-phase"></select></label>
  <span id="count"></span>
</div>
<table id="clips">
<thead><tr><th>preview</th><th>clip</th><th>caption, entities, sub-actions</th><th>difficulty</th>
<th>status</th></tr></thead>
<tbody></tbody>
</table>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const ANY = "(any)";
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children || []) node.append(c);
  return node;
}
function fmt(d) { return d === null || d === undefined ? "not scored" : d.toFixed(4); }
function options(id, values) {
  const select = document.getElementById(id);
  for (const v of [ANY, ...values]) select.append(el("option", {value: v}, [String(v)]));
  select.addEventListener("change", render);
}
const uniq = (xs) => [...new Set(xs)].sort();
options("f-shard", uniq(DATA.rows.map((r) => r.shard)));
options("f-reason", ["kept", ...uniq(DATA.rows.flatMap((r) => r.reasons))]);
options("f-label", uniq(DATA.rows.flatMap((r) => r.labels)));
options("f-phase", DATA.taus.map((t, i) => i + 1));
function media(row) {
  if (!row.preview) return "no preview";
  return el("video", {src: row.preview, poster: row.thumbnail, controls: "", muted: "", loop: "",
                      preload: "metadata"}, []);
}
function render() {
  const shard = document.getElementById("f-shard").value;
  const reason = document.getElementById("f-reason").value;
  const label = document.getElementById("f-label").value;
  const phase = document.getElementById("f-phase").value;
  const body = document.querySelector("#clips tbody");
  body.replaceChildren();
  let shown = 0;
  for (const r of DATA.rows) {
    if (shard !== ANY && r.shard !== shard) continue;
    if (reason === "kept" ? r.status !== "kept" : reason !== ANY && !r.reasons.includes(reason)) continue;
    if (label !== ANY && !r.labels.includes(label)) continue;
    if (phase !== ANY && !r.phases.includes(Number(phase))) continue;
    shown += 1;
    const text = el("td", {}, [
      el("div", {}, [r.caption || ""]),
      el("div", {}, r.entities.map((e) => el("span", {class: "tag"}, [e]))),
      el("div", {class: "small"}, [r.sub_actions.join(" | ")])]);
    const difficulty = el("td", {}, [
      el("div", {}, [r.samples.length ? `D_overall ${fmt(r.d_overall)}` : "no training sample"]),
      el("div", {}, [r.quartile ? `quartile ${r.quartile}, phases ${r.phases.join(", ")}` : ""]),
      el("div", {class: "small"}, r.samples.map((s) => `${s.sample_id}: ${fmt(s.d_overall)}`).join("; "))]);
    const status = el("td", {}, r.status === "kept" ? ["kept"] :
      r.reasons.map((x) => el("div", {class: "reason"}, [x])));
    body.append(el("tr", {class: r.status, "data-clip": r.clip_id, "data-shard": r.shard}, [
      el("td", {}, [media(r)]),
      el("td", {}, [r.clip_id, el("div", {class: "small"}, [`${r.shard}, ${r.duration_s} s`])]),
      text, difficulty, status]));
  }
  document.getElementById("count").textContent = `${shown} of ${DATA.rows.length} clips`;
}
function figure() {
  const box = document.getElementById("quartiles");
  DATA.examples.forEach((band, i) => {
    const tau = DATA.taus[i];
    box.append(el("div", {}, [`Q${i + 1}`, el("div", {class: "small"}, [`tau ${tau.toFixed(3)}`])]));
    const row = el("div", {class: "band", "data-quartile": i + 1}, band.map((s) => el("div", {class: "example"}, [
      s.thumbnail ? el("img", {src: s.thumbnail, alt: s.clip_id}, []) : "",
      el("div", {}, [`${s.clip_id}`]), el("div", {class: "small"}, [`D_overall ${fmt(s.d_overall)} (${s.kind})`])])));
    if (!band.length) row.append(el("span", {class: "small"}, ["no sample in this quartile"]));
    box.append(row);
  });
}
figure();
render();
</script>
</body>
</html>
"""
