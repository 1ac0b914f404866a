"""Training stages: the latent cache, one stage per curriculum phase and the ablation runs.

curriculum_schedule, training_samples, difficulty_scores -> latent_cache
latent_cache + curriculum_schedule -> curriculum_phase_1 -> ... -> curriculum_phase_<P>
latent_cache + difficulty_scores -> ablation_runs[<variant>]

P is the number of `curriculum.phase_ratios` (training_run_stages(P)); the paper has four.

All run under ``core.stage.run_stage`` (Dagster assets and ``reactid train-stage`` alike).
The latent cache and the phases are stages of the pseudo-shard AGGREGATE; an ablation run's
shard is its variant, and it reads the AGGREGATE outputs (``shards=(AGGREGATE,)``).

A phase trains in ``<store>/training/main/<phase>/<run name>/`` (checkpoints, exported model,
step log, the sample ids of every step): re-running after an interruption finds the same
folder and resumes from its latest checkpoint; a change of what decides the weights (settings,
input bytes, the model and trainer code, comments and docstrings aside: training.run_names)
gives a new name and so a fresh folder, never a resume of stale weights. Each exported model is
registered for evaluation (``models.registry``: ``phase_<k>``, ``ablation-<variant>``).

DeepSpeed writes checkpoints to a file system (``RunFolders``). On the local backend a run
folder is the store's own directory for the run's key. On a store without local folders
(S3) the phase trains in a scratch mirror laid out by key: the previous phase's checkpoint
(or this phase's own, to resume after a crash) is downloaded first, every new checkpoint is
uploaded as soon as it is written (its manifest after its files, the ``latest`` pointer
last), and the whole run folder
(exported model, step log, sample log, metrics) is uploaded when the phase ends. Stage
metadata records store keys (``checkpoint_dir``, ``model_dir``, ``resumed_from``), the same
on both backends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any


from core import layout
from core.errors import StageInputError
from core.params import section_dict
from core.stage import AGGREGATE, Output, StageContext, StageSpec, recorded_metadata
from core.tables import read_json, read_table
from training.run_names import TRAINER_CODE_ROOTS, run_name, stored_digest
from training.stages import SCHEDULE_KEY

LATENT_INDEX_KEY = layout.LATENT_INDEX
MAIN_RUN_PREFIX = layout.MAIN_RUNS
ABLATION_PREFIX = layout.ABLATION_RUNS
PHASE_PREFIX = "curriculum_phase_"
SAMPLE_LOG = "sample_ids.jsonl"


def phase_name(k: int) -> str:
    """The stage of curriculum phase k (1-based)."""
    return f"{PHASE_PREFIX}{k}"


def phase_number(stage: str) -> int | None:
    """k of the stage ``curriculum_phase_<k>``; None for any other stage."""
    suffix = stage.removeprefix(PHASE_PREFIX)
    return int(suffix) if stage.startswith(PHASE_PREFIX) and suffix.isdigit() and int(suffix) >= 1 else None


# The paper's four phases (params.yaml's curriculum.phase_ratios 4:2:1:1); what the graph runs
# follows the params' count: training_run_stages(len(curriculum.phase_ratios)).
PHASES = tuple(phase_name(k) for k in range(1, 5))


def _table(stage: str) -> str:
    return layout.table(stage, AGGREGATE)


def local_run_dir(store: Any, key: str) -> Path:
    """The store's own local folder of a prefix (stores that keep objects as files only).

    Raises:
        StageInputError: the store has no local folders (use ``RunFolders``).
    """
    path = store.filesystem_path(key)
    if path is None:
        raise StageInputError(f"store {store!r} has no local folder for {key!r}; train through RunFolders")
    return Path(path)


def _filesystem_root(store: Any) -> Path | None:
    """The folder a filesystem store keeps its keys under (None: the store has no local files)."""
    path = store.filesystem_path(layout.TRAINING)  # a one-segment key: its parent is the root
    return None if path is None else Path(path).parent


class RunFolders:
    """Local folders for store prefixes, laid out by key under ``root``.

    On a store that keeps its objects as files (``filesystem_path``: ``LocalObjectStore``)
    ``root`` is the store's directory and nothing is copied. Otherwise ``root`` is a scratch folder mirroring the store:
    ``download`` fetches a prefix, ``upload`` publishes what changed under one.
    """

    def __init__(self, store: Any, scratch: Path | None = None) -> None:
        self.store = store
        own_root = _filesystem_root(store)
        self.mirrored = own_root is None
        if own_root is None:
            if scratch is None:
                raise ValueError("a store without local folders needs a scratch folder")
            self.root = Path(scratch).resolve()
        else:
            self.root = own_root
        self._uploaded: dict[Path, tuple[int, int]] = {}

    def local(self, key: str) -> Path:
        return self.root / key

    def key(self, path: Any) -> str | None:
        """The store key of a local path under ``root`` (None stays None)."""
        if path is None:
            return None
        path = Path(path).resolve()
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def _fetch(self, key: str) -> None:
        import shutil

        target = self.local(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.store.local_path(key) as src:
            shutil.copyfile(src, target)
        stat = target.stat()
        self._uploaded[target] = (stat.st_size, stat.st_mtime_ns)

    def download(self, prefix: str) -> Path:
        """The local folder of ``prefix``, with every object under it (mirrored stores)."""
        if self.mirrored:
            for key in self.store.list(prefix):
                self._fetch(key)
        return self.local(prefix)

    def has_checkpoint(self, prefix: str) -> bool:
        """Whether the checkpoint folder ``prefix`` has a ``latest`` tag to resume from.

        Raises:
            CheckpointError: ``latest`` is missing while complete tags (with their manifest) are
                there, naming the folder and the tags.
        """
        from training.checkpoint import LATEST, MANIFEST, latest_tag, missing_latest_error

        if not self.mirrored:
            return latest_tag(self.local(prefix)) is not None
        if self.store.exists(f"{prefix}/{LATEST}"):
            return True
        # Tag folders are uploaded with their manifest last, so a manifest in the store means
        # the whole tag is there.
        tags = sorted({rest.split("/")[0] for key in self.store.list(prefix)
                       if (rest := key.removeprefix(f"{prefix}/")).count("/") == 1
                       and rest.endswith(f"/{MANIFEST}")})
        if tags:
            raise missing_latest_error(self.store.uri(prefix), tags)
        return False

    def download_checkpoint(self, prefix: str) -> Path:
        """The local checkpoint folder of ``prefix`` with its ``latest`` tag (mirrored stores).

        Raises:
            CheckpointError: naming the key, when the store has no complete checkpoint there.
        """
        from training.checkpoint import LATEST, CheckpointError

        if self.mirrored:
            latest = f"{prefix}/{LATEST}"
            if not self.has_checkpoint(prefix):
                raise CheckpointError(
                    f"no checkpoint to load: {self.store.uri(latest)} is missing (no complete save of {prefix!r})")
            tag = self.store.get_bytes(latest).decode().strip()
            keys = self.store.list(f"{prefix}/{tag}")
            if not keys:
                raise CheckpointError(f"checkpoint {self.store.uri(f'{prefix}/{tag}')} does not exist")
            for key in keys:
                self._fetch(key)
            self._fetch(latest)
        return self.local(prefix)

    def upload(self, prefix: str, last: tuple[str, ...] = ()) -> None:
        """Upload the files under ``prefix`` that changed since they were last synced
        (mirrored stores); files named in ``last`` go after all others, in that order."""
        if not self.mirrored:
            return
        base = self.local(prefix)
        found = [base] if base.is_file() else base.rglob("*")
        files = sorted((p for p in found if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: (last.index(p.name) + 1 if p.name in last else 0, p.as_posix()))
        for path in files:
            stat = path.stat()
            state = (stat.st_size, stat.st_mtime_ns)
            if self._uploaded.get(path) != state:
                self.store.put_file(path.relative_to(self.root).as_posix(), path)
                self._uploaded[path] = state


@contextlib.contextmanager
def run_folders(store: Any) -> Iterator[RunFolders]:
    """``RunFolders`` for a stage: a scratch mirror (removed afterwards) when the store has
    no local folders."""
    if _filesystem_root(store) is not None:
        yield RunFolders(store)
        return
    from core.storage import temp_dir

    with temp_dir("reactid-train-") as scratch:
        yield RunFolders(store, Path(scratch))


def check_training_shards(store: Any) -> list[str]:
    """The shards training_samples was built from, all still passing their quality gates.

    Raises:
        StageInputError: training_samples has not run, or a shard's gates failed or were not
            run on its current annotations (a phase never trains on them).
    """
    from curation.gate_status import passed_shards

    marker = layout.marker("training_samples", AGGREGATE)
    if not store.exists(marker):
        raise StageInputError("training_samples has not run: no validated training data")
    shards = list(read_json(store, marker).get("shards") or [])
    passed, left_out = passed_shards(store, shards)
    if not passed or left_out:
        raise StageInputError(
            f"training data comes from shards {shards}, and these have not passed the annotation quality "
            f"gates: {left_out}; re-run the gates (and the curriculum) before training"
        )
    return passed


# ---------------------------------------------------------------- latent_cache


def latent_cache(ctx: StageContext) -> dict[str, Any]:
    """Encode every scored sample's clip, references, prompt and sub-actions once."""
    import pyarrow.compute as pc

    from training.distributed import training_device
    from training.inputs import ClipGeometry, open_sample_inputs
    from training.latents import DEFAULT_PREFIX, EmbeddingCache, load_cache_encoders, write_index
    from training.phase import set_cpu_threads

    check_training_shards(ctx.store)
    run = ctx.params.training.effective()
    scores = read_table(ctx.store, _table("difficulty_scores"), needed_by="latent_cache")
    scored = set(scores.filter(pc.equal(scores["status"], "ok"))["sample_id"].to_pylist())
    rows = [r for r in read_table(ctx.store, _table("training_samples"), needed_by="latent_cache").to_pylist()
            if r["status"] == "ok" and r["sample_id"] in scored]
    annotations: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted({r["annotation_key"] for r in rows}):
        for row in read_table(ctx.store, key, needed_by="latent_cache").to_pylist():
            annotations[(key, row["entity_id"])] = row
    set_cpu_threads(run.cpu_threads)
    # The VAE dominates the cache's cost; it runs on the GPU the phases train on when there is one.
    device = training_device()
    encoders = load_cache_encoders(run.preset, seed=run.seed, device=device)
    cache = EmbeddingCache(ctx.store, encoders)
    geometry = ClipGeometry(encoders.height, encoders.width, encoders.num_frames)
    with open_sample_inputs(ctx.store, rows, annotations, geometry) as inputs:
        index = cache.build_index(inputs)
    write_index(ctx.store, LATENT_INDEX_KEY, index)
    return {
        "index_key": LATENT_INDEX_KEY,
        "cache_prefix": layout.embeddings(encoders.fingerprint, DEFAULT_PREFIX),
        "preset": run.preset,
        "encoder_device": device,
        "encoder_fingerprint": encoders.fingerprint,
        "samples": len(index.samples),
        "with_timeline": sum(bool(s.actions) for s in index.samples.values()),
        "with_masks": sum(s.subject_masks is not None for s in index.samples.values()),
        "cache_hits": cache.hits,
        "cache_misses": cache.misses,
    }


# ---------------------------------------------------------------- training runs


class SampleIdLog:
    """The sampler's ids of each step, appended to ``path`` as the trainer asks for them."""

    def __init__(self, ids_of_step: Callable[[int], Sequence[str]], path: Path) -> None:
        self.ids_of_step, self.path = ids_of_step, path

    def __call__(self, step: int) -> list[str]:
        from training.distributed import is_main_process

        ids = list(self.ids_of_step(step))
        if is_main_process():
            with open(self.path, "a") as fh:
                fh.write(json.dumps({"step": step, "ids": ids}) + "\n")
        return ids


def logged_sample_ids(path: Path, start: int, stop: int) -> dict[int, list[str]]:
    """Sample ids of 0-based steps [start, stop) from a ``SampleIdLog`` (the last entry of a step wins)."""
    out: dict[int, list[str]] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        entry = json.loads(line)
        if start <= entry["step"] < stop:
            out[entry["step"]] = entry["ids"]
    return dict(sorted(out.items()))


def _train(ctx: StageContext, folders: RunFolders, name: str, run_key: str, steps: int,
           ids_of_step: Callable[[int], Sequence[str]], variant: str,
           start_checkpoint_key: str | None) -> tuple[Any, Path]:
    """``run_phase`` on the cached batches; returns (PhaseResult, local run folder).

    On a mirrored store the run's own checkpoint (if any, to resume) and the previous
    phase's checkpoint are downloaded first; checkpoints are uploaded as they are written
    and the whole run folder when the phase ends.
    """
    from models.variants import variant_overrides
    from training.batches import CachedBatchSource
    from training.checkpoint import LATEST, MANIFEST, latest_tag
    from training.latents import read_index
    from training.phase import CHECKPOINTS, PhaseSpec, run_phase

    index = read_index(ctx.store, LATENT_INDEX_KEY)
    checkpoints_key = f"{run_key}/{CHECKPOINTS}"
    logs = ("steps.jsonl", SAMPLE_LOG)
    if folders.mirrored and folders.has_checkpoint(checkpoints_key):
        folders.download_checkpoint(checkpoints_key)  # resume this phase after an interruption
        for log in logs:
            if ctx.store.exists(f"{run_key}/{log}"):
                folders.download(f"{run_key}/{log}")
    output_dir = folders.local(run_key)
    output_dir.mkdir(parents=True, exist_ok=True)
    start_checkpoint = None if start_checkpoint_key is None else folders.download_checkpoint(start_checkpoint_key)
    source = CachedBatchSource(ctx.store, index.samples,
                               use_timeline=variant_overrides(variant).get("use_timeline_modules", True))
    spec = PhaseSpec(name, steps, output_dir, start_checkpoint=start_checkpoint, variant=variant)
    synced = [latest_tag(output_dir / CHECKPOINTS)]

    def publish_checkpoint(_record: Any) -> None:
        # logs first, then the new tag's files, its ``latest`` pointer last: a crash at any
        # point leaves the store with a complete checkpoint and logs covering its steps
        tag = latest_tag(output_dir / CHECKPOINTS)
        if tag == synced[0]:
            return
        for log in logs:
            if (output_dir / log).is_file():
                folders.upload(f"{run_key}/{log}")
        folders.upload(f"{checkpoints_key}/{tag}", last=(MANIFEST,))
        folders.upload(f"{checkpoints_key}/{LATEST}")
        synced[0] = tag

    result = run_phase(spec, ctx.params.training, SampleIdLog(ids_of_step, output_dir / SAMPLE_LOG), source,
                       null_prompt_embeds=index.null_prompt_embeds(ctx.store),
                       on_step=publish_checkpoint if folders.mirrored else None)
    folders.upload(run_key, last=(MANIFEST, LATEST))
    return result, output_dir


def _loss_curve(ctx: StageContext, output_dir: Path, key: str, title: str) -> list[float]:
    from training.plots import loss_curve_png

    logged = [json.loads(line) for line in (output_dir / "steps.jsonl").read_text().splitlines() if line]
    steps, losses = [r["step"] for r in logged], [r["loss"] for r in logged]
    ctx.store.put_bytes(key, loss_curve_png(steps, losses, title))
    return losses


def _register(ctx: StageContext, name: str, kind: str, result: Any, output_dir: Path, description: str,
              phase: int | None, run_key: str) -> str:
    from models.registry import store_model

    record = store_model(ctx.store, name, result.model_dir, kind=kind, description=description,
                         preset=ctx.params.training.preset, variant=result.metrics["variant"],
                         encoder_seed=ctx.params.training.seed, phase=phase,
                         training_log=output_dir / "steps.jsonl", training_run=run_key)
    return record.name


def _record_draws(ctx: StageContext, run_key: str, used: dict[int, list[str]], sample_ids: Any, d_overall: Any,
                  is_inter: Any, sampler: dict[str, Any]) -> dict[str, Any]:
    """The run's draws (compact Parquet) and its provenance (params and code versions) under
    ``run_key``, for ``reactid lineage``."""
    from training.draws import write_draws, write_provenance

    rows = {r["sample_id"]: r for r in read_table(ctx.store, _table("training_samples"),
                                                   needed_by=ctx.stage).to_pylist()}
    spec = training_run_stages(phase_number(ctx.stage) or 0)[ctx.stage]  # a phase's own, whatever the count
    meta = write_draws(ctx.store, run_key, used, sample_ids, d_overall, is_inter, rows, sampler)
    meta["provenance_key"] = write_provenance(ctx.store, run_key, spec, ctx.params, ctx.shard, sampler)
    return meta


def _used_samples(used: dict[int, list[str]], d: dict[str, float], inter: dict[str, bool]) -> dict[str, Any]:
    ids = [i for step in used.values() for i in step]
    return {
        "samples_seen": len(ids),
        "distinct_samples": len(set(ids)),
        "inter_clip_ratio_achieved": round(sum(inter[i] for i in ids) / len(ids), 4) if ids else None,
        "max_d_overall_used": round(max(d[i] for i in ids), 6) if ids else None,
    }


def curriculum_phase(ctx: StageContext) -> dict[str, Any]:
    """Phase k of the curriculum: its slice of the schedule's steps, from phase k-1's checkpoint."""
    from training.sampler import open_sampler

    check_training_shards(ctx.store)
    k = phase_number(ctx.stage)
    sampler = open_sampler(ctx.store, SCHEDULE_KEY)
    if k is None or k > len(sampler.schedule.phases):
        raise StageInputError(f"{ctx.stage} is not a phase of the curriculum schedule, which has "
                              f"{len(sampler.schedule.phases)} (curriculum.phase_ratios)")
    phase = sampler.schedule.phases[k - 1]
    start_checkpoint = None  # store key of the previous phase's checkpoint folder
    if k > 1:
        before = phase_name(k - 1)
        previous = recorded_metadata(ctx.store, before, AGGREGATE) or {}
        if previous.get("global_step") != phase.start_step:
            raise StageInputError(
                f"{ctx.stage} starts at step {phase.start_step} of the schedule, but {before} ended at "
                f"step {previous.get('global_step')}: re-run {before}"
            )
        start_checkpoint = previous["checkpoint_dir"]
    variant = ctx.params.training.variant
    name = run_name(ctx.params.training, {
        "schedule": stored_digest(ctx.store, SCHEDULE_KEY),
        "difficulty": stored_digest(ctx.store, sampler.schedule.difficulty_table),
        "latents": stored_digest(ctx.store, LATENT_INDEX_KEY),
    }, {"phase": k, "start_step": phase.start_step, "steps": phase.steps, "variant": variant,
        "start_checkpoint": start_checkpoint})
    run_key = layout.main_run(ctx.stage, name)
    with run_folders(ctx.store) as folders:
        return _phase_run(ctx, folders, k, sampler, phase, run_key, variant, start_checkpoint)


def _phase_run(ctx: StageContext, folders: RunFolders, k: int, sampler: Any, phase: Any, run_key: str,
               variant: str, start_checkpoint: str | None) -> dict[str, Any]:
    result, output_dir = _train(ctx, folders, ctx.stage, run_key, phase.steps, sampler.global_sample_ids, variant,
                                start_checkpoint)
    d = dict(zip(sampler.sample_ids.tolist(), sampler.d_overall.tolist()))
    inter = dict(zip(sampler.sample_ids.tolist(), sampler.is_inter.tolist()))
    used = logged_sample_ids(output_dir / SAMPLE_LOG, phase.start_step, phase.end_step)
    if len(used) != phase.steps:
        raise StageInputError(f"{ctx.stage}: the sample log has {len(used)} of the phase's {phase.steps} steps")
    draws = _record_draws(ctx, run_key, used, sampler.sample_ids, sampler.d_overall, sampler.is_inter,
                          {"stage": ctx.stage, "seed": sampler.schedule.seed, "schedule_key": SCHEDULE_KEY,
                           "start_step": phase.start_step, "end_step": phase.end_step, "tau": phase.tau,
                           "start_checkpoint": start_checkpoint, "variant": variant})
    plot_key = layout.training_loss_plot(ctx.stage)
    losses = _loss_curve(ctx, output_dir, plot_key, f"{ctx.stage} (tau {phase.tau:.3f})")
    model = _register(ctx, f"phase_{k}", "phase", result, output_dir,
                      f"curriculum phase {k} of {len(sampler.schedule.phases)} "
                      f"(steps {phase.start_step}-{phase.end_step})", k, run_key)
    m = result.metrics
    return {
        "phase": k,
        "steps": phase.steps,
        "start_step": phase.start_step,
        "global_step": result.global_step,
        "steps_run": m["steps_run"],
        "resumed_from": folders.key(result.resumed_from),
        "tau": phase.tau,
        "inter_clip_ratio": phase.inter_clip_ratio,
        **_used_samples(used, d, inter),
        "loss_first": losses[0] if losses else None,
        "loss_final": losses[-1] if losses else None,
        "samples_per_second": m["samples_per_second"],
        "checkpoint_dir": folders.key(result.checkpoint_dir),
        "model_dir": folders.key(result.model_dir),
        "run_dir": run_key,
        "loss_curve_key": plot_key,
        "registered_model": model,
        "variant": m["variant"],
        **draws,
    }


def ablation_steps(params: Any) -> int:
    """Steps of one ablation run: the demo's with ``training.use_demo``."""
    cfg = params.ablations
    return cfg.demo_total_steps if params.training.use_demo else cfg.total_steps


def ablation_run(ctx: StageContext) -> dict[str, Any]:
    """One ablation variant (``ctx.shard``): a short full training, its model exported and registered."""
    import pyarrow.compute as pc

    from training.ablations import TABLE_OF_VARIANT, DifficultyCues, ablation_plan, check_variant
    from training.difficulty import DifficultyWeights
    from training.sampler import CurriculumSampler

    variant = check_variant(ctx.shard)
    check_training_shards(ctx.store)
    cfg, params = ctx.params.curriculum, ctx.params
    run = params.training.effective()
    table = read_table(ctx.store, _table("difficulty_scores"), needed_by="ablation_runs")
    table = table.filter(pc.equal(table["status"], "ok"))
    cues = DifficultyCues(table["sample_id"].to_numpy(zero_copy_only=False), table["d_sub"].to_numpy(),
                          table["d_app"].to_numpy(), table["d_sam"].to_numpy())
    weights = DifficultyWeights(params.difficulty.lambda_sub, params.difficulty.lambda_app,
                                params.difficulty.lambda_sam)
    plan = ablation_plan(
        variant, cues, weights, total_steps=ablation_steps(params), phase_ratios=cfg.phase_ratios,
        inter_clip_ratios=cfg.demo_inter_clip_ratios if params.training.use_demo else cfg.inter_clip_ratios,
        global_batch_size=run.global_batch, seed=cfg.seed, main_variant=params.training.variant,
        difficulty_table=_table("difficulty_scores"), samples_table=_table("training_samples"),
    )
    sampler = CurriculumSampler(plan.schedule, plan.d_sampler, plan.is_inter, sample_ids=plan.sample_ids)
    name = run_name(params.training, {
        "difficulty": stored_digest(ctx.store, _table("difficulty_scores")),
        "samples": stored_digest(ctx.store, _table("training_samples")),
        "latents": stored_digest(ctx.store, LATENT_INDEX_KEY),
    }, {"variant": variant, "steps": ablation_steps(params), "main_variant": params.training.variant,
        "use_demo": params.training.use_demo,  # picks demo_inter_clip_ratios over inter_clip_ratios
        "curriculum": section_dict(params, "curriculum"), "difficulty": section_dict(params, "difficulty")},
        code_roots=(*TRAINER_CODE_ROOTS, "training.ablations", "training.difficulty"))
    run_key = layout.ablation_run(variant, name)
    steps = plan.schedule.total_steps
    with run_folders(ctx.store) as folders:
        return _ablation_run(ctx, folders, variant, plan, sampler, run_key, steps)


def _ablation_run(ctx: StageContext, folders: RunFolders, variant: str, plan: Any, sampler: Any, run_key: str,
                  steps: int) -> dict[str, Any]:
    from training.ablations import TABLE_OF_VARIANT

    result, output_dir = _train(ctx, folders, f"ablation_{variant}", run_key, steps, sampler.global_sample_ids,
                                plan.model_variant, None)
    used = logged_sample_ids(output_dir / SAMPLE_LOG, 0, steps)
    draws = _record_draws(ctx, run_key, used, plan.sample_ids, plan.d_sampler, plan.is_inter,
                          {"stage": "ablation_runs", "variant": variant, "seed": plan.schedule.seed,
                           "start_step": 0, "end_step": steps, "model_variant": plan.model_variant})
    d = dict(zip(plan.sample_ids.tolist(), plan.d_sampler.tolist()))
    inter = dict(zip(plan.sample_ids.tolist(), plan.is_inter.tolist()))
    plot_key = layout.training_loss_plot(f"ablation_{variant}")
    losses = _loss_curve(ctx, output_dir, plot_key, f"ablation {variant}")
    model = _register(ctx, f"ablation-{variant}", "ablation", result, output_dir,
                      f"ablation {variant} ({TABLE_OF_VARIANT[variant]}), {steps} steps", None, run_key)
    return {
        "variant": variant,
        "table": TABLE_OF_VARIANT[variant],
        "model_variant": plan.model_variant,
        "steps": steps,
        "phases": [{"phase": p.phase, "steps": p.steps, "tau": round(p.tau, 6), "inter_clip_ratio": p.inter_clip_ratio,
                    "eligible": p.eligible_intra + p.eligible_inter} for p in plan.schedule.phases],
        **_used_samples(used, d, inter),
        "loss_first": losses[0] if losses else None,
        "loss_final": losses[-1] if losses else None,
        "samples_per_second": result.metrics["samples_per_second"],
        "checkpoint_dir": folders.key(result.checkpoint_dir),
        "model_dir": folders.key(result.model_dir),
        "run_dir": run_key,
        "loss_curve_key": plot_key,
        "registered_model": model,
        **draws,
    }


# ---------------------------------------------------------------- registry

def phase_spec(k: int) -> StageSpec:
    """Curriculum phase k (1-based): trains the schedule's steps of phase k from phase k-1's checkpoint."""
    name = phase_name(k)
    return StageSpec(
        name, curriculum_phase, ("training",),
        ("latent_cache", "curriculum_schedule", *((phase_name(k - 1),) if k > 1 else ())),
        f"Curriculum phase {k}: DeepSpeed training at its tau and inter-clip ratio, "
        f"{'from scratch' if k == 1 else f'from {phase_name(k - 1)}'}; exported and registered as phase_{k}.",
        partitioning="aggregate",
        # training folders persist so that an interrupted phase resumes from its latest checkpoint
        outputs=(Output(layout.main_run_folder(name), persist=True), Output(layout.model(f"phase_{k}"), persist=True),
                 Output(layout.training_loss_plot(name), cache=False)))


def training_run_stages(n_phases: int) -> dict[str, StageSpec]:
    """The latent cache, curriculum phases 1..n_phases and the ablation runs."""
    return {
        "latent_cache": StageSpec(
            "latent_cache", latent_cache, ("training.preset", "training.seed"),
            ("training_samples", "difficulty_scores"),
            "VAE latents and text embeddings of every scored sample, encoded once (content-keyed cache).",
            partitioning="aggregate", outputs=(Output(layout.CACHE, persist=True),)),
        **{phase_name(k): phase_spec(k) for k in range(1, n_phases + 1)},
        "ablation_runs": StageSpec(
            "ablation_runs", ablation_run,
            ("training", "curriculum", "difficulty", "ablations.total_steps", "ablations.demo_total_steps"),
            ("latent_cache", "difficulty_scores"),
            "One ablation variant: a short full training; exported and registered as ablation-<variant>.",
            aggregate=True, partitioning="variant",
            outputs=(Output(layout.ablation_run_folder("{variant}"), persist=True),
                     Output(layout.model("ablation-{variant}"), persist=True),
                     Output(layout.training_loss_plot("ablation_{variant}"), cache=False))),
    }


TRAINING_RUN_STAGES: dict[str, StageSpec] = training_run_stages(len(PHASES))
