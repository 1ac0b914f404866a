"""The engine that runs a stage's per-item work: in process (`local`) or on Ray (`ray`).

Dagster (or `reactid stage` under `dvc repro`) runs one stage for one shard; inside it, the
work is a list of items (videos, clips, subjects) and a pure function of one item. This
module maps that function over the items on the engine params `execution` names, and
records every finished item so that a rerun after a crash does only the unfinished ones.

Why it is shaped like this:
- **Same tables from every engine.** Results come back in input order whatever order the
  workers finish in, and the per-item function is the same code on both engines, so a
  table written from them is byte-for-byte the same (tests/core/test_execution.py and
  tests/orchestration/test_ray_engine.py check it).
- **Models loaded once per worker.** Work that needs a model (OCR, dlib, the pretrained
  backends) names a `setup` function; on `ray` each actor of a pool calls it once and then
  takes batches of `execution.batch_size` items; pretrained models ask for
  `execution.gpus_per_actor` of a GPU. Work without a model runs as one Ray task per item.
  A local Ray (no `ray_address`) keeps one pool of actors for every stage of the process
  instead, so a stage does not pay for starting processes and importing its modules again.
- **Streaming, bounded.** Items are submitted as workers free up, at most
  `execution.max_in_flight` batches queued per worker, and each result is recorded the
  moment it arrives: decoding and inference of different items overlap, nothing waits for
  the whole shard, and memory stays bounded by what is in flight.
- **No idle worker at a shard's end.** A stage that says what an item costs (`cost=`: its
  frames, its seconds) has its items handed out longest first; the first batches are dealt
  to every worker in turn, and batches shrink to single items toward the end: a stage ends
  with its last item, and no worker should still hold a long item or a full batch while
  the others idle.
- **Per-item resume.** Each finished item's result is one small object
  `progress/<stage>/<shard>/<fingerprint>/<index>.pkl`, written atomically through the
  object store. The key carries the stage fingerprint, so results computed from other code,
  params or inputs are never reused (a run removes them). core.stage.run_stage still writes
  the completion marker last and then drops the progress objects.
- **Ray only when asked.** `ray` is imported inside the functions that use it; loading the
  Dagster code location never imports it.

Calling it from a stage (any stage body; this is how scene_clips can fan out per video):

    from core.execution import ItemWork, run_items

    def probe_one(env, models, video):          # module level, so it pickles by reference
        ...                                     # env.params, env.store, env.shard
        return row

    run = run_items(ctx, ItemWork(probe_one), videos, label=lambda v: v["video_id"])
    rows = run.results                          # input order; run.processed / run.resumed
    # with a model: ItemWork(analyse_one, setup=load_models, uses_gpu=True); setup(env)
    # runs once per worker and its return value is `models`.

An item's result must be picklable and should be small (a table row, not frames); an item
that writes files (clips) puts them as objects under `env.objects_prefix` before returning,
so a recorded result never names an object that is not there, and a resumed run finds the
objects of the items it skips. curated_clips works so: one item per clip that passes, each
written into `temp_dir()` (the stage's scratch folder) and put at
`<objects_prefix>/clips/<clip_id>.mp4`; after `run_items` the stage copies the clips into
staged `clips/<shard>/` and `clips_cropped/<shard>/` prefixes and publishes them in one step,
and run_stage drops the objects with the progress once the marker is written.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import layout
from core.errors import StorageError
from core.progress import report
from core.storage import current_scratch_root

if TYPE_CHECKING:
    from core.params import ExecutionParams, Params
    from core.stage import StageContext
    from core.storage import ObjectStore


# ---------------------------------------------------------------- the work


@dataclass(frozen=True)
class ItemWork:
    """What a stage does to one item.

    Args:
        process: `process(env, models, item) -> result`; a module-level function (Ray
            pickles it by reference). `models` is what `setup` returned, else None.
        setup: `setup(env) -> models`: loads the models once per worker. Work with a setup
            runs in actor pools on `ray`; without one, as one task per item.
        uses_gpu: the models want a GPU: each actor asks for `execution.gpus_per_actor`.
    """

    process: Callable[[ItemEnv, Any, Any], Any]
    setup: Callable[[ItemEnv], Any] | None = None
    uses_gpu: bool = False


@dataclass(frozen=True)
class ItemEnv:
    """What every item of a stage's run shares: settings, the store, the shard.

    `objects_prefix`: a prefix of the run's progress where an item puts the objects its
    result names (a written clip) before it returns: keyed by the stage fingerprint like the
    results, so a resumed run finds them beside the results that name them, and dropped with
    the progress once the stage's marker is written. `scratch`: the stage run's local scratch
    folder; items write their working files there (on a Ray worker of the same machine too),
    where the next run of the stage finds and removes what a killed run left.
    """

    params: Params
    store: ObjectStore
    shard: str
    objects_prefix: str = ""
    scratch: str | None = None


@dataclass(frozen=True)
class ItemRun:
    """Results of a stage's items, in input order, and how they were obtained."""

    results: list[Any]
    processed: int  # items computed by this run
    resumed: int  # items whose result a killed run had recorded
    engine: str
    objects_prefix: str = ""  # where the items put the objects their results name (ItemEnv)
    # Seconds the work's models took to load (`ItemWork.setup`): on `ray` the slowest of the
    # workers' loads, each worker loading its own. None when the work has no setup or no item
    # ran. Every worker pays it before its first item, so it is the part of a stage run that
    # more workers do not shorten.
    models_load_s: float | None = None

    def metadata(self) -> dict[str, Any]:
        out = {"engine": self.engine, "items_processed": self.processed, "items_resumed": self.resumed}
        if self.models_load_s is not None:
            out["models_load_s"] = round(self.models_load_s, 3)
        return out


# ---------------------------------------------------------------- per-item progress


def progress_prefix(stage: str, shard: str) -> str:
    """Where a stage's finished items of one shard are recorded until its marker is written."""
    return layout.progress(stage, shard)


class ItemProgress:
    """Finished items of one stage run, one object per item, keyed by the stage fingerprint."""

    def __init__(self, store: ObjectStore, stage: str, shard: str, fingerprint: str) -> None:
        if not fingerprint:
            raise ValueError(f"{stage}[{shard}]: per-item progress needs the stage fingerprint")
        self.store = store
        self.root = progress_prefix(stage, shard)
        self.prefix = f"{self.root}/{fingerprint}"

    def _key(self, index: int) -> str:
        return f"{self.prefix}/{index:07d}.pkl"

    def load(self, n_items: int) -> dict[int, Any]:
        """Results recorded under this fingerprint; progress of other fingerprints (older
        code, params or inputs) is removed, it can never be reused."""
        done: dict[int, Any] = {}
        for key in self.store.list(self.root):
            if not key.startswith(self.prefix + "/"):
                self.store.delete_prefix(key)
                continue
            name = key.rsplit("/", 1)[1]
            if not name.endswith(".pkl") or not name[:-4].isdigit():
                continue
            index = int(name[:-4])
            if index < n_items:
                # Our own objects, written by this stage's code under its own fingerprint.
                done[index] = pickle.loads(self.store.get_bytes(key))
        return done

    def record(self, index: int, result: Any) -> None:
        self.store.put_bytes(self._key(index), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def model_device(params: Params) -> str:
    """Where a worker puts its pretrained models: "cuda" when params give model actors a
    GPU share (Ray then limits the actor to its GPU) and this process sees a GPU, else "cpu"."""
    if params.execution.gpus_per_actor <= 0:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- stores on workers


class _StoreFromParams:
    """An object store that a Ray worker opens for itself from params `storage` (a store
    holding credentials is never pickled; the workers read them from their environment)."""

    def __init__(self, params: Params) -> None:
        self._params = params
        self._store: ObjectStore | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_params": self._params, "_store": None}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._store is None:
            from core.storage import open_params_store

            self._store = open_params_store(self._params)
        return getattr(self._store, name)


def portable_store(store: ObjectStore, params: Params) -> ObjectStore:
    """`store` itself when it can travel to another process, else one that reopens there."""
    try:
        pickle.dumps(store)
        return store
    except (TypeError, AttributeError, pickle.PicklingError):
        return _StoreFromParams(params)  # type: ignore[return-value]


# ---------------------------------------------------------------- engines


ResultSink = Callable[[int, Any], None]


def _load_models(work: ItemWork, env: ItemEnv) -> tuple[Any, float | None]:
    """`work.setup(env)` and the seconds it took (None without a setup)."""
    if work.setup is None:
        return None, None
    start = time.perf_counter()
    models = work.setup(env)
    return models, time.perf_counter() - start


class LocalEngine:
    """Every item in this process, one after the other (the embedded default)."""

    name = "local"

    def map(self, work: ItemWork, env: ItemEnv, items: Sequence[Any], todo: list[int],
            sink: ResultSink) -> float | None:
        """Process `todo`, each result into `sink`; returns the seconds the models took to load."""
        if not todo:
            return None
        models, load_s = _load_models(work, env)
        for i in todo:
            sink(i, work.process(env, models, items[i]))
        return load_s


@contextlib.contextmanager
def _worker_scratch(env: ItemEnv) -> Iterator[None]:
    """On a worker that shares the driver's filesystem, `temp_dir` writes into the stage's
    scratch folder (which the next run clears); elsewhere into the worker's temp folder."""
    from core.storage import scratch_root

    if env.scratch is None or not Path(env.scratch).is_dir():
        yield
        return
    with scratch_root(Path(env.scratch)):
        yield


def _process_one(work: ItemWork, env: ItemEnv, index: int, item: Any) -> tuple[int, Any]:
    with _worker_scratch(env):
        return index, work.process(env, None, item)


class _ModelWorker:
    """A Ray actor: loads a work's models once, then processes batches of items.

    On a cluster an actor serves one stage's work (`work` given at construction). On a local
    Ray the actors are long-lived and serve every stage in turn (`work` per call): the models
    of the stage run named by `token` are loaded on its first batch and dropped by `release`."""

    def __init__(self, work: ItemWork | None = None, env: ItemEnv | None = None) -> None:
        self.work, self.env = work, env
        self.models, self.load_s = _load_models(work, env) if work is not None else (None, None)
        self.token: str | None = None

    def process_batch(self, batch: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        with _worker_scratch(self.env):
            return [(i, self.work.process(self.env, self.models, item)) for i, item in batch]

    def process_run_batch(self, token: str, work: ItemWork, env: ItemEnv,
                          batch: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        if token != self.token:
            self.release()
            self.models, self.load_s = _load_models(work, env)
            self.token = token
        self.work, self.env = work, env
        return self.process_batch(batch)

    def loaded_in(self) -> float | None:
        """Seconds this actor's models took to load (None: it loaded none)."""
        return self.load_s

    def release(self) -> float | None:
        """Drop the models of the last stage run (memory, GPU memory) and keep the process;
        returns the seconds they took to load (None: it loaded none)."""
        import gc

        held, load_s = self.models is not None, self.load_s
        self.work = self.env = self.models = self.token = self.load_s = None
        if not held:
            return load_s  # nothing to free: a full collection costs ~0.1 s in a worker that imported torch
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return load_s


class _LocalPool:
    """The long-lived actors of this process's own local Ray, shared by every stage.

    Starting an actor is a new Python process that imports the stage's modules (torch, cv2,
    ONNX Runtime: seconds each on a busy machine) before its first item; a stage of a few
    items paid that for every actor. On a local Ray (all of it this process's, `workers` CPUs)
    one pool of `workers` actors serves every stage in turn, so processes and imports are paid
    once per process. Work without models runs on the same actors, one item per call: it
    could not run as tasks beside actors that hold every CPU. A pool for another resource
    shape (a GPU share) replaces it."""

    def __init__(self) -> None:
        self.key: tuple[str, float, float, int] | None = None
        self.actors: list[Any] = []

    def get(self, ray, cfg: ExecutionParams, gpus: float) -> list[Any]:
        context = ray.get_runtime_context()  # a Ray restarted since is another node: new actors
        key = (f"{context.get_node_id()}/{context.get_job_id()}", cfg.cpus_per_worker, gpus, cfg.workers)
        if key != self.key:
            self.drop(ray)
            actor_cls = ray.remote(_ModelWorker).options(num_cpus=cfg.cpus_per_worker, num_gpus=gpus,
                                                         max_restarts=0)
            self.actors = [actor_cls.remote() for _ in range(cfg.workers)]
            self.key = key
        return self.actors

    def drop(self, ray) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):  # an actor that already died, or a Ray shut down
                ray.kill(actor)
        self.actors, self.key = [], None


_POOL = _LocalPool()


# The local Ray this process started: (workers, object store MiB), to restart on a change.
_LOCAL_RAY: tuple[int, int | None] | None = None


def connect_ray(cfg: ExecutionParams) -> None:
    """Start the local Ray params `execution` describes, or connect to its cluster (once
    per process; an existing connection, e.g. a dagster-ray resource's, is kept)."""
    global _LOCAL_RAY
    import ray

    if cfg.ray_address is not None:
        if not ray.is_initialized():
            ray.init(address=cfg.ray_address)
        return
    wanted = (cfg.workers, cfg.object_store_memory_mb)
    if ray.is_initialized():
        if _LOCAL_RAY in (None, wanted):
            return  # ours with these settings, or one a resource (dagster-ray) connected
        _POOL.drop(ray)
        ray.shutdown()
    # A local Ray on one machine: no token authentication, no usage reporting; its workers
    # import this project from where the driver does (not from another installed copy).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    root = str(Path(__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    ray.init(
        address="local", num_cpus=cfg.workers, include_dashboard=False, log_to_driver=True,
        object_store_memory=cfg.object_store_memory_mb * 2**20 if cfg.object_store_memory_mb else None,
    )
    _LOCAL_RAY = wanted
    # Actors are created asynchronously: the pool's processes boot and import while the
    # driver prepares the first stage (its fingerprint, the pool listing), not after.
    _POOL.get(ray, cfg, 0.0)


class RayEngine:
    """Items on Ray. On a cluster: work without models as one task per item, work with models
    in batches through an actor pool per stage run that is freed at its end. On a local Ray:
    every stage on one pool of long-lived actors (`_LocalPool`)."""

    name = "ray"

    def __init__(self, cfg: ExecutionParams) -> None:
        self.cfg = cfg
        connect_ray(cfg)

    def map(self, work: ItemWork, env: ItemEnv, items: Sequence[Any], todo: list[int],
            sink: ResultSink) -> float | None:
        """Process `todo`, each result into `sink`; returns the slowest worker's model load
        in seconds."""
        if not todo:
            return None
        import ray

        env_ref = ray.put(env)
        if self.cfg.ray_address is None:
            return self._pool(ray, work, env_ref, items, todo, sink)
        if work.setup is None:
            self._tasks(ray, work, env_ref, items, todo, sink)
            return None
        return self._actors(ray, work, env_ref, items, todo, sink)

    def _pool(self, ray, work, env_ref, items, todo, sink) -> float | None:
        """On the local pool's actors: work with models in batches (the models loaded once per
        actor for this run), work without one item per call."""
        batches = _batches(items, todo, self.cfg) if work.setup else [[(i, items[i])] for i in todo]
        actors = _POOL.get(ray, self.cfg, self.cfg.gpus_per_actor if work.uses_gpu else 0.0)
        token = os.urandom(8).hex()
        try:
            self._stream(ray, actors, lambda actor, batch: actor.process_run_batch.remote(token, work, env_ref, batch),
                         batches, sink)
        except BaseException:
            _POOL.drop(ray)  # a failed or interrupted run leaves no actor busy with its items
            raise
        return _slowest(ray.get([actor.release.remote() for actor in actors]))

    def _tasks(self, ray, work, env_ref, items, todo, sink) -> None:
        task = ray.remote(_process_one).options(num_cpus=self.cfg.cpus_per_worker, max_retries=0)
        limit = self.cfg.workers * self.cfg.max_in_flight
        queue = iter(todo)
        running: list[Any] = []
        while True:
            for i in queue:
                running.append(task.remote(work, env_ref, i, items[i]))
                if len(running) >= limit:
                    break
            if not running:
                return
            ready, running = ray.wait(running, num_returns=1)
            sink(*ray.get(ready[0]))

    def _actors(self, ray, work, env_ref, items, todo, sink) -> float | None:
        batches = _batches(items, todo, self.cfg)
        gpus = self.cfg.gpus_per_actor if work.uses_gpu else 0.0
        actor_cls = ray.remote(_ModelWorker).options(num_cpus=self.cfg.cpus_per_worker, num_gpus=gpus,
                                                     max_restarts=0)
        actors = [actor_cls.remote(work, env_ref) for _ in range(min(self.cfg.workers, len(batches)))]
        try:
            self._stream(ray, actors, lambda actor, batch: actor.process_batch.remote(batch), batches, sink)
            return _slowest(ray.get([actor.loaded_in.remote() for actor in actors]))
        finally:
            for actor in actors:  # free their CPUs/GPUs (and memory) for the next stage
                ray.kill(actor)

    def _stream(self, ray, actors, call, batches, sink) -> None:
        """Each actor gets up to `max_in_flight` batches queued up front, dealt in turn (a
        shard of few batches spreads over every actor instead of queueing on the first),
        then one more per result."""
        queue = iter(batches)
        owner: dict[Any, Any] = {}
        for _ in range(self.cfg.max_in_flight):
            for actor in actors:
                for batch in _take(queue, 1):
                    owner[call(actor, batch)] = actor
        while owner:
            ready, _ = ray.wait(list(owner), num_returns=1)
            actor = owner.pop(ready[0])
            for i, result in ray.get(ready[0]):
                sink(i, result)
            for batch in _take(queue, 1):
                owner[call(actor, batch)] = actor


def _slowest(load_s: list[float | None]) -> float | None:
    loaded = [s for s in load_s if s is not None]
    return max(loaded) if loaded else None


def _batches(items: Sequence[Any], todo: list[int], cfg: ExecutionParams) -> list[list[tuple[int, Any]]]:
    """`todo` cut, in its order, into batches for the model actors: at most
    `execution.batch_size` items each, and smaller as the shard's end nears (each batch at
    most a share of what is left over the queue slots of every worker), so that the last
    batches are single items and no worker is left with a long batch while the others idle."""
    slots = cfg.workers * (cfg.max_in_flight + 1)
    out, k = [], 0
    while k < len(todo):
        size = max(1, min(cfg.batch_size, (len(todo) - k) // slots))
        out.append([(i, items[i]) for i in todo[k:k + size]])
        k += size
    return out


def _take(it: Iterator[Any], n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) == n:
            break
    return out


def open_engine(cfg: ExecutionParams) -> LocalEngine | RayEngine:
    """The engine params `execution.engine` names."""
    if cfg.engine == "ray":
        return RayEngine(cfg)
    return LocalEngine()


# ---------------------------------------------------------------- a stage's items


def run_items(ctx: StageContext, work: ItemWork, items: Sequence[Any], *,
              label: Callable[[Any], str] | None = None,
              cost: Callable[[Any], float] | None = None) -> ItemRun:
    """Map `work` over `items` on the engine params `execution` names, resuming from the
    items a killed run of the same stage fingerprint recorded.

    Args:
        cost: an estimate of an item's work (its frames, its seconds of video). On `ray` the
            items are handed out longest first, so that the shard does not end with one
            worker on a long item while the others idle; results keep the order of `items`.

    Returns:
        ItemRun whose `results` are in the order of `items`.
    """
    task = f"{ctx.stage}[{ctx.shard}]"
    progress = ItemProgress(ctx.store, ctx.stage, ctx.shard, ctx.fingerprint) if ctx.fingerprint else None
    results: dict[int, Any] = progress.load(len(items)) if progress else {}
    resumed = len(results)
    todo = [i for i in range(len(items)) if i not in results]
    engine = open_engine(ctx.params.execution)
    if cost is not None and engine.name != "local":
        todo.sort(key=lambda i: -cost(items[i]))  # stable: equal costs stay in input order

    def sink(index: int, result: Any) -> None:
        if progress is not None:
            progress.record(index, result)
        results[index] = result
        report(task, len(results), len(items), label(items[index]) if label else str(index))

    store = ctx.store if engine.name == "local" else portable_store(ctx.store, ctx.params)
    # Without a fingerprint (a stage function called outside run_stage) nothing is resumed:
    # the objects go under a prefix of this run alone.
    objects = f"{progress.prefix}/objects" if progress else f"{progress_prefix(ctx.stage, ctx.shard)}/run-{os.urandom(6).hex()}"
    scratch = current_scratch_root()
    env = ItemEnv(ctx.params, store, ctx.shard, objects, str(scratch) if scratch is not None else None)
    load_s = engine.map(work, env, items, todo, sink)
    report(task, len(items), len(items), "done")
    missing = [i for i in range(len(items)) if i not in results]
    if missing:
        raise StorageError(f"{task}: no result for items {missing[:10]} (engine {engine.name})")
    return ItemRun([results[i] for i in range(len(items))], len(todo), resumed, engine.name, objects, load_s)


# ---------------------------------------------------------------- scratch files


@contextlib.contextmanager
def scratch_area(params: Params, stage: str, shard: str) -> Iterator[Path]:
    """The local folder a stage run keeps its working files in:
    `<execution.scratch_dir>/<stage>/<shard>/`. Whatever a killed run left there is
    removed first, and the folder is removed when the run ends."""
    import shutil

    folder = params.resolve(params.execution.scratch_dir) / stage / shard
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for parent in (folder.parent, folder.parent.parent):  # empty stage / scratch folders too
            with contextlib.suppress(OSError):
                parent.rmdir()
