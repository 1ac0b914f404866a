"""Dagster Definitions, jobs, the `reactid` CLI and the demo runner."""
