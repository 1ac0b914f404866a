"""Debian's chromium driven through playwright (no `playwright install`): `make test`
installs it and sets REACTID_REQUIRE_BROWSER=1, so a missing browser fails there; run
directly on a machine without it, the browser tests skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("REACTID_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags chromium keeps calling hosts this machine cannot reach.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    """A headless chromium (a playwright Browser); skips, or fails under
    REACTID_REQUIRE_BROWSER=1, when chromium or playwright is missing."""
    required = os.environ.get("REACTID_REQUIRE_BROWSER") == "1"
    missing = None if Path(CHROMIUM).is_file() else \
        f"chromium not found at {CHROMIUM} (install it: make browser, or apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = missing or "playwright is not installed (a dev dependency: pip install -e '.[dev]')"
    if missing:
        (pytest.fail if required else pytest.skip)(missing)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
