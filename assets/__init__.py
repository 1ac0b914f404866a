"""Thin Dagster assets: load inputs, call the domain stage, write outputs, return metadata."""
