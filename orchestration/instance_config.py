"""$DAGSTER_HOME/dagster.yaml from the template orchestration/dagster.yaml and params, and the
run tags that carry the same retry settings on every job.

Instance settings (run retries, the run queue, pool limits) are Dagster instance
configuration, not code; params.yaml stays their single owner and `reactid dagster-home`
(called by `make ui` and `make demo`) writes them. Storage is left at Dagster's default
(SQLite under DAGSTER_HOME); deploy/dagster.yaml shows the Postgres variant.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from orchestration.params import ProjectParams

TEMPLATE = Path(__file__).with_name("dagster.yaml")
MARKER = "# reactid-generated"
# What `make demo` wrote before this template existed: replaced like a generated file.
LEGACY = ("telemetry:\n  enabled: false\n",)
MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


def render_dagster_yaml(params: ProjectParams) -> str:
    """The instance configuration for `params` (the template with its fields filled)."""
    o = params.orchestration
    values = {
        "max_retries": o.run_retries.max_retries,
        "retry_on_asset_or_op_failure": str(o.run_retries.retry_on_asset_or_op_failure).lower(),
        "max_concurrent_runs": o.concurrency.max_concurrent_runs,
        "gpu_slots": o.concurrency.gpu_slots,
    }
    text = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    unfilled = [k for k in values if "${" + k + "}" in text]
    assert not unfilled, unfilled
    return text


def dagster_home(project_dir: Path) -> Path:
    """$DAGSTER_HOME, or `<project>/.dagster_home` (what the Makefile exports) when unset."""
    return Path(os.environ.get("DAGSTER_HOME") or project_dir / ".dagster_home").resolve()


def ensure_dagster_home(home: Path, params: ProjectParams, force: bool = False) -> tuple[Path, str]:
    """Write `home/dagster.yaml` when it is absent, or generated from other params.

    A file without the generated-marker line (hand-written, or the marker deleted to keep
    edits) is kept unless `force`.

    Returns:
        (path, what happened: "written" | "updated" | "up to date" | "kept (hand-edited)").
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = render_dagster_yaml(params)
    if not path.exists():
        action = "written"
    else:
        current = path.read_text()
        if current == text:
            return path, "up to date"
        if MARKER not in current and current not in LEGACY and not force:
            return path, "kept (hand-edited)"
        action = "updated"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path, action


def retry_tags(params: ProjectParams) -> dict[str, str]:
    """Run tags of every job: Dagster's per-job run-retry settings (they override the instance's)."""
    r = params.orchestration.run_retries
    return {MAX_RETRIES_TAG: str(r.max_retries), RETRY_ON_FAILURE_TAG: str(r.retry_on_asset_or_op_failure).lower()}
