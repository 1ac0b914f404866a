"""Typed, validated view of params.yaml: the machinery, and the sections core owns.

Every section is a frozen pydantic model that forbids unknown keys, so a typo or a
wrong value stops the run before any work starts with a message naming the key
(`scene_clips.similarity_threshold: expected a number <= 1, got 1.5`).

Each domain package owns its sections in its own `params.py` (curation, training,
evaluation, versioning) as a subclass of `Params` that adds them, with the rules that span
them; orchestration/params.py assembles the project's full model from those and loads
params.yaml. Core keeps what every params set shares: the storage and execution sections,
relative-path resolution, and the reading and error reporting (`read_params`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from core.errors import ParamsError

DEFAULT_PARAMS_PATH = Path("params.yaml")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Keys that would hold S3 secrets: refused in params (credentials come from the environment).
_SECRET_KEYS = {"access_key", "secret_key", "session_token", "aws_access_key_id", "aws_secret_access_key",
                "password", "credentials"}
STORAGE_BACKEND_ENV = "REACTID_STORAGE_BACKEND"


class S3StorageParams(Section):
    """Non-secret settings of an S3-compatible store; credentials come from the environment."""

    endpoint: str = "s3.amazonaws.com"  # host[:port], no scheme
    bucket: str | None = None
    prefix: str = ""  # key prefix inside the bucket
    secure: bool = True  # HTTPS
    region: str | None = None
    part_size_mb: Annotated[int, Field(ge=5, le=5120)] = 64  # multipart part size (S3: 5 MiB .. 5 GiB)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            secret = sorted(k for k in raw if str(k).lower() in _SECRET_KEYS)
            if secret:
                # Raised outside pydantic's error path so the value is never echoed.
                raise ParamsError(
                    f"storage.s3.{secret[0]}: credentials are never read from params; export "
                    "REACTID_S3_ACCESS_KEY and REACTID_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY) instead, and remove the key from the params file"
                )
        return raw

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v or "://" in v or "/" in v:
            raise ValueError("expected host[:port] without scheme or path (set secure: false for http)")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", v):
            raise ValueError("expected an S3 bucket name: 3-63 lowercase letters, digits, '.', '-'")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v and any(p in ("", ".", "..") for p in v.split("/")):
            raise ValueError("expected a relative key prefix without empty, '.' or '..' segments")
        return v


class StorageParams(Section):
    backend: Literal["local", "s3"]  # REACTID_STORAGE_BACKEND overrides (core.params.read_params)
    root: str  # the local backend's directory
    s3: S3StorageParams | None = None

    @model_validator(mode="after")
    def _s3_settings(self) -> StorageParams:
        if self.backend == "s3" and (self.s3 is None or not self.s3.bucket):
            raise ValueError("storage.s3.bucket: required when storage.backend is s3 (set storage.s3.bucket "
                             "and storage.s3.endpoint)")
        return self


def check_shard_name(name: str) -> str:
    """A shard name becomes a path segment and a Dagster partition key."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise ParamsError(
            f"shard name {name!r}: expected 1-64 characters of letters, digits, '_', '.', '-'"
            " starting with a letter or digit"
        )
    return name


# A registered model's name: a path segment and a Dagster partition key (models/registry.py).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]


# ---------------------------------------------------------------- execution engine


class ExecutionParams(Section):
    """Where a stage's per-item work runs (core/execution.py); never what it produces."""

    engine: Literal["local", "ray"] = "local"
    workers: Annotated[int, Field(ge=1, le=100_000)] = 2
    ray_address: str | None = None  # None: a local Ray with `workers` CPUs; else "auto" or "ray://host:port"
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 4
    max_in_flight: Annotated[int, Field(ge=1, le=64)] = 2
    cpus_per_worker: Annotated[float, Field(gt=0.0, le=256.0)] = 1.0
    gpus_per_actor: Annotated[float, Field(ge=0.0, le=8.0)] = 0.0
    object_store_memory_mb: Annotated[int, Field(ge=75)] | None = None  # Ray's minimum is 75 MiB
    scratch_dir: str = ".scratch"

    @field_validator("ray_address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        import re

        if v is not None and v != "auto" and not re.fullmatch(r"(ray://)?[A-Za-z0-9.-]+:\d{1,5}", v):
            raise ValueError('expected null, "auto", "host:port" or "ray://host:port"')
        return v

    @field_validator("gpus_per_actor")
    @classmethod
    def _gpu_share(cls, v: float) -> float:
        # Ray places a fractional GPU request only if it is below 1; above 1 it must be whole.
        if v > 1 and v != int(v):
            raise ValueError("expected a share below 1 (0.25: four actors per GPU) or a whole number of GPUs")
        return v

    @model_validator(mode="after")
    def _local_only_settings(self) -> ExecutionParams:
        if self.ray_address is not None and self.object_store_memory_mb is not None:
            raise ValueError("object_store_memory_mb sizes a local Ray; a cluster sets its own (ray_address is set)")
        return self


class Params(Section):
    """The sections every params set has, and relative-path resolution.

    A domain's `params.py` subclasses this with the sections it owns; the stage runner and
    the store type against this base, and a stage gets the project's full model
    (orchestration.params.ProjectParams), which subclasses every domain's.
    """

    storage: StorageParams
    execution: ExecutionParams = ExecutionParams()  # local in-process unless params.yaml says ray

    # Relative paths in params resolve against the params file's folder, wherever the
    # process runs from (Dagster run workers, dvc, the CLI).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self._base_dir / p


P = TypeVar("P", bound=Params)


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "<top level>"
    kind = error["type"]
    if kind == "missing":
        return f"{key}: missing (required)"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (typo?)"
    got = error.get("input")
    msg = error["msg"]
    if kind == "literal_error":
        msg = msg.replace("Input should be", "expected one of")
    elif msg.startswith("Input should be"):
        msg = "expected a value " + msg[len("Input should be ") :]
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{key}: {msg}, got {got!r}"


def validate_params(model: type[P], raw: Any, source: str = "params.yaml", *,
                    only_model_sections: bool = False) -> P:
    """Validate a parsed params mapping against `model`.

    Args:
        model: the full project model, or a domain's (for an entry point that reads only it).
        raw: the parsed YAML.
        source: named in the error.
        only_model_sections: skip top-level sections `model` does not have (they belong to
            other domains) instead of refusing them as unknown keys.

    Raises:
        ParamsError: listing every invalid key with what was expected.
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    if only_model_sections:
        raw = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ParamsError(f"{source} is invalid:\n  " + "\n  ".join(lines)) from None


def read_params(model: type[P], path: str | Path = DEFAULT_PARAMS_PATH, *, only_model_sections: bool = False) -> P:
    """Read a params file and validate it against `model` (see `validate_params`).

    The environment variable REACTID_STORAGE_BACKEND, when set, replaces `storage.backend`.

    Raises:
        ParamsError: the file is missing, not YAML, or has invalid settings.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} not found (run from the project root?)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    backend = os.environ.get(STORAGE_BACKEND_ENV)
    if backend and isinstance(raw, dict) and isinstance(raw.get("storage"), dict):
        raw["storage"] = {**raw["storage"], "backend": backend}
    params = validate_params(model, raw, source=str(path), only_model_sections=only_model_sections)
    params._base_dir = path.resolve().parent
    return params


def section_dict(params: Params, section: str) -> Any:
    """A section, or a dotted key inside one (``evaluation.generation``), as plain data
    (for fingerprints and reports)."""
    value: Any = params
    for part in section.split("."):
        value = getattr(value, part)
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)
