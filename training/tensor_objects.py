"""Tensors as objects of the store: one safetensors file per object.

The embedding cache (training.latents) writes them and the batch source
(training.batches) reads them; both import this module rather than each other.
"""

from __future__ import annotations

from typing import Any


def load_tensors(store: Any, key: str) -> dict[str, Any]:
    """The tensors of one cached safetensors object."""
    from safetensors.torch import load

    return load(store.get_bytes(key))


def put_tensors(store: Any, key: str, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    """Store `tensors` as one safetensors object under `key`, with string `metadata`."""
    from safetensors.torch import save

    store.put_bytes(key, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))
