"""Great-expectations quality gates for the annotation tables.

`run_suites` validates each table's check views (curation/gate_suites.py) with one GX
expectation suite per view in an ephemeral GX context: a pandas data source, an
ExpectationSuite, a ValidationDefinition and a Checkpoint per view, and optionally a Data
Docs site (static HTML) for the whole run. The Dagster asset checks and `reactid validate`
both call it, so the shell and the pipeline apply the same gate.

great_expectations takes seconds to import; it is imported inside `run_suites` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curation.entities import Taxonomy, load_taxonomy
from curation.gate_rules import CheckView
from curation.gate_suites import SUITES, QualityGateError, build_views
from curation.gate_views import caption_word_stats
from curation.params import QualityGatesParams

__all__ = ["SUITES", "GateFailure", "GateResult", "QualityGateError", "run_suite", "run_suites"]

DOCS_SITE = "reactid_quality_gates"
# The view whose word_count column feeds the caption length distribution, per suite.
CAPTION_VIEWS = {"captions": "kept", "annotations": "clips"}


@dataclass(frozen=True)
class GateFailure:
    """One failed expectation of one check view."""

    view: str
    expectation: str  # GX expectation type, e.g. "expect_column_values_to_be_between"
    description: str  # what the failure means, e.g. "box inside the frame: x1 <= frame width"
    column: str  # the column(s) it checks, comma-separated
    unexpected_count: int | None  # None when the expectation raised instead of counting
    element_count: int
    sample_rows: tuple[dict[str, Any], ...]
    error: str | None = None

    def line(self) -> str:
        if self.error:
            counted = f"raised {self.error}"
        else:
            counted = f"{self.unexpected_count} of {self.element_count} rows"
        return f"[{self.view}] {self.description} ({self.expectation} on {self.column}): {counted}"


@dataclass(frozen=True)
class GateResult:
    """The outcome of one suite over one table.

    `caption_words` is the caption length distribution (captions and annotations suites):
    count, min, p10, median, mean, max, `share_at_least` (share with at least
    `at_least_words` words) and a histogram.
    """

    suite: str
    success: bool
    n_rows: int
    n_expectations: int
    failures: tuple[GateFailure, ...]
    view_rows: dict[str, int] = field(default_factory=dict)
    caption_words: dict[str, Any] | None = None
    data_docs_path: Path | None = None

    def summary(self) -> str:
        """A readable report: verdict, each failed expectation with its sample rows."""
        state = "passed" if self.success else f"FAILED ({len(self.failures)} of {self.n_expectations} expectations)"
        views = ", ".join(f"{k}={v}" for k, v in self.view_rows.items())
        lines = [f"{self.suite}: {state}; {self.n_rows} table rows ({views})"]
        words = self.caption_words
        if words and words.get("captions"):
            lines.append(f"  caption words: median {words['median']:g}, min {words['min']}, max {words['max']}; "
                         f"{100 * words['share_at_least']:.1f}% have >= {words['at_least_words']} words "
                         f"({words['captions']} captions)")
        for failure in self.failures:
            lines.append(f"  - {failure.line()}")
            for row in failure.sample_rows:
                lines.append("      " + " ".join(f"{k}={_short(v)}" for k, v in row.items()))
        if self.data_docs_path:
            lines.append(f"  data docs: {self.data_docs_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "success": self.success, "n_rows": self.n_rows,
            "n_expectations": self.n_expectations, "view_rows": dict(self.view_rows),
            "failures": [{**failure.__dict__, "sample_rows": list(failure.sample_rows)} for failure in self.failures],
            "caption_words": self.caption_words,
            "data_docs_path": str(self.data_docs_path) if self.data_docs_path else None,
        }


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays as JSON-able Python values."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else round(value, 4)
    return value


def _gx_context(data_docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if data_docs_dir is not None:
        context.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    return context


def _validate_view(gx, context, source, suite: str, view: CheckView, result_format: dict, run_id):
    name = f"{suite}.{view.name}"
    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    expectations = [getattr(gx.expectations, rule.expectation)(**rule.kwargs, description=rule.description,
                                                                meta={"rule": i})
                    for i, rule in enumerate(view.rules)]
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(name=name, validation_definitions=[definition],
                                                       result_format=result_format))
    # GX sees only the scalar columns its expectations and the sample rows use.
    columns = list(dict.fromkeys(["_row", *view.id_columns, *(c for r in view.rules for c in r.columns)]))
    result = checkpoint.run(batch_parameters={"dataframe": view.frame[columns]}, run_id=run_id)
    return next(iter(result.run_results.values()))


def _exception(info: Any) -> str | None:
    """The message of an expectation that raised (GX nests it per metric in 1.x)."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "exception")
    return None


def _failures(view: CheckView, validation) -> list[GateFailure]:
    out = []
    for result in validation.results:
        if result.success:
            continue
        rule = view.rules[int(result.expectation_config.meta["rule"])]
        found = result.result or {}
        positions = [int(e["_row"]) if isinstance(e, Mapping) else int(e)
                     for e in found.get("partial_unexpected_index_list") or []]
        shown = list(dict.fromkeys([*view.id_columns, *rule.columns]))
        rows = view.frame.iloc[positions][shown].to_dict("records") if positions else []
        error = _exception(result.exception_info)
        out.append(GateFailure(
            view=view.name, expectation=result.expectation_config.type, description=rule.description,
            column=", ".join(rule.columns), unexpected_count=None if error else found.get("unexpected_count"),
            element_count=int(found.get("element_count", len(view.frame))),
            sample_rows=tuple({k: _plain(v) for k, v in row.items()} for row in rows), error=error,
        ))
    return out


def run_suites(
    tables: Mapping[str, pa.Table | pd.DataFrame],
    *,
    params: QualityGatesParams,
    taxonomy: Taxonomy | None = None,
    clips: pa.Table | pd.DataFrame | None = None,
    data_docs_dir: Path | None = None,
    run_name: str | None = None,
) -> dict[str, GateResult]:
    """Validate annotation tables, each with the suite of its name, in one GX context.

    Args:
        tables: suite name (one of SUITES) -> that table.
        params: the `quality_gates` params section (floors, tolerances, sample size).
        taxonomy: terms labels must come from; default: curation/data/taxonomy.json.
        clips: the shard's curated_clips table (clip_id, width, height, duration_s); the
            faces and timelines suites need it.
        data_docs_dir: when given, a GX Data Docs site is written there for this run.
        run_name: names this run's pages in the Data Docs.

    Returns:
        suite name -> GateResult, in the order of `tables`.

    Raises:
        QualityGateError: a table cannot be checked (unknown suite, missing columns,
            missing clips context) — raised before any validation runs.
    """
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    views = {name: build_views(name, table, params=params, taxonomy=taxonomy, clips=clips)
             for name, table in tables.items()}

    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _gx_context(data_docs_dir)
    source = context.data_sources.add_pandas("reactid_annotation_tables")
    result_format = {"result_format": "SUMMARY", "unexpected_index_column_names": ["_row"],
                     "partial_unexpected_count": params.max_failure_rows_in_metadata}
    run_id = RunIdentifier(run_name=run_name or "reactid-validate")
    outcomes = {}
    for name, suite_views in views.items():
        failures = []
        for view in suite_views:
            failures += _failures(view, _validate_view(gx, context, source, name, view, result_format, run_id))
        caption_view = next((v for v in suite_views if v.name == CAPTION_VIEWS.get(name)), None)
        outcomes[name] = dict(
            suite=name, success=not failures, n_rows=len(tables[name]),
            n_expectations=sum(len(v.rules) for v in suite_views), failures=tuple(failures),
            view_rows={v.name: len(v.frame) for v in suite_views},
            caption_words=(caption_word_stats(caption_view.frame["word_count"], params.report_caption_words)
                           if caption_view is not None else None),
        )
    docs_index = None
    if data_docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
        docs_index = Path(data_docs_dir) / "index.html"
    return {name: GateResult(**fields, data_docs_path=docs_index) for name, fields in outcomes.items()}


def run_suite(
    name: str,
    table: pa.Table | pd.DataFrame,
    *,
    params: QualityGatesParams,
    taxonomy: Taxonomy | None = None,
    clips: pa.Table | pd.DataFrame | None = None,
    data_docs_dir: Path | None = None,
    run_name: str | None = None,
) -> GateResult:
    """Validate one table with the suite `name` (see run_suites for the arguments)."""
    return run_suites({name: table}, params=params, taxonomy=taxonomy, clips=clips, data_docs_dir=data_docs_dir,
                      run_name=run_name)[name]
