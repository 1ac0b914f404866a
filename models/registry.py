"""The model registry: named exported models in the object store, ready to generate with.

A registered model is a folder ``models/<name>/``::

    model.json      the ModelRecord below (written last: a model is registered once it exists)
    export/         a copy of the exported directory
    steps.jsonl     the training log (one JSON record per optimizer step), when given

Two export layouts are accepted and recognised from the directory itself:

* ``pipeline`` — ``ReactIDPipeline.save_pretrained`` (``model_index.json`` + components);
* ``transformer`` — ``ReactIDTransformer3DModel.save_pretrained`` (``config.json`` +
  weights, as ``training.checkpoint.export_model`` writes for every phase, with a
  ``training.json`` naming phase, variant, preset and step). The rest of the pipeline
  (tokenizer, text encoder, VAE, scheduler) comes from the preset, built with
  ``encoder_seed`` — the seed the training run's encoders were built with.

Names match ``core.params.MODEL_NAME_PATTERN`` (``phase_4``, ``ablation-tarope_T2``); a
model of kind ``untrained`` (random weights) must be named ``untrained…`` and no other kind
may be, so an untrained model can never be shown as a trained one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from core.layout import MODELS, model_export, model_record, model_training_log
from core.errors import ReactIDError
from core.params import MODEL_NAME_PATTERN
from core.storage import ObjectStore, temp_dir

Kind = Literal["untrained", "phase", "ablation", "external"]
KINDS: tuple[str, ...] = ("untrained", "phase", "ablation", "external")
PREFIX = MODELS


class ModelRegistryError(ReactIDError, ValueError):
    """A model cannot be registered or found; the message says which and why."""


@dataclass(frozen=True)
class ModelRecord:
    """What the registry knows about a model.

    Attributes:
        name: registry key and Dagster partition key.
        kind: ``untrained`` (random weights), ``phase`` (a curriculum phase), ``ablation``
            (an ablation variant's run) or ``external`` (any other export).
        layout: ``pipeline`` or ``transformer`` (see the module docstring).
        preset, variant: the model configuration (``models.presets``, ``models.variants``).
        encoder_seed: seed of the preset's encoders, for a ``transformer`` export.
        phase: curriculum phase number, for a phase.
        global_step: optimizer steps the weights have seen (0 for untrained).
        description: one line shown in reports.
        export_sha256: digest of every file of the export (names and bytes).
        has_training_log: whether ``steps.jsonl`` was registered.
        training_run: store key of the run folder that trained it (checkpoints, draws,
            provenance), when a training stage registered it.
    """

    name: str
    kind: str
    layout: str
    preset: str
    variant: str
    encoder_seed: int
    phase: int | None
    global_step: int | None
    description: str
    export_sha256: str
    has_training_log: bool
    training_run: str | None = None

    @property
    def trained(self) -> bool:
        return self.kind != "untrained"


def record_key(name: str) -> str:
    return model_record(check_model_name(name))


def export_prefix(name: str) -> str:
    return model_export(check_model_name(name))


def training_log_key(name: str) -> str:
    return model_training_log(check_model_name(name))


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise ModelRegistryError(
            f"model name {name!r}: expected 1-64 letters, digits, '_', '.', '-' starting with a letter or digit"
        )
    return name


def export_layout(export_dir: Path) -> str:
    """``pipeline`` or ``transformer``, from the files of an exported directory."""
    if (export_dir / "model_index.json").is_file():
        return "pipeline"
    config = export_dir / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("_class_name") == "ReactIDTransformer3DModel":
        return "transformer"
    raise ModelRegistryError(
        f"{export_dir} is neither a saved ReactIDPipeline (model_index.json) nor a saved "
        f"ReactIDTransformer3DModel (config.json with _class_name ReactIDTransformer3DModel)"
    )


def directory_sha256(directory: Path) -> str:
    """Digest over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def store_model(
    store: ObjectStore,
    name: str,
    export_dir: str | Path,
    *,
    kind: str,
    description: str,
    preset: str | None = None,
    variant: str | None = None,
    encoder_seed: int = 0,
    phase: int | None = None,
    training_log: str | Path | None = None,
    training_run: str | None = None,
) -> ModelRecord:
    """Copy an exported model into the registry and write its record (last).

    Args:
        store: the object store.
        name: the model's name (see the module docstring for the rules).
        export_dir: a saved pipeline or transformer directory.
        kind: one of :data:`KINDS`.
        description: one line for reports ("curriculum phase 4 of run X").
        preset, variant: default to the export's ``training.json``, else ``tiny``/``reactid``.
        encoder_seed: seed of the preset's encoders (transformer exports).
        phase: curriculum phase number; defaults to ``training.json``'s ``phase`` number.
        training_log: the run's ``steps.jsonl``, for the leaderboard's loss curves.
        training_run: the store key of the run folder that trained it (lineage).

    Returns:
        The stored record.

    Raises:
        ModelRegistryError: bad name, kind, naming rule, or export directory.
    """
    check_model_name(name)
    if kind not in KINDS:
        raise ModelRegistryError(f"model {name!r}: kind {kind!r} is not one of {KINDS}")
    if (kind == "untrained") != name.startswith("untrained"):
        raise ModelRegistryError(
            f"model {name!r} of kind {kind!r}: untrained (random-weight) models, and only they, "
            f"have names starting with 'untrained'"
        )
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ModelRegistryError(f"model {name!r}: export directory {export_dir} does not exist")
    layout = export_layout(export_dir)
    info = _training_info(export_dir)
    if training_log is not None and not Path(training_log).is_file():
        raise ModelRegistryError(f"model {name!r}: training log {training_log} does not exist")
    record = ModelRecord(
        name=name,
        kind=kind,
        layout=layout,
        preset=preset or info.get("preset") or "tiny",
        variant=variant or info.get("variant") or "reactid",
        encoder_seed=int(encoder_seed),
        phase=phase if phase is not None else _phase_number(info.get("phase")),
        global_step=0 if kind == "untrained" else info.get("global_step"),
        description=description,
        export_sha256=directory_sha256(export_dir),
        has_training_log=training_log is not None,
        training_run=training_run,
    )
    store.delete_prefix(record_key(name))
    with store.staged_prefix(export_prefix(name)) as staging:
        for path in sorted(p for p in export_dir.rglob("*") if p.is_file()):
            store.put_file(f"{staging}/{path.relative_to(export_dir).as_posix()}", path)
    if training_log is not None:
        store.put_file(training_log_key(name), Path(training_log))
    else:
        store.delete_prefix(training_log_key(name))
    store.put_bytes(record_key(name), (json.dumps(asdict(record), indent=2) + "\n").encode())
    return record


def read_record(store: ObjectStore, name: str) -> ModelRecord:
    """The record of a registered model.

    Raises:
        ModelRegistryError: the model is not registered.
    """
    key = record_key(name)
    if not store.exists(key):
        raise ModelRegistryError(
            f"model {name!r} is not registered (no {key}); register its exported directory first"
        )
    return ModelRecord(**json.loads(store.get_bytes(key)))


def registered_models(store: ObjectStore) -> list[str]:
    """Names of every model with a record in the store."""
    return sorted(
        key.split("/")[1] for key in store.list(PREFIX) if key.count("/") == 2 and key.endswith("/model.json")
    )


def read_training_log(store: ObjectStore, name: str) -> list[dict[str, Any]]:
    """The registered ``steps.jsonl`` records of a model ([] when none was registered)."""
    key = training_log_key(name)
    if not store.exists(key):
        return []
    return [json.loads(line) for line in store.get_bytes(key).decode().splitlines() if line.strip()]


def load_pipeline(store: ObjectStore, name: str, device: str = "cpu") -> Any:
    """A ``ReactIDPipeline`` for a registered model, on ``device``.

    The export is copied to a scratch directory first, so any store backend works.
    """
    record = read_record(store, name)
    with temp_dir("reactid-model-") as scratch:
        local = Path(scratch) / "export"
        for key in store.list(export_prefix(name)):
            target = local / key[len(export_prefix(name)) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.local_path(key) as src:
                shutil.copyfile(src, target)
        if directory_sha256(local) != record.export_sha256:
            raise ModelRegistryError(f"model {name!r}: stored export does not match its record's digest")
        pipeline = _load_pipeline(local, record)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def _load_pipeline(export_dir: Path, record: ModelRecord) -> Any:
    # diffusers resolves the saved transformer class only from an already imported module
    import models.transformer_reactid  # noqa: F401
    from models.pipeline_reactid import ReactIDPipeline

    if record.layout == "pipeline":
        return ReactIDPipeline.from_pretrained(str(export_dir))
    from models.presets import assemble_pipeline, build_pipeline, get_preset, load_wan_components
    from models.transformer_reactid import ReactIDTransformer3DModel

    preset = get_preset(record.preset)
    transformer = ReactIDTransformer3DModel.from_pretrained(str(export_dir))
    if preset.pretrained is None:
        base = build_pipeline(record.preset, record.variant, seed=record.encoder_seed)
        components = {k: getattr(base, k) for k in ("tokenizer", "text_encoder", "vae", "scheduler")}
    else:
        components = load_wan_components(preset.pretrained)
    return assemble_pipeline(record.preset, transformer, components)


def _training_info(export_dir: Path) -> dict[str, Any]:
    path = export_dir / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _phase_number(phase: Any) -> int | None:
    """``curriculum_phase_3`` -> 3; anything else -> None."""
    if isinstance(phase, int):
        return phase
    match = re.search(r"(\d+)$", phase or "")
    return int(match.group(1)) if match else None
