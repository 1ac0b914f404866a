"""Data versioning: lakeFS branches, commits, merges and tags around the platform's runs.

versioning -> core, curation (the gate verdict's keys). Nothing here is imported at Dagster
load time: the lakeFS SDK (about a second to import) loads only when versioning is enabled.
"""
