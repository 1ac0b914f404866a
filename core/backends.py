"""Named backends of a capability: one registry per capability, one error for an unknown name.

params.yaml names a backend per capability (`captions.backend: pretrained`,
`scene_clips.shot_backend: transnetv2`); the module that owns the capability keeps a
`BackendRegistry` mapping each name to what builds or loads it, and stages look the name up
there instead of comparing strings. A registry lives beside the stage that uses it (CAPTIONERS
in curation/annotation_stages.py, SUBJECT_TRACKERS in curation/subject_stages.py, ...), so a
stage's code version covers its own backends' code and no other's. The registry is the one list of a capability's names:
the params section models allow exactly its keys (tests/core/test_backend_registries.py
compares them), so adding a backend is its code, one registry entry and its name in the
params model.

Registries hold plain functions and records, so looking a name up imports nothing heavy;
the functions import their models when called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from core.errors import ParamsError
from core.execution import ItemWork

T = TypeVar("T")


class BackendRegistry(Generic[T]):
    """The backends of one capability by name.

    Args:
        capability: what the backends do, for error messages ("caption backend").
        params_keys: the params keys that name a backend of this registry (one capability
            can be chosen in several sections, e.g. the frame embedder).
        entries: backend name -> entry (a builder function or a `Backend`).
    """

    def __init__(self, capability: str, params_keys: tuple[str, ...], entries: Mapping[str, T]) -> None:
        if not params_keys:
            raise ValueError(f"{capability}: a registry needs the params keys that name its backends")
        self.capability = capability
        self.params_keys = params_keys
        self._entries: dict[str, T] = dict(entries)

    def names(self) -> tuple[str, ...]:
        """The registered backend names, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, name: str, params_key: str | None = None) -> T:
        """The entry registered as `name`.

        Args:
            params_key: the key the name was read from, for the error; the registry's
                first key when omitted.

        Raises:
            ParamsError: no backend is registered as `name`; names the key and the known names.
        """
        if name not in self._entries:
            key = params_key or self.params_keys[0]
            raise ParamsError(f"{key}: unknown {self.capability} {name!r}; known: {', '.join(self._entries)}")
        return self._entries[name]

    def register(self, name: str, entry: T) -> None:
        """Add a backend; a name is registered once.

        Raises:
            ValueError: `name` is taken.
        """
        if name in self._entries:
            raise ValueError(f"{self.capability} {name!r} is already registered")
        self._entries[name] = entry

    def unregister(self, name: str) -> T:
        """Remove a backend and return its entry (tests register and remove their own)."""
        return self._entries.pop(name)


@dataclass(frozen=True)
class Backend:
    """A backend of per-item stage work (core.execution.ItemWork).

    Attributes:
        load: `load(env) -> models`, once per worker; None when the backend runs without
            loaded models (the item function then gets None). A module-level function: Ray
            pickles it by reference.
        uses_gpu: the loaded models want a GPU.
        build: an optional per-use constructor of the backend's working object (its
            arguments are the capability's to define).
    """

    load: Callable[[Any], Any] | None = None
    uses_gpu: bool = False
    build: Callable[..., Any] | None = None


def chosen(registry: BackendRegistry[Backend], params: Any) -> Backend:
    """The entry of `registry` that params choose (at the registry's first params key).

    Raises:
        ParamsError: params name no backend registered in `registry`.
    """
    section, field = registry.params_keys[0].split(".")
    return registry.get(getattr(getattr(params, section), field))


def load_chosen(registry: BackendRegistry[Backend], env: Any) -> Any:
    """The models of the backend params choose, loaded for one worker (`env`: an ItemEnv),
    or None when it loads none."""
    backend = chosen(registry, env.params)
    return backend.load(env) if backend.load is not None else None


def item_work(process: Callable[[Any, Any, Any], Any], registry: BackendRegistry[Backend], params: Any,
              setup: Callable[[Any], Any] | None = None) -> ItemWork:
    """The ItemWork of a stage whose models come from the backend params choose.

    Args:
        process: the item function; its `models` argument is what the backend loaded, or
            None for a backend that runs without models.
        setup: a stage setup that wraps the backend's loader (loads more than the backend's
            models, then calls `load_chosen`); by default the backend's own loader.

    Raises:
        ParamsError: params name no backend registered in `registry`.
    """
    backend = chosen(registry, params)
    return ItemWork(process, setup=setup or backend.load, uses_gpu=backend.uses_gpu)
