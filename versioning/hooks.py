"""Where the pipeline meets lakeFS: after the quality gate, after the leaderboard.

Both functions return None and touch nothing (no import of the SDK, no network) when
``lakefs.enabled`` is false, the default. Assets and the CLI call them; the logic is here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from core import layout
from core.params import Params
from core.storage import ObjectStore
from core.tables import read_json, write_json
from curation.gate_status import GATE_SUITES, gate_key

if TYPE_CHECKING:
    from curation.quality_gates import GateResult
    from versioning.lakefs_store import LakeFSVersioning

PROMOTIONS_PREFIX = layout.LAKEFS_PROMOTIONS


def params_hash(params: Params) -> str:
    """sha256 of every setting except the lakefs section (where the data goes is not what it is)."""
    payload = params.model_dump(mode="json", exclude={"lakefs"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def checks_summary(results: Mapping[str, GateResult]) -> dict[str, dict[str, Any]]:
    """suite -> passed, rows, expectations, failed expectations."""
    return {suite: {"passed": bool(r.success), "rows": r.n_rows, "expectations": r.n_expectations,
                    "failed_expectations": len(r.failures)} for suite, r in sorted(results.items())}


def shard_files(store: ObjectStore, shard: str, verdict: Mapping[str, Any]) -> dict[str, bytes]:
    """What a validated shard commits: its annotation tables (every gate suite's) and the verdict
    as the gate recorded it (without the lakeFS fields added afterwards)."""
    files = {layout.table(suite, shard): store.get_bytes(layout.table(suite, shard)) for suite in GATE_SUITES}
    plain = {k: v for k, v in verdict.items() if k != "lakefs"}
    files[gate_key(shard)] = json.dumps(plain, indent=2, sort_keys=True, default=str).encode()
    return files


def version_gate_verdict(params: Params, store: ObjectStore, shard: str, *, run_id: str,
                         results: Mapping[str, GateResult] | None = None,
                         versioning: LakeFSVersioning | None = None) -> dict[str, Any] | None:
    """Commit a shard that passed its quality gates to the run's lakeFS branch.

    Call after the gate recorded its verdict. The commit carries run_id, params_hash, the
    annotations fingerprint and the check results; its id is written back into the verdict
    (``metrics/quality_gates/<shard>.json``, key ``lakefs``) so later stages and models can be
    traced to it. A failed shard is not committed.

    Returns:
        The verdict's ``lakefs`` record, or None when disabled, not gated or not passed.
    """
    cfg = params.lakefs
    if not cfg.enabled or not store.exists(gate_key(shard)):
        return None
    verdict = read_json(store, gate_key(shard))
    if not verdict.get("passed"):
        return None
    if versioning is None:
        from versioning.lakefs_store import LakeFSVersioning

        versioning = LakeFSVersioning(cfg)
    branch = versioning.ensure_run_branch(cfg.run_name)
    checks = checks_summary(results) if results else {s: {"passed": True} for s in GATE_SUITES}
    metadata = {"run_id": run_id, "params_hash": params_hash(params), "gate_passed": True,
                "annotations_fingerprint": verdict.get("annotations_fingerprint") or "", "checks": checks}
    commit = versioning.commit_validated_shard(branch.name, shard, shard_files(store, shard, verdict), metadata)
    record = {"endpoint": cfg.endpoint, **commit.to_dict()}
    write_json(store, gate_key(shard), {**verdict, "lakefs": record})
    return record


TRAINING_SAMPLES_MARKER = layout.marker("training_samples", layout.AGGREGATE)


def training_data_commit(store: ObjectStore, versioning: LakeFSVersioning, branch: str) -> tuple[str, list[str]]:
    """The run-branch commit holding the data the trained models saw, and those shards.

    The shards are the ones ``training_samples`` was built from (its marker); each must have
    been committed to ``branch`` by the quality gate (its verdict's ``lakefs`` record). The
    data commit is the newest of their commits on the branch, not the branch head: a shard
    gated after training is on the branch but was never trained on.

    Raises:
        VersioningError: no training data is recorded, or a trained-on shard has no commit on
            ``branch`` (with the command that commits it).
    """
    from core.errors import VersioningError

    if not store.exists(TRAINING_SAMPLES_MARKER):
        raise VersioningError("no training data to promote: training_samples has not run "
                              f"({TRAINING_SAMPLES_MARKER} is missing)")
    shards = sorted(read_json(store, TRAINING_SAMPLES_MARKER).get("shards") or [])
    commits = {}
    for shard in shards:
        record = read_json(store, gate_key(shard)).get("lakefs") if store.exists(gate_key(shard)) else None
        if not record or record.get("branch") != branch:
            raise VersioningError(
                f"shard '{shard}' was trained on but its validated annotations are not committed to lakeFS branch "
                f"'{branch}': run `reactid gate --shard {shard}` with lakefs.enabled, then promote again")
        commits[shard] = record["commit_id"]
    if not commits:
        raise VersioningError(f"training_samples lists no shards ({TRAINING_SAMPLES_MARKER})")
    return versioning.newest_on_branch(branch, commits.values()), shards


def promotion_tag(params: Params, evaluation_fingerprint: str) -> str:
    return f"{params.lakefs.tag_prefix}{params.lakefs.run_name}-{evaluation_fingerprint[:12]}"


def promote_evaluation(params: Params, store: ObjectStore, *, run_id: str, evaluation_fingerprint: str,
                       models: Iterable[str], versioning: LakeFSVersioning | None = None) -> dict[str, Any] | None:
    """After a successful leaderboard: merge the run branch, up to the data the models were
    trained on (``training_data_commit``), into main and tag it.

    The tag is ``<tag_prefix><run_name>-<first 12 of the leaderboard fingerprint>``; the merge
    commit's metadata lists the evaluated models and the data commit they saw. A copy of the
    record goes to ``metrics/lakefs/promotions/<tag>.json``.

    Returns:
        The promotion record, or None when disabled.
    """
    cfg = params.lakefs
    if not cfg.enabled:
        return None
    if versioning is None:
        from versioning.lakefs_store import LakeFSVersioning

        versioning = LakeFSVersioning(cfg)
    branch = versioning.ensure_run_branch(cfg.run_name)
    data_commit, shards = training_data_commit(store, versioning, branch.name)
    tag = promotion_tag(params, evaluation_fingerprint)
    promotion = versioning.promote(branch.name, tag, {
        "run_id": run_id, "params_hash": params_hash(params), "evaluation_fingerprint": evaluation_fingerprint,
        "models": sorted(set(models)), "training_shards": shards,
    }, data_commit=data_commit)
    record = {"endpoint": cfg.endpoint, "models": sorted(set(models)), **promotion.to_dict()}
    write_json(store, layout.lakefs_promotion(tag), record)
    return record
