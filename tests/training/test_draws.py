"""The compact record of a run's draws: the same ids back, in the same slots, from a file far
smaller than the JSON lines of the ids, and the sampler's batches reproduced from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.storage import LocalObjectStore
from training.curriculum import build_schedule, phase_thresholds
from training.draws import read_draws, write_draws
from training.sampler import CurriculumSampler


def _pool(n: int):
    rng = np.random.default_rng(0)
    ids = np.array([f"shard-{i % 7:03d}_{i:06d}-s00-e0:intra" for i in range(n)], dtype=object)
    rows = {sid: {"shard": f"shard-{i % 7:03d}", "clip_id": sid.split("-e0")[0], "entity_id": sid.split(":")[0],
                  "annotation_key": f"tables/annotations/shard-{i % 7:03d}.parquet"} for i, sid in enumerate(ids)}
    return ids, rng.random(n), np.zeros(n, bool), rows


def test_draws_round_trip_and_reproduce_the_sampler(tmp_path):
    ids, d, inter, rows = _pool(400)
    levels, taus = phase_thresholds(d, 4)
    schedule = build_schedule(d, inter, levels, taus, total_steps=40, phase_ratios=[4, 2, 1, 1],
                              inter_clip_ratios=[0, 0, 0, 0], global_batch_size=8, seed=5, difficulty_table="t",
                              samples_table="s", weights={})
    sampler = CurriculumSampler(schedule, d, inter, sample_ids=ids)
    used = {t: sampler.global_sample_ids(t) for t in range(10, 20)}
    store = LocalObjectStore(tmp_path)
    meta = write_draws(store, "training/run", used, ids, d, inter, rows, {"seed": 5, "stage": "curriculum_phase_1"})
    assert store.exists(meta["draws_key"]) and store.exists(meta["sample_table_key"])
    draws = read_draws(store, "training/run")
    assert draws.steps.tolist() == list(range(10, 20)) and draws.indices.dtype == np.int32
    for row, step in enumerate(draws.steps.tolist()):
        assert draws.indices[row].tolist() == sampler.global_batch(step).tolist()
        assert draws.sample_ids[draws.indices[row]].tolist() == used[step]
    assert draws.sampler == {"seed": 5, "stage": "curriculum_phase_1"}
    assert draws.table["clip_id"].to_pylist()[3] == rows[ids[3]]["clip_id"]
    assert int(draws.counts().sum()) == 80
    first = int(draws.indices[0, 0])
    assert 10 in draws.steps_of(first).tolist()


def test_a_phase_of_the_papers_size_is_recorded_compactly(tmp_path):
    """10k steps x 32 samples: the Parquet record against the JSON lines of the same ids."""
    ids, d, inter, rows = _pool(20_000)
    rng = np.random.default_rng(1)
    used = {t: ids[rng.choice(len(ids), 32, replace=False)].tolist() for t in range(10_000)}
    store = LocalObjectStore(tmp_path)
    meta = write_draws(store, "training/big", used, ids, d, inter, rows, {"seed": 0})
    json_lines = sum(len(json.dumps({"step": t, "ids": v})) + 1 for t, v in used.items())
    assert meta["draws_bytes"] * 5 < json_lines
    assert read_draws(store, "training/big").indices.shape == (10_000, 32)


def test_an_id_outside_the_table_is_refused(tmp_path):
    ids, d, inter, rows = _pool(10)
    with pytest.raises(ValueError, match="not in the sampler's table"):
        write_draws(LocalObjectStore(tmp_path), "r", {0: ["nope"]}, ids, d, inter, rows, {})
