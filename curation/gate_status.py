"""Whether a shard's annotations passed their quality gates, recorded for what runs later.

The blocking Dagster checks stop a run; this marker carries their verdict to the next
run (the demo runner, the curriculum's choice of shards). It is tied to the fingerprint
of the `annotations` output it judged, so re-annotating a shard invalidates it.
"""

from __future__ import annotations

from pathlib import Path

from core import layout
from core.params import Params
from core.stage import marker_key
from core.storage import ObjectStore
from core.tables import read_json, read_table, write_json

# The suites of curation.gate_suites, spelled out so that Dagster's code location can name
# its checks without importing pandas; tests keep the two in step.
GATE_SUITES = ("captions", "entities", "subjects", "faces", "timelines", "annotations")


def gate_key(shard: str) -> str:
    """The quality gates' verdict on a shard's annotations."""
    return layout.marker("quality_gates", shard)


def _annotations_fingerprint(store: ObjectStore, shard: str) -> str | None:
    key = marker_key("annotations", shard)
    return read_json(store, key)["fingerprint"] if store.exists(key) else None


def record_gate(store: ObjectStore, shard: str, failed_suites: list[str]) -> None:
    write_json(store, gate_key(shard), {"shard": shard, "passed": not failed_suites, "failed_suites": failed_suites,
                                        "annotations_fingerprint": _annotations_fingerprint(store, shard)})


def gate_passed(store: ObjectStore, shard: str) -> bool:
    """True when the shard's current annotations passed every suite."""
    if not store.exists(gate_key(shard)):
        return False
    verdict = read_json(store, gate_key(shard))
    current = _annotations_fingerprint(store, shard)
    return bool(verdict["passed"]) and current is not None and verdict["annotations_fingerprint"] == current


def passed_shards(store: ObjectStore, shards: list[str] | tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """The shards whose current annotations passed their gates, and why each other one was
    left out ("gates failed: ..." / "gates not run on the current annotations")."""
    ok, left_out = [], {}
    for shard in shards:
        if gate_passed(store, shard):
            ok.append(shard)
        elif store.exists(gate_key(shard)) and not read_json(store, gate_key(shard))["passed"]:
            left_out[shard] = "gates failed: " + ", ".join(read_json(store, gate_key(shard))["failed_suites"])
        else:
            left_out[shard] = "gates not run on the current annotations"
    return ok, left_out


def run_shard_gates(params: Params, store: ObjectStore, shard: str, *, data_docs_dir: Path | None = None,
                    run_name: str | None = None, suites: tuple[str, ...] = GATE_SUITES):
    """Every suite on a shard's annotation tables; a full run records the shard's verdict.

    Returns:
        suite -> GateResult.
    """
    from curation.quality_gates import run_suites

    needed_by = "annotation quality gates"
    tables = {s: read_table(store, layout.table(s, shard), needed_by=needed_by) for s in suites}
    clips = read_table(store, layout.table("curated_clips", shard), needed_by=needed_by)
    results = run_suites(tables, params=params.quality_gates, clips=clips, data_docs_dir=data_docs_dir,
                         run_name=run_name)
    if set(suites) == set(GATE_SUITES):
        record_gate(store, shard, [s for s, r in results.items() if not r.success])
    return results
