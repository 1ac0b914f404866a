"""The curation decisions of the demo shards, as JSON: per shard the clips scene_clips keeps,
the clips curated_clips keeps and rejects with their reasons, and clip_dedup's duplicates.

Run against two versions of the code (PYTHONPATH first names the tree to measure) to show
that a change to how clips are read or written leaves the decisions as they were:

    PYTHONPATH=<tree> python bench/decisions.py --project /tmp/decisions-<tree> --out <tree>.json
    python bench/decisions.py --compare before.json after.json

--project is a scratch folder: it gets a copy of the tree's params.yaml (its relative paths
resolve there), the demo pool and the store. The local engine runs every stage in process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

# bench/curation.py would shadow the curation package: the script's folder is not searched
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

STAGES = ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "clip_signatures", "clip_dedup", "curated_clips")


def decisions(project: Path, shards: list[str], params_source: Path) -> dict:
    from orchestration.params import load_params
    from core.stage import run_stage
    from core.storage import open_params_store
    from core.tables import read_table
    from curation.stages import STAGES as SPECS

    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(params_source, project / "params.yaml")
    params = load_params(project / "params.yaml")
    store = open_params_store(params)
    out: dict = {"shards": {}, "stage_seconds": {}}
    for shard in shards:  # in params order: demo-copies is compared with demo-real before it
        seconds = {}
        for stage in STAGES:
            t0 = time.perf_counter()
            run_stage(SPECS[stage], shard, params, store)
            seconds[stage] = round(time.perf_counter() - t0, 2)
        out["stage_seconds"][shard] = seconds

        def table(name, shard=shard):
            return read_table(store, f"tables/{name}/{shard}.parquet").to_pylist()

        scenes = table("scene_clips")
        curated = table("curated_clips")
        dedup = table("clip_dedup")
        out["shards"][shard] = {
            "scene_clips": len(scenes),
            "scene_clips_kept": sum(r["kept"] for r in scenes),
            "scene_drop_reasons": dict(Counter(r["drop_reason"] for r in scenes if not r["kept"])),
            "curated_kept": sum(r["kept"] for r in curated),
            "curated_rejected": sum(not r["kept"] for r in curated),
            "rejections_by_reason": dict(sorted(Counter(x for r in curated for x in r["reasons"]).items())),
            "cropped": sum(bool(r["cropped"]) for r in curated),
            "decisions": {r["clip_id"]: sorted(r["reasons"]) for r in curated},
            "duplicates": {r["clip_id"]: [r["duplicate"], r["duplicate_of"]] for r in dedup if r["duplicate"]},
            "clips_written": len(store.list(f"clips/{shard}")) + len(store.list(f"clips_cropped/{shard}")),
        }
    return out


def compare(before: dict, after: dict) -> dict:
    """Per shard: counts before -> after, and every clip whose decision changed."""
    table = {}
    for shard, b in before["shards"].items():
        a = after["shards"][shard]
        table[shard] = {
            key: [b[key], a[key]] for key in ("scene_clips_kept", "curated_kept", "curated_rejected", "cropped",
                                              "rejections_by_reason", "clips_written")
        }
        table[shard]["duplicates"] = [len(b["duplicates"]), len(a["duplicates"])]
        table[shard]["duplicates_same"] = b["duplicates"] == a["duplicates"]
        table[shard]["changed_decisions"] = {c: [b["decisions"].get(c), a["decisions"].get(c)]
                                             for c in sorted(set(b["decisions"]) | set(a["decisions"]))
                                             if b["decisions"].get(c) != a["decisions"].get(c)}
        table[shard]["stage_seconds"] = [before["stage_seconds"][shard], after["stage_seconds"][shard]]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path)
    parser.add_argument("--params", type=Path, help="params.yaml to copy (default: the tree's, by import)")
    parser.add_argument("--shards", nargs="*")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        result = compare(*(json.loads(p.read_text()) for p in args.compare))
    else:
        import curation

        source = args.params or Path(curation.__file__).resolve().parents[1] / "params.yaml"
        from orchestration.params import load_params

        shards = args.shards or list(load_params(source).demo_pool.shards)
        result = {"code": str(Path(curation.__file__).resolve().parents[1]),
                  **decisions(args.project.resolve(), shards, source)}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text if args.compare else json.dumps({s: {k: v for k, v in r.items() if k != "decisions"}
                                                 for s, r in result["shards"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
