"""The Dagster UI in a real browser: the asset graph with every group, an asset's metadata
(plots, tables) and its quality-gate check results.

A tiny shard is curated and annotated (with its blocking great-expectations checks) into a
temporary DAGSTER_HOME; `dagster-webserver` serves the project's code location on a free
port (the webserver only: no daemon, so no sensor or schedule acts on the repo's pool);
Debian's chromium, driven by playwright, opens the pages. Screenshots go to
test-artifacts/ui/. `make test` installs chromium (`make browser`) and sets
REACTID_REQUIRE_BROWSER=1, so there (and in CI) a missing browser fails the test; run
directly with pytest on a machine without chromium, it skips.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
GROUPS = ("demo", "curation", "annotation", "curriculum", "training", "ablations", "evaluation", "reports")
SHARD = "tiny-000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory, base_params_raw):
    """A DAGSTER_HOME whose event log holds one shard's curation + annotation + gate checks."""
    import dagster as dg

    from assets.annotation import ANNOTATION_ASSETS
    from assets.checks import ANNOTATION_CHECKS
    from assets.curation import CURATION_ASSETS
    from assets.resources import ReactIDResource
    from orchestration.params import load_params
    from orchestration.instance_config import ensure_dagster_home
    from tests.conftest import tiny_params, write_params

    project = tmp_path_factory.mktemp("ui-project")
    params_path = write_params(project, tiny_params(project, base_params_raw, SHARD))
    home = project / "dagster_home"
    ensure_dagster_home(home, load_params(params_path))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        instance.add_dynamic_partitions("shards", [SHARD])
        result = dg.materialize([*CURATION_ASSETS, *ANNOTATION_ASSETS, *ANNOTATION_CHECKS], partition_key=SHARD,
                                instance=instance, resources={"reactid": ReactIDResource(project_dir=str(project))})
        assert result.success
    finally:
        instance.dispose()
    return home


@pytest.fixture(scope="module")
def webserver(dagster_home):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    log = open(dagster_home / "webserver.log", "wb")  # noqa: SIM115 (closed below)
    # A new session: started from a non-interactive shell, the webserver ignores SIGTERM
    # otherwise (NOTES-deps); the whole process group is stopped at the end.
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
         "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {(dagster_home / 'webserver.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def page(chromium_browser):
    return chromium_browser.new_page(viewport={"width": 1600, "height": 1000})


def test_the_asset_graph_shows_every_group(webserver, page):
    from playwright.sync_api import expect

    page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
    # the global lineage draws each group as a collapsed group node
    nodes = page.locator('[class*="CollapsedGroupNode_collapsedGroupNodeBox"]')
    expect(nodes).to_have_count(len(GROUPS), timeout=60_000)
    names = {nodes.nth(i).inner_text().split("\n")[0].strip() for i in range(nodes.count())}
    assert names == set(GROUPS)
    page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))


def test_an_asset_page_shows_its_metadata_table_and_plot(webserver, page):
    from playwright.sync_api import expect

    page.goto(f"{webserver}/assets/curated_clips?partition={SHARD}", wait_until="networkidle")
    preview = page.locator("tr", has_text="rejected_preview").first
    expect(preview).to_be_visible(timeout=60_000)
    expect(preview.get_by_text("low_motion")).to_be_visible()  # a table entry: the rejected clip's reason
    expect(page.locator("tr", has_text="clips_out").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "curated_clips.png"))

    page.locator("tr", has_text="plot_rejections").first.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator("img").first
    expect(image).to_be_visible(timeout=30_000)
    width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width > 100, "the rejection plot (a PNG in the markdown metadata) did not render"
    expect(dialog.get_by_text("Kept clips and rejections by reason")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "curated_clips_plot.png"))


def test_the_annotations_page_shows_the_quality_gate_checks(webserver, page):
    from playwright.sync_api import expect

    page.goto(f"{webserver}/assets/annotations?view=checks", wait_until="networkidle")
    expect(page.get_by_text("Checks (6)")).to_be_visible(timeout=60_000)
    for suite in ("gx_annotations", "gx_captions", "gx_entities", "gx_faces", "gx_subjects", "gx_timelines"):
        expect(page.get_by_text(suite, exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(6)
    expect(page.get_by_text("blocking").first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text(SHARD, exact=True).first).to_be_visible()  # the partition the check judged
    page.screenshot(path=str(ARTIFACTS / "annotations_checks.png"))
