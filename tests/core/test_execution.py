"""The execution engine: input order, models loaded once per worker, per-item progress keyed
by the stage fingerprint, scratch folders a later run clears, and params that fail early."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from core.errors import ParamsError
from core.execution import (
    ItemEnv,
    ItemProgress,
    ItemWork,
    LocalEngine,
    RayEngine,
    portable_store,
    progress_prefix,
    run_items,
)
from core.stage import StageContext, StageSpec, marker_key, run_stage
from core.storage import LocalObjectStore, temp_dir


def _params(tmp_path: Path, base_params_raw: dict, **execution):
    from orchestration.params import parse_params

    raw = {**base_params_raw, "execution": {**base_params_raw["execution"], **execution}}
    params = parse_params(raw)
    params._base_dir = tmp_path
    return params


# Module-level so that Ray pickles them by reference.
def square(env: ItemEnv, models, item: int) -> dict:
    return {"item": item, "square": item * item, "models": models, "pid": os.getpid()}


def load_models(env: ItemEnv) -> dict:
    return {"loaded_in": os.getpid(), "nonce": os.urandom(4).hex()}


def square_with_model(env: ItemEnv, models: dict, item: int) -> dict:
    return {"item": item, "square": item * item, "model": models["nonce"], "pid": os.getpid()}


def test_local_engine_keeps_input_order_and_loads_the_model_once(tmp_path, base_params_raw):
    params = _params(tmp_path, base_params_raw)
    env = ItemEnv(params, LocalObjectStore(tmp_path / "data"), "s")
    got: list[tuple[int, dict]] = []
    LocalEngine().map(ItemWork(square_with_model, setup=load_models), env, [3, 1, 2], [0, 2], lambda i, r: got.append((i, r)))
    assert [i for i, _ in got] == [0, 2]
    assert [r["square"] for _, r in got] == [9, 4]
    assert len({r["model"] for _, r in got}) == 1  # one setup for the whole run


def slow_load(env: ItemEnv) -> dict:
    import time

    time.sleep(0.05)
    return load_models(env)


def test_engines_say_how_long_the_models_took_to_load(tmp_path, base_params_raw):
    """The seconds of `setup` come back from the engine and into the stage's metadata (the
    part of a run more workers do not shorten); work without models reports none."""
    params = _params(tmp_path, base_params_raw)
    env = ItemEnv(params, LocalObjectStore(tmp_path / "data"), "s")
    assert LocalEngine().map(ItemWork(square_with_model, setup=slow_load), env, [1, 2], [0, 1], lambda i, r: None) >= 0.05
    assert LocalEngine().map(ItemWork(square), env, [1, 2], [0, 1], lambda i, r: None) is None
    assert LocalEngine().map(ItemWork(square_with_model, setup=slow_load), env, [1, 2], [], lambda i, r: None) is None

    store = LocalObjectStore(tmp_path / "data")
    ctx = StageContext("st", "sh", params, store)
    run = run_items(ctx, ItemWork(square_with_model, setup=slow_load), [1, 2])
    assert run.models_load_s >= 0.05 and run.metadata()["models_load_s"] >= 0.05
    assert "models_load_s" not in run_items(ctx, ItemWork(square), [1, 2]).metadata()


def test_progress_is_keyed_by_fingerprint_and_stale_progress_is_removed(tmp_path):
    store = LocalObjectStore(tmp_path)
    old = ItemProgress(store, "st", "sh", "fp-old")
    old.record(0, {"row": "stale"})
    new = ItemProgress(store, "st", "sh", "fp-new")
    new.record(1, {"row": 1})
    new.record(7, {"row": 7})  # beyond the items of this run: ignored
    assert new.load(3) == {1: {"row": 1}}
    assert store.list(f"{progress_prefix('st', 'sh')}/fp-old") == []
    with pytest.raises(ValueError, match="fingerprint"):
        ItemProgress(store, "st", "sh", "")


def _counting_stage(calls: list[int], fail_at: int | None = None):
    def process(env, models, item):
        if item == fail_at:
            raise RuntimeError(f"item {item} failed")
        calls.append(item)
        return {"item": item}

    def fn(ctx: StageContext) -> dict:
        run = run_items(ctx, ItemWork(process), list(range(5)))
        ctx.store.put_bytes(ctx.table_key(), pickle.dumps([r["item"] for r in run.results]))
        return run.metadata()

    return StageSpec("counting", fn, (), ())


def test_a_failed_run_resumes_with_only_the_unfinished_items(tmp_path, base_params_raw):
    params = _params(tmp_path, base_params_raw)
    store = LocalObjectStore(tmp_path / "data")
    calls: list[int] = []
    with pytest.raises(RuntimeError, match="item 3 failed"):
        run_stage(_counting_stage(calls, fail_at=3), "sh", params, store)
    assert calls == [0, 1, 2] and not store.exists(marker_key("counting", "sh"))
    calls.clear()
    result = run_stage(_counting_stage(calls), "sh", params, store)
    assert calls == [3, 4]
    assert result.metadata["items_resumed"] == 3 and result.metadata["items_processed"] == 2
    assert pickle.loads(store.get_bytes("tables/counting/sh.parquet")) == [0, 1, 2, 3, 4]
    assert store.list(progress_prefix("counting", "sh")) == []  # dropped once the marker is written


def test_working_files_live_in_a_scratch_folder_the_next_run_clears(tmp_path, base_params_raw):
    params = _params(tmp_path, base_params_raw, scratch_dir="work")
    store = LocalObjectStore(tmp_path / "data")
    leftover = tmp_path / "work" / "scratchy" / "sh" / "partial-clip.mp4"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a clip from a killed run")
    seen: list[Path] = []

    def fn(ctx: StageContext) -> dict:
        with temp_dir() as tmp:
            seen.append(Path(tmp))
            assert not leftover.exists()
        return {}

    run_stage(StageSpec("scratchy", fn, (), ()), "sh", params, store)
    assert seen[0].parent == tmp_path / "work" / "scratchy" / "sh"
    assert not (tmp_path / "work").exists()  # emptied folders go too


def test_a_store_that_cannot_be_pickled_is_reopened_from_params_on_the_worker(tmp_path, base_params_raw):
    params = _params(tmp_path, base_params_raw)
    local = LocalObjectStore(tmp_path / "data")
    assert portable_store(local, params) is local

    class HoldsCredentials:
        def __reduce__(self):
            raise TypeError("cannot be pickled")

    travelling = pickle.loads(pickle.dumps(portable_store(HoldsCredentials(), params)))
    travelling.put_bytes("k", b"v")  # opens params' store (local backend, under tmp_path/data)
    assert (tmp_path / "data" / "k").read_bytes() == b"v"


@pytest.mark.parametrize(("n_items", "batch_size", "workers", "max_in_flight"),
                         [(32, 4, 2, 2), (40, 4, 2, 2), (6, 4, 2, 2), (1, 4, 2, 2), (100, 16, 3, 1)])
def test_batches_keep_the_order_and_shrink_to_single_items_at_the_end(tmp_path, base_params_raw, n_items, batch_size,
                                                                        workers, max_in_flight):
    from core.execution import _batches

    params = _params(tmp_path, base_params_raw, batch_size=batch_size, workers=workers, max_in_flight=max_in_flight)
    items = [f"item-{i}" for i in range(n_items)]
    todo = list(reversed(range(n_items)))  # any order: the engine's, e.g. longest first
    batches = _batches(items, todo, params.execution)
    assert [i for batch in batches for i, _ in batch] == todo
    assert all(items[i] == item for batch in batches for i, item in batch)
    sizes = [len(batch) for batch in batches]
    assert max(sizes) <= batch_size and sizes == sorted(sizes, reverse=True)
    # the last batch of every worker's queue is a single item
    assert sizes[-min(len(sizes), workers * (max_in_flight + 1)):] == [1] * min(len(sizes), workers * (max_in_flight + 1))
    if n_items >= 2 * batch_size * workers * (max_in_flight + 1):
        assert sizes[0] == batch_size  # a long shard still goes in full batches


def _stage_running(work: ItemWork, items: list, cost=None):
    def fn(ctx: StageContext) -> dict:
        run = run_items(ctx, work, items, cost=cost)
        ctx.store.put_bytes(ctx.table_key(), pickle.dumps(run.results))
        return run.metadata()

    return StageSpec("ordered", fn, (), ())


def timed_square(env: ItemEnv, models: dict, item: int) -> dict:
    import time

    return {"item": item, "square": item * item, "pid": os.getpid(), "started": time.monotonic_ns()}


@pytest.mark.slow
def test_ray_spreads_few_batches_over_every_actor_and_starts_the_costliest_items_first(tmp_path, base_params_raw):
    pytest.importorskip("ray")
    params = _params(tmp_path, base_params_raw, engine="ray", workers=2, batch_size=4, max_in_flight=2)
    store = LocalObjectStore(tmp_path / "data")
    work = ItemWork(timed_square, setup=load_models)

    # two items, four queue slots: each actor gets one instead of the first taking both
    run_stage(_stage_running(work, [5, 6]), "few", params, store)
    few = pickle.loads(store.get_bytes("tables/ordered/few.parquet"))
    assert [r["square"] for r in few] == [25, 36] and len({r["pid"] for r in few}) == 2

    # each actor starts its items in decreasing cost; results keep the input order
    items = [3, 9, 1, 7, 5, 8, 2, 6, 4, 0]
    run_stage(_stage_running(work, items, cost=lambda item: item), "ordered", params, store)
    rows = pickle.loads(store.get_bytes("tables/ordered/ordered.parquet"))
    assert [r["item"] for r in rows] == items and all(r["square"] == r["item"] ** 2 for r in rows)
    by_actor: dict[int, list[dict]] = {}
    for r in rows:
        by_actor.setdefault(r["pid"], []).append(r)
    assert len(by_actor) == 2
    for started in by_actor.values():
        order = [r["item"] for r in sorted(started, key=lambda r: r["started"])]
        assert order == sorted(order, reverse=True)
    firsts = {min(started, key=lambda r: r["started"])["item"] for started in by_actor.values()}
    assert firsts == {9, 8}  # the two costliest items went first, one to each actor


@pytest.mark.parametrize(("key", "value", "message"), [
    ("engine", "dask", "execution.engine"),
    ("ray_address", "http://head:10001", "execution.ray_address"),
    ("gpus_per_actor", 1.5, "execution.gpus_per_actor"),
    ("workers", 0, "execution.workers"),
])
def test_bad_execution_params_fail_naming_the_key(base_params_raw, key, value, message):
    from orchestration.params import parse_params

    raw = {**base_params_raw, "execution": {**base_params_raw["execution"], key: value}}
    with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
        parse_params(raw)


@pytest.mark.slow
def test_ray_engine_returns_input_order_from_tasks_and_actor_pools(tmp_path, base_params_raw):
    pytest.importorskip("ray")
    params = _params(tmp_path, base_params_raw, engine="ray", workers=2, batch_size=2, max_in_flight=1)
    env = ItemEnv(params, LocalObjectStore(tmp_path / "data"), "s")
    engine = RayEngine(params.execution)
    items = list(range(11))
    todo = [i for i in items if i != 4]

    got: dict[int, dict] = {}
    engine.map(ItemWork(square), env, items, todo, got.__setitem__)
    assert sorted(got) == todo and all(got[i]["square"] == i * i for i in todo)
    assert all(r["pid"] != os.getpid() for r in got.values())  # ran on Ray workers

    got.clear()
    engine.map(ItemWork(square_with_model, setup=load_models), env, items, todo, got.__setitem__)
    assert sorted(got) == todo
    per_worker: dict[int, set[str]] = {}
    for r in got.values():
        per_worker.setdefault(r["pid"], set()).add(r["model"])
    assert 1 <= len(per_worker) <= 2 and all(len(models) == 1 for models in per_worker.values())
    assert engine.map(ItemWork(square_with_model, setup=slow_load), env, items, todo, got.__setitem__) >= 0.05
    assert engine.map(ItemWork(square), env, items, todo, got.__setitem__) is None


def fail_on_three(env: ItemEnv, models, item: int) -> dict:
    if item == 3:
        raise ValueError("item 3 is broken")
    return square(env, models, item)


@pytest.mark.slow
def test_a_local_ray_runs_every_stage_on_one_pool_of_actors_with_models_per_run(tmp_path, base_params_raw):
    pytest.importorskip("ray")
    from core.execution import _POOL

    params = _params(tmp_path, base_params_raw, engine="ray", workers=2, batch_size=2, max_in_flight=1)
    env = ItemEnv(params, LocalObjectStore(tmp_path / "data"), "s")
    engine = RayEngine(params.execution)
    items = list(range(8))

    runs = []
    for work in (ItemWork(square_with_model, setup=load_models), ItemWork(square), ItemWork(square_with_model, setup=load_models)):
        got: dict[int, dict] = {}
        engine.map(work, env, items, items, got.__setitem__)
        assert sorted(got) == items and all(got[i]["square"] == i * i for i in items)
        runs.append(got)
    pids = [{r["pid"] for r in got.values()} for got in runs]
    # the same two worker processes serve every run: no process start (and no imports) per stage
    assert len(pids[0] | pids[1] | pids[2]) <= 2 and os.getpid() not in pids[0] | pids[1] | pids[2]
    # each run loads its models once per actor; a later run loads its own, not the last one's
    first = {r["pid"]: r["model"] for r in runs[0].values()}
    third = {r["pid"]: r["model"] for r in runs[2].values()}
    assert all(r["model"] == first[r["pid"]] for r in runs[0].values())
    assert all(r["model"] == third[r["pid"]] for r in runs[2].values())
    assert not set(first.values()) & set(third.values())
    assert all(r["models"] is None for r in runs[1].values())

    # a failed run drops the pool; the next run starts a new one and works
    with pytest.raises(ValueError, match="item 3 is broken"):
        engine.map(ItemWork(fail_on_three), env, items, items, lambda i, r: None)
    assert _POOL.actors == []
    got = {}
    engine.map(ItemWork(square), env, items, items, got.__setitem__)
    assert sorted(got) == items and not {r["pid"] for r in got.values()} & (pids[0] | pids[1] | pids[2])
