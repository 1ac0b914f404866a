"""The static dataset browser in a real browser: opened from disk (file://, no server), filtered
by rejection reason and by label, the visible rows checked against the tables, a screenshot
saved to test-artifacts/ui/dataset_browser.png.

Chromium as in test_browser.py: `make test` installs it and sets REACTID_REQUIRE_BROWSER=1 (a
missing browser then fails); run directly on a machine without it, the test skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.tables import read_table

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"


@pytest.fixture(scope="module")
def browser_page(chromium_browser):
    page = chromium_browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: errors.append(f"network request {request.url}")
            if not request.url.startswith(("file://", "data:")) else None)
    return page, errors


def _visible_clips(page) -> list[str]:
    return page.locator("#clips tbody tr").evaluate_all("rows => rows.map(r => r.dataset.clip)")


def test_the_page_opens_from_disk_and_filters_its_clips(traced_project, browser_page):
    from playwright.sync_api import expect

    from training.dataset_browser import PAGE_KEY

    _, _, store = traced_project
    page, errors = browser_page
    shard = "tiny-real"
    curated = read_table(store, f"tables/curated_clips/{shard}.parquet").to_pylist()
    labels = {}
    for row in read_table(store, f"tables/annotations/{shard}.parquet").to_pylist():
        labels.setdefault(row["label"], set()).add(row["clip_id"])

    page.goto(store.path(PAGE_KEY).as_uri())
    expect(page.locator("#count")).to_have_text(f"{len(curated)} of {len(curated)} clips")
    assert _visible_clips(page) == [c["clip_id"] for c in curated]
    # the quartile figure: one band per phase, each example a thumbnail from previews/
    expect(page.locator(".band")).to_have_count(4)
    thumbnail = page.locator(".example img").first
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") > 0  # the relative link resolves

    reason = next(r for c in curated for r in c["reasons"])
    page.select_option("#f-reason", reason)
    rejected = [c["clip_id"] for c in curated if reason in c["reasons"]]
    expect(page.locator("#count")).to_have_text(f"{len(rejected)} of {len(curated)} clips")
    assert _visible_clips(page) == rejected
    expect(page.locator("#clips tbody tr.rejected .reason").first).to_have_text(reason)

    page.select_option("#f-reason", "(any)")
    label, clips = sorted(labels.items())[0]
    page.select_option("#f-label", label)
    assert _visible_clips(page) == [c["clip_id"] for c in curated if c["clip_id"] in clips]
    page.select_option("#f-label", "(any)")
    page.select_option("#f-phase", "1")
    shown = _visible_clips(page)
    assert shown and len(shown) < len(curated)
    page.select_option("#f-phase", "(any)")
    page.select_option("#f-reason", reason)
    page.screenshot(path=str(ARTIFACTS / "dataset_browser.png"), full_page=True)
    assert errors == []
