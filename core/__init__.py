"""Shared foundations: typed params, object storage, Parquet tables, progress reporting.

`core` is imported by every other package and imports none of them. It stays light:
no torch, no OpenCV, no Dagster at module load.
"""
