"""Sample ids to training batches.

A *batch source* is any callable ``ids -> batch``: it turns the sample ids of one
micro-batch into the dict ``models.losses.reactid_training_loss`` reads. Two exist:

- ``CachedBatchSource``: the real one; reads the latents and text embeddings that
  ``training.latents.EmbeddingCache`` wrote to the object store;
- ``SyntheticBatchSource``: random tensors with the shapes of a preset's batch, one fixed
  draw per sample id, for smoke runs, benchmarks and tests of the training machinery.
  It is not training data.

Per-sample tensors have no batch dimension; ``collate_samples`` pads reference slots
(``K``) and sub-action slots (``M``) to the longest sample of the micro-batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

BatchSource = Callable[[Sequence[str]], dict[str, Any]]


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack per-sample tensors into a batch, padding references and sub-actions.

    Args:
        samples: dicts with ``latents`` ``(C, F, H, W)``, ``prompt_embeds`` ``(L, D)`` and
            optionally ``reference_latents`` ``(K_i, C, h, w)``, ``subject_masks``
            ``(K_i, F_m, H_m, W_m)``, ``timeline_embeds`` ``(M_i, L_a, D)``,
            ``timeline_token_mask`` ``(M_i, L_a)``, ``action_spans`` ``(M_i, 2)``,
            ``action_subjects`` ``(M_i,)`` (a sample without them gets ``M_i = 0``).

    Returns:
        A batch with the ``models.losses`` keys (``reference_mask`` ``(B, K)`` marks real
        reference slots; padded action slots have an all-False token mask).

    Raises:
        ValueError: samples disagree on which optional inputs they carry.
    """
    import torch

    if not samples:
        raise ValueError("cannot collate an empty micro-batch")
    batch = {
        "latents": torch.stack([s["latents"] for s in samples]),
        "prompt_embeds": torch.stack([s["prompt_embeds"] for s in samples]),
    }
    for group in (("reference_latents",), ("subject_masks",)):
        present = [group[0] in s for s in samples]
        if any(present) and not all(present):
            raise ValueError(f"{sum(present)} of {len(samples)} samples carry {group[0]!r}")
    if "reference_latents" in samples[0]:
        refs = [s["reference_latents"] for s in samples]
        slots = max(r.shape[0] for r in refs)
        batch["reference_latents"] = torch.stack([_pad(r, slots) for r in refs])
        batch["reference_mask"] = torch.stack(
            [torch.arange(slots) < r.shape[0] for r in refs]
        )
        if "subject_masks" in samples[0]:
            batch["subject_masks"] = torch.stack([_pad(s["subject_masks"], slots) for s in samples])
    elif "subject_masks" in samples[0]:
        raise ValueError("subject_masks need reference_latents")
    timed = [s for s in samples if "timeline_embeds" in s]
    if timed:
        # A sample without sub-actions gets no action slot (all of its slots are padding).
        samples = [s if "timeline_embeds" in s else {**s, **_no_actions(timed[0])} for s in samples]
        slots = max(s["timeline_embeds"].shape[0] for s in samples)
        batch["timeline_embeds"] = torch.stack([_pad(s["timeline_embeds"], slots) for s in samples])
        batch["timeline_token_mask"] = torch.stack(
            [_pad(s["timeline_token_mask"], slots) for s in samples]
        )
        batch["action_spans"] = torch.stack([_pad(s["action_spans"], slots) for s in samples])
        batch["action_subjects"] = torch.stack(
            [_pad(s["action_subjects"], slots, value=-1) for s in samples]
        )
    return batch


def _no_actions(like: Mapping[str, Any]) -> dict[str, Any]:
    """Zero-length timeline tensors shaped like another sample's."""
    return {key: like[key][:0] for key in
            ("timeline_embeds", "timeline_token_mask", "action_spans", "action_subjects")}


def _pad(tensor: Any, slots: int, value: float = 0) -> Any:
    """Pad dimension 0 of ``tensor`` to ``slots`` with ``value``."""
    import torch

    missing = slots - tensor.shape[0]
    if missing == 0:
        return tensor
    filler = torch.full((missing, *tensor.shape[1:]), value, dtype=tensor.dtype)
    return torch.cat([tensor, filler])


@dataclass(frozen=True)
class CachedSample:
    """Object-store keys and timeline geometry of one training sample.

    Attributes:
        sample_id: the curriculum's id.
        latents: key of the clip's normalised latents ``(C, F, H, W)``.
        prompt: key of the prompt embeddings ``(L, D)``.
        references: keys of one reference image's latents ``(C, h, w)`` per subject.
        actions: keys of each sub-action's embeddings ``(L_a, D)``, timeline order.
        action_spans: ``(start, end)`` of each action in latent frames.
        action_subjects: reference index of each action, -1 unbound.
        subject_masks: key of ground-truth masks ``(K, F_m, H_m, W_m)``, or None.
        timeline_prompt: key of the timeline folded into one prompt (``as_prompt``), which
            a model without timeline modules reads instead of ``prompt``; None without
            sub-actions.
    """

    sample_id: str
    latents: str
    prompt: str
    references: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    action_spans: tuple[tuple[float, float], ...] = ()
    action_subjects: tuple[int, ...] = ()
    subject_masks: str | None = None
    timeline_prompt: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CachedSample:
        return cls(
            sample_id=str(data["sample_id"]),
            latents=str(data["latents"]),
            prompt=str(data["prompt"]),
            references=tuple(data.get("references", ())),
            actions=tuple(data.get("actions", ())),
            action_spans=tuple((float(a), float(b)) for a, b in data.get("action_spans", ())),
            action_subjects=tuple(int(i) for i in data.get("action_subjects", ())),
            subject_masks=data.get("subject_masks"),
            timeline_prompt=data.get("timeline_prompt"),
        )


class CachedBatchSource:
    """Micro-batches from the embedding cache in an object store.

    Args:
        store: the ``ObjectStore`` the cache wrote to.
        index: sample id to its ``CachedSample``.
        use_timeline: give the sub-actions as timeline inputs (a model with timeline
            modules); False gives the timeline folded into the prompt instead (the
            "base" variant, as its pipeline prompts it).
    """

    def __init__(
        self, store: Any, index: Mapping[str, CachedSample], *, use_timeline: bool = True
    ) -> None:
        self.store = store
        self.index = dict(index)
        self.use_timeline = use_timeline

    def sample(self, sample_id: str) -> dict[str, Any]:
        import torch

        from training.tensor_objects import load_tensors

        record = self.index.get(sample_id)
        if record is None:
            raise KeyError(f"sample {sample_id!r} is not in the embedding cache index")
        prompt = record.prompt
        if not self.use_timeline and record.timeline_prompt is not None:
            prompt = record.timeline_prompt
        out = {
            "latents": load_tensors(self.store, record.latents)["latents"],
            "prompt_embeds": load_tensors(self.store, prompt)["embeds"],
        }
        if record.references:
            out["reference_latents"] = torch.stack(
                [load_tensors(self.store, key)["latents"] for key in record.references]
            )
        if record.subject_masks is not None:
            out["subject_masks"] = load_tensors(self.store, record.subject_masks)["masks"]
        if record.actions and self.use_timeline:
            texts = [load_tensors(self.store, key) for key in record.actions]
            out["timeline_embeds"] = torch.stack([t["embeds"] for t in texts])
            out["timeline_token_mask"] = torch.stack([t["mask"] for t in texts])
            out["action_spans"] = torch.tensor(record.action_spans, dtype=torch.float32)
            out["action_subjects"] = torch.tensor(record.action_subjects, dtype=torch.long)
        return out

    def __call__(self, ids: Sequence[str]) -> dict[str, Any]:
        return collate_samples([self.sample(i) for i in ids])


class SyntheticBatchSource:
    """Random batches with a fixed draw per sample id (smoke runs and tests, not data).

    Args:
        latent_shape: ``(C, F, H, W)`` of one sample's latents.
        text_dim: prompt/action embedding width (the transformer's ``text_dim``).
        prompt_tokens, action_tokens: embedding lengths.
        num_references: reference slots per sample (0: none).
        num_actions: sub-actions per sample (0: no timeline).
        seed: mixed into every sample's draw.
    """

    def __init__(
        self,
        latent_shape: tuple[int, int, int, int],
        text_dim: int,
        *,
        prompt_tokens: int = 8,
        action_tokens: int = 4,
        num_references: int = 2,
        num_actions: int = 2,
        seed: int = 0,
    ) -> None:
        self.latent_shape = tuple(latent_shape)
        self.text_dim = text_dim
        self.prompt_tokens, self.action_tokens = prompt_tokens, action_tokens
        self.num_references, self.num_actions = num_references, num_actions
        self.seed = seed

    @classmethod
    def for_preset(cls, preset_name: str, **kwargs: Any) -> SyntheticBatchSource:
        """Shapes of a preset's default clip (its VAE factors and geometry)."""
        from models.presets import get_preset

        preset = get_preset(preset_name)
        if preset.vae is None:
            raise ValueError(f"preset {preset_name!r} has no VAE config to derive latent shapes")
        temporal, spatial = preset.vae["scale_factor_temporal"], preset.vae["scale_factor_spatial"]
        shape = (
            preset.transformer["in_channels"],
            (preset.num_frames - 1) // temporal + 1,
            preset.height // spatial,
            preset.width // spatial,
        )
        return cls(shape, preset.transformer["text_dim"], **kwargs)

    def sample(self, sample_id: str) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(sample_id.encode()))
        channels, frames, height, width = self.latent_shape
        out = {
            "latents": torch.randn(self.latent_shape, generator=g),
            "prompt_embeds": torch.randn(self.prompt_tokens, self.text_dim, generator=g),
        }
        if self.num_references:
            k = self.num_references
            out["reference_latents"] = torch.randn(k, channels, height, width, generator=g)
            masks = torch.zeros(k, frames, height, width)
            for index in range(k):
                masks[index, :, :, index * width // k : (index + 1) * width // k] = 1.0
            out["subject_masks"] = masks
        if self.num_actions:
            m = self.num_actions
            bounds = torch.linspace(0, frames, m + 1)
            out["timeline_embeds"] = torch.randn(m, self.action_tokens, self.text_dim, generator=g)
            out["timeline_token_mask"] = torch.ones(m, self.action_tokens, dtype=torch.bool)
            out["action_spans"] = torch.stack([bounds[:-1], bounds[1:]], dim=1)
            subjects = torch.arange(m) % max(1, self.num_references)
            out["action_subjects"] = subjects if self.num_references else torch.full((m,), -1)
        return out

    def __call__(self, ids: Sequence[str]) -> dict[str, Any]:
        return collate_samples([self.sample(i) for i in ids])
