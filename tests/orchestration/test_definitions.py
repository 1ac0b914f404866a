import json
import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "great_expectations", "deepspeed", "ray", "dagster_ray")


def test_code_location_loads_without_heavy_libraries(repo_root):
    code = (
        "import json, sys, time; t = time.perf_counter();"
        "import orchestration.definitions as d; d.defs.resolve_asset_graph();"
        f"print(json.dumps({{'seconds': time.perf_counter() - t, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    print(f"code location load: {report['seconds']:.2f}s")  # measured, not asserted


def test_definitions_have_the_curation_graph():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert parents["scene_clips"] == {"raw_videos"}
    assert parents["curated_clips"] == {"scene_clips", "clip_quality", "clip_dedup"}
    assert parents["clip_dedup"] == {"clip_signatures"}
    for job in ("curation", "demo_shard", "reports"):
        assert defs.resolve_job_def(job) is not None
