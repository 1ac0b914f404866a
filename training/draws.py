"""What a training run drew, recorded compactly for lineage.

A run of the paper's size draws hundreds of thousands of samples (10k steps x 32), so the
draws are not kept as id lists. Two Parquet files sit in the run's folder:

- ``sample_table.parquet``: the sampler's sample table, one row per sample in index order
  (sample id, shard, clip, entity, D_overall, inter-clip flag) as it was when the run
  trained: the curriculum tables may be rebuilt later, the run's record stays true.
- ``sample_draws.parquet``: one row per step, ``step`` (int32) and ``sample_index``
  (a fixed-size list of int32 indices into the table, the global batch in slot order).
  Parquet's dictionary and run-length encodings keep a 320k-draw phase near 1 MB.

The schema metadata names the run's sampler (its seed and schedule), so the draws can be
checked against the deterministic sampler that produced them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_TABLE = "sample_table.parquet"
SAMPLE_DRAWS = "sample_draws.parquet"
_META = b"reactid.draws"


@dataclass(frozen=True)
class RunDraws:
    """The draws of one run: ``indices`` (steps, global batch) int32 into ``sample_ids``."""

    steps: np.ndarray  # (N,) int32 0-based global steps
    indices: np.ndarray  # (N, B) int32
    sample_ids: np.ndarray  # (S,) object
    table: pa.Table  # the sample table (sample_id, SAMPLE_COLUMNS, d_overall, is_inter)
    sampler: dict[str, Any]

    def counts(self) -> np.ndarray:
        """(S,) how many times each sample was drawn."""
        return np.bincount(self.indices.ravel(), minlength=len(self.sample_ids))

    def steps_of(self, index: int) -> np.ndarray:
        """Steps that drew sample ``index`` (ascending, a step once)."""
        return self.steps[(self.indices == index).any(axis=1)]


SAMPLE_COLUMNS = ("shard", "clip_id", "entity_id", "annotation_key", "reference_shard", "reference_clip_id",
                  "reference_entity_id")


def draws_tables(used: Mapping[int, Sequence[str]], sample_ids: np.ndarray, d_overall: np.ndarray,
                 is_inter: np.ndarray, samples: Mapping[str, Mapping[str, Any]],
                 sampler: dict[str, Any]) -> tuple[bytes, bytes]:
    """Parquet bytes of (sample table, draws) for the ids each step drew.

    Args:
        used: 0-based step -> the global batch's sample ids, as the trainer took them.
        sample_ids, d_overall, is_inter: the sampler's arrays, in index order.
        samples: sample id -> its training_samples row (the SAMPLE_COLUMNS are kept).
        sampler: what produced the draws (seed, schedule key, stage), stored in the metadata.

    Raises:
        ValueError: a step drew an id the sample table does not hold, or steps differ in size.
    """
    ids = np.asarray(sample_ids, dtype=object)
    position = {sid: i for i, sid in enumerate(ids.tolist())}
    steps = sorted(used)
    sizes = {len(used[s]) for s in steps}
    if len(sizes) > 1:
        raise ValueError(f"steps drew batches of different sizes {sorted(sizes)}")
    batch = sizes.pop() if sizes else 0
    indices = np.empty((len(steps), batch), np.int32)
    for row, step in enumerate(steps):
        try:
            indices[row] = [position[sid] for sid in used[step]]
        except KeyError as exc:
            raise ValueError(f"step {step} drew {exc.args[0]!r}, which is not in the sampler's table") from exc
    missing = [sid for sid in ids.tolist() if sid not in samples]
    if missing:
        raise ValueError(f"{len(missing)} sampler ids have no training_samples row, e.g. {missing[:3]}")
    table = pa.table({
        "sample_id": pa.array(ids.tolist(), pa.string()),
        **{c: pa.array([samples[sid].get(c) for sid in ids.tolist()], pa.string()) for c in SAMPLE_COLUMNS},
        "d_overall": pa.array(np.asarray(d_overall, np.float64)),
        "is_inter": pa.array(np.asarray(is_inter, bool)),
    })
    draws = pa.table({
        "step": pa.array(np.asarray(steps, np.int32)),
        "sample_index": pa.FixedSizeListArray.from_arrays(pa.array(indices.ravel(), pa.int32()), batch)
        if batch else pa.array([], pa.list_(pa.int32(), 0)),
    }).replace_schema_metadata({_META: json.dumps(sampler, sort_keys=True).encode()})
    return _parquet(table), _parquet(draws)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_draws(store: Any, run_key: str, used: Mapping[int, Sequence[str]], sample_ids: np.ndarray,
                d_overall: np.ndarray, is_inter: np.ndarray, samples: Mapping[str, Mapping[str, Any]],
                sampler: dict[str, Any]) -> dict[str, Any]:
    """Write the run's sample table and draws under ``run_key``; returns metadata (keys, sizes)."""
    table, draws = draws_tables(used, sample_ids, d_overall, is_inter, samples, sampler)
    store.put_bytes(f"{run_key}/{SAMPLE_TABLE}", table)
    store.put_bytes(f"{run_key}/{SAMPLE_DRAWS}", draws)
    return {"sample_table_key": f"{run_key}/{SAMPLE_TABLE}", "draws_key": f"{run_key}/{SAMPLE_DRAWS}",
            "draws_bytes": len(draws) + len(table)}


def read_draws(store: Any, run_key: str) -> RunDraws:
    """The draws a run recorded (``write_draws``)."""
    table = pq.read_table(pa.BufferReader(store.get_bytes(f"{run_key}/{SAMPLE_TABLE}")))
    draws = pq.read_table(pa.BufferReader(store.get_bytes(f"{run_key}/{SAMPLE_DRAWS}")))
    column = draws["sample_index"].combine_chunks()
    batch = column.type.list_size if len(draws) else 0
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.int32) if len(draws) else np.zeros(0, np.int32)
    meta = (draws.schema.metadata or {}).get(_META)
    return RunDraws(
        steps=draws["step"].to_numpy().astype(np.int32),
        indices=flat.reshape(len(draws), batch),
        sample_ids=table["sample_id"].to_numpy(zero_copy_only=False),
        table=table,
        sampler=json.loads(meta) if meta else {},
    )


PROVENANCE = "provenance.json"


def write_provenance(store: Any, run_key: str, spec: Any, params: Any, shard: str, sampler: dict[str, Any]) -> str:
    """``<run_key>/provenance.json``: the stage, the params sections it read, the version of each
    code module it runs, its sampler and the upstream markers' fingerprints; returns its key."""
    from core.code_version import module_versions
    from core.params import section_dict
    from core.stage import AGGREGATE, code_roots, marker_key
    from core.tables import read_json

    upstream = {}
    for name in spec.upstream:
        key = marker_key(name, AGGREGATE)
        if store.exists(key):
            upstream[name] = read_json(store, key)["fingerprint"]
    record = {
        "stage": spec.name, "shard": shard, "run_dir": run_key,
        "params": {section: section_dict(params, section) for section in spec.sections},
        "code_versions": module_versions(code_roots(spec)),
        "sampler": sampler, "upstream": upstream,
    }
    key = f"{run_key}/{PROVENANCE}"
    store.put_bytes(key, (json.dumps(record, indent=1, sort_keys=True, default=str) + "\n").encode())
    return key
