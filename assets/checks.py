"""Blocking great-expectations checks on each shard's annotation tables.

One multi-asset check runs every suite in one op (one GX import, one Data Docs site per
run) and reports one blocking check per suite on the `annotations` asset, per shard
partition. A failed check (severity ERROR) stops the run before any asset downstream of
`annotations`, so a failing shard never reaches training.

Reads, for the shard: `tables/<suite>/<shard>.parquet` for every suite in GATE_SUITES and
`tables/curated_clips/<shard>.parquet` (frame sizes and durations). Writes the Data Docs to
`reports/gx/<shard>/<run_id>/` in the object store when `quality_gates.data_docs` is true.
With `lakefs.enabled`, a shard that passed every suite is committed to the run's lakeFS
branch (versioning.hooks.version_gate_verdict) and the check metadata names the commit.
"""

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from assets.partitions import shard_partitions
from assets.resources import ReactIDResource
from core import layout
from core.errors import VersioningError
from core.markdown import markdown_table
from core.storage import ObjectStore, temp_dir
from curation.gate_status import GATE_SUITES, run_shard_gates

if TYPE_CHECKING:
    from curation.quality_gates import GateResult

# No `from __future__ import annotations`: Dagster reads the context and resource types of
# the check function's signature at definition time.

ANNOTATIONS_ASSET = "annotations"
DOCS_PREFIX = layout.GX_DOCS


def check_name(suite: str) -> str:
    return f"gx_{suite}"


# Partitioned asset checks are a preview feature in Dagster 1.13; they are what makes a
# check run (and block) per shard, so this module opts in deliberately.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    GATE_CHECK_SPECS = [
        dg.AssetCheckSpec(
            name=check_name(suite), asset=ANNOTATIONS_ASSET, blocking=True, partitions_def=shard_partitions,
            description=f"great-expectations suite '{suite}' on tables/{suite}/<shard>.parquet",
        )
        for suite in GATE_SUITES
    ]


@dg.multi_asset_check(
    specs=GATE_CHECK_SPECS,
    name="annotation_quality_gates",
    can_subset=True,
    description="Boxes, masks, timelines, captions, taxonomy labels, faces and floors of a shard's "
                "annotation tables, validated with great-expectations.",
)
def annotation_quality_gates(
    context: dg.AssetCheckExecutionContext, reactid: ReactIDResource
) -> Iterator[dg.AssetCheckResult]:
    params = reactid.load_params()
    cfg = params.quality_gates
    store = reactid.store(params)
    shard = context.partition_key
    selected = {key.name for key in context.selected_asset_check_keys}
    suites = tuple(s for s in GATE_SUITES if check_name(s) in selected)
    run_id = context.run.run_id
    with temp_dir() as tmp:
        docs_dir = Path(tmp) / "data_docs" if cfg.data_docs else None
        results = run_shard_gates(params, store, shard, data_docs_dir=docs_dir, run_name=run_id, suites=suites)
        docs_url = _publish_docs(store, docs_dir, layout.gx_docs(shard, run_id)) if docs_dir else None
    lakefs, lakefs_error = None, None
    if params.lakefs.enabled and set(suites) == set(GATE_SUITES):  # a full run recorded the verdict
        from versioning.hooks import version_gate_verdict

        try:
            lakefs = version_gate_verdict(params, store, shard, run_id=run_id, results=results)
        except VersioningError as e:  # report the verdicts first, then fail the step with this
            lakefs_error = e
    for suite, result in results.items():
        if not result.success:
            context.log.error(result.summary())
        metadata = gate_metadata(result, docs_url)
        if lakefs:
            metadata["lakefs_commit"] = dg.MetadataValue.text(lakefs["commit_id"])
            metadata["lakefs_branch"] = dg.MetadataValue.text(f"{lakefs['repository']}@{lakefs['branch']}")
        if lakefs_error:
            metadata["lakefs_error"] = dg.MetadataValue.text(str(lakefs_error))
        yield dg.AssetCheckResult(
            check_name=check_name(suite), asset_key=ANNOTATIONS_ASSET, passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        )
    if lakefs_error:
        raise lakefs_error


def _publish_docs(store: ObjectStore, docs_dir: Path, prefix: str) -> str:
    """Copy the Data Docs site into the store in one step; returns the index's URI."""
    with store.staged_prefix(prefix) as staging:
        for path in sorted(p for p in docs_dir.rglob("*") if p.is_file()):
            store.put_file(f"{staging}/{path.relative_to(docs_dir).as_posix()}", path)
    return store.uri(f"{prefix}/index.html")


def gate_metadata(result: "GateResult", docs_url: str | None) -> dict[str, dg.MetadataValue]:
    """Dagster metadata of one suite's outcome: failing expectations, their sample rows,
    the caption length distribution and the Data Docs link."""
    failures = result.failures
    meta: dict[str, dg.MetadataValue] = {
        "rows": dg.MetadataValue.int(result.n_rows),
        "expectations": dg.MetadataValue.int(result.n_expectations),
        "failed_expectations": dg.MetadataValue.int(len(failures)),
        "view_rows": dg.MetadataValue.json(result.view_rows),
    }
    if failures:
        meta["failures"] = dg.MetadataValue.md(markdown_table([
            {"view": f.view, "expectation": f.description, "type": f.expectation, "column": f.column,
             "unexpected": "raised: " + f.error if f.error else f.unexpected_count, "of_rows": f.element_count}
            for f in failures
        ]))
        meta["sample_rows"] = dg.MetadataValue.md("\n\n".join(
            f"**[{f.view}] {f.description}**\n\n{markdown_table(list(f.sample_rows))}" for f in failures
        ))
    words = result.caption_words
    if words is not None:
        meta["caption_word_count"] = dg.MetadataValue.json(words)
        if words.get("share_at_least") is not None:
            meta[f"captions_share_at_least_{words['at_least_words']}_words"] = dg.MetadataValue.float(
                words["share_at_least"])
    if docs_url:
        meta["data_docs"] = dg.MetadataValue.url(docs_url)
    return meta


ANNOTATION_CHECKS = [annotation_quality_gates]
