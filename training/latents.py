"""Latent and text-embedding cache: encode every clip, reference image and text once.

Training reads only the transformer's inputs; the VAE and the text encoder (for the real
preset, several GB) run once per distinct input. Each encoded tensor is a safetensors
object in the store under a content key:

    <prefix>/<encoder fingerprint>/latents/<sha256 of the clip file>.safetensors
    <prefix>/<encoder fingerprint>/references/<sha256 of the image file>.safetensors
    <prefix>/<encoder fingerprint>/text/<sha256 of length + text>.safetensors

The fingerprint covers the preset, the encoders' configs (and the seed of randomly
initialised ones) and the clip geometry, so a change of any of them misses the cache
instead of reading stale tensors.

A clip becomes ``num_frames`` frames spread evenly over its whole duration (the
timeline's seconds map onto the latent frames the same way, ``models.timeline_conditioning``),
centre-cropped to the preset's aspect ratio and resized to its height and width.
Latents are the posterior mode, normalised ``(z - mean) / std`` as Wan's pipeline does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import layout
from core.timeline import Timeline
from training.batches import CachedSample
from training.tensor_objects import load_tensors, put_tensors

DEFAULT_PREFIX = layout.EMBEDDINGS


@dataclass(frozen=True)
class CacheEncoders:
    """The preset's VAE and text encoder, and what identifies their outputs."""

    preset_name: str
    tokenizer: Any
    text_encoder: Any
    vae: Any
    height: int
    width: int
    num_frames: int
    max_sequence_length: int
    max_action_tokens: int
    fingerprint: str

    @property
    def num_latent_frames(self) -> int:
        return (self.num_frames - 1) // self.vae.config.scale_factor_temporal + 1


def load_cache_encoders(
    preset_name: str, *, seed: int = 0, pretrained: str | None = None, device: str = "cpu"
) -> CacheEncoders:
    """Tokenizer, text encoder and VAE of a preset (the same ones its pipeline uses).

    Args:
        seed: initialisation seed of a preset built from config (``build_pipeline``'s).
        pretrained: a Wan diffusers-layout source replacing the preset's.
        device: where the text encoder and the VAE run (``training.distributed.training_device``
            for the training device); what they encode is stored on the CPU either way.
    """
    from models.presets import build_pipeline, get_preset, load_wan_components

    preset = get_preset(preset_name)
    source = pretrained or preset.pretrained
    if source is not None:
        parts = load_wan_components(source)
        tokenizer, text_encoder, vae = parts["tokenizer"], parts["text_encoder"], parts["vae"]
        origin: dict[str, Any] = {"source": source}
    else:
        pipeline = build_pipeline(preset_name, seed=seed)
        tokenizer, text_encoder, vae = pipeline.tokenizer, pipeline.text_encoder, pipeline.vae
        origin = {"source": "config", "seed": seed}
    identity = {
        "preset": preset.name,
        **origin,
        "vae": dict(vae.config),
        "text_encoder": text_encoder.config.to_dict(),
        "geometry": [preset.height, preset.width, preset.num_frames],
        "lengths": [preset.max_sequence_length, preset.max_action_tokens],
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return CacheEncoders(
        preset_name=preset.name,
        tokenizer=tokenizer,
        text_encoder=text_encoder.to(device).eval(),
        vae=vae.to(device).eval(),
        height=preset.height,
        width=preset.width,
        num_frames=preset.num_frames,
        max_sequence_length=preset.max_sequence_length,
        max_action_tokens=preset.max_action_tokens,
        fingerprint=hashlib.sha256(blob).hexdigest()[:16],
    )


@dataclass(frozen=True)
class SampleInputs:
    """One training sample's raw inputs.

    Attributes:
        sample_id: the curriculum's id.
        clip: local path of the clip file.
        prompt: global prompt (caption).
        timeline: sub-actions over the clip's duration, or None.
        references: one reference image file per subject, in subject order.
        subjects: subject label of each reference (default: the timeline's order).
        subject_masks: ground-truth masks ``(K, F_m, H_m, W_m)`` in ``[0, 1]``, or None.
    """

    sample_id: str
    clip: Path
    prompt: str
    timeline: Timeline | None = None
    references: tuple[Path, ...] = ()
    subjects: tuple[str, ...] | None = None
    subject_masks: Any = None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def clip_frame_picks(total_frames: int, num_frames: int) -> Any:
    """Indices of the ``num_frames`` frames spread evenly over a clip of ``total_frames``."""
    import numpy as np

    return np.linspace(0, total_frames - 1, num_frames).round().astype(int)


def centre_crop_box(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_h, crop_w)`` of the centre crop with the aspect ratio of ``height x width``."""
    scale = max(height / src_h, width / src_w)
    crop_h, crop_w = min(src_h, round(height / scale)), min(src_w, round(width / scale))
    return (src_h - crop_h) // 2, (src_w - crop_w) // 2, crop_h, crop_w


def clip_pixels(path: Path, height: int, width: int, num_frames: int) -> Any:
    """``num_frames`` frames spread over the clip, centre-cropped and resized.

    Returns:
        ``(3, num_frames, height, width)`` float in ``[-1, 1]``.

    Raises:
        ValueError: the clip has fewer frames than ``num_frames``.
    """
    import torch
    import torch.nn.functional as F

    from curation.video_io import decode_frames

    frames = decode_frames(path).frames  # (T, H, W, 3) uint8
    if len(frames) < num_frames:
        raise ValueError(f"clip {path} has {len(frames)} frames; training needs {num_frames}")
    picks = clip_frame_picks(len(frames), num_frames)
    video = torch.from_numpy(frames[picks]).permute(3, 0, 1, 2).float()  # (3, F, H, W)
    top, left, crop_h, crop_w = centre_crop_box(*video.shape[2:], height, width)
    video = video[:, :, top : top + crop_h, left : left + crop_w]
    video = F.interpolate(video, size=(height, width), mode="bilinear", antialias=True,
                          align_corners=False)
    return (video / 127.5 - 1.0).clamp(-1.0, 1.0)


class EmbeddingCache:
    """Content-keyed cache of VAE latents and text embeddings in an object store.

    Args:
        store: an ``ObjectStore``.
        encoders: from ``load_cache_encoders``.
        prefix: key prefix of the cache.

    Attributes:
        hits, misses: objects found / encoded by this instance.
    """

    def __init__(self, store: Any, encoders: CacheEncoders, prefix: str = DEFAULT_PREFIX) -> None:
        self.store, self.encoders = store, encoders
        self.root = layout.embeddings(encoders.fingerprint, prefix)
        self.hits = self.misses = 0

    def _lookup(self, key: str) -> bool:
        found = self.store.exists(key)
        if found:
            self.hits += 1
        else:
            self.misses += 1
        return found

    # ------------------------------------------------------------------ encoders

    def _normalise(self, latents: Any) -> Any:
        import torch

        config = self.encoders.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean, dtype=latents.dtype).view(shape)
        std = torch.tensor(config.latents_std, dtype=latents.dtype).view(shape)
        return (latents - mean.to(latents.device)) / std.to(latents.device)

    def _encode_pixels(self, pixels: Any) -> Any:
        """``(N, 3, F, H, W)`` in ``[-1, 1]`` to normalised latents ``(N, C, F', h, w)``."""
        import torch

        vae = self.encoders.vae
        with torch.no_grad():
            latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode()
        return self._normalise(latents.float()).cpu()

    # ------------------------------------------------------------------ entries

    def clip_latents(self, clip: str | Path) -> str:
        """Key of the clip's latents ``(C, F', h, w)`` (encoded on a miss)."""
        clip = Path(clip)
        if not clip.is_file():
            raise FileNotFoundError(f"clip {clip} does not exist")
        key = f"{self.root}/latents/{_file_sha256(clip)}.safetensors"
        if not self._lookup(key):
            enc = self.encoders
            pixels = clip_pixels(clip, enc.height, enc.width, enc.num_frames).unsqueeze(0)
            latents = self._encode_pixels(pixels)[0]
            put_tensors(self.store, key, {"latents": latents}, {"source": clip.name})
        return key

    def reference_latents(self, image: str | Path) -> str:
        """Key of a reference image's latents ``(C, h, w)``, letterboxed like the pipeline's."""
        from PIL import Image

        from models.reference_images import letterbox_reference

        image = Path(image)
        if not image.is_file():
            raise FileNotFoundError(f"reference image {image} does not exist")
        key = f"{self.root}/references/{_file_sha256(image)}.safetensors"
        if not self._lookup(key):
            with Image.open(image) as opened:
                pixels = letterbox_reference(opened.convert("RGB"), self.encoders.height,
                                             self.encoders.width)
            latents = self._encode_pixels(pixels.unsqueeze(0).unsqueeze(2))[0, :, 0]
            put_tensors(self.store, key, {"latents": latents}, {"source": image.name})
        return key

    def text_embeddings(self, texts: Sequence[str], max_length: int) -> list[str]:
        """Keys of each text's embeddings ``embeds`` ``(L, D)`` and ``mask`` ``(L,)``.

        Texts not yet cached are encoded together in one batch.
        """
        from models.text_encoder import encode_texts

        keys = [
            f"{self.root}/text/{hashlib.sha256(f'{max_length}:{t}'.encode()).hexdigest()}"
            ".safetensors"
            for t in texts
        ]
        todo: dict[str, str] = {}
        for text, key in zip(texts, keys, strict=True):
            if key not in todo and not self._lookup(key):
                todo[key] = text
        if todo:
            enc = self.encoders
            embeds, mask = encode_texts(enc.tokenizer, enc.text_encoder, list(todo.values()),
                                        max_length)
            for row, key in enumerate(todo):
                put_tensors(self.store, key,
                             {"embeds": embeds[row].float().cpu(), "mask": mask[row].cpu()},
                             {"max_length": str(max_length)})
        return keys

    def subject_masks(self, masks: Any) -> str:
        """Key of ground-truth subject masks ``(K, F, H, W)`` (stored as float32)."""
        import torch

        tensor = torch.as_tensor(masks, dtype=torch.float32).contiguous()
        if tensor.ndim != 4:
            raise ValueError(f"subject masks must be (K, F, H, W), got {tuple(tensor.shape)}")
        digest = hashlib.sha256(str(tuple(tensor.shape)).encode() + tensor.numpy().tobytes())
        key = f"{self.root}/masks/{digest.hexdigest()}.safetensors"
        if not self._lookup(key):
            put_tensors(self.store, key, {"masks": tensor}, {})
        return key

    def null_prompt_embeds(self) -> Any:
        """``(L, D)`` embedding of the empty prompt: what a CFG-dropped sample sees."""
        key = self.text_embeddings([""], self.encoders.max_sequence_length)[0]
        return load_tensors(self.store, key)["embeds"]

    # ------------------------------------------------------------------ samples

    def cache_sample(self, sample: SampleInputs) -> CachedSample:
        """Encode (or find) everything one sample needs; returns its keys."""
        from models.pipeline_inputs import resolve_subjects
        from models.timeline_conditioning import action_subject_indices, latent_action_spans

        enc = self.encoders
        references = tuple(self.reference_latents(path) for path in sample.references)
        timeline = sample.timeline
        actions: tuple[str, ...] = ()
        spans: tuple[tuple[float, float], ...] = ()
        owners: tuple[int, ...] = ()
        folded = None
        if timeline is not None and timeline.actions:
            subjects = resolve_subjects(timeline, len(references), sample.subjects)
            actions = tuple(self.text_embeddings([a.description for a in timeline.actions],
                                                 enc.max_action_tokens))
            spans = tuple(latent_action_spans(timeline, enc.num_latent_frames))
            owners = tuple(action_subject_indices(timeline, subjects))
            folded = self.text_embeddings([timeline.as_prompt()], enc.max_sequence_length)[0]
        return CachedSample(
            sample_id=sample.sample_id,
            latents=self.clip_latents(sample.clip),
            prompt=self.text_embeddings([sample.prompt], enc.max_sequence_length)[0],
            references=references,
            actions=actions,
            action_spans=spans,
            action_subjects=owners,
            subject_masks=None if sample.subject_masks is None
            else self.subject_masks(sample.subject_masks),
            timeline_prompt=folded,
        )

    def build_index(self, samples: Iterable[SampleInputs]) -> CacheIndex:
        """``cache_sample`` over many samples, plus the empty prompt for CFG dropout."""
        index: dict[str, CachedSample] = {}
        for sample in samples:
            if sample.sample_id in index:
                raise ValueError(f"sample id {sample.sample_id!r} appears twice")
            index[sample.sample_id] = self.cache_sample(sample)
        null = self.text_embeddings([""], self.encoders.max_sequence_length)[0]
        return CacheIndex(samples=index, null_prompt=null)


@dataclass(frozen=True)
class CacheIndex:
    """Sample id to cached keys, and the key of the empty prompt's embeddings."""

    samples: dict[str, CachedSample]
    null_prompt: str

    def null_prompt_embeds(self, store: Any) -> Any:
        """``(L, D)`` embedding a CFG-dropped sample's prompt is replaced by."""
        return load_tensors(store, self.null_prompt)["embeds"]


def write_index(store: Any, key: str, index: CacheIndex) -> None:
    """Write a cache index as JSON."""
    payload = {
        "null_prompt": index.null_prompt,
        "samples": {sid: record.to_json() for sid, record in sorted(index.samples.items())},
    }
    store.put_bytes(key, json.dumps(payload, indent=1).encode())


def read_index(store: Any, key: str) -> CacheIndex:
    """Read an index written by ``write_index``."""
    data = json.loads(store.get_bytes(key))
    samples = {sid: CachedSample.from_json(record) for sid, record in data["samples"].items()}
    return CacheIndex(samples=samples, null_prompt=data["null_prompt"])
