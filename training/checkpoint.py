"""Resumable DeepSpeed checkpoints and exported models.

A checkpoint is a DeepSpeed tag folder ``<dir>/<tag>/`` (weights, optimizer and LR
scheduler states, DeepSpeed's step counters) plus:

- ``reactid_state`` in DeepSpeed's client state: the global step and the caller's state
  (phase name, sampler position);
- ``rng_rank<r>.json`` per rank: the Python, NumPy and torch RNG states;
- ``manifest.json``: size and SHA-256 of every file in the tag folder, written last.

``<dir>/latest`` names the newest tag and is replaced only after the manifest exists, so
a crash during a save leaves ``latest`` on the previous complete checkpoint. A folder whose
``latest`` is gone while it still holds complete tags (someone deleted it, a partial copy)
is an error rather than "no checkpoint": treating it as empty would restart the run from
random weights over its saved progress. Loading
checks the manifest first: a missing, truncated or altered file is reported by name
instead of surfacing as an unpickling error, or as a model that silently keeps its
random initial weights (DeepSpeed returns ``(None, None)`` when ``latest`` is missing).

Checkpoint folders must be visible to every rank (a shared filesystem on multi-node jobs).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ReactIDError

LATEST = "latest"
MANIFEST = "manifest.json"
STATE_KEY = "reactid_state"


class CheckpointError(ReactIDError):
    """A checkpoint or exported model is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What ``load_checkpoint`` restored.

    Attributes:
        path: the tag folder.
        tag: its name.
        global_step: optimizer steps taken when it was saved.
        client_state: the caller's state saved with it.
    """

    path: Path
    tag: str
    global_step: int
    client_state: dict[str, Any]


def step_tag(step: int) -> str:
    return f"step_{step:08d}"


def rng_states() -> dict[str, Any]:
    """This process's Python, NumPy and torch (CPU and CUDA) RNG states as JSON data."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        states["cuda"] = [state.tolist() for state in torch.cuda.get_rng_state_all()]
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore states produced by ``rng_states``."""
    import numpy as np
    import torch

    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in states["cuda"]])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_manifest(tag_dir: Path) -> dict[str, dict[str, Any]]:
    """Hash every file under ``tag_dir`` into ``manifest.json``; returns the entries."""
    entries = {
        path.relative_to(tag_dir).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        }
        for path in sorted(tag_dir.rglob("*"))
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(".")
    }
    _write_text_atomic(tag_dir / MANIFEST, json.dumps({"files": entries}, indent=1, sort_keys=True))
    return entries


def verify_manifest(tag_dir: Path) -> None:
    """Check every file the manifest lists.

    Raises:
        CheckpointError: naming the manifest or the first missing, resized or altered file.
    """
    manifest = tag_dir / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(f"checkpoint {tag_dir} is incomplete: {manifest} is missing")
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{manifest} is corrupt: {exc}") from None
    for name, entry in entries.items():
        path = tag_dir / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} is missing")
        if path.stat().st_size != entry["bytes"]:
            raise CheckpointError(
                f"checkpoint file {path} is corrupt: {path.stat().st_size} bytes, "
                f"expected {entry['bytes']}"
            )
        if _sha256(path) != entry["sha256"]:
            raise CheckpointError(f"checkpoint file {path} is corrupt: SHA-256 does not match")


def save_checkpoint(
    engine: Any, directory: str | os.PathLike[str], *, client_state: dict[str, Any] | None = None,
    tag: str | None = None,
) -> Path:
    """Save a resumable checkpoint (every rank must call this).

    Args:
        engine: the ``DeepSpeedEngine``.
        directory: checkpoint folder; the tag folder is created inside.
        client_state: JSON-like caller state (phase, sampler position) restored by
            ``load_checkpoint``.
        tag: tag folder name (default ``step_<global step>``).

    Returns:
        The tag folder.
    """
    from training.distributed import barrier

    directory = Path(directory)
    tag = tag or step_tag(engine.global_steps)
    state = {"global_step": int(engine.global_steps), "client": dict(client_state or {})}
    engine.save_checkpoint(str(directory), tag=tag, client_state={STATE_KEY: state},
                           save_latest=False)
    tag_dir = directory / tag
    rng_file = tag_dir / f"rng_rank{engine.global_rank:05d}.json"
    _write_text_atomic(rng_file, json.dumps(rng_states()))
    barrier()
    if engine.global_rank == 0:
        write_manifest(tag_dir)
        _write_text_atomic(directory / LATEST, tag)
    barrier()
    return tag_dir


def complete_tags(directory: str | os.PathLike[str]) -> list[str]:
    """Tag folders under ``directory`` that hold a manifest (finished saves), sorted by name.

    A tag folder without one is a save that was interrupted; it is not listed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / MANIFEST).is_file())


def missing_latest_error(folder: str, tags: list[str]) -> CheckpointError:
    """The error for a checkpoint folder that has complete tags but no ``latest``."""
    return CheckpointError(
        f"checkpoint folder {folder} holds complete checkpoints {tags} but no {LATEST!r} file "
        f"naming one; write the tag to resume from into {folder}/{LATEST} (the newest is "
        f"{tags[-1]!r}), or move the folder away to start over"
    )


def latest_tag(directory: str | os.PathLike[str]) -> str | None:
    """The tag ``latest`` names, or None when the folder holds no complete checkpoint.

    Raises:
        CheckpointError: ``latest`` is missing while complete tags exist (names them).
    """
    path = Path(directory) / LATEST
    if path.is_file():
        return path.read_text().strip()
    tags = complete_tags(directory)
    if tags:
        raise missing_latest_error(str(directory), tags)
    return None


def load_checkpoint(
    engine: Any,
    directory: str | os.PathLike[str],
    tag: str | None = None,
    *,
    load_optimizer: bool = True,
    restore_rng: bool = True,
) -> LoadedCheckpoint:
    """Restore weights, optimizer, LR schedule, step counters and RNG states.

    Args:
        engine: a ``DeepSpeedEngine`` built like the one that saved (same model config).
        directory: checkpoint folder.
        tag: tag to load (default: the one ``latest`` names).
        load_optimizer: also restore optimizer and LR-scheduler states.
        restore_rng: also restore this rank's RNG states.

    Raises:
        CheckpointError: the folder, ``latest``, the tag, the manifest or a listed file is
            missing or corrupt, or DeepSpeed could not load it; the message names the path.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist")
    if tag is None:
        tag = latest_tag(directory)
        if tag is None:
            raise CheckpointError(
                f"no checkpoint to load: {directory / LATEST} is missing (no complete save)"
            )
    tag_dir = directory / tag
    if not tag_dir.is_dir():
        raise CheckpointError(f"checkpoint {tag_dir} does not exist")
    verify_manifest(tag_dir)
    try:
        load_path, client = engine.load_checkpoint(
            str(directory), tag=tag, load_optimizer_states=load_optimizer,
            load_lr_scheduler_states=load_optimizer,
        )
    except Exception as exc:  # noqa: BLE001 - re-raised with the checkpoint's name
        raise CheckpointError(f"DeepSpeed could not load checkpoint {tag_dir}: {exc}") from exc
    if load_path is None or not client or STATE_KEY not in client:
        raise CheckpointError(
            f"checkpoint {tag_dir} did not load (no model states or client state)"
        )
    state = client[STATE_KEY]
    if restore_rng:
        rng_file = tag_dir / f"rng_rank{engine.global_rank:05d}.json"
        if not rng_file.is_file():
            raise CheckpointError(
                f"checkpoint file {rng_file} is missing (saved with fewer ranks?); "
                "load with restore_rng=False to continue without the RNG states"
            )
        set_rng_states(json.loads(rng_file.read_text()))
    return LoadedCheckpoint(tag_dir, tag, int(state["global_step"]), dict(state["client"]))


def export_model(
    engine: Any, directory: str | os.PathLike[str], *, metadata: dict | None = None
) -> Path:
    """Save the trained transformer with ``save_pretrained`` (safetensors) for inference.

    Under ZeRO-3 the partitioned weights are gathered first. The folder is written
    beside the target and renamed into place, replacing an older export. Every rank must
    call this.

    Args:
        metadata: written as ``training.json`` beside the weights (step, phase, params).

    Returns:
        The export folder (loads with ``ReactIDTransformer3DModel.from_pretrained``).
    """
    import contextlib

    import deepspeed

    from training.distributed import barrier

    directory = Path(directory)
    module = engine.module
    gather: Any = contextlib.nullcontext()
    if engine.zero_optimization_stage() == 3:
        gather = deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
    with gather:
        if engine.global_rank == 0:
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = directory.with_name(f".{directory.name}.staging-{uuid.uuid4().hex[:8]}")
            try:
                module.save_pretrained(str(staging), safe_serialization=True)
                info = {"global_step": int(engine.global_steps), **(metadata or {})}
                (staging / "training.json").write_text(json.dumps(info, indent=1, sort_keys=True))
                previous = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
                if directory.exists():
                    os.replace(directory, previous)
                os.replace(staging, directory)
                shutil.rmtree(previous, ignore_errors=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    barrier()
    return directory


def load_exported_model(directory: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``ReactIDTransformer3DModel.from_pretrained`` on an export, checking its files first.

    Raises:
        CheckpointError: the folder, its config or its weights are missing or unreadable.
    """
    from models.transformer_reactid import ReactIDTransformer3DModel

    directory = Path(directory)
    config = directory / "config.json"
    if not config.is_file():
        raise CheckpointError(f"exported model file {config} is missing")
    weights = directory / "diffusion_pytorch_model.safetensors"
    if not weights.is_file() and not weights.with_name(weights.name + ".index.json").is_file():
        raise CheckpointError(f"exported model file {weights} (or its sharded index) is missing")
    try:
        return ReactIDTransformer3DModel.from_pretrained(str(directory), **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised with the export's name
        raise CheckpointError(f"exported model {directory} could not be loaded: {exc}") from exc
