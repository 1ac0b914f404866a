"""Fixtures: the fake lakeFS API server (tests/versioning/fake_lakefs.py) and settings for it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ACCESS_KEY = "AKIAREACTIDTEST0001"
SECRET_KEY = "reactid-lakefs-secret-do-not-leak-0123456789"
REPOSITORY = "reactid-data"


def _load_fake():
    name = "reactid_tests_fake_lakefs"
    if name not in sys.modules:  # --import-mode=importlib: load the helper by path, once
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_lakefs.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def fake_lakefs():
    """A fresh fake lakeFS with repository 'reactid-data' (default branch main), per test.
    Fails the test if any response it sent broke the spec's required fields."""
    server = _load_fake().FakeLakeFS(ACCESS_KEY, SECRET_KEY).start()
    server.create_repository(REPOSITORY)
    yield server
    server.stop()
    assert not server.errors, server.errors


@pytest.fixture
def lakefs_env(monkeypatch):
    monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET_KEY)
    return {"LAKEFS_ACCESS_KEY_ID": ACCESS_KEY, "LAKEFS_SECRET_ACCESS_KEY": SECRET_KEY}


@pytest.fixture
def lakefs_settings(fake_lakefs):
    """LakeFSParams for the fake server (enabled, no retries so failures come back at once)."""
    from versioning.params import LakeFSParams

    def make(**overrides):
        values = {"enabled": True, "endpoint": fake_lakefs.endpoint, "repository": REPOSITORY, "retries": 0,
                  "timeout_s": 10.0, **overrides}
        return LakeFSParams(**values)

    return make
