"""Idempotent stage execution shared by the Dagster assets and the CLI (`dvc repro`).

A stage's completion marker (`metrics/<stage>/<shard>.json`) is written last, after every
output is in place, and holds a fingerprint of what the outputs were computed from: the
stage's code version (every project module it imports, comments and docstrings aside:
core.code_version), its params sections and its inputs' fingerprints. Re-running with the same
fingerprint returns the recorded result without redoing the work. A run withdraws the
previous marker before it touches any output, so a crash leaves no marker and the next run
starts the stage over.

Readers trust the marker, not the outputs' presence: a stage's outputs are complete exactly
when its marker exists. This matters on S3, where publishing a prefix is a sequence of
copies and deletes rather than one rename (core.storage_s3).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import layout
from core.code_version import CodeVersion, code_version
from core.errors import StageInputError
from core.execution import progress_prefix, scratch_area
from core.params import Params, section_dict
from core.storage import ObjectStore, scratch_root
from core.tables import read_json, write_json


@dataclass
class StageContext:
    """What a stage function gets: where to read and write, and its settings.

    `shard` is the key of this run of the stage (PARTITION_KEYS): a pool shard (a folder or
    manifest of raw videos, and the Dagster partition of the per-shard assets) for a shard
    stage; AGGREGATE for a stage over every gated shard; an ablation variant; a model name; or
    `<benchmark>/<model>`. The `shard` column of the curation tables is always the pool shard,
    and `shards` (below) lists the pool shards, or the runs, an aggregate reads.
    """

    stage: str
    shard: str
    params: Params
    store: ObjectStore
    # For an aggregate stage (one output over many shards): the shards it reads.
    shards: tuple[str, ...] = ()
    # The run's stage fingerprint: per-item progress is recorded under it (core.execution).
    fingerprint: str = ""

    def table_key(self, name: str | None = None) -> str:
        """This run's table of `name` (default: the stage's own), keyed by the run's partition."""
        return layout.table(name or self.stage, self.shard)


StageFn = Callable[[StageContext], dict[str, Any]]


@dataclass(frozen=True)
class Output:
    """A file or folder a stage writes, as a store key template.

    `{shard}`, `{variant}`, `{model}` and `{benchmark}` stand for the stage's partition; a path
    that starts with `${` names a params key (`${demo_pool.pool_root}/{shard}`) instead of a
    store key. `kind` is how DVC shows it (outs, metrics or plots); `persist` keeps it across
    reruns (training folders resume from their checkpoints); `cache: false` leaves it out of
    DVC's cache (reports and plots rewritten on every run).
    """

    path: str
    kind: str = "outs"
    persist: bool = False
    cache: bool = True
    plot: tuple[tuple[str, str], ...] = ()


# How a stage's runs are split: one per shard, one over all shards, one per ablation
# variant, one per untrained model, one per (benchmark, model).
PARTITIONINGS = ("shard", "aggregate", "variant", "model", "benchmark_model")
# The key of one run of a stage in store paths, as a template (a marker is metrics/<stage>/<key>.json).
PARTITION_KEYS = {"shard": "{shard}", "aggregate": layout.AGGREGATE, "variant": "{variant}", "model": "{model}",
                  "benchmark_model": "{benchmark}/{model}"}


@dataclass(frozen=True)
class StageSpec:
    """A stage: its function, the params sections it reads, the stages it reads from.

    Its code is the module defining `fn` and everything that module imports (found by
    core.code_version); `extra_roots` names modules the stage runs without importing them.
    """

    name: str
    fn: StageFn
    sections: tuple[str, ...]
    upstream: tuple[str, ...]
    description: str = ""
    # Fingerprint of inputs that live outside the store (a raw pool folder).
    input_hash: Callable[[StageContext], str] | None = None
    # An aggregate stage reads its upstream stages for every shard in `shards` and writes
    # one output under the pseudo-shard AGGREGATE.
    aggregate: bool = False
    # A stage that compares a shard with the shards before it (duplicate removal) also reads
    # `prior_upstream` of every shard `prior_shards` names, in that order; their markers join
    # the fingerprint, so a change in an earlier shard makes the later ones stale, and a shard
    # added later changes nothing before it.
    prior_upstream: tuple[str, ...] = ()
    prior_shards: Callable[[StageContext], tuple[str, ...]] | None = None
    extra_roots: tuple[str, ...] = ()
    # What the stage writes besides its completion marker (None: its table, the key of
    # StageContext.table_key) and what it reads beyond its upstream stages' outputs (a raw
    # pool, the model registry); store key templates.
    outputs: tuple[Output, ...] | None = None
    inputs: tuple[str, ...] = ()
    # One of PARTITIONINGS; empty: "aggregate" when `aggregate`, else "shard".
    partitioning: str = ""
    # The partitions an aggregate reads when params name them (the runs a submission packs);
    # None: what has run upstream (the shards that passed their gates, the scored pairs).
    reads: Callable[[Params], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.description, str):
            raise TypeError(f"stage {self.name!r}: description must be text, got {self.description!r} "
                            "(a stage's code modules are found by its imports; name others in extra_roots)")
        if self.partitioning and self.partitioning not in PARTITIONINGS:
            raise ValueError(f"stage {self.name!r}: partitioning {self.partitioning!r} is not one of {PARTITIONINGS}")

    @property
    def written(self) -> tuple[Output, ...]:
        """The stage's outputs besides its marker."""
        if self.outputs is not None:
            return self.outputs
        return (Output(layout.table(self.name, PARTITION_KEYS[self.partitions])),)

    @property
    def partitions(self) -> str:
        """How the stage's runs are split (one of PARTITIONINGS)."""
        return self.partitioning or ("aggregate" if self.aggregate else "shard")


AGGREGATE = layout.AGGREGATE


@dataclass
class StageResult:
    stage: str
    shard: str
    fingerprint: str
    skipped: bool
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)


def marker_key(stage: str, shard: str) -> str:
    """The completion marker of `stage` for `shard` (core.layout.marker)."""
    return layout.marker(stage, shard)


def code_roots(spec: StageSpec) -> tuple[str, ...]:
    """The modules a stage's code version starts from: the one defining its function, plus extras."""
    return (spec.fn.__module__, *spec.extra_roots)


def stage_code_version(spec: StageSpec) -> CodeVersion:
    """The stage's code version: every project module it imports, comments and docstrings aside."""
    return code_version(code_roots(spec))


def _upstream_shards(spec: StageSpec, shard: str, shards: tuple[str, ...]) -> tuple[str, ...]:
    if not spec.aggregate:
        return (shard,)
    if not shards:
        raise StageInputError(f"aggregate stage {spec.name!r} was given no shards to read")
    return tuple(sorted(shards))


def stage_fingerprint(
    spec: StageSpec, shard: str, params: Params, store: ObjectStore, shards: tuple[str, ...] = ()
) -> str:
    """Fingerprint of everything a stage's output depends on.

    Raises:
        StageInputError: an upstream stage has not completed for a shard it reads.
    """
    upstream = {}
    for up in spec.upstream:
        for src in _upstream_shards(spec, shard, shards):
            key = marker_key(up, src)
            if not store.exists(key):
                raise StageInputError(f"stage {spec.name!r} needs {up!r} for shard {src!r}, which has not run")
            upstream[f"{up}/{src}"] = read_json(store, key)["fingerprint"]
    ctx = StageContext(spec.name, shard, params, store, tuple(sorted(shards)))
    payload = {
        "stage": spec.name,
        "shard": shard,
        "code": stage_code_version(spec).version,
        "params": {s: section_dict(params, s) for s in spec.sections},
        "upstream": upstream,
        "inputs": spec.input_hash(ctx) if spec.input_hash else None,
    }
    if spec.prior_upstream:
        payload["prior"] = _prior_markers(spec, ctx)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _prior_markers(spec: StageSpec, ctx: StageContext) -> list[list[str]]:
    """[stage, shard, fingerprint] of `spec.prior_upstream` for each shard before `ctx.shard`.

    Raises:
        StageInputError: an earlier shard has not completed one of them.
    """
    if spec.prior_shards is None:
        raise StageInputError(f"stage {spec.name!r} declares prior_upstream but no prior_shards")
    out = []
    for src in spec.prior_shards(ctx):
        for up in spec.prior_upstream:
            key = marker_key(up, src)
            if not ctx.store.exists(key):
                raise StageInputError(f"stage {spec.name!r} compares shard {ctx.shard!r} with shard {src!r} before it, "
                                      f"whose {up!r} has not completed; run it first")
            out.append([up, src, read_json(ctx.store, key)["fingerprint"]])
    return out


def completed(
    spec: StageSpec, shard: str, params: Params, store: ObjectStore, shards: tuple[str, ...] = ()
) -> bool:
    """True when the stage's recorded outputs match what a run now would produce."""
    key = marker_key(spec.name, shard)
    if not store.exists(key):
        return False
    try:
        return read_json(store, key)["fingerprint"] == stage_fingerprint(spec, shard, params, store, shards)
    except StageInputError:
        return False


def run_stage(
    spec: StageSpec, shard: str, params: Params, store: ObjectStore, *, force: bool = False,
    shards: tuple[str, ...] = (),
) -> StageResult:
    """Run `spec` for `shard` unless its outputs are already up to date.

    For an aggregate stage pass `shard=AGGREGATE` and the `shards` it reads.
    """
    shards = tuple(sorted(shards))
    fingerprint = stage_fingerprint(spec, shard, params, store, shards)
    key = marker_key(spec.name, shard)
    if not force and store.exists(key):
        recorded = read_json(store, key)
        if recorded.get("fingerprint") == fingerprint:
            return StageResult(spec.name, shard, fingerprint, True, 0.0, recorded.get("metadata", {}))
    # Outputs are about to change: withdraw the old marker first, so that a crash while the
    # outputs are replaced (on S3 a prefix is published object by object) leaves no marker
    # vouching for them, and readers, who trust only the marker, never use a half-written set.
    store.delete_prefix(key)
    start = time.perf_counter()
    # Working files go to a folder of this stage and shard that the next run clears, so a
    # killed run's partial files do not pile up in the system temp folder.
    with scratch_area(params, spec.name, shard) as scratch, scratch_root(scratch):
        metadata = spec.fn(StageContext(spec.name, shard, params, store, shards, fingerprint))
    seconds = time.perf_counter() - start
    metadata = {**metadata, "seconds": round(seconds, 3)}
    write_json(store, key, {"stage": spec.name, "shard": shard, "shards": list(shards), "fingerprint": fingerprint,
                            "metadata": metadata})
    # The marker now vouches for the outputs: the per-item results that let a killed run
    # resume are no longer needed.
    store.delete_prefix(progress_prefix(spec.name, shard))
    return StageResult(spec.name, shard, fingerprint, False, seconds, metadata)


def recorded_metadata(store: ObjectStore, stage: str, shard: str) -> Mapping[str, Any] | None:
    key = marker_key(stage, shard)
    return read_json(store, key).get("metadata") if store.exists(key) else None
