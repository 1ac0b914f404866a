"""Report assets that aggregate every shard."""


import dagster as dg

from assets.partitions import shard_partitions
from assets.resources import ReactIDResource
from core.code_version import code_version


@dg.asset(
    name="curation_report",
    # Everything the report reads: ground truth (demo_pool) and each curation table.
    deps=[
        dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping())
        for name in ("demo_pool", "raw_videos", "scene_clips", "clip_quality", "clip_dedup", "curated_clips")
    ],
    group_name="reports",
    kinds={"markdown"},
    description="What curation did to every shard, with accuracy against the demo pool's ground truth.",
    code_version=code_version(("curation.report",)).version,
)
def curation_report(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    from curation.report import METRICS_KEY, REPORT_KEY, build_curation_report, report_inputs_ready

    params = reactid.load_params()
    store = reactid.store(params)
    known = context.instance.get_dynamic_partitions(shard_partitions.name)
    shards = [s for s in known if report_inputs_ready(store, s)]
    metrics = build_curation_report(params, store, shards)
    root = store.root_uri  # a directory, or s3://bucket/prefix
    md = store.get_bytes(REPORT_KEY).decode()
    meta: dict[str, dg.MetadataValue] = {
        "report": dg.MetadataValue.path(f"{root}/{REPORT_KEY}"),
        "metrics": dg.MetadataValue.path(f"{root}/{METRICS_KEY}"),
        "shards": dg.MetadataValue.int(len(shards)),
        "report_preview": dg.MetadataValue.md(md),
    }
    for shard, m in metrics["shards"].items():
        acc = m["accuracy"]
        if acc and acc["scene_cuts"]["final"]["f1"] is not None:
            meta[f"scene_cut_f1[{shard}]"] = dg.MetadataValue.float(float(acc["scene_cuts"]["final"]["f1"]))
        for backend, scored in (acc["scene_cuts"]["by_backend"].items() if acc else ()):
            if scored["f1"] is not None:
                meta[f"shot_f1[{shard}:{backend}]"] = dg.MetadataValue.float(float(scored["f1"]))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    name="annotation_report",
    deps=[
        dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping())
        for name in ("demo_pool", "scene_clips", "curated_clips", "captions", "entities", "subjects", "faces",
                     "attributes", "timelines", "annotations")
    ],
    group_name="reports",
    kinds={"markdown"},
    description="Annotation flow per shard and accuracy against ground truth (entity recall, box/mask IoU, "
    "face recall, timeline F1 as the paper's Table 7).",
    code_version=code_version(("curation.annotation_report",)).version,
)
def annotation_report(context: dg.AssetExecutionContext, reactid: ReactIDResource) -> dg.MaterializeResult:
    from curation.annotation_report import (
        METRICS_KEY,
        REPORT_KEY,
        build_annotation_report,
        report_inputs_ready,
    )

    params = reactid.load_params()
    store = reactid.store(params)
    known = context.instance.get_dynamic_partitions(shard_partitions.name)
    shards = [s for s in known if report_inputs_ready(store, s)]
    metrics = build_annotation_report(params, store, shards)
    root = store.root_uri
    meta: dict[str, dg.MetadataValue] = {
        "report": dg.MetadataValue.path(f"{root}/{REPORT_KEY}"),
        "metrics": dg.MetadataValue.path(f"{root}/{METRICS_KEY}"),
        "report_preview": dg.MetadataValue.md(store.get_bytes(REPORT_KEY).decode()),
    }
    for shard, m in metrics["shards"].items():
        acc = (m["accuracy"] or {}).get("annotation") or {}
        if acc.get("timeline", {}).get("f1") is not None:
            meta[f"timeline_f1[{shard}]"] = dg.MetadataValue.float(float(acc["timeline"]["f1"]))
    return dg.MaterializeResult(metadata=meta)
